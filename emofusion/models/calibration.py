"""A classifier's calibration: the temperature its logits are divided by before the softmax, and
the top probability from which a prediction counts as confident.

It lives in the models layer because every layer that turns logits into probabilities reads it:
scoring and the recognizer (inference), the ONNX exporter (which puts the division into the graph),
and the experiments that fit it. The fact itself lives in a run folder's ``model.json`` under
``"calibration"``; `Calibration.from_meta` is the one reader. A model without that key has
temperature 1 and no threshold, so it predicts exactly as before calibration existed, and its
predictions say nothing about confidence (``confident`` is None).

Fitting (`fit_temperature`, `choose_threshold`) is plain numerics on held-out validation logits;
who holds out what is decided in `emofusion.experiments.calibrate`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from emofusion.errors import ConfigError

META_KEY = "calibration"
METHODS = ("temperature",)
# Temperatures searched: a model 20x too sharp or too soft is beyond what scaling should repair.
TEMPERATURE_RANGE = (0.05, 20.0)
# The threshold rule (`choose_threshold`): a prediction marked confident is wrong at most 1 time in 5
# on validation.
TARGET_ACCURACY = 0.8


@dataclass(frozen=True)
class Calibration:
    """How a model's logits become probabilities, and when a prediction is confident.

    Arguments:
        method: "temperature", or "none" for a model without calibration.
        temperature: logits are divided by it (1: unchanged, bit for bit).
        confidence_threshold: a prediction whose top probability is at least this is confident;
            None where none was chosen (then `confident` answers None).
        record: the rest of model.json's block (what it was fitted on, validation figures).
    """

    method: str = "none"
    temperature: float = 1.0
    confidence_threshold: float | None = None
    record: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.method not in ("none", *METHODS):
            raise ConfigError(f"calibration method must be one of {', '.join(METHODS)}, got {self.method!r}")
        t = self.temperature
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t <= 0:
            raise ConfigError(f"calibration temperature must be a finite number > 0, got {t!r}")
        c = self.confidence_threshold
        if c is not None and (isinstance(c, bool) or not isinstance(c, (int, float)) or not 0 < c <= 1):
            raise ConfigError(f"calibration confidence_threshold must be in (0, 1], got {c!r}")

    @classmethod
    def from_meta(cls, meta: dict, where: str = "model.json") -> "Calibration":
        """The calibration of a model from its model.json (or ONNX metadata); none if it has no key."""
        block = meta.get(META_KEY)
        if block is None:
            return cls()
        if not isinstance(block, dict):
            raise ConfigError(f"{where}: {META_KEY} must be an object, got {type(block).__name__}")
        try:
            return cls(
                method=block.get("method", "temperature"),
                temperature=block.get("temperature", 1.0),
                confidence_threshold=block.get("confidence_threshold"),
                record={k: v for k, v in block.items() if k not in ("method", "temperature", "confidence_threshold")},
            )
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None

    def to_meta(self) -> dict:
        return {"method": self.method, "temperature": float(self.temperature),
                "confidence_threshold": self.confidence_threshold, **self.record}

    @property
    def identity(self) -> bool:
        return self.temperature == 1.0

    def scale(self, logits: torch.Tensor) -> torch.Tensor:
        """``logits / temperature`` (the tensor itself at temperature 1)."""
        return logits if self.identity else logits / self.temperature

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Calibrated class probabilities (float32) from a model's logits."""
        return torch.softmax(self.scale(logits.float()), dim=-1)

    def confident(self, top_probability: float) -> bool | None:
        """Whether a prediction with this top probability is confident; None without a threshold."""
        if self.confidence_threshold is None:
            return None
        return bool(top_probability >= self.confidence_threshold)


def _nll(logits: np.ndarray, targets: np.ndarray, temperature: float) -> float:
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(axis=1))
    return float((log_norm - z[np.arange(len(z)), targets]).mean())


def fit_temperature(logits: np.ndarray, targets: np.ndarray) -> float:
    """The temperature minimising the mean negative log-likelihood of ``targets`` under
    softmax(logits / T), searched over `TEMPERATURE_RANGE` (golden section on log T).

    The NLL is convex in 1/T, so it has one minimum along log T and the search finds it (to 1e-6
    in log T) without gradients or a random start: the same logits always give the same T.

    Arguments:
        logits: (n, k) validation logits (log-probabilities are as good: a per-row shift changes nothing).
        targets: (n,) true class indices.

    Returns:
        T (a value at the range's edge if the minimum lies beyond it).
    """
    logits = np.asarray(logits, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.int64)
    if logits.ndim != 2 or len(logits) == 0 or targets.shape != (len(logits),):
        raise ConfigError(f"fit_temperature needs (n, k) logits and n targets, got {logits.shape} and {targets.shape}")
    if not np.isfinite(logits).all():
        raise ConfigError("fit_temperature: the validation logits contain NaN or infinite values")
    if targets.min() < 0 or targets.max() >= logits.shape[1]:
        raise ConfigError(f"fit_temperature: targets must be class indices 0..{logits.shape[1] - 1}")
    lo, hi = math.log(TEMPERATURE_RANGE[0]), math.log(TEMPERATURE_RANGE[1])
    ratio = (math.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = _nll(logits, targets, math.exp(a)), _nll(logits, targets, math.exp(b))
    while hi - lo > 1e-6:
        if fa <= fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = _nll(logits, targets, math.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = _nll(logits, targets, math.exp(b))
    return math.exp((lo + hi) / 2)


def choose_threshold(top_probability: np.ndarray, correct: np.ndarray, target: float = TARGET_ACCURACY) -> float:
    """The smallest validation top probability t such that the predictions with top probability
    >= t are right at least ``target`` of the time (so with the default, a prediction marked
    confident was wrong at most 1 time in 5 on validation).

    Returns 1.0 when no such t exists (the model never reached the target: practically nothing is
    confident).
    """
    top = np.asarray(top_probability, dtype=np.float64)
    right = np.asarray(correct, dtype=bool)
    if top.shape != right.shape or top.ndim != 1:
        raise ConfigError(f"choose_threshold needs two equal 1-D arrays, got {top.shape} and {right.shape}")
    order = np.argsort(-top, kind="stable")
    top, right = top[order], right[order]
    # accuracy of the k most confident predictions, k = 1..n; only the last of tied values is a cut
    accuracy = np.cumsum(right) / np.arange(1, len(top) + 1)
    cut = np.append(top[1:] != top[:-1], True)
    reached = np.flatnonzero(cut & (accuracy >= target))
    if reached.size == 0:
        return 1.0
    return float(top[reached.max()])
