"""`emofusion features AUDIO`: the 34 acoustic features of one recording, summarised or saved.

Prints the frame matrix's shape and, per feature, its mean, standard deviation, minimum and
maximum over the frames; ``--out file.npy`` saves every frame (float64, shape (frames, 34), no
truncation to the models' ``max_frames``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from emofusion.errors import EmofusionError
from emofusion.features.acoustic import FEATURE_NAMES, AcousticConfig, extract_file
from emofusion.features.acoustic_tables import MODES

_DEFAULTS = AcousticConfig()


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "features", help="acoustic features of one audio file", description=__doc__.splitlines()[0]
    )
    parser.add_argument("audio", type=Path, help="an audio file (WAV, FLAC, OGG, ...)")
    parser.add_argument("--out", type=Path, default=None, help="save all frames as a .npy array")
    parser.add_argument("--window-ms", type=float, default=1000 * _DEFAULTS.window_s,
                        help="frame length in ms (default %(default)g)")
    parser.add_argument("--step-ms", type=float, default=1000 * _DEFAULTS.step_s,
                        help="frame hop in ms (default %(default)g)")
    parser.add_argument("--sample-rate", type=int, default=_DEFAULTS.sample_rate,
                        help="resample to this rate first (default %(default)d)")
    parser.add_argument("--mode", choices=MODES, default=_DEFAULTS.mode,
                        help="pyaudioanalysis: exact, quirks included (default); corrected: quirks fixed")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = AcousticConfig(
        window_s=args.window_ms / 1000, step_s=args.step_ms / 1000, sample_rate=args.sample_rate, mode=args.mode
    )
    frames = extract_file(args.audio, config)
    print(f"{args.audio}: {frames.shape} frames x features "
          f"({1000 * config.window_s:g} ms window, {1000 * config.step_s:g} ms step, "
          f"{config.sample_rate} Hz, {config.mode})")
    print(format_summary(frames))
    if args.out is not None:
        out = args.out if args.out.suffix == ".npy" else Path(f"{args.out}.npy")  # as np.save names it
        try:
            np.save(out, frames)
        except OSError as exc:
            raise EmofusionError(f"cannot write {out}: {exc.strerror or exc}") from exc
        print(f"saved {frames.shape[0]} frames to {out}")
    return 0


def format_summary(frames: np.ndarray) -> str:
    """One line per feature: name, mean, std, min, max over the frames."""
    lines = [f"{'feature':<18}{'mean':>12}{'std':>12}{'min':>12}{'max':>12}"]
    stats = (frames.mean(axis=0), frames.std(axis=0), frames.min(axis=0), frames.max(axis=0))
    for i, name in enumerate(FEATURE_NAMES):
        lines.append(f"{name:<18}" + "".join(f"{s[i]:>12.5g}" for s in stats))
    return "\n".join(lines)

