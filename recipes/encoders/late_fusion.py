"""Late-fusion baseline: average the class probabilities of two trained unimodal models.

Reads the run folders an ``emofusion reproduce`` run left (``RUNS/<protocol>/<model>/seed<k>/test-<fold>``)
for a speech and a text model, predicts each fold's held-out rows with both, averages the two
probability vectors and scores the average exactly as the report scores a model: LOSO folds pooled
per seed (confusion counts summed), then mean ± sample std over seeds. Nothing is trained or tuned
here, so the baseline sees no more data than the two models it averages.

    python recipes/encoders/late_fusion.py --manifest ../shared/data/bench/paired4.csv \\
        --runs runs/enc-paired4/runs --speech-runs runs/enc-ravdess4/runs --speech S-WT --text T-ST

``--speech-runs``: where the speech model's runs are, when they differ (on ``paired4`` the speech
model sees the same clips in the same sessions as on ``ravdess4``, so it is trained once).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from emofusion.artifacts import load_trained
from emofusion.corpora.manifest import read_manifest
from emofusion.evaluation.metrics import aggregate, compute_metrics, pool
from emofusion.experiments.scoring import predict_utterances
from emofusion.training.encode import usable
from emofusion.evaluation.protocols import make_folds


def late_fusion(utterances, runs: Path, speech_runs: Path, speech: str, text: str, protocol: str) -> dict:
    rows = usable(utterances, frozenset({"speech", "text"}))
    seeds = sorted(p.name for p in (speech_runs / protocol / speech).glob("seed*"))
    if not seeds:
        raise SystemExit(f"no runs under {speech_runs / protocol / speech}")
    per_seed = []
    for seed in seeds:
        fold_metrics = []
        for fold in make_folds(rows, protocol):
            models = [load_trained(root / protocol / name / seed / f"test-{fold.name}")
                      for root, name in ((speech_runs, speech), (runs, text))]
            if models[0].labels != models[1].labels:
                raise SystemExit(f"{speech} and {text} were trained on different classes")
            probs = sum(predict_utterances(m, fold.test, progress=False) for m in models) / 2
            labels = models[0].labels
            fold_metrics.append(compute_metrics([u.label for u in fold.test], [labels[i] for i in probs.argmax(1)], labels))
        per_seed.append(pool(fold_metrics))
    summary = aggregate(per_seed)
    return {"protocol": protocol, "speech": speech, "text": text, "seeds": seeds,
            "wa": summary["wa"], "ua": summary["ua"], "per_class": summary["per_class"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--manifest", required=True, type=Path)
    p.add_argument("--runs", required=True, type=Path, help="the runs folder of a reproduce run")
    p.add_argument("--speech-runs", type=Path, default=None, help="the speech model's runs folder (default: --runs)")
    p.add_argument("--speech", default="S-WT")
    p.add_argument("--text", default="T-ST")
    p.add_argument("--protocol", nargs="+", default=["paper", "loso"])
    p.add_argument("--out", type=Path, help="write the results as JSON here")
    args = p.parse_args()
    utterances = read_manifest(args.manifest)
    speech_runs = args.speech_runs or args.runs
    results = [late_fusion(utterances, args.runs, speech_runs, args.speech, args.text, proto) for proto in args.protocol]
    for r in results:
        print(f"late fusion {r['speech']} + {r['text']} [{r['protocol']}]: "
              f"WA {100 * r['wa']['mean']:.1f} ± {100 * r['wa']['std']:.1f}  UA {100 * r['ua']['mean']:.1f} ± {100 * r['ua']['std']:.1f}")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
