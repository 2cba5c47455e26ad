"""`emofusion predict`: the emotion of a recording + transcript, or of every row of a manifest/folder."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from emofusion.errors import ConfigError
from emofusion.inference.batch import items_from_folder, items_from_manifest, predict_to_csv
from emofusion.inference.backends import BACKENDS
from emofusion.inference.recognizer import EmotionRecognizer


def register(subparsers) -> None:
    p = subparsers.add_parser("predict", help="predict emotions", description=__doc__)
    p.add_argument("input", nargs="?", type=Path,
                   help="an audio file, a manifest .csv, or a folder of audio files (with optional <name>.txt transcripts)")
    p.add_argument("--text", default=None, help="the transcript of the audio file")
    p.add_argument("--model", type=Path, default=None,
                   help="a run folder or an exported .onnx file (default: the shipped M-CBLA-BLR)")
    p.add_argument("--out", type=Path, default=None, help="predictions CSV (required for a manifest or folder)")
    p.add_argument("--json", action="store_true", help="print JSON: label and probabilities")
    p.add_argument("--device", default="cpu")
    p.add_argument("--backend", choices=BACKENDS, default=None,
                   help="torch (default; onnx for a .onnx --model); onnx: onnxruntime (the run folder is exported "
                        'once); onnx-int8: the same, int8-quantised. onnx needs pip install "emofusion[onnx]"')
    p.add_argument("--workers", type=int, default=None,
                   help="batch prediction: processes extracting features (default: every core), or Ray actors "
                        "(default: the cluster's CPUs)")
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help='batch prediction on this machine (default) or a Ray cluster (pip install "emofusion[ray]")')
    p.add_argument("--address", default=None,
                   help="Ray cluster address, e.g. ray://head:10001 (default: start a local cluster)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {args.workers}")
    if args.address is not None and args.engine != "ray":
        raise ConfigError("--address is a Ray cluster address: use it with --engine ray")
    source = args.input
    batch = source is not None and (source.is_dir() or source.suffix.lower() == ".csv")
    if batch:
        # Every argument is checked before the model is loaded and anything is predicted.
        check_out(args.out, source)
        items = items_from_folder(source) if source.is_dir() else items_from_manifest(source)
    recognizer = EmotionRecognizer.load(args.model, device=args.device, backend=args.backend)
    if batch:
        results = None
        if args.engine == "ray":
            from emofusion.inference.ray_engine import predict_stream_ray

            results = predict_stream_ray(args.model, items, backend=args.backend, address=args.address,
                                         workers=args.workers)
        ok, failed = predict_to_csv(recognizer, items, args.out, progress=not args.quiet, workers=args.workers,
                                    results=results)
        print(f"{ok} predicted, {failed} failed -> {args.out}")
        return 0 if ok else 1
    if source is None and args.text is None:
        raise ConfigError("give an audio file and/or --text")
    if source is not None and "speech" not in recognizer.modalities:
        raise ConfigError(f"{recognizer.name} is a text-only model: it cannot use {source}")
    if args.text is not None and "text" not in recognizer.modalities and source is not None:
        print(f"note: {recognizer.name} is a speech-only model; the transcript is not used")
    prediction = recognizer.predict(source, args.text)
    if args.json:
        print(json.dumps({"model": recognizer.name, **prediction.to_json()}, indent=2))
        return 0
    used = " + ".join(prediction.modalities)
    print(f"{prediction.label}   ({recognizer.name}, {used})")
    for label, p in sorted(prediction.probabilities.items(), key=lambda kv: -kv[1]):
        print(f"  {label:>4} {p:6.1%} {'#' * round(p * 40)}")
    return 0


def check_out(out: Path | None, source: Path) -> None:
    """Refuse an --out that is missing, a folder, the input itself, or cannot be created."""
    if out is None:
        raise ConfigError("batch prediction needs --out preds.csv")
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder: name the predictions file, e.g. {out / 'preds.csv'}")
    if source.is_file() and out.exists() and os.path.samefile(out, source):
        raise ConfigError(f"--out {out} would overwrite the input manifest {source}: choose another file")
    parent = out.absolute().parent
    existing = next(p for p in [parent, *parent.parents] if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK):
        raise ConfigError(f"--out {out}: cannot create it ({existing} is not a writable folder)")
