"""Does waveform augmentation help a speech model hear another corpus? Train on one, score the other.

Usage (from the repository root, ../shared/data beside it):

    python recipes/augmentation/transfer.py --model S-CBLA --train ravdess4 --test tess4 --augment none default

Each run trains ``--model`` on every clip of the training corpus's manifest (``bench/<train>.csv``)
with the given augmentation (``none``: the clean clips only), seed ``--seed``, into
``runs/augmentation/<model>/<train>-<augment>-seed<seed>`` (reused when already trained), and
scores it on every clip of ``bench/<test>.csv`` as ``EmotionRecognizer.predict`` does, clean and
under the noise benchmark's conditions (``features.augment.test_condition``). RAVDESS and TESS are
the two development corpora: here one is a validation corpus for the other (issue 17 allows this
for choices); the corpora a model is finally judged on are neither.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from emofusion.audio import load_audio
from emofusion.corpora.manifest import read_manifest
from emofusion.evaluation.metrics import compute_metrics
from emofusion.features.acoustic import AcousticConfig
from emofusion.features.augment import CONDITIONS, SAMPLE_RATE, test_condition
from emofusion.features.cache import FeatureCache
from emofusion.inference.recognizer import EmotionRecognizer
from emofusion.labels import PAPER_CLASSES
from emofusion.training.config import TrainConfig
from emofusion.training.trainer import train

REPO = Path(__file__).resolve().parents[2]
CHUNK = 32


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="S-CBLA")
    parser.add_argument("--train", default="ravdess4", help="training manifest stem in bench/")
    parser.add_argument("--test", default="tess4", help="test manifest stem in bench/")
    parser.add_argument("--augment", nargs="+", default=["none", "default"], help="augmentation names ('none': off)")
    parser.add_argument("--conditions", nargs="+", default=["clean"], choices=CONDITIONS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=TrainConfig().epochs)
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    train_rows = read_manifest(args.shared / "bench" / f"{args.train}.csv")
    test_rows = read_manifest(args.shared / "bench" / f"{args.test}.csv")
    acoustic = AcousticConfig()
    cache = FeatureCache(acoustic)
    clips = None
    report = {}
    for name in args.augment:
        augment = None if name == "none" else name
        folder = REPO / "runs" / "augmentation" / args.model.lower() / f"{args.train}-{name}-seed{args.seed}"
        started = time.perf_counter()
        trained = train(args.model, train_rows, labels=PAPER_CLASSES, out_dir=folder, cache=cache, acoustic=acoustic,
                        train_config=TrainConfig(epochs=args.epochs, augment=augment), seed=args.seed,
                        progress=sys.stderr.isatty())
        train_s = time.perf_counter() - started
        recognizer = EmotionRecognizer(trained)
        if clips is None and args.conditions != ["clean"]:
            clips = [load_audio(u.audio, target_rate=SAMPLE_RATE).samples for u in test_rows]
        results = {}
        for c_index, condition in enumerate(CONDITIONS):
            if condition not in args.conditions:
                continue
            if condition == "clean":
                audio, rate = [u.audio for u in test_rows], None
            else:
                audio = [test_condition(condition, clip, np.random.default_rng([args.seed, c_index, i]),
                                        babble_pool=clips, exclude=i) for i, clip in enumerate(clips)]
                rate = SAMPLE_RATE
            predictions = []
            for start in range(0, len(audio), CHUNK):
                predictions += recognizer.predict_batch([(a, None) for a in audio[start : start + CHUNK]], sample_rate=rate)
            m = compute_metrics([u.label for u in test_rows], [p.label for p in predictions], recognizer.labels)
            confidence = float(np.mean([max(p.probabilities.values()) for p in predictions]))
            results[condition] = {"n": m.n, "wa": m.wa, "ua": m.ua, "confidence": confidence,
                                  "per_class": m.per_class}
            print(f"{args.model} trained on {args.train} (augment {name}, seed {args.seed}) -> {args.test} {condition}: "
                  f"WA {100 * m.wa:.1f} UA {100 * m.ua:.1f} conf {100 * confidence:.1f} "
                  f"per class {', '.join(f'{c} {100 * v:.0f}' for c, v in m.per_class.items())}", flush=True)
        report[name] = {"folder": str(folder.relative_to(REPO)), "train_seconds_this_call": round(train_s, 1),
                        "train_seconds": trained.meta.get("train_seconds"), "results": results}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
