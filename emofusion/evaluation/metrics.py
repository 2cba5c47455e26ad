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

How far the predicted probabilities can be trusted (`ProbabilityScores`, from `probability_scores`):

- **ECE** (expected calibration error, in points): predictions are put into 10 equal-width bins by
  their top probability; ECE = sum over bins of (bin count / n) * |accuracy - mean top probability|,
  times 100. 0 is perfect; a model that says 90% and is right 60% of the time scores 30.
- **NLL**: mean negative natural log of the probability given to the true class.
- **Brier**: mean over utterances of sum over classes of (p_c - [c is true])^2 (0..2).
- **ECE floor**: ECE is biased upwards on small test sets: even a perfectly calibrated model
  scores above 0, because each bin's accuracy is a binomial draw around its confidence. The floor
  is the ECE such a model would score on average with the same bins (counts and mean top
  probabilities): sum over bins of E|X - n_b c_b| / n with X ~ Binomial(n_b, c_b), computed
  exactly. On 112 clips at ~70% confidence it is ~6 points, so an ECE target of 5 there cannot be
  told apart from perfect calibration; say both figures.

These are kept as sums (per bin: count, summed top probability, right answers; NLL and Brier
sums), so folds pool exactly as the confusion counts do, and no per-utterance probability needs to
be stored in results.
"""

from __future__ import annotations

import dataclasses
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
    probability: "ProbabilityScores | None" = None

    def with_probability(self, scores: "ProbabilityScores") -> "Metrics":
        """These metrics with probability scores of the same utterances attached."""
        if scores.n != self.n:
            raise ConfigError(f"probability scores cover {scores.n} utterances, the metrics {self.n}")
        return dataclasses.replace(self, probability=scores)

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
            **({"probability": self.probability.to_json()} if self.probability is not None else {}),
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
        if d.get("probability") is not None:
            metrics = metrics.with_probability(ProbabilityScores.from_json(d["probability"]))
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
    pooled = Metrics.from_counts(sum(m.counts for m in metrics), labels)
    if all(m.probability is not None for m in metrics):
        pooled = pooled.with_probability(ProbabilityScores.pool([m.probability for m in metrics]))
    return pooled


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


ECE_BINS = 10  # equal-width bins on the top probability (the definition of ECE)


@dataclass(frozen=True, eq=False)
class ProbabilityScores:
    """Calibration of one prediction run, as poolable sums (see the module docstring).

    Arguments:
        bin_count: utterances per top-probability bin (bin i covers [i/10, (i+1)/10), the last one
            includes 1).
        bin_confidence: summed top probability per bin.
        bin_correct: right predictions per bin.
        nll_sum: summed -ln p(true class).
        brier_sum: summed multi-class Brier score.
    """

    bin_count: np.ndarray
    bin_confidence: np.ndarray
    bin_correct: np.ndarray
    nll_sum: float
    brier_sum: float

    @property
    def n(self) -> int:
        return int(self.bin_count.sum())

    @property
    def ece(self) -> float:
        """Expected calibration error in points (0-100)."""
        gap = np.abs(self.bin_correct - self.bin_confidence).sum()  # per bin: count * |acc - conf|
        return float(100.0 * gap / self.n)

    @property
    def ece_floor(self) -> float:
        """Expected ECE (points) of a perfectly calibrated model with these bins (module docstring).

        Each bin's utterances are taken to share its mean top probability c; with the spread of
        probabilities inside a 0.1-wide bin the true figure is at most a few percent lower.
        """
        expected_gap = 0.0
        for count, confidence_sum in zip(self.bin_count.tolist(), self.bin_confidence.tolist()):
            if count == 0:
                continue
            c = min(max(confidence_sum / count, 0.0), 1.0)
            if c in (0.0, 1.0):
                continue  # a certain outcome: accuracy equals confidence, no gap
            k = np.arange(count + 1, dtype=np.float64)
            log_pmf = (math.lgamma(count + 1) - np.array([math.lgamma(x + 1) + math.lgamma(count - x + 1) for x in k])
                       + k * math.log(c) + (count - k) * math.log1p(-c))
            expected_gap += float((np.exp(log_pmf) * np.abs(k - count * c)).sum())
        return float(100.0 * expected_gap / self.n)

    @property
    def nll(self) -> float:
        return self.nll_sum / self.n

    @property
    def brier(self) -> float:
        return self.brier_sum / self.n

    @property
    def mean_confidence(self) -> float:
        return float(self.bin_confidence.sum() / self.n)

    def reliability(self) -> list[dict]:
        """Reliability-diagram data: per non-empty bin its edges, count, mean top probability and accuracy."""
        edges = np.arange(len(self.bin_count) + 1) / len(self.bin_count)
        return [
            {"low": float(edges[i]), "high": float(edges[i + 1]), "count": int(c),
             "confidence": float(self.bin_confidence[i] / c), "accuracy": float(self.bin_correct[i] / c)}
            for i, c in enumerate(self.bin_count) if c > 0
        ]

    def to_json(self) -> dict:
        return {"ece": self.ece, "ece_floor": self.ece_floor, "nll": self.nll, "brier": self.brier, "mean_confidence": self.mean_confidence,
                "bin_count": self.bin_count.tolist(), "bin_confidence": self.bin_confidence.tolist(),
                "bin_correct": self.bin_correct.tolist(), "nll_sum": self.nll_sum, "brier_sum": self.brier_sum}

    @classmethod
    def from_json(cls, d: dict) -> "ProbabilityScores":
        """Inverse of `to_json`, recomputed from the sums (the derived figures are not trusted)."""
        try:
            count = np.asarray(d["bin_count"], dtype=np.int64)
            scores = cls(count, np.asarray(d["bin_confidence"], dtype=np.float64),
                         np.asarray(d["bin_correct"], dtype=np.int64), float(d["nll_sum"]), float(d["brier_sum"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"probability scores JSON is damaged ({type(exc).__name__}: {exc})") from None
        if not (count.ndim == 1 and scores.bin_confidence.shape == count.shape == scores.bin_correct.shape
                and count.sum() > 0 and (count >= 0).all()):
            raise ConfigError("probability scores JSON: bins must be equal-length lists with a positive total count")
        return scores

    @classmethod
    def pool(cls, scores: Sequence["ProbabilityScores"]) -> "ProbabilityScores":
        """The scores of the concatenated test sets: every sum added."""
        return cls(sum(s.bin_count for s in scores), sum(s.bin_confidence for s in scores),
                   sum(s.bin_correct for s in scores), sum(s.nll_sum for s in scores),
                   sum(s.brier_sum for s in scores))


def probability_scores(probabilities, y_true: Sequence[int], *, bins: int = ECE_BINS) -> ProbabilityScores:
    """ECE, NLL and Brier sums of predicted class probabilities against the true class indices.

    Arguments:
        probabilities: (n, k) rows summing to 1.
        y_true: (n,) true class indices into the columns.
        bins: equal-width top-probability bins for ECE and the reliability diagram.

    The predicted class is the argmax (ties: the first), as everywhere else in emofusion. A
    probability of 0 for the true class is clipped to 1e-12 in the NLL, so one such row costs 27.6
    instead of making the mean infinite.

    Example:
        >>> s = probability_scores([[0.9, 0.1], [0.6, 0.4]], [0, 1])
        >>> round(s.ece, 6), round(s.brier, 6)
        (35.0, 0.37)
    """
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(y_true, dtype=np.int64)
    if p.ndim != 2 or len(p) == 0 or y.shape != (len(p),):
        raise ConfigError(f"probability scores need (n, k) probabilities and n labels, got {p.shape} and {y.shape}")
    if not np.isfinite(p).all() or (p < 0).any() or not np.allclose(p.sum(axis=1), 1.0, atol=1e-3):
        raise ConfigError("probabilities must be finite, non-negative and sum to 1 in each row")
    if y.min() < 0 or y.max() >= p.shape[1]:
        raise ConfigError(f"true class indices must lie in 0..{p.shape[1] - 1}")
    top = p.max(axis=1)
    correct = p.argmax(axis=1) == y
    which = np.minimum((top * bins).astype(np.int64), bins - 1)  # 1.0 falls in the last bin
    onehot = np.zeros_like(p)
    onehot[np.arange(len(y)), y] = 1.0
    return ProbabilityScores(
        bin_count=np.bincount(which, minlength=bins).astype(np.int64),
        bin_confidence=np.bincount(which, weights=top, minlength=bins),
        bin_correct=np.bincount(which, weights=correct, minlength=bins).astype(np.int64),
        nll_sum=float(-np.log(np.clip(p[np.arange(len(y)), y], 1e-12, None)).sum()),
        brier_sum=float(((p - onehot) ** 2).sum()),
    )
