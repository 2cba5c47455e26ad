"""`emofusion train`: train one Table-1 model on a manifest under a protocol."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from emofusion.cli.options import (
    add_data_options, add_training_options, experiment_config, feature_cache, load_utterances,
)
from emofusion.corpora.manifest import corpus_label_gaps
from emofusion.evaluation.protocols import PROTOCOLS, Fold
from emofusion.evaluation.results import RunResult
from emofusion.experiments.runner import pooled, pooled_line, probability_line, run_folds, train_model
from emofusion.fileio import write_json_atomic
from emofusion.labels import ordered_classes
from emofusion.models import MODEL_NAMES, canonical_name, modalities_of
from emofusion.training.distributed import is_main_process
from emofusion.training.encode import usable


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train one model", description=__doc__)
    p.add_argument("--model", required=True, help=f"one of {', '.join(MODEL_NAMES)}")
    add_data_options(p)
    p.add_argument("--out", required=True, type=Path, help="run folder")
    p.add_argument("--protocol", choices=[*PROTOCOLS, "all"], default="paper",
                   help="paper: hold out session 5 (or dev; one per corpus); loso: one run per held-out session "
                        "in RUN_DIR/test-<session> (corpus_session over several corpora), scored pooled over "
                        "folds; loco: one run per held-out corpus in RUN_DIR/test-<corpus>, scored per corpus "
                        "and pooled; all: train on every row, no test")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available; "
                   "under torchrun each process takes cuda:LOCAL_RANK)")
    add_training_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    name = canonical_name(args.model)
    config = experiment_config(args)
    utterances = load_utterances(args)
    cache = feature_cache(args, config) if "speech" in modalities_of(name) else None
    common = dict(
        config=config, cache=cache, seed=args.seed, device=args.device, progress=not args.quiet and is_main_process(),
        overwrite=args.overwrite,
        provenance={"manifest": str(args.manifest[0]) if len(args.manifest) == 1 else [str(m) for m in args.manifest],
                    "protocol": args.protocol},
    )
    if args.protocol == "all":
        rows = usable(utterances, modalities_of(name))
        train_model(name, rows, labels=ordered_classes(u.label for u in rows), out_dir=args.out, **common)
        if not is_main_process():  # under torchrun every process trains; rank 0 reports
            return 0
        print(f"trained {name} on {len(rows)} utterances -> {args.out}")
        return 0

    def run_dir(fold: Fold) -> Path:
        return args.out if args.protocol == "paper" else args.out / fold.folder

    def fold_done(fold: Fold, out: Path, result: RunResult) -> None:
        if not is_main_process():  # under torchrun every process trains; rank 0 writes and reports
            return
        m = result.metrics
        held = "test_corpus" if args.protocol == "loco" else "test_session"
        write_json_atomic(out / "metrics.json", {held: fold.name, **_fold_json(result)})
        print(f"{name} {held.replace('_', ' ')} {fold.name}: WA {m.wa:.2%}  UA {m.ua:.2%}{probability_line(m)}  "
              f"(n={m.n}, trained on {len(fold.train)})")
        if args.protocol == "loco":
            lacking = corpus_label_gaps([*fold.train, *fold.test]).get(fold.name)
            if lacking:
                print(f"note: held-out corpus {fold.name} has no {', '.join(lacking)} rows; its UA averages "
                      "the classes it has", file=sys.stderr)

    results = run_folds(name, utterances, protocol=args.protocol, run_dir=run_dir, on_fold=fold_done, **common)
    if args.protocol in ("loso", "loco") and is_main_process():
        summary = {
            "model": name, "protocol": args.protocol, "seed": args.seed, "labels": list(results[0].metrics.labels),
            # Under loco each fold is a corpus: these are the per-corpus figures.
            "folds": {r.fold: _fold_json(r) for r in results},
            # The one LOSO (LOCO) score, as `reproduce` computes it: folds' confusion counts summed.
            "pooled": pooled(results).to_json(),
        }
        write_json_atomic(Path(args.out) / "metrics.json", summary)
        print(pooled_line(name, results))
    return 0


def _fold_json(result: RunResult) -> dict:
    return {**result.metrics.to_json(), "speaker_overlap": result.overlap.to_json()}
