"""Training hyper-parameters. The paper gives epochs and batch size; the rest are our choices."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from emofusion.errors import ConfigError
from emofusion.precision import PRECISIONS


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 20  # paper
    batch_size: int = 64  # paper
    # Adam at 1e-3: the default that trains LSTMs and small CNNs reliably without tuning.
    learning_rate: float = 1e-3
    # Strength of R(w) = sum(w^2) added to the loss of the *-BLR models. Sum (not mean) over ~10^6
    # weights makes R ~ 10^2..10^3, so 1e-4 gives a penalty of the order of the cross-entropy.
    l2_lambda: float = 1e-4
    # Clip gradient norm: LSTMs over 100 frames occasionally spike early in training.
    grad_clip: float = 5.0
    # Fixed epochs, no early stopping: model selection never looks at any held-out data.
    # "auto": bf16 autocast where the device computes bf16 natively (roughly halves LSTM step time),
    # fp32 elsewhere; "bf16" insists (an error where it does not run); "fp32" is exact. See
    # emofusion.precision.
    precision: str = "auto"
    # Group utterances of similar length into batches so padding (and wasted LSTM steps) is small.
    bucket_by_length: bool = True

    def to_dict(self) -> dict:
        return asdict(self)

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"training {name} must be a positive integer, got {value!r}")
        for name, lowest, inclusive in (("learning_rate", 0.0, False), ("l2_lambda", 0.0, True), ("grad_clip", 0.0, True)):
            value = getattr(self, name)
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            if not ok or value < lowest or (value == lowest and not inclusive):
                relation = ">=" if inclusive else ">"
                raise ConfigError(f"training {name} must be a finite number {relation} {lowest:g}, got {value!r}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"training precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if not isinstance(self.bucket_by_length, bool):
            raise ConfigError(f"training bucket_by_length must be true or false, got {self.bucket_by_length!r}")

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        d = dict(d)
        if "bf16" in d and "precision" not in d:
            # Run folders written before `precision` existed recorded a bf16 switch.
            d["precision"] = "bf16" if d.pop("bf16") else "fp32"
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown training options {sorted(unknown)}; known: {sorted(known)}")
        return cls(**d)
