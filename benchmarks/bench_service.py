"""Latency and throughput of the prediction service, on loopback only.

    python benchmarks/bench_service.py [--model RUN_DIR] [--workers 1,2] [--clients 8] [--requests 1000]

1. In-process latency of one prediction as the service computes it (decode a 3-s WAV, features,
   model) with torch on one thread: p50/p95 over ``--calls`` calls. Target: p50 <= 15 ms on one core.
2. Service throughput: ``emofusion serve --workers W`` in a subprocess on 127.0.0.1, ``--clients``
   threads each keeping one HTTP/1.1 connection alive and posting the same pre-encoded multipart
   request until ``--requests`` have been sent. Reports requests/s, p50/p95 client-side latency and
   errors. Target: >= 100 req/s on 2 cores, zero errors. The clients share the machine's cores with
   the server, so they use the lightest client there is (http.client, a request encoded once).

The model: ``--model``, else the shipped one, else a model of the paper's full size trained here
for one epoch on eight RAVDESS clips (its weights are meaningless, its cost is the real one).
Everything is bounded: a fixed number of calls and requests, and ``--time-limit`` per phase.
"""

from __future__ import annotations

import argparse
import http.client
import io
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from emofusion.inference.recognizer import SHIPPED_MODEL, EmotionRecognizer

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
CLIP = DATA / "ravdess" / "Actor_01" / "03-01-05-01-01-01-01.flac"
TEXT = "Kids are talking by the door."


def three_second_wav() -> bytes:
    """A real 3.0-s utterance (RAVDESS, 16 kHz) as the bytes of a 16-bit WAV file."""
    samples, rate = sf.read(CLIP)
    samples = samples[: 3 * rate]
    if len(samples) < 3 * rate:
        samples = np.pad(samples, (0, 3 * rate - len(samples)))
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def resolve_model(model: Path | None, workdir: Path) -> Path:
    if model is not None:
        return model
    if (SHIPPED_MODEL / "model.json").is_file():
        return SHIPPED_MODEL
    from emofusion.corpora.manifest import read_manifest
    from emofusion.features.acoustic import AcousticConfig
    from emofusion.features.cache import FeatureCache
    from emofusion.training.config import TrainConfig
    from emofusion.training.trainer import train

    print("no shipped model: training a full-size M-CBLA-BLR for one epoch on 8 clips ...", flush=True)
    rows = read_manifest(DATA / "bench" / "paired4.csv")
    picked = [u for label in ("ang", "exc", "neu", "sad") for u in [r for r in rows if r.label == label][:2]]
    out = workdir / "model"
    train("M-CBLA-BLR", picked, labels=("ang", "exc", "neu", "sad"), out_dir=out,
          cache=FeatureCache(AcousticConfig(), root=workdir / "cache"),
          train_config=TrainConfig(epochs=1, batch_size=8, precision="fp32"), progress=False)
    return out


def percentiles(ms: list[float]) -> tuple[float, float]:
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 95))


# ---------------------------------------------------------------- 1. in-process latency


def bench_latency(model: Path, wav: bytes, calls: int, time_limit: float) -> dict:
    torch.set_num_threads(1)
    rec = EmotionRecognizer.load(model)
    text = TEXT if "text" in rec.modalities else None

    def once() -> tuple[float, dict]:
        t0 = time.perf_counter()
        p = rec.predict(wav if "speech" in rec.modalities else None, text)
        total = (time.perf_counter() - t0) * 1e3
        return total, p.timings_ms  # decode, features (and tokenising), model

    for _ in range(10):  # warm-up: first calls allocate and pick kernels
        once()
    totals, parts = [], []
    deadline = time.monotonic() + time_limit
    while len(totals) < calls and time.monotonic() < deadline:
        total, part = once()
        totals.append(total)
        parts.append(part)
    p50, p95 = percentiles(totals)
    mean_parts = {k: float(np.mean([p[k] for p in parts])) for k in parts[0]}
    return {"calls": len(totals), "p50": p50, "p95": p95, "parts": mean_parts, "model": rec.name}


# ---------------------------------------------------------------- 2. service throughput


def multipart(wav: bytes, text: str | None) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="audio"; filename="clip.wav"\r\n'
        "Content-Type: audio/wav\r\n\r\n".encode() + wav + b"\r\n"
    ]
    if text is not None:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="text"\r\n\r\n{text}\r\n'.encode())
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: Path, workers: int, port: int, concurrency: int | None, *,
                 extra: list[str] = (), startup_s: float = 120) -> subprocess.Popen:
    """`emofusion serve` in a subprocess (``extra``: more serve options), once /health answers."""
    cmd = [sys.executable, "-m", "emofusion.cli.main", "serve", "--host", "127.0.0.1", "--port", str(port),
           "--model", str(model), "--workers", str(workers), "--log-level", "warning", *extra]
    if concurrency:
        cmd += ["--concurrency", str(concurrency)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + startup_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read()}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                # Every worker process must have loaded its model: ask until none refuses.
                time.sleep(0.5 * workers)
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"server did not start in {startup_s:g} s")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` and its direct children (Linux /proc), else None.

    Busy neighbours on a shared machine change requests/s but not the CPU a request costs, so
    CPU ms per request is the number to compare across runs.
    """
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total, found = 0.0, False
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        this, parent = int(stat.parent.name), int(fields[1])
        if this == pid or parent == pid:
            total += (int(fields[11]) + int(fields[12])) / tick
            found = True
    return total if found else None


def bench_throughput(
    port: int, server_pid: int, body: bytes, content_type: str, clients: int, requests: int, time_limit: float
) -> dict:
    lock = threading.Lock()
    issued = 0
    latencies: list[float] = []
    errors: list[str] = []
    deadline = time.monotonic() + time_limit
    headers = {"Content-Type": content_type, "Content-Length": str(len(body))}

    def client() -> None:
        nonlocal issued
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            with lock:
                if issued >= requests or time.monotonic() > deadline:
                    break
                issued += 1
            t0 = time.perf_counter()
            try:
                conn.request("POST", "/v1/predict", body=body, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                ok = response.status == 200
                reason = f"{response.status} {payload[:120]!r}"
            except (OSError, http.client.HTTPException) as exc:
                ok, reason = False, repr(exc)
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            elapsed = (time.perf_counter() - t0) * 1e3
            with lock:
                (latencies.append(elapsed) if ok else errors.append(reason))
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    server_cpu0, client_cpu0 = cpu_seconds(server_pid), time.process_time()
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    server_cpu1, client_cpu = cpu_seconds(server_pid), time.process_time() - client_cpu0
    done = max(1, len(latencies) + len(errors))
    server_ms = (server_cpu1 - server_cpu0) * 1e3 / done if server_cpu0 is not None and server_cpu1 is not None else float("nan")
    p50, p95 = percentiles(latencies) if latencies else (float("nan"), float("nan"))
    return {"sent": len(latencies) + len(errors), "ok": len(latencies), "errors": len(errors),
            "first_error": errors[0] if errors else "", "rps": len(latencies) / wall, "p50": p50, "p95": p95,
            "server_cpu_ms": server_ms, "client_cpu_ms": client_cpu * 1e3 / done}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None, help="run folder (default: shipped, else train one)")
    ap.add_argument("--calls", type=int, default=200, help="in-process latency calls")
    ap.add_argument("--workers", default="1,2", help="comma-separated uvicorn worker counts to try")
    ap.add_argument("--concurrency", type=int, default=None, help="predictions at once per worker (default: cores)")
    ap.add_argument("--clients", type=int, default=8, help="concurrent HTTP clients")
    ap.add_argument("--requests", type=int, default=1000, help="requests per throughput run")
    ap.add_argument("--time-limit", type=float, default=120.0, help="seconds per phase at most")
    ap.add_argument("--skip-latency", action="store_true")
    args = ap.parse_args(argv)

    wav = three_second_wav()
    with tempfile.TemporaryDirectory() as tmp:
        model = resolve_model(args.model, Path(tmp))
        print(f"model: {model}   cores: {os.cpu_count()}   torch {torch.__version__}")
        if not args.skip_latency:
            lat = bench_latency(model, wav, args.calls, args.time_limit)
            parts = "  ".join(f"{k} {v:.1f}" for k, v in lat["parts"].items())
            print(f"\n1. in-process predict, 3-s WAV, 1 torch thread ({lat['model']}, {lat['calls']} calls)")
            print(f"   p50 {lat['p50']:.1f} ms   p95 {lat['p95']:.1f} ms   (target p50 <= 15 ms)   mean ms: {parts}")

        rec = EmotionRecognizer.load(model)
        body, content_type = multipart(wav, TEXT if "text" in rec.modalities else None)
        print(f"\n2. service throughput: {args.clients} clients, {args.requests} requests, 127.0.0.1 "
              "(target >= 100 req/s on 2 cores, 0 errors)")
        print(f"   {'workers':>7} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'ok':>6} {'errors':>6} "
              f"{'server CPU ms/req':>17} {'client CPU ms/req':>17}")
        for workers in [int(w) for w in args.workers.split(",")]:
            port = free_port()
            proc = start_server(model, workers, port, args.concurrency)
            try:
                # Warm-up: every worker's first requests allocate and pick kernels.
                bench_throughput(port, proc.pid, body, content_type, args.clients, 10 * workers * args.clients // 4 + 8, 60)
                r = bench_throughput(port, proc.pid, body, content_type, args.clients, args.requests, args.time_limit)
            finally:
                proc.terminate()
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
            print(f"   {workers:>7} {r['rps']:>8.1f} {r['p50']:>8.1f} {r['p95']:>8.1f} {r['ok']:>6} {r['errors']:>6} "
                  f"{r['server_cpu_ms']:>17.1f} {r['client_cpu_ms']:>17.1f}"
                  + (f"   first error: {r['first_error']}" if r["errors"] else ""))
            cores = min(workers * (args.concurrency or os.cpu_count() or 1), os.cpu_count() or 1)
            print(f"   {'':>7} capacity if the server had its {cores} core(s) to itself: "
                  f"{cores * 1000 / r['server_cpu_ms']:.0f} req/s (cores x 1000 / server CPU ms per request)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
