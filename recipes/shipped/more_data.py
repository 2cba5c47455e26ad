"""What does adding the other corpus do to speakers of the first? (issue 17 item 2, "more data")

Usage (from the repository root, ../shared/data beside it; one run at a time on a shared machine):

    python recipes/shipped/more_data.py --model S-WTV --augment default --threads 1

The shipped recipe's model (``--model``, ``--augment``, balanced sampling over corpora and classes,
no calibration: UA does not depend on it) is trained with and without the other corpus, and scored
on speakers it never heard, as ``EmotionRecognizer.predict`` scores (``build.held_out_score``):

- RAVDESS: trained on actors 01-16 (sessions 1-4), or on them + all of TESS; scored on actors 17-20;
- TESS (two speakers): trained on one speaker, or on that speaker + all of RAVDESS; scored on the
  other speaker (both ways, pooled).

Seeds ``--seeds`` (default 0 1 2). Run folders go to ``runs/more_data/<model>/``; the figures to
``docs/results/more_data.md`` (written by this script).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np
import torch

from emofusion.artifacts import load_trained
from emofusion.corpora.manifest import read_manifest
from emofusion.evaluation.metrics import pool
from emofusion.experiments.runner import ExperimentConfig, train_model
from emofusion.features.acoustic import AcousticConfig
from emofusion.features.cache import FeatureCache
from emofusion.labels import PAPER_CLASSES
from emofusion.training.config import TrainConfig

REPO = Path(__file__).resolve().parents[2]
REPORT = REPO / "docs" / "results" / "more_data.md"


def load_build():
    spec = importlib.util.spec_from_file_location("shipped_build", REPO / "recipes" / "shipped" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def conditions(rav, tess) -> list[tuple[str, str, list, list]]:
    """(test corpus, training data in words, training rows, test rows) for every comparison."""
    rav_train = [u for u in rav if u.session != "5"]
    rav_test = [u for u in rav if u.session == "5"]
    out = [("RAVDESS actors 17-20", "RAVDESS actors 01-16", rav_train, rav_test),
           ("RAVDESS actors 17-20", "RAVDESS actors 01-16 + TESS", rav_train + tess, rav_test)]
    for speaker in sorted({u.speaker for u in tess}):
        own = [u for u in tess if u.speaker != speaker]
        test = [u for u in tess if u.speaker == speaker]
        out += [(f"TESS {speaker}", "the other TESS speaker", own, test),
                (f"TESS {speaker}", "the other TESS speaker + RAVDESS", own + rav, test)]
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="S-WTV")
    parser.add_argument("--augment", default=None)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--reuse", action="store_true", help="score the run folders already trained instead of training")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    build = load_build()
    bench = args.shared / "bench"
    rav, tess = read_manifest(bench / "ravdess4.csv"), read_manifest(bench / "tess4.csv")
    acoustic = AcousticConfig()
    cache = FeatureCache(acoustic)
    config = ExperimentConfig(acoustic=acoustic, train=TrainConfig(augment=args.augment), calibrate=False)
    work = REPO / "runs" / "more_data" / args.model.lower()
    results: dict[tuple[str, str], dict[int, object]] = {}
    for index, (tested, trained_on, train_rows, test_rows) in enumerate(conditions(rav, tess)):
        for seed in args.seeds:
            folder = work / f"c{index}-seed{seed}"
            trained = load_trained(folder) if args.reuse else train_model(
                args.model, train_rows, labels=PAPER_CLASSES, out_dir=folder, config=config, cache=cache, seed=seed)
            m = build.held_out_score(trained, test_rows)
            results.setdefault((tested, trained_on), {})[seed] = m
            print(f"{tested} <- {trained_on}, seed {seed}: UA {100 * m.ua:.1f} WA {100 * m.wa:.1f} (n={m.n})", flush=True)
    write_report(args, results)


def write_report(args, results: dict) -> None:
    # TESS's two speakers are pooled: per seed, both held-out speakers' predictions together.
    rows: dict[tuple[str, str], dict[int, object]] = {}
    for (tested, trained_on), per_seed in results.items():
        key = ("TESS, each speaker held out in turn" if tested.startswith("TESS") else tested, trained_on)
        for seed, m in per_seed.items():
            rows.setdefault(key, {}).setdefault(seed, []).append(m)
    lines = [
        "# More data: what adding the other corpus does to speakers of the first (issue 17 item 2)",
        "",
        f"`python recipes/shipped/more_data.py --model {args.model}"
        + (f" --augment {args.augment}" if args.augment else "") + f" --seeds {' '.join(map(str, args.seeds))}` "
        "(its docstring says what is trained and scored). The shipped recipe's model, balanced over corpora "
        "and classes, no calibration; scored as `predict` scores; mean ± sample std over seeds. Every "
        "test speaker is one the model never heard; the corpora are the two development corpora only.",
        "",
        "| speakers scored | trained on | UA % | WA % | n |",
        "|---|---|---|---|---|",
    ]
    mean_ua = {}
    for (tested, trained_on), per_seed in rows.items():
        pooled = {seed: pool(ms) for seed, ms in per_seed.items()}
        ua = [100 * m.ua for m in pooled.values()]
        wa = [100 * m.wa for m in pooled.values()]
        mean_ua.setdefault(tested, []).append((trained_on, ua))
        spread = (lambda v: f" ± {np.std(v, ddof=1):.1f}" if len(v) > 1 else "")
        lines.append(f"| {tested} | {trained_on} | {np.mean(ua):.1f}{spread(ua)} | {np.mean(wa):.1f}{spread(wa)} | "
                     f"{next(iter(pooled.values())).n} |")
    lines += ["", "What adding the other corpus did, UA points (mean over seeds; per seed in brackets):", ""]
    for tested, ((_, alone), (with_other, more)) in mean_ua.items():
        gains = ", ".join(f"{b - a:+.1f}" for a, b in zip(alone, more))
        lines.append(f"- {tested}, trained on {with_other}: {np.mean(more) - np.mean(alone):+.1f} ({gains}).")
    helped = all(np.mean(more) > np.mean(alone) for ((_, alone), (_, more)) in mean_ua.values())
    lines += ["", ("More speakers, microphones and words help speakers of either corpus, although the added "
                   "corpus holds other words, other speakers and another microphone: the shipped models train on both.")
              if helped else "The other corpus does not help every corpus's speakers here: see the rows above."]
    REPORT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {REPORT}", file=sys.stderr)


if __name__ == "__main__":
    main()
