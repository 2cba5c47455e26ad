"""Classification metrics as the paper reports them: WA, UA, per-class recall, confusion.

- **WA** (weighted accuracy) is plain overall accuracy: every utterance counts once, so frequent
  classes (IEMOCAP's `neu`) weigh more.
- **UA** (unweighted accuracy) is the mean of per-class recalls, so a class with 31 test utterances
  (`ang` in the paper's Session-5 split) counts as much as one with 287.
- A class listed in `labels` but absent from `y_true` has no recall: it is left out of UA, its
  `per_class` value is NaN (null in JSON) and its confusion row is all zeros. Averaging a 0 or 1 in
  for it instead would move UA by a value the test set never measured.

Everything is computed from a confusion-count matrix, so results of several folds can be pooled
exactly by summing counts (`pool`), which is what the report does for leave-one-session-out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral
from typing import Sequence

import numpy as np

from emofusion.errors import ConfigError


@dataclass(frozen=True, eq=False)
class Metrics:
    """Scores of one prediction run over one test set. Fractions in [0, 1], not percent.

    Arguments:
        labels: class names; index i of every array below refers to labels[i].
        wa: overall accuracy.
        ua: mean recall over the classes present in the test set.
        per_class: recall per class (NaN for a class absent from the test set).
        confusion: row-normalised confusion (rows true, columns predicted); absent class -> zero row.
        counts: raw confusion counts, int.
        n: number of utterances scored.
    """

    labels: tuple[str, ...]
    wa: float
    ua: float
    per_class: dict[str, float]
    confusion: np.ndarray
    counts: np.ndarray
    n: int

    @classmethod
    def from_counts(cls, counts: np.ndarray | Sequence[Sequence[int]], labels: Sequence[str]) -> "Metrics":
        """Build metrics from a (k, k) count matrix, rows true class, columns predicted class."""
        labels = _check_labels(labels)
        try:
            raw = np.asarray(counts, dtype=np.float64)
        except (TypeError, ValueError):
            raise ConfigError(f"confusion counts must be a matrix of numbers, got {counts!r}") from None
        k = len(labels)
        if raw.shape != (k, k):
            raise ConfigError(f"confusion counts have shape {raw.shape}, expected ({k}, {k}) for labels {labels}")
        if not np.all(np.isfinite(raw)) or np.any(raw < 0) or np.any(raw != np.round(raw)):
            raise ConfigError(f"confusion counts must be non-negative integers, got {raw.tolist()}")
        counts = raw.astype(np.int64)
        n = int(counts.sum())
        if n == 0:
            raise ConfigError("cannot score an empty test set (no predictions)")
        support = counts.sum(axis=1)
        present = support > 0
        confusion = np.zeros((k, k), dtype=np.float64)
        confusion[present] = counts[present] / support[present, None]
        recall = np.full(k, np.nan)
        recall[present] = np.diag(counts)[present] / support[present]
        counts.setflags(write=False)
        confusion.setflags(write=False)
        return cls(
            labels=labels,
            wa=float(np.trace(counts) / n),
            ua=float(recall[present].mean()),
            per_class={lab: float(r) for lab, r in zip(labels, recall)},
            confusion=confusion,
            counts=counts,
            n=n,
        )

    def to_json(self) -> dict:
        """Plain-JSON form; NaN recalls (absent classes) become null because JSON has no NaN."""
        return {
            "labels": list(self.labels),
            "wa": self.wa,
            "ua": self.ua,
            "per_class": {lab: (None if math.isnan(v) else v) for lab, v in self.per_class.items()},
            "confusion": self.confusion.tolist(),
            "counts": self.counts.tolist(),
            "n": self.n,
        }

    @classmethod
    def from_json(cls, d: dict) -> "Metrics":
        """Inverse of `to_json`. Recomputed from the counts, so a hand-edited score cannot disagree."""
        missing = [key for key in ("labels", "counts") if key not in d]
        if missing:
            raise ConfigError(f"metrics JSON lacks {missing}; it has keys {sorted(d)}")
        metrics = cls.from_counts(d["counts"], d["labels"])
        if "n" in d and int(d["n"]) != metrics.n:
            raise ConfigError(f"metrics JSON says n={d['n']} but its counts sum to {metrics.n}")
        return metrics


def compute_metrics(y_true: Sequence[str | int], y_pred: Sequence[str | int], labels: Sequence[str]) -> Metrics:
    """Score predictions against references.

    Arguments:
        y_true, y_pred: class names, or integer indices into `labels` (may be mixed).
        labels: every class the model can output, in report order.

    Example:
        >>> m = compute_metrics(["a", "a", "b"], ["a", "b", "b"], labels=["a", "b"])
        >>> m.wa, m.ua, m.per_class
        (0.6666666666666666, 0.75, {'a': 0.5, 'b': 1.0})
    """
    labels = _check_labels(labels)
    y_true, y_pred = list(y_true), list(y_pred)
    if len(y_true) != len(y_pred):
        raise ConfigError(f"y_true has {len(y_true)} items but y_pred has {len(y_pred)}")
    index = {lab: i for i, lab in enumerate(labels)}
    true_idx = [_to_index(y, index, labels, "y_true", row) for row, y in enumerate(y_true)]
    pred_idx = [_to_index(y, index, labels, "y_pred", row) for row, y in enumerate(y_pred)]
    counts = np.zeros((len(labels), len(labels)), dtype=np.int64)
    np.add.at(counts, (np.asarray(true_idx, dtype=np.int64), np.asarray(pred_idx, dtype=np.int64)), 1)
    return Metrics.from_counts(counts, labels)


def pool(metrics: Sequence[Metrics]) -> Metrics:
    """Metrics of the concatenated test sets (e.g. the five LOSO folds): counts are summed."""
    if not metrics:
        raise ConfigError("nothing to pool: empty list of metrics")
    labels = _same_labels(metrics)
    return Metrics.from_counts(sum(m.counts for m in metrics), labels)


def aggregate(metrics: Sequence[Metrics]) -> dict:
    """Mean and spread of several runs (seeds), for "mean ± std" tables.

    The std is the *sample* std (ddof=1): the seeds are a sample of possible training runs and we
    estimate how much a fresh run would vary. With a single run it is NaN (undefined), not 0.
    A per-class recall that is NaN in some runs (class absent from that test set) is averaged over
    the runs that measured it; `n` says how many did. The mean confusion averages, row by row, only
    the runs whose test set contains that true class (other rows stay zero).

    Returns:
        {"labels": [...], "runs": k,
         "wa": {"mean", "std", "n"}, "ua": {...}, "per_class": {label: {"mean", "std", "n"}},
         "confusion": (k, k) ndarray}
    """
    if not metrics:
        raise ConfigError("nothing to aggregate: empty list of metrics")
    labels = _same_labels(metrics)
    confusion = np.zeros((len(labels), len(labels)))
    for i in range(len(labels)):
        rows = [m.confusion[i] for m in metrics if m.counts[i].sum() > 0]
        if rows:
            confusion[i] = np.mean(rows, axis=0)
    return {
        "labels": list(labels),
        "runs": len(metrics),
        "wa": _mean_std([m.wa for m in metrics]),
        "ua": _mean_std([m.ua for m in metrics]),
        "per_class": {lab: _mean_std([m.per_class[lab] for m in metrics]) for lab in labels},
        "confusion": confusion,
    }


def _mean_std(values: Sequence[float]) -> dict:
    """Mean and sample std over the finite values; NaN where undefined."""
    vals = np.asarray([v for v in values if not math.isnan(v)], dtype=np.float64)
    mean = float(vals.mean()) if vals.size else math.nan
    std = float(vals.std(ddof=1)) if vals.size >= 2 else math.nan
    return {"mean": mean, "std": std, "n": int(vals.size)}


def _check_labels(labels: Sequence[str]) -> tuple[str, ...]:
    labels = tuple(labels)
    if not labels:
        raise ConfigError("labels must name at least one class")
    if not all(isinstance(lab, str) and lab for lab in labels):
        raise ConfigError(f"labels must be non-empty strings, got {labels!r}")
    if len(set(labels)) != len(labels):
        raise ConfigError(f"labels contain duplicates: {labels!r}")
    return labels


def _same_labels(metrics: Sequence[Metrics]) -> tuple[str, ...]:
    labels = metrics[0].labels
    for m in metrics[1:]:
        if m.labels != labels:
            raise ConfigError(f"cannot combine metrics over different labels: {labels} vs {m.labels}")
    return labels


def _to_index(value, index: dict[str, int], labels: tuple[str, ...], name: str, row: int) -> int:
    """Class name or integer index -> index; anything else is a ConfigError naming the row."""
    if isinstance(value, str):
        if value not in index:
            raise ConfigError(f"{name}[{row}] = {value!r} is not one of the labels {labels}")
        return index[value]
    if isinstance(value, Integral) and not isinstance(value, bool):
        if not 0 <= int(value) < len(labels):
            raise ConfigError(f"{name}[{row}] = {int(value)} is out of range for {len(labels)} labels {labels}")
        return int(value)
    raise ConfigError(f"{name}[{row}] = {value!r} is neither a label name nor an integer index")
