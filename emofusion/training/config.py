"""Training hyper-parameters. The paper gives epochs and batch size; the rest are our choices."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from emofusion.errors import ConfigError


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
    # bf16 autocast on CPU roughly halves step time for the LSTMs; off gives exact fp32 training.
    bf16: bool = True
    # Group utterances of similar length into batches so padding (and wasted LSTM steps) is small.
    bucket_by_length: bool = True

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown training options {sorted(unknown)}; known: {sorted(known)}")
        cfg = cls(**d)
        if cfg.epochs < 1 or cfg.batch_size < 1 or cfg.learning_rate <= 0 or cfg.l2_lambda < 0:
            raise ConfigError(f"invalid training config {cfg}")
        return cfg
