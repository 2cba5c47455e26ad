"""How well does a calibration fitted on held-out speakers of one corpus travel to another corpus?

Usage (from the repository root, ../shared/data beside it):

    nice -n 5 python recipes/calibration/loco_ece.py --model S-CBLA --train ravdess4 --test tess4 --json out.json

Trains ``--model`` through the normal calibrated path (`emofusion.experiments.runner.train_model`
with ``calibrate=True``: a share of the training corpus's speakers held out, the temperature and
threshold fitted on them) into ``runs/calibration/<model>/<train>-seed<seed>`` (reused when there),
then compares ways of turning logits into probabilities, each fitted on the held-out validation
speakers of the TRAINING corpus only; the test corpus is only scored:

- ``raw``: softmax of the logits (temperature 1);
- ``temperature``: the fitted temperature (what emofusion ships);
- ``distance-T``: temperature T0 * (1 + a * max(0, d - d0)), d the Mahalanobis distance of the
  clip's pooled acoustic features (mean and std over frames of the 34 features) from the training
  rows' (Ledoit-Wolf covariance), d0 the training rows' 95th percentile; T0 and a fitted jointly
  by NLL on validation (grid over a);
- ``distance-mix``: the calibrated probabilities mixed with the uniform distribution by weight
  w = sigmoid(b * (d - d0)), b fitted by NLL on validation.

- ``distance-mix-transferred`` (with ``--transfer other.json``): as distance-mix on the distance
  ratio r = d / d0, w = sigmoid(b * (r - c)), with (b, c) fitted by NLL on the *other direction's*
  held-out corpus (its ``cross_fit``). Held-out speakers of the training corpus are all close to
  the training data, so validation within one corpus cannot teach how confidence should fall far
  from it; the other direction's corpus can, and it is never this run's test corpus. Each run
  writes ``cross_fit`` (fitted on its own test corpus) only for the other direction to use.

A corpus with fewer than three speakers (TESS: two) keeps every speaker for training under the
library's rule; here ``--min-speakers 2`` lets one of TESS's two speakers be held out, so TESS ->
RAVDESS can be measured at all (the model then trains on one speaker).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from sklearn.covariance import LedoitWolf

from emofusion.corpora.manifest import read_manifest
from emofusion.evaluation.metrics import compute_metrics, probability_scores
from emofusion.experiments import calibrate
from emofusion.experiments.runner import ExperimentConfig, train_model
from emofusion.experiments.scoring import predict_utterances
from emofusion.features.acoustic import AcousticConfig
from emofusion.features.cache import FeatureCache
from emofusion.labels import PAPER_CLASSES
from emofusion.models.calibration import fit_temperature
from emofusion.training.config import TrainConfig
from emofusion.training.encode import load_frames

REPO = Path(__file__).resolve().parents[2]


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def nll(p: np.ndarray, y: np.ndarray) -> float:
    return float(-np.log(np.clip(p[np.arange(len(y)), y], 1e-12, None)).mean())


def pooled_features(rows, cache) -> np.ndarray:
    frames = load_frames(rows, cache, progress=False)
    return np.stack([np.concatenate([f.mean(0), f.std(0)]) for f in frames])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="S-CBLA")
    parser.add_argument("--train", default="ravdess4")
    parser.add_argument("--test", default="tess4")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=TrainConfig().epochs)
    parser.add_argument("--holdout", type=float, default=0.2)
    parser.add_argument("--min-speakers", type=int, default=calibrate.MIN_SPEAKERS_TO_HOLD_OUT)
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--transfer", type=Path, default=None, help="the other direction's JSON (its cross_fit)")
    args = parser.parse_args(argv)
    calibrate.MIN_SPEAKERS_TO_HOLD_OUT = args.min_speakers

    train_rows = read_manifest(args.shared / "bench" / f"{args.train}.csv")
    test_rows = read_manifest(args.shared / "bench" / f"{args.test}.csv")
    labels = tuple(c for c in PAPER_CLASSES if c in {u.label for u in train_rows})
    acoustic = AcousticConfig()
    cache = FeatureCache(acoustic)
    config = ExperimentConfig(acoustic=acoustic, train=TrainConfig(epochs=args.epochs), calibrate=True,
                              calibration_holdout=args.holdout)
    out = REPO / "runs" / "calibration" / args.model / f"{args.train}-seed{args.seed}"
    trained = train_model(args.model, train_rows, labels=labels, out_dir=out, config=config, cache=cache,
                          seed=args.seed, progress=True)
    fit, val, speakers = calibrate.split_for_calibration(train_rows, args.holdout, args.seed)
    assert speakers == trained.meta["calibration"]["fitted_on"]["speakers"]

    y_val = np.array([labels.index(u.label) for u in val])
    y_test = np.array([labels.index(u.label) for u in test_rows])
    z_val = predict_utterances(trained, val, cache=cache, progress=False, logits=True).astype(np.float64)
    z_test = predict_utterances(trained, test_rows, cache=cache, progress=True, logits=True).astype(np.float64)

    # Distance of each clip's pooled features from the training rows (fit rows only).
    f_fit, f_val, f_test = (pooled_features(r, cache) for r in (fit, val, test_rows))
    mean = f_fit.mean(0)
    precision = LedoitWolf().fit(f_fit).precision_

    def distance(f):
        d = f - mean
        return np.sqrt(np.einsum("ij,jk,ik->i", d, precision, d))

    d_fit, d_val, d_test = distance(f_fit), distance(f_val), distance(f_test)
    d0 = float(np.percentile(d_fit, 95))

    t0 = trained.meta["calibration"]["temperature"]
    options = {"raw": lambda z, d: softmax(z), "temperature": lambda z, d: softmax(z / t0)}

    # distance-T: joint fit of (T0, a) on validation; grid over a, T0 by the library's 1-D search
    best = None
    for a in [0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0]:
        scale = 1 + a * np.maximum(0, d_val - d0)
        t = fit_temperature(z_val / scale[:, None], y_val)
        loss = nll(softmax(z_val / (t * scale[:, None])), y_val)
        if best is None or loss < best[0]:
            best = (loss, a, t)
    _, a_best, t_best = best
    options["distance-T"] = lambda z, d: softmax(z / (t_best * (1 + a_best * np.maximum(0, d - d0)))[:, None])

    # distance-mix: calibrated probabilities mixed toward uniform as the input moves away
    k = len(labels)
    best = None
    for b in [0.0, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0]:
        w = 1 / (1 + np.exp(-b * (d_val - d0))) if b else np.zeros_like(d_val)
        p = (1 - w[:, None]) * softmax(z_val / t0) + w[:, None] / k
        loss = nll(p, y_val)
        if best is None or loss < best[0]:
            best = (loss, b)
    b_best = best[1]

    def mix(z, d):
        w = 1 / (1 + np.exp(-b_best * (d - d0))) if b_best else np.zeros_like(d)
        return (1 - w[:, None]) * softmax(z / t0) + w[:, None] / k

    options["distance-mix"] = mix

    def ratio_mix(z, d, b, c):
        w = 1 / (1 + np.exp(-b * (d / d0 - c)))
        return (1 - w[:, None]) * softmax(z / t0) + w[:, None] / k

    # Fitted on this run's test corpus for the OTHER direction only (never reported as this run's result).
    grid = [(b, c) for b in (1, 2, 4, 8, 16) for c in (0.5, 1.0, 1.25, 1.5, 2.0, 3.0)]
    cross_fit = min(grid, key=lambda bc: nll(ratio_mix(z_test, d_test, *bc), y_test))
    if args.transfer is not None:
        b_t, c_t = json.loads(args.transfer.read_text())["cross_fit"]
        options["distance-mix-transferred"] = lambda z, d: ratio_mix(z, d, b_t, c_t)

    results = {"model": args.model, "train": args.train, "test": args.test, "seed": args.seed,
               "calibration_speakers": speakers, "n_fit": len(fit), "n_val": len(val), "n_test": len(test_rows),
               "temperature": t0, "distance_T": {"a": a_best, "T0": t_best}, "distance_mix": {"b": b_best},
               "cross_fit": list(cross_fit), "d0": d0, "median_distance": {"fit": float(np.median(d_fit)), "val": float(np.median(d_val)),
                                             "test": float(np.median(d_test))},
               "options": {}}
    for name, make in options.items():
        row = {}
        for split, z, d, y in (("validation", z_val, d_val, y_val), ("test", z_test, d_test, y_test)):
            p = make(z, d)
            s = probability_scores(p, y)
            m = compute_metrics(y.tolist(), p.argmax(1).tolist(), labels)
            row[split] = {"ua": 100 * m.ua, "ece": s.ece, "nll": s.nll, "brier": s.brier,
                          "mean_confidence": 100 * s.mean_confidence,
                          "wrong_at_99": int(((p.max(1) >= 0.99) & (p.argmax(1) != y)).sum()),
                          "n_at_99": int((p.max(1) >= 0.99).sum())}
        results["options"][name] = row
        v, t = row["validation"], row["test"]
        print(f"{name:>13}: validation UA {v['ua']:.1f} ECE {v['ece']:.1f} NLL {v['nll']:.3f} | "
              f"{args.test} UA {t['ua']:.1f} ECE {t['ece']:.1f} NLL {t['nll']:.3f} conf {t['mean_confidence']:.1f}",
              flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
