"""Training with augmentation stays practical: epoch time with and without it, side by side.

Usage (from the repository root, ../shared/data beside it):

    python benchmarks/bench_augment.py [--clips 560] [--models S-CBLA S-WT] [--views 4] [--threads 2]

For each model, on the RAVDESS clips of ``bench/ravdess4.csv`` (real speech, as training sees it):

- clean: one training epoch on the cached clean features (what training without augmentation costs);
- augmented: one epoch as ``TrainConfig(augment="default")`` trains it. For the paper's acoustic
  models (S-CBLA) that is augmenting every clip afresh and recomputing its 34 features, then the
  same training steps; for a frozen-encoder model (S-WT, Whisper tiny.en) it is drawing one of the
  cached views per clip, then the steps. The views' one-off precomputation (augment + encode
  ``--views`` per clip, into a temporary cache) is reported on its own line, with what re-encoding
  every clip every epoch would cost instead.

Both epochs of a model run in this one process, one after the other, with the same weights,
batches and threads. Clean features come from the usual caches (filled first, not timed).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from emofusion.artifacts import build_for_pipeline
from emofusion.corpora.manifest import read_manifest
from emofusion.features.acoustic import AcousticConfig
from emofusion.features.augment import augment_config
from emofusion.features.augmented_views import AugmentedSpeech
from emofusion.features.batching import batch_indices, collate
from emofusion.features.cache import FeatureCache
from emofusion.features.pipeline import FeaturePipeline
from emofusion.labels import PAPER_CLASSES
from emofusion.models import ModelConfig, modalities_of, speech_feature
from emofusion.runtime import tune_allocator
from emofusion.training.config import TrainConfig
from emofusion.training.encode import cache_root, encode_utterances, load_frames

REPO = Path(__file__).resolve().parents[1]


def train_epoch(model, optimizer, data, cfg: TrainConfig, seed: int) -> float:
    """Seconds for one epoch of training steps over ``data`` (as the trainer steps, fp32)."""
    generator = torch.Generator().manual_seed(seed)
    batches = batch_indices(data, cfg.batch_size, shuffle=True, bucket=cfg.bucket_by_length, generator=generator)
    cpu = torch.device("cpu")
    started = time.perf_counter()
    for index in batches:
        inputs, targets = collate(data, index, cpu), torch.from_numpy(data.labels[index])
        loss = F.cross_entropy(model(**inputs).float(), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
    return time.perf_counter() - started


def measure(name: str, rows, cache: FeatureCache, views: int, seed: int) -> dict:
    cfg = TrainConfig()
    kind = speech_feature(name) or "acoustic"
    frames = load_frames(rows, cache, kind=kind, progress=False)
    pipeline = FeaturePipeline.fit(modalities_of(name), train_frames=frames, acoustic=cache.config, speech_kind=kind)
    clean = encode_utterances(pipeline, rows, labels=PAPER_CLASSES, cache=cache, frames=frames, progress=False)
    torch.manual_seed(seed)
    model = build_for_pipeline(name, pipeline, n_classes=len(PAPER_CLASSES), config=ModelConfig())
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=cfg.learning_rate)
    model.train()
    warm = clean.labels[: cfg.batch_size]
    F.cross_entropy(model(**collate(clean, np.arange(len(warm)), torch.device("cpu"))), torch.from_numpy(warm)).backward()
    optimizer.zero_grad(set_to_none=True)

    result = {"model": name, "clips": len(rows)}
    with tempfile.TemporaryDirectory() as views_root:  # views computed here, never read from an old cache
        started = time.perf_counter()
        augmented = AugmentedSpeech.prepare(
            [u.audio for u in rows], pipeline, clean, config=augment_config("default"), seed=seed, views=views,
            clean_frames=frames, cache_root=views_root if kind != "acoustic" else cache_root(cache), progress=False,
        )
        result["prepare_s"] = time.perf_counter() - started
        result["views_s"] = augmented.views_seconds
        result["per_epoch"] = augmented.per_epoch
        result["clean_s"] = train_epoch(model, optimizer, clean, cfg, seed)
        started = time.perf_counter()
        epoch_set = augmented.for_epoch(0)
        result["augment_s"] = time.perf_counter() - started
        result["augmented_steps_s"] = train_epoch(model, optimizer, epoch_set, cfg, seed)
    result["augmented_s"] = result["augment_s"] + result["augmented_steps_s"]
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--clips", type=int, default=None, help="first N clips of ravdess4.csv (default: all 560)")
    parser.add_argument("--models", nargs="+", default=["S-CBLA", "S-WT"])
    parser.add_argument("--views", type=int, default=TrainConfig().augment_views, help="views per clip (encoder models)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    tune_allocator()
    manifest = args.shared / "bench" / "ravdess4.csv"
    if not manifest.is_file():
        raise SystemExit(f"{manifest}: not found (the shared data is needed)")
    rows = read_manifest(manifest)[: args.clips]
    cache = FeatureCache(AcousticConfig())
    print(f"{len(rows)} RAVDESS clips (ravdess4.csv), batch {TrainConfig().batch_size}, fp32, torch {torch.__version__}, "
          f"{args.threads} threads; augmentation 'default' (features.augment.AUGMENT_CONFIGS)")
    results = [measure(name.upper(), rows, cache, args.views, args.seed) for name in args.models]
    print(f"\n{'model':<8} {'clean epoch s':>14} {'augmented epoch s':>18} {'of which augment+features s':>28} {'ratio':>6}")
    for r in results:
        print(f"{r['model']:<8} {r['clean_s']:14.2f} {r['augmented_s']:18.2f} {r['augment_s']:28.2f} "
              f"{r['augmented_s'] / r['clean_s']:6.2f}")
    for r in results:
        if r["per_epoch"]:
            print(f"{r['model']}: every epoch augments all {r['clips']} clips and recomputes their features "
                  f"({1000 * r['augment_s'] / r['clips']:.1f} ms per clip); one-off decode {r['prepare_s']:.1f} s")
        else:
            per_view = r["views_s"] / (r["clips"] * args.views)
            print(f"{r['model']}: views precomputed once: {args.views} per clip in {r['views_s']:.1f} s "
                  f"({1000 * per_view:.1f} ms per view, augment + encode; decode and cache {r['prepare_s'] - r['views_s']:.1f} s); "
                  f"re-encoding every clip every epoch instead would add ~{per_view * r['clips']:.1f} s per epoch "
                  f"({per_view * r['clips'] / r['clean_s']:.0f}x the clean epoch)")


if __name__ == "__main__":
    main()
