"""`emofusion train`: train one Table-1 model on a manifest under a protocol."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from emofusion.fileio import write_json_atomic
from emofusion.cli.options import (
    add_data_options, add_training_options, experiment_config, feature_cache, load_utterances,
)
from emofusion.evaluation.metrics import aggregate
from emofusion.evaluation.protocols import make_folds
from emofusion.experiments.runner import labels_of
from emofusion.experiments.scoring import score
from emofusion.models import MODEL_NAMES, canonical_name
from emofusion.training.encode import modalities_of, usable
from emofusion.training.trainer import train


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train one model", description=__doc__)
    p.add_argument("--model", required=True, help=f"one of {', '.join(MODEL_NAMES)}")
    add_data_options(p)
    p.add_argument("--out", required=True, type=Path, help="run folder")
    p.add_argument("--protocol", choices=["paper", "loso", "all"], default="paper",
                   help="paper: hold out session 5 (or dev); loso: one run per held-out session "
                        "in RUN_DIR/test-<session>; all: train on every row, no test")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    add_training_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    name = canonical_name(args.model)
    config = experiment_config(args)
    utterances = usable(load_utterances(args), modalities_of(name))
    labels = labels_of(utterances)
    cache = feature_cache(args, config) if "speech" in modalities_of(name) else None
    common = dict(
        labels=labels, cache=cache, acoustic=config.acoustic, text_config=config.text,
        model_config=config.model, train_config=config.train, seed=args.seed,
        device=args.device, progress=not args.quiet,
        provenance={"manifest": str(args.manifest), "protocol": args.protocol},
    )
    if args.protocol == "all":
        train(name, utterances, out_dir=args.out, **common)
        print(f"trained {name} on {len(utterances)} utterances -> {args.out}")
        return 0
    folds = make_folds(utterances, args.protocol)
    summary = {"model": name, "protocol": args.protocol, "seed": args.seed, "labels": list(labels), "folds": {}}
    all_metrics = []
    for fold in folds:
        out = args.out if args.protocol == "paper" else args.out / f"test-{fold.name}"
        trained = train(name, fold.train, out_dir=out, **common)
        metrics, _ = score(trained, fold.test, cache=cache, progress=False)
        write_json_atomic(Path(out) / "metrics.json", {"test_session": fold.name, **metrics.to_json()})
        summary["folds"][fold.name] = metrics.to_json()
        all_metrics.append(metrics)
        print(f"{name} test session {fold.name}: WA {metrics.wa:.2%}  UA {metrics.ua:.2%}  "
              f"(n={metrics.n}, trained on {len(fold.train)})")
    if args.protocol == "loso":
        summary["aggregate"] = aggregate(all_metrics)
        write_json_atomic(Path(args.out) / "metrics.json", summary)
        agg = summary["aggregate"]
        print(f"{name} LOSO over {len(folds)} folds: {json.dumps(agg['wa'])} WA, {json.dumps(agg['ua'])} UA")
    return 0
