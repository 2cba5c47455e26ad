"""Prediction latency with the pretrained encoders, side by side with today's default model.

    python benchmarks/bench_encoders.py [--model-new RUN_DIR] [--calls 100] [--threads 2]

1. Whisper tiny.en encoder on a 3-s clip: fed the clip's real length (what S-WT does) and padded to
   Whisper's 30-s window (what transcription does). The ratio is why the encoder models use the
   real length.
2. ``EmotionRecognizer.predict`` on a 3-s WAV (bytes) with its transcript: decode + features + model,
   p50/p95 over ``--calls`` calls, for the default without the encoders extra (the shipped
   M-CBLA-BLR, ``load("fusion-paper")``; 12-16 ms on a quiet machine) and the default with it (the
   shipped M-WTV-ST, ``load("fusion-encoders")``: decode, Whisper frames, MiniLM vector, fusion DNN),
   or another run folder (``--model-new``). Target for the new default: p50 <= 60 ms on 2 cores.

Run on a quiet machine; under load, read the ratios, which are measured in the same run, and the
CPU time per call (process time, threads included), which load inflates far less than wall time:
with ``--threads 1`` it is close to the quiet-machine latency.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from emofusion.artifacts import TrainedModel, build_for_pipeline
from emofusion.features.pipeline import FeaturePipeline
from emofusion.inference.recognizer import EmotionRecognizer
from emofusion.inference.shipped import SHIPPED_MODELS
from emofusion.models import ModelConfig

REPO = Path(__file__).resolve().parents[1]
CLIP = REPO.parent / "shared" / "data" / "ravdess" / "Actor_01" / "03-01-05-01-01-01-01.flac"
TEXT = "Kids are talking by the door."


def three_seconds() -> np.ndarray:
    samples, rate = sf.read(CLIP, dtype="float32")
    assert rate == 16000, rate
    return np.pad(samples, (0, max(0, 3 * rate - len(samples))))[: 3 * rate]


def wav_bytes(samples: np.ndarray) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, 16000, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def percentiles(times: list[float]) -> tuple[float, float]:
    ms = np.array(times) * 1e3
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 95))


CPU_TIMES: list[float] = []  # process time of each call of the last `timed`


def timed(fn, calls: int) -> list[float]:
    fn()  # warm-up: first calls allocate and load
    out = []
    CPU_TIMES.clear()
    for _ in range(calls):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        out.append(time.perf_counter() - t0)
        CPU_TIMES.append(time.process_time() - c0)
    return out


def untrained_encoder_model(name: str = "M-WT-ST") -> EmotionRecognizer:
    pipeline = FeaturePipeline(frozenset({"speech", "text"}), speech_kind="whisper", text_kind="sentence")
    pipeline.mean, pipeline.std = np.zeros(384), np.ones(384)
    model = build_for_pipeline(name, pipeline, n_classes=4, config=ModelConfig()).eval()
    trained = TrainedModel(name, ("ang", "exc", "neu", "sad"), model, pipeline, {})
    return EmotionRecognizer(trained)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-new", type=Path, default=None)
    p.add_argument("--calls", type=int, default=100)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if not CLIP.is_file():
        print(f"needs ../shared/data ({CLIP})", file=sys.stderr)
        return 2

    from emofusion.features.encoders.whisper import WhisperEncoder

    samples = three_seconds()
    encoder = WhisperEncoder(threads=args.threads)
    print(f"Whisper tiny.en encoder, 3-s clip, {args.threads} threads:")
    real = timed(lambda: encoder.frames(samples), max(10, args.calls // 5))
    print(f"  real length (150 frames):   p50 {percentiles(real)[0]:7.1f} ms  CPU {1e3 * np.median(CPU_TIMES):.1f} ms/call")
    padded_input = np.pad(samples, (0, 30 * 16000 - len(samples)))
    padded = timed(lambda: encoder.frames(padded_input), 5)
    print(f"  padded to 30 s (1500):      p50 {percentiles(padded)[0]:7.1f} ms  CPU {1e3 * np.median(CPU_TIMES):.1f} ms/call"
          f"   ratio {np.median(padded) / np.median(real):.1f}x")

    wav = wav_bytes(samples)
    rows = [("M-CBLA-BLR (default without extra)", EmotionRecognizer.load("fusion-paper"))]
    if args.model_new:
        new = EmotionRecognizer.load(args.model_new)
        rows.append((f"{new.name} ({args.model_new.name})", new))
    elif (SHIPPED_MODELS["fusion-encoders"] / "model.json").is_file():
        rec = EmotionRecognizer.load("fusion-encoders")
        rows.append((f"{rec.name} (default with extra)", rec))
    else:  # same cost, meaningless predictions
        rows.append(("M-WT-ST (untrained weights)", untrained_encoder_model()))
    print(f"\npredict, 3-s WAV bytes + transcript, {args.calls} calls, torch {args.threads} threads:")
    base = None
    for label, rec in rows:
        p50, p95 = percentiles(timed(lambda: rec.predict(wav, text=TEXT), args.calls))
        cpu = 1e3 * float(np.median(CPU_TIMES))
        base = base or p50
        print(f"  {label:36s} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  ({p50 / base:.1f}x M-CBLA-BLR)  CPU {cpu:.1f} ms/call")
    return 0


if __name__ == "__main__":
    sys.exit(main())
