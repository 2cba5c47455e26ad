"""Every architecture hyper-parameter the paper leaves open, named in one place.

The paper (SPEC §5) fixes only the layer widths it prints (S-DNN 512-256-128-32, Bi-LSTM 256,
fusion DNN 1024-512) and ReLU. Everything else is our choice; each field says why it has the value
it has, so an experiment config can override it knowingly. Optimiser settings live in
`emofusion.training.config.TrainConfig`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any

from emofusion.errors import ConfigError


def _from_dict(cls, data: dict[str, Any]):
    """Build a frozen config from a plain dict (JSON/YAML), turning lists back into tuples."""
    if not isinstance(data, dict):
        raise ConfigError(f"{cls.__name__}.from_dict expects a dict, got {type(data).__name__}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} field(s) {unknown}; valid fields: {sorted(known)}")
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return cls(**kwargs)


def _to_dict(cfg) -> dict[str, Any]:
    """Plain dict with lists instead of tuples, so it round-trips through JSON."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(cfg).items()}


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of the eleven Table-1 models (shared by unimodal and fusion variants)."""

    # --- S-DNN ---
    dnn_hidden: tuple[int, ...] = (512, 256, 128, 32)  # the paper's S-DNN widths; top (32) is S in M-D-BL
    # --- CNN channel (S-CNN, S-CL, S-CBLA channel a) ---
    cnn_filters: tuple[int, ...] = (32, 64, 96, 128)  # paper: four Conv1D layers with different filter counts
    cnn_kernels: tuple[int, ...] = (5, 5, 3, 3)  # odd ('same' padding keeps frames aligned); top sees 32 frames ~0.8 s
    cnn_pools: tuple[int, ...] = (2, 2, 1, 1)  # max-pool x4 in time early: cheap, and S-CL's LSTM then runs 25 steps
    leaky_slope: float = 0.01  # paper names Leaky ReLU for the CNN; PyTorch/Keras default slope
    cnn_dense: int = 128  # S-CNN's dense layer after global average pooling (paper gives no width)
    # --- recurrent speech layers (S-CL, S-CBLA channel b) ---
    # Paper: Bi-LSTM 256, read as 256 units per direction, as Keras' Bidirectional(LSTM(256)). The costliest
    # layer (100 raw frames in S-CBLA): fwd+bwd, batch 64, 2 CPU cores: 0.23 s at 256, 0.09 s at 128.
    speech_lstm_hidden: int = 256
    attention_dim: int = 128  # additive (Bahdanau) attention projection; half the LSTM width is the usual choice
    cbla_dense: int = 256  # dense after concat(a, b) in S-CBLA; this is S in M-CBLA-*
    # --- text ---
    text_lstm_hidden: int = 256  # paper: LSTM 256 / Bi-LSTM 256 (per direction)
    # --- heads ---
    fusion_hidden: tuple[int, ...] = (1024, 512)  # paper's fusion DNN
    dropout: float = 0.3  # before every dense layer of the heads; ~2k training utterances overfit fast

    def __post_init__(self) -> None:
        n = len(self.cnn_filters)
        if n == 0 or len(self.cnn_kernels) != n or len(self.cnn_pools) != n:
            raise ConfigError(
                f"cnn_filters, cnn_kernels, cnn_pools must be non-empty and equally long, got "
                f"{self.cnn_filters}, {self.cnn_kernels}, {self.cnn_pools}"
            )
        if any(k < 1 or k % 2 == 0 for k in self.cnn_kernels):
            raise ConfigError(f"cnn_kernels must be odd and positive ('same' padding), got {self.cnn_kernels}")
        if any(p < 1 for p in self.cnn_pools):
            raise ConfigError(f"cnn_pools must be >= 1, got {self.cnn_pools}")
        sizes = {
            "dnn_hidden": self.dnn_hidden,
            "cnn_filters": self.cnn_filters,
            "fusion_hidden": self.fusion_hidden,
            "cnn_dense": (self.cnn_dense,),
            "speech_lstm_hidden": (self.speech_lstm_hidden,),
            "attention_dim": (self.attention_dim,),
            "cbla_dense": (self.cbla_dense,),
            "text_lstm_hidden": (self.text_lstm_hidden,),
        }
        for name, values in sizes.items():
            if not values or any(not isinstance(v, int) or v < 1 for v in values):
                raise ConfigError(f"{name} must be positive integers, got {getattr(self, name)!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.leaky_slope < 0:
            raise ConfigError(f"leaky_slope must be >= 0, got {self.leaky_slope}")

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        return _from_dict(cls, data)


@dataclass(frozen=True)
class HeadConfig:
    """How an encoder model's head trains, where validation chose otherwise than the run's configs.

    Only the models on frozen pretrained encoders (``ENCODER_MODEL_NAMES``) have one, in the
    registry, with the validation figure behind each value (docs/results/encoders/); the Table-1
    models train exactly as ModelConfig and TrainConfig say. None keeps the run's value.
    """

    dropout: float | None = None  # None: ModelConfig.dropout
    # L2 on the head's weight matrices (Adam's coupled weight_decay = the gradient of
    # weight_decay/2 * sum w^2; biases not decayed): a logistic regression on the same pooled
    # vectors preferred strong L2, which 20 epochs of Adam at 1e-3 alone do not give.
    weight_decay: float = 0.0
    epochs: int | None = None  # None: TrainConfig.epochs

    def __post_init__(self) -> None:
        if self.dropout is not None and not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"head dropout must be in [0, 1), got {self.dropout}")
        if isinstance(self.weight_decay, bool) or not isinstance(self.weight_decay, (int, float)) or not self.weight_decay >= 0:
            raise ConfigError(f"head weight_decay must be a number >= 0, got {self.weight_decay!r}")
        if self.epochs is not None and (isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 1):
            raise ConfigError(f"head epochs must be a positive integer, got {self.epochs!r}")

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "HeadConfig":
        return _from_dict(cls, data)
