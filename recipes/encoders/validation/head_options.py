"""Compare heads of an encoder model (HeadConfig: dropout, weight decay, epochs) on validation splits only.

Every option trains the registry model itself through `emofusion.training.train`, so what is
compared is exactly what `reproduce` would train; only the `HeadConfig` differs. Nothing here reads
a test fold:

- RAVDESS-based manifests (``ravdess4``, ``paired4``): nested, as the encoder report's speech
  options. For each outer leave-one-session-out fold k, every other session j is an inner
  validation fold (train on sessions not in {k, j}, score j); the inner predictions of the four
  sessions are pooled into one UA per outer fold, and the figure is the mean over the outer folds
  asked for (``--outer``), then over seeds. Session k is never scored.
- ``meld4``: MELD *train* dialogues with ``Dialogue_ID % 5 == 0`` are the validation set, the other
  train dialogues train; MELD dev (the test split) is never read.

Usage (repository root, ``../shared`` beside it, the ``encoders`` extra installed)::

    python recipes/encoders/validation/head_options.py S-WT --manifest ../shared/data/bench/ravdess4.csv \\
        --ignore-text --option dropout=0.3 --option weight_decay=0.01,epochs=40 --seeds 0 1

Run folders go to ``--work`` (default runs/enc-val/): an interrupted comparison resumes.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
import time
from pathlib import Path

import numpy as np

from emofusion.corpora.manifest import read_manifest
from emofusion.evaluation.metrics import compute_metrics
from emofusion.experiments.scoring import predict_utterances
from emofusion.labels import ordered_classes
from emofusion.models import HeadConfig, canonical_name, modalities_of
from emofusion.records import Utterance
from emofusion.training.encode import usable
from emofusion.training.trainer import train

MELD_VALIDATION = re.compile(r"_dia(\d+)_")


def parse_option(text: str) -> HeadConfig:
    """'dropout=0.5,weight_decay=0.01,epochs=40' -> HeadConfig; 'default' -> HeadConfig()."""
    if text == "default":
        return HeadConfig()
    values = {}
    for part in text.split(","):
        key, _, value = part.partition("=")
        values[key.strip()] = int(value) if key.strip() == "epochs" else float(value)
    return HeadConfig(**values)


def label_of(head: HeadConfig) -> str:
    return ",".join(f"{k}={v}" for k, v in head.to_dict().items() if v is not None and v != 0.0) or "default"


def inner_folds(rows: list[Utterance], outer: list[str]) -> list[tuple[str, list[Utterance], list[Utterance]]]:
    """(outer fold, training rows, validation rows) of every inner fold."""
    sessions = sorted({u.session for u in rows}, key=int)
    folds = []
    for k in outer:
        for j in sessions:
            if j != k:
                folds.append((k, [u for u in rows if u.session not in (k, j)], [u for u in rows if u.session == j]))
    return folds


def meld_folds(rows: list[Utterance]) -> list[tuple[str, list[Utterance], list[Utterance]]]:
    train_rows = [u for u in rows if u.session == "train"]
    validation = [u for u in train_rows if int(MELD_VALIDATION.search(u.id).group(1)) % 5 == 0]
    held = {u.id for u in validation}
    return [("meld", [u for u in train_rows if u.id not in held], validation)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model")
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--ignore-text", action="store_true")
    parser.add_argument("--ignore-audio", action="store_true")
    parser.add_argument("--option", action="append", required=True, help="a HeadConfig: key=value,... or 'default'")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--outer", nargs="+", default=["1", "2", "3", "4", "5"], help="outer LOSO folds (RAVDESS)")
    parser.add_argument("--work", type=Path, default=Path("runs/enc-val"))
    args = parser.parse_args(argv)

    name = canonical_name(args.model)
    rows = read_manifest(args.manifest)
    if args.ignore_text:
        rows = [dataclasses.replace(u, text=None) for u in rows]
    if args.ignore_audio:
        rows = [dataclasses.replace(u, audio=None) for u in rows]
    rows = usable(rows, modalities_of(name))
    labels = ordered_classes(u.label for u in rows)
    meld = all(u.session in ("train", "dev") for u in rows)
    folds = meld_folds(rows) if meld else inner_folds(rows, args.outer)
    print(f"{name} on {args.manifest.name}: {len(folds)} validation folds "
          f"({'MELD train dialogues % 5 == 0' if meld else 'inner LOSO within outer folds ' + ' '.join(args.outer)})",
          flush=True)

    for text in args.option:
        head = parse_option(text)
        per_seed = []
        started = time.time()
        for seed in args.seeds:
            truth: dict[str, list[str]] = {}
            guess: dict[str, list[str]] = {}
            for outer, train_rows, validation in folds:
                inner = validation[0].session
                out = args.work / name / args.manifest.stem / label_of(head) / f"seed{seed}" / f"outer-{outer}-val-{inner}"
                trained = train(name, train_rows, labels=labels, out_dir=out, seed=seed, progress=False,
                                head_config=head)
                probabilities = predict_utterances(trained, validation, progress=False)
                truth.setdefault(outer, []).extend(u.label for u in validation)
                guess.setdefault(outer, []).extend(labels[i] for i in probabilities.argmax(1))
            scores = [compute_metrics(truth[k], guess[k], labels) for k in truth]
            per_seed.append((np.mean([m.ua for m in scores]), np.mean([m.wa for m in scores])))
            print(f"  {label_of(head):40s} seed {seed}: val UA {per_seed[-1][0]:.3f} WA {per_seed[-1][1]:.3f} "
                  f"(per outer fold UA {' '.join(f'{m.ua:.3f}' for m in scores)})", flush=True)
        ua = np.array([s[0] for s in per_seed])
        print(f"{label_of(head):42s} val UA {ua.mean():.3f} ± {ua.std(ddof=1) if len(ua) > 1 else 0:.3f} "
              f"WA {np.mean([s[1] for s in per_seed]):.3f} over seeds {args.seeds} ({time.time() - started:.0f} s)",
              flush=True)


if __name__ == "__main__":
    sys.exit(main())
