"""`emofusion serve`: the HTTP API and web page on http://HOST:PORT (uvicorn)."""

from __future__ import annotations

import argparse

from emofusion.errors import ConfigError
from emofusion.inference.backends import BACKENDS
from emofusion.service.limits import MiB, Limits

# The documented defaults live in `Limits`; the options only name them.
DEFAULTS = Limits()


def register(subparsers) -> None:
    p = subparsers.add_parser("serve", help="run the HTTP API and web page", description=__doc__)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--model", default=None,
                   help="'fusion' (default: the shipped M-WTV-ST with the encoders extra, else M-CBLA-BLR; M-CBLA-BLR "
                        "with an onnx backend), 'fusion-encoders' (M-WTV-ST), 'fusion-paper' (M-CBLA-BLR), 'speech' "
                        "(S-WTV with the extra, else S-CBLA), 'speech-encoders', 'speech-paper', a run folder or an "
                        "exported .onnx file")
    p.add_argument("--backend", choices=BACKENDS, default=None,
                   help="torch (default; onnx for a .onnx --model), onnx or onnx-int8 (onnxruntime; "
                        'pip install "emofusion[onnx]")')
    p.add_argument("--workers", type=int, default=1,
                   help="server processes, each with its own copy of the model (throughput scales with cores)")
    p.add_argument("--concurrency", type=int, default=None,
                   help="predictions computed at once per process (default: the number of CPU cores)")
    p.add_argument("--torch-threads", type=int, default=1, help="torch threads per prediction (default 1)")
    limits = p.add_argument_group("limits (see README: Service)")
    limits.add_argument("--max-upload-mb", type=float, default=DEFAULTS.max_upload_bytes / MiB,
                        help=f"largest audio upload (default {DEFAULTS.max_upload_bytes / MiB:g} MiB)")
    limits.add_argument("--max-audio-seconds", type=float, default=DEFAULTS.max_audio_seconds,
                        help=f"longest recording (default {DEFAULTS.max_audio_seconds:g} s)")
    limits.add_argument("--max-text-chars", type=int, default=DEFAULTS.max_text_chars,
                        help=f"longest transcript (default {DEFAULTS.max_text_chars})")
    limits.add_argument("--max-connections", type=int, default=DEFAULTS.max_connections,
                        help=f"open connections per process; beyond it requests get 503 (default {DEFAULTS.max_connections})")
    limits.add_argument("--header-timeout", type=float, default=DEFAULTS.header_timeout_s,
                        help=f"seconds for a request's headers to arrive (default {DEFAULTS.header_timeout_s:g})")
    limits.add_argument("--body-timeout", type=float, default=DEFAULTS.body_timeout_s,
                        help=f"longest pause while an upload streams in, seconds (default {DEFAULTS.body_timeout_s:g})")
    limits.add_argument("--keep-alive", type=float, default=DEFAULTS.keep_alive_s,
                        help=f"seconds an idle connection is kept open (default {DEFAULTS.keep_alive_s:g})")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(func=run)


def settings_of(args: argparse.Namespace) -> dict:
    """The keyword arguments of `create_app` the command line asks for (JSON-able: ``limits`` is a dict)."""
    if args.workers < 1 or not (0 < args.port < 65536):
        raise ConfigError(f"invalid serve options: workers={args.workers}, port={args.port}")
    limits = Limits(
        max_upload_bytes=int(args.max_upload_mb * MiB),
        max_audio_seconds=args.max_audio_seconds,
        max_text_chars=args.max_text_chars,
        max_connections=args.max_connections,
        header_timeout_s=args.header_timeout,
        body_timeout_s=args.body_timeout,
        keep_alive_s=args.keep_alive,
    )
    return {
        "model_dir": str(args.model) if args.model is not None else None,
        "limits": limits.to_dict(),
        "concurrency": args.concurrency,
        "torch_threads": args.torch_threads,
        "backend": args.backend,
    }


def run(args: argparse.Namespace) -> int:
    from emofusion.inference.recognizer import EmotionRecognizer
    from emofusion.inference.shipped import shipped_model_path
    from emofusion.service import server

    settings = settings_of(args)
    # A shipped name resolved once, here (the default says once why it falls back): every worker
    # process loads this same folder.
    model = shipped_model_path(args.model, onnx=args.backend in ("onnx", "onnx-int8"))
    settings["model_dir"] = str(model)
    # Load once here so a bad --model fails now with a one-line error, not inside a worker.
    # (For an onnx backend this also exports a run folder into the cache, once, before workers start.)
    recognizer = EmotionRecognizer.load(model, backend=args.backend)
    print(f"emofusion: serving {recognizer.name} ({' + '.join(sorted(recognizer.modalities))}) "
          f"on http://{args.host}:{args.port}/  (API docs at /docs)")
    server.run(settings, recognizer=recognizer if args.workers == 1 else None, host=args.host, port=args.port,
               workers=args.workers, log_level=args.log_level)
    return 0
