"""Soak: good requests among hostile ones, against `emofusion serve` on loopback.

    python benchmarks/bench_soak.py [--model RUN_DIR] [--requests 2000] [--clients 16] [--slow 32]
    python benchmarks/bench_soak.py --mix-only          # phases 1 and 3 only (issue 18 item 4)

1. Baseline: ``--baseline`` good requests only (a 3-s WAV and its transcript), ``--clients`` clients.
2. Soak: ``--requests`` requests from ``--clients`` clients, a reproducible mix (``--seed``) of good
   requests (``--good-share``) and the hostile kinds below, while ``--slow`` further connections
   trickle their headers a byte a second (each is reopened when the server closes it).
3. Transcribed mix: ``--mix-requests`` requests from ``--clients`` clients, 1 in 6
   (``--transcribed-share``) sent without a transcript, so the server transcribes them (Whisper; the
   asr extra), the rest ordinary (the good request). Ordinary p50/p95 beside the transcribed ones.
   Target: ordinary p95 <= 1 s (before the service's lanes, 3.2-5.2 s on 2 cores).

Hostile kinds (each answered with a 4xx, except ``long``, a legitimate but expensive request):
  zero-width   the good recording with a transcript of zero-width spaces
  one-hz       a 1-KB WAV declaring 1 Hz (500 samples = 500 s) and a 5,000-character transcript
  huge-rate    a WAV header declaring 2**31 - 1 Hz
  long         500 s of 8-kHz FLAC (200 windows) and a 5,000-character transcript: answered 200
  bomb         a 599-s, 8-channel, 48-kHz constant FLAC (a few hundred KB that decode to 1.8 GB)
  garbage      random bytes named clip.wav
  truncated    the first 100 bytes of a FLAC
  no-text      the good recording without its transcript
  oversize     a 21-MiB upload (over the 20-MiB limit)

Reports, side by side: good-request p50/p95/max latency and failures in both phases, the answers
per hostile kind, and the server's peak resident memory (VmHWM). Targets: zero good requests
failed, good p95 <= 1 s during the soak, peak RSS <= 1.5 GB. Figures vary with machine load; the
ratio of soak to baseline latency is the one to compare across runs.
"""

from __future__ import annotations

import argparse
import http.client
import io
import os
import random
import socket
import struct
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_service import TEXT, free_port, multipart, percentiles, resolve_model, start_server, three_second_wav  # noqa: E402

LONG_TEXT = ("I told you a hundred times that this is not how we do things here, " * 80)[:5000]
HOSTILE = ["zero-width", "one-hz", "huge-rate", "long", "bomb", "garbage", "truncated", "no-text", "oversize"]
# Relative frequency of each hostile kind within the hostile share (oversize uploads are 21 MiB each).
WEIGHT = {"oversize": 0.2}


def wav_header(rate: int, samples: int) -> bytes:
    """A 16-bit mono PCM WAV header declaring ``rate`` Hz, followed by nothing (for the caller's data)."""
    data = 2 * samples
    return (b"RIFF" + struct.pack("<I", 36 + data) + b"WAVE" + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate,
            (2 * rate) & 0xFFFFFFFF, 2, 16) + b"data" + struct.pack("<I", data))


def flac_blocks(path: Path, rate: int, channels: int, seconds: float, block) -> None:
    """Write a FLAC block by block (a second at a time), so minutes of audio never sit in memory."""
    with sf.SoundFile(path, "w", samplerate=rate, channels=channels, format="FLAC", subtype="PCM_16") as f:
        for start in range(int(seconds)):
            f.write(block(start))


def requests_by_kind(workdir: Path) -> dict[str, tuple[bytes, str]]:
    """(body, content type) of each kind of request, encoded once."""
    good_wav = three_second_wav()
    rng = np.random.default_rng(0)
    one_hz = wav_header(1, 500) + (rng.normal(0, 3000, 500)).astype("<i2").tobytes()
    huge_rate = wav_header(2**31 - 1, 8000) + (rng.normal(0, 3000, 8000)).astype("<i2").tobytes()
    long_path, bomb_path = workdir / "long.flac", workdir / "bomb.flac"
    if not long_path.exists():
        t = np.arange(8000) / 8000
        flac_blocks(long_path, 8000, 1, 500, lambda s: 0.3 * np.sin(2 * np.pi * (200 + s % 50) * t))
        flac_blocks(bomb_path, 48000, 8, 599, lambda s: np.full((48000, 8), 0.25))
    flac = io.BytesIO()
    sf.write(flac, sf.read(io.BytesIO(good_wav))[0], 16000, format="FLAC")
    files = {
        "good": (good_wav, TEXT),
        "zero-width": (good_wav, "\u200b" * 5),
        "one-hz": (one_hz, LONG_TEXT),
        "huge-rate": (huge_rate, TEXT),
        "long": (long_path.read_bytes(), LONG_TEXT),
        "bomb": (bomb_path.read_bytes(), TEXT),
        "garbage": (rng.integers(0, 256, 4096, dtype=np.uint8).tobytes(), TEXT),
        "truncated": (flac.getvalue()[:100], TEXT),
        "no-text": (good_wav, None),
        "oversize": (b"\0" * (21 * 1024 * 1024), TEXT),
    }
    return {kind: multipart(audio, text) for kind, (audio, text) in files.items()}


def schedule(n: int, good_share: float, kinds: list[str], seed: int) -> list[str]:
    rng = random.Random(seed)
    weights = [WEIGHT.get(k, 1.0) for k in kinds]
    return ["good" if rng.random() < good_share else rng.choices(kinds, weights)[0] for _ in range(n)]


def run_clients(port: int, plan: list[str], bodies: dict, clients: int, time_limit: float) -> list[tuple[str, int, float]]:
    """(kind, status or -1 for a transport error, latency ms) of every request sent."""
    lock = threading.Lock()
    results: list[tuple[str, int, float]] = []
    next_index = 0
    deadline = time.monotonic() + time_limit

    def client() -> None:
        nonlocal next_index
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while True:
            with lock:
                if next_index >= len(plan) or time.monotonic() > deadline:
                    break
                kind = plan[next_index]
                next_index += 1
            body, content_type = bodies[kind]
            t0 = time.perf_counter()
            try:
                conn.request("POST", "/v1/predict", body=body,
                             headers={"Content-Type": content_type, "Content-Length": str(len(body))})
                response = conn.getresponse()
                response.read()
                status = response.status
                if response.getheader("connection", "").lower() == "close":
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            except (OSError, http.client.HTTPException):
                status = -1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            with lock:
                results.append((kind, status, (time.perf_counter() - t0) * 1e3))
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


class SlowClients:
    """``n`` connections that trickle a request head a byte a second; reopened when closed."""

    def __init__(self, port: int, n: int):
        self.port, self.n = port, n
        self.opened = self.closed_by_server = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        head = b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 10_000
        conns: list[list] = []
        while not self.stop.is_set():
            while len(conns) < self.n:
                try:
                    s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
                    s.setblocking(False)
                    conns.append([s, 0])
                    self.opened += 1
                except OSError:
                    break
            for entry in list(conns):
                s, sent = entry
                try:
                    if s.recv(4096) == b"":
                        raise ConnectionResetError
                except BlockingIOError:
                    pass
                except OSError:
                    self.closed_by_server += 1
                    s.close()
                    conns.remove(entry)
                    continue
                try:
                    s.send(head[sent : sent + 1])
                    entry[1] += 1
                except OSError:
                    pass
            self.stop.wait(1.0)
        for s, _ in conns:
            s.close()

    def __enter__(self) -> "SlowClients":
        if self.n:
            self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        if self.n:
            self.thread.join(10)


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def good_summary(results, kind_wanted: str = "good") -> dict:
    good = [(status, ms) for kind, status, ms in results if kind == kind_wanted]
    ok = [ms for status, ms in good if status == 200]
    p50, p95 = percentiles(ok) if ok else (float("nan"), float("nan"))
    return {"n": len(good), "failed": sum(status != 200 for status, _ in good), "p50": p50, "p95": p95,
            "max": max(ok) if ok else float("nan")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None, help="run folder (default: shipped, else train one)")
    ap.add_argument("--requests", type=int, default=2000, help="requests in the soak")
    ap.add_argument("--baseline", type=int, default=400, help="good-only requests before the soak")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--slow", type=int, default=32, help="trickling connections held open during the soak")
    ap.add_argument("--good-share", type=float, default=0.6)
    ap.add_argument("--hostile", default=",".join(HOSTILE), help=f"hostile kinds to send (default all: {','.join(HOSTILE)})")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--time-limit", type=float, default=900.0, help="seconds per phase at most")
    ap.add_argument("--mix-requests", type=int, default=240, help="requests in the transcribed mix (phase 3; 0: skip)")
    ap.add_argument("--transcribed-share", type=float, default=1 / 6, help="share of the mix sent without a transcript")
    ap.add_argument("--mix-only", action="store_true", help="phases 1 and 3 only (no hostile soak)")
    args = ap.parse_args(argv)
    kinds = [k for k in args.hostile.split(",") if k]
    unknown = set(kinds) - set(HOSTILE)
    if unknown:
        ap.error(f"unknown hostile kinds {sorted(unknown)}")

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        model = resolve_model(args.model, workdir)
        print(f"model: {model}   cores: {os.cpu_count()}   encoding requests ...", flush=True)
        bodies = requests_by_kind(workdir)
        port = free_port()
        server = start_server(model, 1, port, None)
        try:
            run_clients(port, ["good"] * 40, bodies, 4, 60)  # warm-up
            baseline = good_summary(run_clients(port, ["good"] * args.baseline, bodies, args.clients, args.time_limit))
            results, wall, slow = [], 0.0, SlowClients(port, 0)
            if not args.mix_only:
                plan = schedule(args.requests, args.good_share, kinds, args.seed)
                with SlowClients(port, args.slow) as slow:
                    started = time.perf_counter()
                    results = run_clients(port, plan, bodies, args.clients, args.time_limit)
                    wall = time.perf_counter() - started
            mix = []
            if args.mix_requests:
                run_clients(port, ["no-text"] * 4, bodies, 1, 120)  # loads Whisper before the clock starts
                rng = random.Random(args.seed + 1)
                mix_plan = ["no-text" if rng.random() < args.transcribed_share else "good" for _ in range(args.mix_requests)]
                started = time.perf_counter()
                mix = run_clients(port, mix_plan, bodies, args.clients, args.time_limit)
                mix_wall = time.perf_counter() - started
            rss = peak_rss_mib(server.pid)
            alive = server.poll() is None
        finally:
            server.terminate()
            try:
                server.wait(15)
            except Exception:
                server.kill()

    if mix:
        ordinary, transcribed = good_summary(mix, "good"), good_summary(mix, "no-text")
        print(f"\n3. transcribed mix: {len(mix)} requests, {args.clients} clients, {transcribed['n']} sent without a "
              f"transcript (transcribed), in {mix_wall:.1f} s; {os.cpu_count()} cores")
        print(f"{'requests':<28} {'n':>7} {'failed':>7} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
        for name, row in (("1. good only (baseline)", baseline), ("ordinary (transcript sent)", ordinary),
                          ("transcribed", transcribed)):
            print(f"{name:<28} {row['n']:>7} {row['failed']:>7} {row['p50']:>8.1f} {row['p95']:>8.1f} {row['max']:>8.1f}")
        answers = Counter(status for _, status, _ in mix)
        print(f"   answers: {dict(sorted(answers.items()))}   target ordinary p95 <= 1000 ms, 0 failed: "
              f"{'met' if ordinary['p95'] <= 1000 and ordinary['failed'] == 0 else 'NOT met'}")
    if args.mix_only:
        print(f"server peak RSS: {rss:.0f} MiB; server alive at the end: {alive}")
        return 0
    soak = good_summary(results)
    print(f"\nserver: emofusion serve, 1 worker, default limits; {args.clients} clients; 127.0.0.1")
    print(f"{'phase':<28} {'good n':>7} {'failed':>7} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    print(f"{'1. good only':<28} {baseline['n']:>7} {baseline['failed']:>7} {baseline['p50']:>8.1f} "
          f"{baseline['p95']:>8.1f} {baseline['max']:>8.1f}")
    print(f"{'2. soak (good among hostile)':<28} {soak['n']:>7} {soak['failed']:>7} {soak['p50']:>8.1f} "
          f"{soak['p95']:>8.1f} {soak['max']:>8.1f}")
    print(f"   soak / baseline p95: {soak['p95'] / baseline['p95']:.1f}x   soak: {len(results)} requests in "
          f"{wall:.1f} s, {args.slow} trickling connections ({slow.opened} opened, {slow.closed_by_server} closed by the server)")
    print(f"\n{'kind':<12} {'sent':>6}  answers (status: count)          p50 ms   max ms")
    by_kind: dict[str, list] = defaultdict(list)
    for kind, status, ms in results:
        by_kind[kind].append((status, ms))
    for kind in ["good", *kinds]:
        rows = by_kind.get(kind, [])
        if not rows:
            continue
        answers = ", ".join(f"{s if s > 0 else 'transport error'}: {c}" for s, c in sorted(Counter(s for s, _ in rows).items()))
        ms = [m for _, m in rows]
        print(f"{kind:<12} {len(rows):>6}  {answers:<32} {np.percentile(ms, 50):>7.0f} {max(ms):>8.0f}")
    server_errors = sum(1 for _, status, _ in results if status >= 500 and status != 503)
    print(f"\nserver errors (5xx other than 503): {server_errors}   server alive at the end: {alive}")
    print(f"server peak RSS: {rss:.0f} MiB (target <= 1536)")
    met = soak["failed"] == 0 and soak["p95"] <= 1000 and rss <= 1536 and server_errors == 0
    print(f"targets (0 good failed, good p95 <= 1000 ms, peak RSS <= 1.5 GB, no 5xx): {'met' if met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
