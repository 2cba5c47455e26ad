"""Decoding memory and time: emofusion's streaming ``load_audio`` vs a whole-file decode.

Usage: ``python benchmarks/bench_decode.py [--shared PATH] [--clips 100]``

1. Decompression bombs (written to a temporary folder): FLACs of a few hundred kB that decode to
   8 channels x 48 kHz x 599 s, one constant (issue 8.1's file; refused as silent at the end) and
   one whose first channel flips sign every half second (accepted), plus headers claiming
   655,350 Hz and 1 Hz. Each is decoded in a fresh interpreter, which reports its peak resident
   memory (``ru_maxrss``) before and after, by ``load_audio`` and by the whole-file decode it
   replaced (read everything as float64, average the channels, resample in one call).
2. ``--clips`` RAVDESS clips (16 kHz) and the same clips resampled to 44.1 kHz stereo WAV: decode
   time of both methods side by side (best of 3), and whether their samples are identical.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_features import _best_of  # noqa: E402  (one best-of timer for the feature benchmarks)

from emofusion.audio import load_audio  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SHARED = REPO.parent / "shared" / "data"
BOMB_SECONDS = 599


def whole_file_decode(source) -> np.ndarray:
    """What load_audio did before it streamed."""
    handle = io.BytesIO(source) if isinstance(source, bytes) else source
    x, rate = sf.read(handle, dtype="float64", always_2d=True)
    x = x.mean(axis=1)
    return x if rate == 16000 else soxr.resample(x, rate, 16000, quality="HQ")


CHILD = """
import json, resource, sys, time
sys.path.insert(0, sys.argv[3])
from bench_decode import whole_file_decode
from emofusion.audio import load_audio
decode = {"streaming": lambda p: load_audio(p, max_seconds=600).samples, "whole-file": whole_file_decode}[sys.argv[1]]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
start = time.perf_counter()
try:
    result = "%.1f s decoded" % (len(decode(sys.argv[2])) / 16000)
except Exception as exc:
    result = type(exc).__name__ + ": " + str(exc).split(": ", 1)[-1]
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"grown": peak - before, "seconds": seconds, "result": result}))
"""


def measure(method: str, path: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", CHILD, method, str(path), str(Path(__file__).parent)],
                         capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout)


def write_bombs(folder: Path) -> dict[str, Path]:
    second = np.full((48000, 8), 8192, dtype=np.int16)
    flipped = second.copy()
    flipped[24000:, 0] = -8192
    paths = {"constant": folder / "constant.flac", "square": folder / "square.flac"}
    with sf.SoundFile(paths["constant"], "w", 48000, 8, "PCM_16", format="FLAC") as f1, \
            sf.SoundFile(paths["square"], "w", 48000, 8, "PCM_16", format="FLAC") as f2:
        for _ in range(BOMB_SECONDS):
            f1.write(second)
            f2.write(flipped)
    # The same stream behind a STREAMINFO claiming 655,350 Hz x 600 s (rate: 20 bits at byte 18).
    data = bytearray(paths["constant"].read_bytes())
    fields = int.from_bytes(data[18:26], "big")
    data[18:26] = ((655350 << 44) | (((fields >> 36) & 0xFF) << 36) | 600 * 655350).to_bytes(8, "big")
    paths["655350 Hz header"] = folder / "655350hz.flac"
    paths["655350 Hz header"].write_bytes(bytes(data))
    paths["1 Hz WAV"] = folder / "1hz.wav"
    sf.write(paths["1 Hz WAV"], 0.3 * np.sin(np.arange(500) / 3), 1, subtype="PCM_16")
    return paths


def bombs() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_bombs(Path(tmp))
        output_mib = BOMB_SECONDS * 16000 * 8 / 2**20
        print(f"\nDecompression bombs (mono 16-kHz output of 599 s = {output_mib:.0f} MiB); "
              "peak RSS growth over the interpreter's")
        print(f"{'file':<18}{'size':>9}  {'method':<11}{'RSS growth':>12}{'wall s':>9}  result")
        for name, path in paths.items():
            methods = ["streaming", "whole-file"] if name == "square" else ["streaming"]
            rows = {m: measure(m, path) for m in methods}
            for m, r in rows.items():
                print(f"{name:<18}{path.stat().st_size / 1000:>7.0f}kB  {m:<11}{r['grown'] / 2**20:>8.0f} MiB"
                      f"{r['seconds']:>9.2f}  {r['result'][:70]}")
            if len(rows) == 2:
                print(f"{'':<29}whole-file / streaming: memory {rows['whole-file']['grown'] / rows['streaming']['grown']:.0f}x, "
                      f"time {rows['whole-file']['seconds'] / rows['streaming']['seconds']:.1f}x")


def normal_files(shared: Path, n_clips: int) -> None:
    manifest = shared / "bench" / "ravdess4.csv"
    with open(manifest, newline="") as fh:
        rows = list(csv.DictReader(fh))
    step = max(1, len(rows) // n_clips)
    clips = [(manifest.parent / r["audio"]).resolve() for r in rows[::step][:n_clips]]
    sets = {"16 kHz mono FLAC": [c.read_bytes() for c in clips]}
    stereo = []
    for c in clips:  # the same speech as 44.1-kHz stereo WAV: the resampling path
        x = soxr.resample(sf.read(c)[0], 16000, 44100)
        buffer = io.BytesIO()
        sf.write(buffer, np.stack([x, 0.8 * x], axis=1), 44100, format="WAV", subtype="PCM_16")
        stereo.append(buffer.getvalue())
    sets["44.1 kHz stereo WAV"] = stereo
    print(f"\n{len(clips)} RAVDESS clips, decode only (bytes in memory), best of 3")
    print(f"{'input':<22}{'streaming s':>13}{'whole-file s':>14}{'ratio':>8}  identical")
    for name, blobs in sets.items():
        same = all(np.array_equal(load_audio(b).samples, whole_file_decode(b)) for b in blobs)
        t_new = _best_of(3, lambda: [load_audio(b) for b in blobs])
        t_old = _best_of(3, lambda: [whole_file_decode(b) for b in blobs])
        print(f"{name:<22}{t_new:>13.3f}{t_old:>14.3f}{t_new / t_old:>8.2f}  {same}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="the shared data folder")
    parser.add_argument("--clips", type=int, default=100, help="RAVDESS clips for the timing (default 100)")
    args = parser.parse_args()
    bombs()
    if (args.shared / "bench").is_dir():
        normal_files(args.shared, args.clips)
    else:
        print(f"\n{args.shared} not found: normal-file timing skipped")


if __name__ == "__main__":
    main()
