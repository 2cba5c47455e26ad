"""`emofusion reproduce`: train the paper's Table-1 models and write the report beside the paper's."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from emofusion.cli.options import (
    add_data_options, add_training_options, experiment_config, feature_cache, load_utterances, manifest_names,
)
from emofusion.evaluation.protocols import PROTOCOLS
from emofusion.experiments.runner import run_experiment, speaker_overlap_notes
from emofusion.features.acoustic import FEATURE_NAMES
from emofusion.models import MODEL_NAMES


def register(subparsers) -> None:
    p = subparsers.add_parser("reproduce", help="train Table-1 models and write a report", description=__doc__)
    add_data_options(p)
    p.add_argument("--out", required=True, type=Path, help="report folder")
    p.add_argument("--protocol", nargs="+", choices=list(PROTOCOLS), default=["paper"],
                   help="paper, loso (leave-one-session-out) and/or loco (leave-one-corpus-out, several "
                        "manifests or a corpus column): each seed's folds pooled, counts summed")
    p.add_argument("--seeds", type=int, default=3, help="number of seeds (0..N-1), default 3")
    p.add_argument("--models", nargs="+", default=list(MODEL_NAMES))
    p.add_argument("--runs-dir", type=Path, default=None, help="where run folders go (default OUT/runs)")
    add_training_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Imported here: the report pulls in matplotlib, which no other command needs.
    from emofusion.evaluation.data_card import describe_data
    from emofusion.evaluation.report import write_report
    from emofusion.training.distributed import is_main_process

    config = experiment_config(args)
    utterances = load_utterances(args)
    cache = feature_cache(args, config)
    # Under torchrun every process runs every training (data-parallel); rank 0 prints and reports.
    results, skipped = run_experiment(
        utterances, models=args.models, protocols=args.protocol, seeds=range(args.seeds),
        runs_dir=args.runs_dir or args.out / "runs", config=config, cache=cache,
        progress=not args.quiet and is_main_process(),
        overwrite=args.overwrite,
    )
    if not is_main_process():
        return 0
    example = None
    with_audio = [u for u in utterances if u.has_audio]
    if with_audio:
        frames = cache.get(with_audio[0].audio)
        example = (frames, FEATURE_NAMES, with_audio[0].id)
    corpora = sorted({u.corpus for u in utterances})
    notes = [
        f"{len(utterances)} manifest rows; labels {sorted({u.label for u in utterances})}.",
        *([f"Corpora: {', '.join(corpora)}. " + {
            "auto": "A training fold that spans two corpora or more samples them in balance (every corpus, "
                    "and every class within it, an equal share of each epoch); one corpus is shuffled plainly.",
            "corpus_class": "Every training fold samples its corpora and their classes in balance.",
            "none": "Training folds shuffle their rows plainly (--balance none): larger corpora weigh more.",
        }[config.train.balance]
           + (" Under loco with two corpora each training fold is one corpus." if "loco" in args.protocol
              and len(corpora) == 2 else "")] if len(corpora) > 1 else []),
        f"Training: {config.train.epochs} epochs, batch {config.train.batch_size}, fixed epochs "
        "(no early stopping, nothing selected on held-out data); features standardised on training folds only.",
    ]
    if args.ignore_text:
        notes.append("Text column ignored (--ignore-text): speech-only run.")
    if args.ignore_audio:
        notes.append("Audio column ignored (--ignore-audio): text-only run.")
    notes += speaker_overlap_notes(results)
    path = write_report(
        args.out, results, title=f"Table 1 reproduction on {manifest_names(args)}",
        command="emofusion " + shlex.join(args.argv), notes=notes, feature_example=example, skipped=skipped,
        data=describe_data(manifest_names(args), utterances),
    )
    print(f"report: {path}")
    return 0
