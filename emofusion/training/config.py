"""Training hyper-parameters. The paper gives epochs and batch size; the rest are our choices."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from emofusion.errors import ConfigError
from emofusion.precision import PRECISIONS

# TrainConfig.balance's values (emofusion.training.balance says what each does).
BALANCE_CHOICES: tuple[str, ...] = ("auto", "corpus_class", "none")


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
    # Which rows an epoch visits (emofusion.training.balance): "auto" gives every corpus, and every
    # class within a corpus, an equal share of each epoch when the rows span two corpora or more
    # (TESS's 1,600 clips would otherwise outweigh RAVDESS's 560 almost 3:1) and shuffles plainly
    # for one corpus, as every run did before; "corpus_class" always balances, "none" never.
    balance: str = "auto"
    # Waveform augmentation of the training speech: the name of a configuration in
    # emofusion.features.augment.AUGMENT_CONFIGS ("default": noise, babble, reverberation, telephone
    # band, gain, speed), or None for the clean clips only, as every run did before.
    augment: str | None = None
    # Augmented views per clip for a frozen-encoder model: re-encoding every clip every epoch is
    # too slow on a CPU (benchmarks/bench_augment.py), so K views are encoded once and cached and an
    # epoch draws one of them or the clean clip; acoustic models augment afresh every epoch instead.
    augment_views: int = 4

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
        if self.balance not in BALANCE_CHOICES:
            raise ConfigError(f"training balance must be one of {', '.join(BALANCE_CHOICES)}, got {self.balance!r}")
        if self.augment is not None:
            from emofusion.features.augment import augment_config

            augment_config(self.augment)  # an unknown name is a ConfigError naming the known ones
        if isinstance(self.augment_views, bool) or not isinstance(self.augment_views, int) or self.augment_views < 1:
            raise ConfigError(f"training augment_views must be a positive integer, got {self.augment_views!r}")

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
