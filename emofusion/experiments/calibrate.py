"""Training with calibration: hold out speakers, train on the rest, fit the temperature and the
confidence threshold on the held-out speakers' predictions, and record both in ``model.json``.

Why held-out speakers, not a random share of utterances: the temperature must reflect how sure the
model should be on a voice it has never heard, which is every voice it will meet in use. Rows of a
speaker the model trained on come out far more confident and right (the model has learnt the
voice), so they would fit a temperature that is too sharp. The held-out speakers are never any
test fold's speakers either: they are taken from the training rows of the fold only.

How speakers are chosen (`holdout_speakers`): for each corpus with at least
`MIN_SPEAKERS_TO_HOLD_OUT` speakers, ``round(fraction * speakers)`` of them (at least one), drawn
with the run's seed. A corpus with fewer speakers (TESS has two) keeps all of them for training:
holding one of two out would halve that corpus and change what the model learns from it. The
model is then trained on the remaining rows only; the speakers it fitted its calibration on are
recorded (``calibration.fitted_on.speakers``), so "disjoint from the training speakers" can be
checked from the file alone.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from emofusion.artifacts import META_FILE, TrainedModel, load_trained
from emofusion.errors import ConfigError
from emofusion.evaluation.metrics import probability_scores
from emofusion.experiments.scoring import predict_utterances
from emofusion.fileio import write_json_atomic
from emofusion.models.calibration import META_KEY, TARGET_ACCURACY, choose_threshold, fit_temperature
from emofusion.records import Utterance

MIN_SPEAKERS_TO_HOLD_OUT = 3
# "No model prints 99% on a clip it gets wrong more than 1 time in 20 on validation" (issue 17).
SURE = 0.99


def speaker_key(u: Utterance) -> str:
    """A speaker's name across corpora (speakers are named within their corpus)."""
    return f"{u.corpus}/{u.speaker}" if u.corpus else u.speaker


def holdout_speakers(rows: list[Utterance], fraction: float, seed: int) -> list[str]:
    """The speakers (`speaker_key`) held out for calibration, sorted; see the module docstring."""
    if not 0 < fraction < 1:
        raise ConfigError(f"calibration hold-out fraction must be between 0 and 1, got {fraction!r}")
    by_corpus: dict[str, set[str]] = {}
    for u in rows:
        by_corpus.setdefault(u.corpus, set()).add(speaker_key(u))
    rng = random.Random(seed)
    chosen: list[str] = []
    for corpus in sorted(by_corpus):
        speakers = sorted(by_corpus[corpus])
        if len(speakers) < MIN_SPEAKERS_TO_HOLD_OUT:
            continue
        chosen += rng.sample(speakers, max(1, round(fraction * len(speakers))))
    if not chosen:
        counts = ", ".join(f"{c or 'rows'}: {len(s)}" for c, s in sorted(by_corpus.items()))
        raise ConfigError(
            f"calibration needs a corpus with at least {MIN_SPEAKERS_TO_HOLD_OUT} speakers in the training rows, "
            f"to hold some out (speakers per corpus: {counts})"
        )
    return sorted(chosen)


def can_hold_out(rows: list[Utterance]) -> bool:
    """Whether some corpus of ``rows`` has enough speakers to hold some out for calibration."""
    by_corpus: dict[str, set[str]] = {}
    for u in rows:
        by_corpus.setdefault(u.corpus, set()).add(speaker_key(u))
    return any(len(s) >= MIN_SPEAKERS_TO_HOLD_OUT for s in by_corpus.values())


def split_for_calibration(rows: list[Utterance], fraction: float, seed: int) -> tuple[list[Utterance], list[Utterance], list[str]]:
    """(rows to train on, held-out rows to calibrate on, the held-out speakers)."""
    held = set(holdout_speakers(rows, fraction, seed))
    fit = [u for u in rows if speaker_key(u) not in held]
    validation = [u for u in rows if speaker_key(u) in held]
    return fit, validation, sorted(held)


def fit_calibration(logits: np.ndarray, targets: np.ndarray, *, speakers: list[str], target: float = TARGET_ACCURACY) -> dict:
    """model.json's ``calibration`` block from held-out validation logits and their true classes.

    Fits the temperature (`fit_temperature`), then the confidence threshold on the calibrated
    probabilities (`choose_threshold`), and records the validation figures before and after:
    ECE (points), NLL, Brier, and how often a prediction at 99% or more was wrong.
    """
    logits = np.asarray(logits, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.int64)
    temperature = fit_temperature(logits, targets)
    before, after = _softmax(logits), _softmax(logits / temperature)
    scores_before, scores_after = probability_scores(before, targets), probability_scores(after, targets)
    top = after.max(axis=1)
    correct = after.argmax(axis=1) == targets
    threshold = choose_threshold(top, correct, target)
    sure = top >= SURE
    confident = top >= threshold
    return {
        "method": "temperature",
        "temperature": temperature,
        "confidence_threshold": threshold,
        "threshold_rule": f"smallest validation top probability at which the predictions at or above it are "
                          f"right at least {target:.0%} of the time",
        "fitted_on": {"n": int(len(targets)), "speakers": list(speakers)},
        "validation": {
            "ece_before": scores_before.ece, "ece_after": scores_after.ece,
            "nll_before": scores_before.nll, "nll_after": scores_after.nll,
            "brier_before": scores_before.brier, "brier_after": scores_after.brier,
            "accuracy": float(correct.mean()),
            "confident_share": float(confident.mean()),
            "confident_accuracy": float(correct[confident].mean()) if confident.any() else None,
            "n_at_99": int(sure.sum()),
            "error_rate_at_99": float(1 - correct[sure].mean()) if sure.any() else None,
        },
    }


def calibrate_run(trained: TrainedModel, out_dir: str | Path, validation: list[Utterance], speakers: list[str], *,
                  cache=None, progress: bool = False) -> TrainedModel:
    """Fit ``trained``'s calibration on ``validation`` rows, write it into its model.json, reload it.

    A run folder whose model.json already holds a calibration fitted on these speakers is returned
    as it is (a rerun resumes, as training does).
    """
    existing = trained.meta.get(META_KEY)
    if isinstance(existing, dict) and (existing.get("fitted_on") or {}).get("speakers") == list(speakers):
        return trained
    if not trained.calibration.identity:
        raise ConfigError(f"{out_dir}: the model is already calibrated on other speakers; train it again to refit")
    logits = predict_utterances(trained, validation, cache=cache, progress=progress, logits=True)
    targets = np.array([trained.labels.index(u.label) for u in validation])
    block = fit_calibration(logits, targets, speakers=speakers)
    meta_path = Path(out_dir) / META_FILE
    meta = dict(trained.meta)
    meta[META_KEY] = block
    write_json_atomic(meta_path, meta)
    device = next(trained.model.parameters()).device
    return load_trained(out_dir, device)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def describe(block: dict) -> str:
    """One line on a calibration block, for progress output."""
    v = block["validation"]
    sure = "none at 99%" if v["error_rate_at_99"] is None else (
        f"{v['n_at_99']} at >= 99%, {v['error_rate_at_99']:.1%} of them wrong")
    return (f"calibration on {block['fitted_on']['n']} rows of {len(block['fitted_on']['speakers'])} held-out speakers: "
            f"T {block['temperature']:.3f}, ECE {v['ece_before']:.1f} -> {v['ece_after']:.1f}, NLL "
            f"{v['nll_before']:.3f} -> {v['nll_after']:.3f}; confident from {block['confidence_threshold']:.2f} "
            f"({v['confident_share']:.0%} of rows); {sure}")
