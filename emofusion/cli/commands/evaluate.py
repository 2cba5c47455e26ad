"""`emofusion evaluate`: score a trained model on any manifest rows (e.g. data it never saw)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from emofusion.artifacts import load_trained
from emofusion.cli.options import add_manifest_option, load_utterances
from emofusion.errors import ConfigError
from emofusion.experiments.scoring import rows_from_training_sessions, score
from emofusion.features.acoustic import AcousticConfig
from emofusion.features.cache import FeatureCache
from emofusion.records import corpus_session


def register(subparsers) -> None:
    p = subparsers.add_parser("evaluate", help="score a trained model on a manifest", description=__doc__)
    p.add_argument("run_dir", type=Path, help="a folder written by `emofusion train`")
    add_manifest_option(p)
    p.add_argument("--sessions", nargs="+", default=None,
                   help="score only these sessions, as SESSION or CORPUS/SESSION (default: every row; a warning "
                        "names rows from training sessions)")
    p.add_argument("--cache", type=Path, default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.add_argument("--reliability", type=Path, default=None, metavar="PNG",
                   help="draw the reliability diagram (accuracy per top-probability bin) into this PNG file")
    p.set_defaults(func=run, ignore_text=False, ignore_audio=False)


def run(args: argparse.Namespace) -> int:
    trained = load_trained(args.run_dir, device=args.device)
    # A label the model cannot predict is an error naming its row, not a silently lower score.
    utterances = load_utterances(args, labels=trained.labels)
    if args.sessions:
        wanted = set(args.sessions)
        found = {u.session for u in utterances} | {corpus_session(u, True) for u in utterances}
        if not wanted & found:
            raise ConfigError(f"no rows in sessions {sorted(wanted)}; the manifest has {sorted(found)}")
        utterances = [u for u in utterances if u.session in wanted or corpus_session(u, True) in wanted]
    cache = None
    if trained.pipeline.uses_speech:
        # A Whisper model has no acoustic config; its frames are cached under the same --cache root.
        cache = FeatureCache(trained.pipeline.acoustic or AcousticConfig(), root=args.cache)
    metrics, _ = score(trained, utterances, cache=cache, progress=not args.json)
    _warn_if_not_held_out(trained.name, rows_from_training_sessions(trained, utterances), metrics.n)
    p = metrics.probability
    if args.reliability is not None:
        from emofusion.evaluation.plots import plot_reliability  # matplotlib only when a figure is asked for

        args.reliability.parent.mkdir(parents=True, exist_ok=True)
        plot_reliability(args.reliability, p.reliability(), f"{trained.name} on {metrics.n} utterances", ece=p.ece)
    if args.json:
        print(json.dumps(metrics.to_json(), indent=2))
        return 0
    print(f"{trained.name} on {metrics.n} utterances of {' + '.join(str(m) for m in args.manifest)}")
    print(f"WA {metrics.wa:.2%}   UA {metrics.ua:.2%}")
    calibration = trained.calibration
    how = (f"temperature {calibration.temperature:.3f} from model.json" if calibration.method != "none"
           else "uncalibrated: the model has no calibration")
    print(f"ECE {p.ece:.1f} points   NLL {p.nll:.3f}   Brier {p.brier:.3f}   mean top probability "
          f"{p.mean_confidence:.1%}   ({how})")
    print("recall  " + "  ".join(f"{c} {metrics.per_class[c]:.2%}" for c in metrics.labels))
    print("confusion (rows true, columns predicted):")
    print("       " + " ".join(f"{c:>6}" for c in metrics.labels))
    for c, row in zip(metrics.labels, metrics.confusion):
        print(f"{c:>6} " + " ".join(f"{v:6.2f}" for v in row))
    return 0


def _warn_if_not_held_out(name: str, seen: dict[str, int] | None, n: int) -> None:
    # On stderr, so `--json` output stays parseable.
    if seen is None:
        print(f"note: {name}'s model.json does not record the sessions it was trained on, so whether "
              "these rows are held out cannot be checked", file=sys.stderr)
    elif seen:
        sessions = ", ".join(seen)
        print(f"warning: {sum(seen.values())} of the {n} scored rows come from sessions the model was trained on "
              f"({sessions}); they are not held out: pass --sessions with held-out sessions only", file=sys.stderr)
