"""PyTorch vs onnxruntime float32 vs onnxruntime int8, side by side in one run.

    python benchmarks/bench_backends.py [--model RUN_DIR] [--calls 300] [--requests 1000] [--skip-service]

1. Model step: one 3-s utterance (its two windows, 100 + 19 frames, + transcript) through the model alone, one core,
   one thread; p50/p95 per backend, calls interleaved round-robin so machine load hits all alike.
   Target: int8 <= 3 ms.
2. End-to-end predict of a 3-s WAV (decode + features + model), one thread. Target: p50 <= 6 ms.
3. Service throughput: `emofusion serve --backend B` on 127.0.0.1 with 8 clients keeping their
   connections alive (as benchmarks/bench_service.py). Target: >= 200 req/s on 2 cores, 0 errors.

The ONNX models are the run folder's (default: the shipped model's) cached exports, made on first
use (`EmotionRecognizer.load(backend=...)`). Bounded: fixed calls and requests, --time-limit per phase.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_service import (  # noqa: E402  (the service benchmark's client, request and WAV)
    TEXT, bench_throughput, free_port, multipart, percentiles, start_server, three_second_wav,
)

from emofusion.audio import load_audio  # noqa: E402
from emofusion.inference.recognizer import SHIPPED_MODEL, EmotionRecognizer  # noqa: E402
from emofusion.features.batching import EncodedSet, collate  # noqa: E402

BACKENDS = ("torch", "onnx", "onnx-int8")


def model_inputs(rec: EmotionRecognizer, wav: bytes) -> dict[str, torch.Tensor]:
    """The collated model inputs of the 3-s utterance, exactly as the recognizer builds them."""
    audio = load_audio(wav)
    prepared = rec.prepare(audio.samples, TEXT if "text" in rec.modalities else None, sample_rate=audio.sample_rate)
    # 3 s = 119 frames: two windows (100 + 19 frames), one batch, as predict runs it.
    n = len(prepared.windows)
    pipeline = rec.trained.pipeline
    encoded = EncodedSet(labels=np.full(n, -1, dtype=np.int64))
    if pipeline.uses_speech:
        encoded.speech = pipeline.speech_inputs(prepared.windows)
    if pipeline.uses_text:
        encoded.tokens = pipeline.text_inputs([prepared.text] * n)
    return collate(encoded, np.arange(n), torch.device("cpu"))


def interleaved(calls: dict[str, callable], n: int, time_limit: float) -> tuple[dict, dict]:
    """Round-robin timing of every function, ``n`` calls each (after 10 warm-up calls).

    Returns wall-clock ms and this thread's CPU ms per call. With one thread the work runs on the
    calling thread, so CPU ms is what a call costs even when a busy machine stretches its wall time.
    """
    for fn in calls.values():
        for _ in range(10):
            fn()
    wall: dict[str, list[float]] = {k: [] for k in calls}
    cpu: dict[str, list[float]] = {k: [] for k in calls}
    deadline = time.monotonic() + time_limit
    while min(len(v) for v in wall.values()) < n and time.monotonic() < deadline:
        for name, fn in calls.items():
            t0, c0 = time.perf_counter(), time.thread_time()
            fn()
            wall[name].append((time.perf_counter() - t0) * 1e3)
            cpu[name].append((time.thread_time() - c0) * 1e3)
    return wall, cpu


def start_server_with(model: Path, backend: str, port: int) -> subprocess.Popen:
    # A first onnx start exports (and quantises) the model into the cache: allow it minutes.
    return start_server(model, 1, port, None, extra=["--backend", backend], startup_s=600)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=SHIPPED_MODEL, help="run folder (default: the shipped model)")
    ap.add_argument("--calls", type=int, default=300, help="timed calls per backend and phase")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=1000, help="requests per service run")
    ap.add_argument("--time-limit", type=float, default=120.0, help="seconds per phase at most")
    ap.add_argument("--skip-service", action="store_true")
    args = ap.parse_args(argv)

    torch.set_num_threads(1)
    wav = three_second_wav()
    recs = {b: EmotionRecognizer.load(args.model, backend=b, threads=1) for b in BACKENDS}
    name = recs["torch"].name
    print(f"model: {name} ({args.model})   cores: {os.cpu_count()}   torch {torch.__version__}   one thread")

    inputs = model_inputs(recs["torch"], wav)
    steps, steps_cpu = interleaved({b: (lambda r=r: r.backend.probabilities(inputs)) for b, r in recs.items()}, args.calls, args.time_limit)
    audio_text = TEXT if "text" in recs["torch"].modalities else None

    def predict(rec: EmotionRecognizer):
        audio = load_audio(wav, max_seconds=600)
        return rec.predict(audio.samples, audio_text, sample_rate=audio.sample_rate)

    ends, ends_cpu = interleaved({b: (lambda r=r: predict(r)) for b, r in recs.items()}, args.calls, args.time_limit)
    base_step, base_end = percentiles(steps["torch"])[0], percentiles(ends["torch"])[0]
    print("\n1-2. one 3-s utterance, 1 thread (targets: int8 model step <= 3 ms, predict p50 <= 6 ms)")
    print("     wall-clock p50/p95, ratio to torch, and CPU p50 (the cost of a call, unaffected by a busy machine)")
    print(f"   {'backend':<10} {'model p50':>10} {'p95':>8} {'speed-up':>9} {'CPU p50':>8}"
          f" {'predict p50':>12} {'p95':>8} {'speed-up':>9} {'CPU p50':>8}")
    for b in BACKENDS:
        s50, s95 = percentiles(steps[b])
        e50, e95 = percentiles(ends[b])
        print(f"   {b:<10} {s50:>8.2f}ms {s95:>6.2f}ms {base_step / s50:>8.2f}x {percentiles(steps_cpu[b])[0]:>6.2f}ms"
              f" {e50:>10.2f}ms {e95:>6.2f}ms {base_end / e50:>8.2f}x {percentiles(ends_cpu[b])[0]:>6.2f}ms")

    if args.skip_service:
        return 0
    body, content_type = multipart(wav, audio_text)
    print(f"\n3. service throughput: {args.clients} clients, {args.requests} requests, 1 worker, 127.0.0.1 "
          "(target >= 200 req/s on 2 cores, 0 errors)")
    print(f"   {'backend':<10} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'ok':>6} {'errors':>6} {'server CPU ms/req':>17}")
    base_rps = None
    for b in BACKENDS:
        port = free_port()
        proc = start_server_with(args.model, b, port)
        try:
            bench_throughput(port, proc.pid, body, content_type, args.clients, 100, 60)  # warm-up
            r = bench_throughput(port, proc.pid, body, content_type, args.clients, args.requests, args.time_limit)
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        base_rps = base_rps or r["rps"]
        print(f"   {b:<10} {r['rps']:>8.1f} {r['p50']:>8.1f} {r['p95']:>8.1f} {r['ok']:>6} {r['errors']:>6} "
              f"{r['server_cpu_ms']:>17.2f}   {r['rps'] / base_rps:.2f}x"
              + (f"   first error: {r['first_error']}" if r["errors"] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
