"""`emofusion serve`: the HTTP API and web page on http://HOST:PORT (uvicorn)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from emofusion.errors import ConfigError

MiB = 1024 * 1024


def register(subparsers) -> None:
    p = subparsers.add_parser("serve", help="run the HTTP API and web page", description=__doc__)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--model", type=Path, default=None, help="a run folder (default: the shipped M-CBLA-BLR)")
    p.add_argument("--workers", type=int, default=1,
                   help="server processes, each with its own copy of the model (throughput scales with cores)")
    p.add_argument("--concurrency", type=int, default=None,
                   help="predictions computed at once per process (default: the number of CPU cores)")
    p.add_argument("--torch-threads", type=int, default=1, help="torch threads per prediction (default 1)")
    p.add_argument("--max-upload-mb", type=float, default=20.0, help="largest audio upload (default 20 MiB)")
    p.add_argument("--max-audio-seconds", type=float, default=600.0, help="longest recording (default 600 s)")
    p.add_argument("--max-text-chars", type=int, default=5000, help="longest transcript (default 5000)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(func=run)


def settings_of(args: argparse.Namespace) -> dict:
    """The keyword arguments of `create_app` the command line asks for."""
    if args.workers < 1 or not (0 < args.port < 65536) or args.max_upload_mb <= 0:
        raise ConfigError(f"invalid serve options: workers={args.workers}, port={args.port}, max-upload-mb={args.max_upload_mb}")
    return {
        "model_dir": str(args.model) if args.model is not None else None,
        "max_upload_bytes": int(args.max_upload_mb * MiB),
        "max_audio_seconds": args.max_audio_seconds,
        "max_text_chars": args.max_text_chars,
        "concurrency": args.concurrency,
        "torch_threads": args.torch_threads,
    }


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from emofusion.inference.recognizer import EmotionRecognizer
    from emofusion.service.app import SETTINGS_ENV, create_app

    settings = settings_of(args)
    # Load once here so a bad --model fails now with a one-line error, not inside a worker.
    recognizer = EmotionRecognizer.load(args.model)
    print(f"emofusion: serving {recognizer.name} ({' + '.join(sorted(recognizer.modalities))}) "
          f"on http://{args.host}:{args.port}/  (API docs at /docs)")
    if args.workers == 1:
        app = create_app(recognizer, **{k: v for k, v in settings.items() if k != "model_dir"})
        uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
        return 0
    # Several processes need an importable factory; each worker loads its own copy of the model.
    os.environ[SETTINGS_ENV] = json.dumps(settings)
    uvicorn.run("emofusion.service.app:create_app_from_env", factory=True, host=args.host, port=args.port,
                workers=args.workers, log_level=args.log_level)
    return 0
