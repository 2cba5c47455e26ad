"""`emofusion export`: write a trained model as one ONNX file for onnxruntime (no PyTorch needed)."""

from __future__ import annotations

import argparse
from pathlib import Path

from emofusion.errors import ConfigError


def register(subparsers) -> None:
    p = subparsers.add_parser("export", help="export a model to ONNX", description=__doc__)
    p.add_argument("run_dir", nargs="?", type=Path, default=None,
                   help="a run folder written by `emofusion train` (default: the shipped M-CBLA-BLR, the paper's "
                        "fusion model; the default M-WTV-ST reads pretrained-encoder features, which ONNX does not cover)")
    p.add_argument("--format", choices=["onnx"], default="onnx", help="the only format: onnx")
    p.add_argument("--out", required=True, type=Path, help="the file to write, e.g. model.onnx")
    p.add_argument("--quantize", choices=["int8"], default=None,
                   help="int8: onnxruntime dynamic quantisation of the LSTM and dense weights (~3x faster on CPU)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from emofusion.artifacts import load_trained
    from emofusion.export.onnx_export import METADATA_KEY, export_onnx, graph_inputs
    from emofusion.inference.recognizer import SHIPPED_MODEL

    if args.out.suffix.lower() != ".onnx":
        raise ConfigError(f"--out {args.out}: the file name must end in .onnx")
    if args.out.is_dir():
        raise ConfigError(f"--out {args.out} is a folder; give a file name such as {args.out / 'model.onnx'}")
    run_dir = args.run_dir if args.run_dir is not None else SHIPPED_MODEL
    trained = load_trained(run_dir)
    result = export_onnx(trained, args.out, quantize=args.quantize, source=str(run_dir))
    kind = f"{result.quantize} " if result.quantize else "float32 "
    print(f"exported {trained.name} ({kind}ONNX, {result.size_bytes / 2**20:.1f} MiB) -> {result.path}")
    print(f"checked in onnxruntime on {result.checks} batches (lengths 1..max, mixed): "
          f"max |probability difference| vs PyTorch {result.max_difference:.1e} (float32 graph)")
    print(f"inputs: {', '.join(graph_inputs(trained.modalities))}; labels, feature config, normalisation "
          f"and vocabulary are in the file's metadata (key {METADATA_KEY!r})")
    return 0
