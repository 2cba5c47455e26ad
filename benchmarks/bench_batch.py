"""Batch prediction throughput: one process vs every core vs a local Ray cluster, side by side.

    python benchmarks/bench_batch.py [--manifest ../shared/data/bench/ravdess4.csv] [--limit N] [--skip-ray]

Predicts every row of the manifest (decode + features + model, shipped model, or --model) to a CSV:
1. one process (the path before this benchmark existed: decode, features and model in turn);
2. `--workers` processes extracting features, the model in the main process (default: all cores;
   their start-up, one interpreter's imports, is included: it is amortised over larger archives,
   `--repeat 4` lists the manifest four times);
3. Ray Data on a local cluster with 1 and with `--workers` actors (cluster start-up timed apart).
Prints clips/s, the ratio to one process, clips/s per Ray worker, and peak memory. Every run's CSV
must equal the one-process CSV (checked).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

from emofusion.inference.batch import items_from_manifest, predict_to_csv
from emofusion.inference.recognizer import SHIPPED_MODEL, EmotionRecognizer

REPO = Path(__file__).resolve().parents[1]
MANIFEST = REPO.parent / "shared" / "data" / "bench" / "ravdess4.csv"


def peak_mb() -> float:
    """Peak resident memory (MB) of this process (the model and the CSV writer)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--manifest", type=Path, default=MANIFEST)
    ap.add_argument("--model", type=Path, default=SHIPPED_MODEL)
    ap.add_argument("--limit", type=int, default=None, help="first N rows only")
    ap.add_argument("--repeat", type=int, default=1,
                    help="list the rows this many times (a larger archive: worker start-up is paid once)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--skip-ray", action="store_true")
    args = ap.parse_args(argv)

    items = items_from_manifest(args.manifest)[: args.limit]
    items = [dataclasses.replace(i, id=f"{i.id}#{k}" if k else i.id) for k in range(args.repeat) for i in items]
    rec = EmotionRecognizer.load(args.model)
    print(f"{len(items)} rows of {args.manifest}   model {rec.name}   cores {os.cpu_count()}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        reference = Path(tmp) / "one.csv"

        def run(label: str, out: Path, against: Path = reference, **kwargs) -> float:
            t0 = time.perf_counter()
            predict_to_csv(rec, items, out, progress=False, **kwargs)
            seconds = time.perf_counter() - t0
            same = out.read_bytes() == against.read_bytes() if out != against else True
            rows.append((label, seconds, same))
            return seconds

        run("1 process", reference, workers=1)
        run(f"{args.workers} processes (features in workers)", Path(tmp) / "multi.csv", workers=args.workers)
        ray_rows = []
        if not args.skip_ray:
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            import ray
            import torch

            # Ray's actors run torch on one thread each; torch's reductions on 2 threads round
            # differently in the 6th decimal, so Ray is compared with the 1-thread CSV (untimed).
            one_thread = Path(tmp) / "one-thread.csv"
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            predict_to_csv(rec, items, one_thread, progress=False, workers=1)
            torch.set_num_threads(threads)

            from emofusion.inference.ray_engine import LOCAL_OBJECT_STORE_BYTES, predict_stream_ray

            for n in sorted({1, args.workers}):
                t0 = time.perf_counter()
                ray.init(num_cpus=n, include_dashboard=False, object_store_memory=LOCAL_OBJECT_STORE_BYTES,
                         log_to_driver=False, configure_logging=False)
                start = time.perf_counter() - t0
                try:
                    seconds = run(f"Ray Data, {n} worker(s)", Path(tmp) / f"ray{n}.csv",
                                  against=one_thread, results=predict_stream_ray(args.model, items, workers=n))
                finally:
                    ray.shutdown()
                ray_rows.append((n, start, seconds))

    base = rows[0][1]
    print(f"\n   {'engine':<38} {'seconds':>8} {'clips/s':>8} {'vs 1 process':>13} {'same CSV':>9}")
    for label, seconds, same in rows:
        print(f"   {label:<38} {seconds:>8.1f} {len(items) / seconds:>8.1f} {base / seconds:>12.2f}x {str(same):>9}")
    for n, start, seconds in ray_rows:
        print(f"   Ray, {n} worker(s): cluster start {start:.1f} s (not counted above); "
              f"{len(items) / seconds / n:.1f} clips/s per worker")
    print(f"\n   peak memory of the main process: {peak_mb():.0f} MB")
    return 0 if all(same for _, _, same in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
