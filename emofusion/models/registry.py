"""The paper's eleven Table-1 models by name, and the models on frozen encoders beside them: build any of them with one call.

Names are canonical with hyphens in Table-1 order; ``s_cbla``, ``S_CBLA`` and ``m-cbla-blr`` are
accepted too, since the paper itself writes them with underscores. ``MODEL_NAMES`` is the paper's
Table 1 (the reproduction); ``ENCODER_MODEL_NAMES`` are the models on frozen pretrained encoders,
named from their encoders' keys (:func:`encoder_model_name`: ``S-WT``, ``T-ST``, ``M-WT-ST``,
``M-CBLA-ST``, ``S-WB``, ...). A branch key that is not one of the paper's networks
(``SPEECH_ENCODERS`` / ``TEXT_ENCODERS``) is the key of a frozen encoder's entry in
``emofusion.features.encoders.registry.ENCODERS`` (the features layer, which gives its width to the
pipeline): its speech branch pools the encoder's frames (:class:`PooledFramesEncoder`), its text
branch reads the encoder's vector (:class:`SentenceVectorEncoder`). tests/models/test_model_registry.py
checks that every such key is an entry of the right modality.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from emofusion.errors import ConfigError
from emofusion.models.classifier import EmotionClassifier, UnimodalClassifier
from emofusion.models.config import HeadConfig, ModelConfig
from emofusion.models.fusion import FusionClassifier
from emofusion.models.pretrained import PooledFramesEncoder, SentenceVectorEncoder
from emofusion.models.speech import SPEECH_ENCODERS
from emofusion.models.text import TEXT_ENCODERS


@dataclass(frozen=True)
class ModelSpec:
    """Which encoders a model combines, whether its loss carries R(w), and whether the loss weighs
    classes by inverse frequency."""

    speech: str | None  # key of SPEECH_ENCODERS (the paper's networks), or a speech encoder's ENCODERS key
    text: str | None  # key of TEXT_ENCODERS (the paper's networks), or a text encoder's ENCODERS key
    uses_l2: bool = False
    # Class-weighted cross-entropy (weights n / (k * n_c) from the training labels). Off for Table 1
    # (the paper does not weight); on for the encoder models: on MELD (57% neutral) it lifted a
    # sentence-vector head's validation UA from 45 to 53 (docs/results/encoders/).
    balanced_loss: bool = False
    # How the head trains where validation chose otherwise than the run's configs (encoder models
    # only; the Table-1 models have None and train exactly as ModelConfig / TrainConfig say).
    head: HeadConfig | None = None

    @property
    def modalities(self) -> frozenset[str]:
        """The inputs the model reads: 'speech' and/or 'text'."""
        return frozenset(m for m, encoder in (("speech", self.speech), ("text", self.text)) if encoder)


    @property
    def frozen_encoders(self) -> tuple[str, ...]:
        """The keys of the frozen pretrained encoders it reads (registry entries), speech first."""
        return tuple(k for k in (self.speech, self.text) if k is not None and is_frozen_encoder(k))


def is_frozen_encoder(key: str) -> bool:
    """True for a branch key that names a frozen encoder's entry, not one of the paper's networks."""
    return key not in SPEECH_ENCODERS and key not in TEXT_ENCODERS


def encoder_model_name(speech: str | None, text: str | None) -> str:
    """A model's name from its branches' keys: ``S-<SPEECH>``, ``T-<TEXT>`` or ``M-<SPEECH>-<TEXT>``."""
    if speech and text:
        return f"M-{speech.upper()}-{text.upper()}"
    if speech or text:
        return f"{'S' if speech else 'T'}-{(speech or text).upper()}"
    raise ConfigError("a model reads speech, text or both: give at least one branch key")


def encoder_model(speech: str | None, text: str | None, **options) -> tuple[str, ModelSpec]:
    """``(name, spec)`` of a model on frozen encoders, named from its keys (balanced loss, validated head)."""
    options = {"balanced_loss": True, "head": HeadConfig(), **options}
    return encoder_model_name(speech, text), ModelSpec(speech, text, **options)


MODEL_SPECS: dict[str, ModelSpec] = {
    "S-DNN": ModelSpec("dnn", None),
    "S-CNN": ModelSpec("cnn", None),
    "S-CL": ModelSpec("cl", None),
    "S-CBLA": ModelSpec("cbla", None),
    "T-LSTM": ModelSpec(None, "lstm"),
    "T-BL": ModelSpec(None, "bl"),
    "M-D-BL": ModelSpec("dnn", "bl"),
    "M-CL-BL": ModelSpec("cl", "bl"),
    "M-CL-BLR": ModelSpec("cl", "bl", uses_l2=True),
    "M-CBLA-BL": ModelSpec("cbla", "bl"),
    "M-CBLA-BLR": ModelSpec("cbla", "bl", uses_l2=True),
}
MODEL_NAMES: tuple[str, ...] = tuple(MODEL_SPECS)  # Table 1, exactly the paper's eleven

ENCODER_MODEL_SPECS: dict[str, ModelSpec] = dict(
    (
        encoder_model(None, "st"),
        encoder_model("wt", None),
        encoder_model("wt", "st"),
        encoder_model("cbla", "st"),
        # Whisper tiny.en's middle layer and Whisper base (PyTorch encoder; layers in the encoder registry).
        encoder_model("wt2", None),
        encoder_model("wt2", "st"),
        encoder_model("wb", None),
        encoder_model("wb", "st"),
        # wt2's frames pooled over the voiced ones only (docs/results/encoders/voiced.md).
        encoder_model("wtv", None),
        encoder_model("wtv", "st"),
    )
)
ENCODER_MODEL_NAMES: tuple[str, ...] = tuple(ENCODER_MODEL_SPECS)
MODEL_SPECS.update(ENCODER_MODEL_SPECS)
ALL_MODEL_NAMES: tuple[str, ...] = MODEL_NAMES + ENCODER_MODEL_NAMES


def speech_feature(name: str) -> str | None:
    """What a model's speech branch reads: "acoustic" (the 34 features), a speech encoder's key ("wt"), or None."""
    spec = MODEL_SPECS[canonical_name(name)]
    if spec.speech is None:
        return None
    return spec.speech if is_frozen_encoder(spec.speech) else "acoustic"


def text_feature(name: str) -> str | None:
    """What a model's text branch reads: "words" (word ids into GloVe), a text encoder's key ("st"), or None."""
    spec = MODEL_SPECS[canonical_name(name)]
    if spec.text is None:
        return None
    return spec.text if is_frozen_encoder(spec.text) else "words"


def canonical_name(name: str) -> str:
    """'s_cbla' -> 'S-CBLA'; raises ConfigError listing the valid names for anything else."""
    key = str(name).strip().upper().replace("_", "-")
    if key not in MODEL_SPECS:
        raise ConfigError(f"unknown model {name!r}; valid models: {', '.join(ALL_MODEL_NAMES)}")
    return key


def modalities_of(name: str) -> frozenset[str]:
    """The inputs a model reads, from its spec: modalities_of("m_cbla_blr") == {'speech', 'text'}."""
    return MODEL_SPECS[canonical_name(name)].modalities


def build_model(
    name: str,
    *,
    n_classes: int,
    speech_shape: tuple[int, int] | None = None,
    embeddings: torch.Tensor | tuple[int, int] | None = None,
    text_vector_dim: int | None = None,
    config: ModelConfig | None = None,
) -> EmotionClassifier:
    """Build a freshly initialised Table-1 or encoder model.

    Arguments:
        name: a Table-1 or encoder-model name (any case, '-' or '_').
        n_classes: size of the output layer.
        speech_shape: (max_frames, features per frame) of one utterance's acoustic input; required
            by speech and fusion models. It comes from the feature pipeline
            (`AcousticConfig.input_shape`), never from a default here, so a model and the inputs it
            is fed cannot disagree (S-DNN's input layer is max_frames x features wide).
        embeddings: the (V, D) frozen word-vector table, row 0 = padding; required by text and
            fusion models. A (V, D) shape builds a zero placeholder, for loading a saved state_dict
            (which carries the table).
        text_vector_dim: width of the vectors a model on a text encoder (T-ST, M-*-ST) reads (from
            the pipeline, like speech_shape).
        config: architecture; defaults to ``ModelConfig()``.

    Raises:
        ConfigError: unknown name, bad sizes, a speech model without speech_shape or a text model
            without embeddings.

    Example:
        >>> m = build_model("s_cnn", n_classes=4, speech_shape=(100, 34))
        >>> (m.name, sorted(m.modalities), m.uses_l2)
        ('S-CNN', ['speech'], False)
    """
    canonical = canonical_name(name)
    spec = MODEL_SPECS[canonical]
    config = config or ModelConfig()
    if not isinstance(config, ModelConfig):
        raise ConfigError(f"config must be a ModelConfig, got {type(config).__name__}")
    if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 2:
        raise ConfigError(f"n_classes must be an integer >= 2, got {n_classes!r}")

    speech = text = None
    if spec.speech:
        max_frames, speech_dim = _speech_shape(canonical, speech_shape)
    if spec.speech and is_frozen_encoder(spec.speech):
        speech = PooledFramesEncoder(speech_dim)
    elif spec.speech:
        speech = SPEECH_ENCODERS[spec.speech](speech_dim, max_frames, config)
    if spec.text and is_frozen_encoder(spec.text):
        if isinstance(text_vector_dim, bool) or not isinstance(text_vector_dim, int) or text_vector_dim < 1:
            raise ConfigError(f"{canonical} reads sentence vectors: pass text_vector_dim= (a positive int), got {text_vector_dim!r}")
        text = SentenceVectorEncoder(text_vector_dim)
    elif spec.text:
        text = TEXT_ENCODERS[spec.text](_embedding_table(canonical, embeddings), config.text_lstm_hidden)

    if speech is not None and text is not None:
        return FusionClassifier(
            canonical, speech, text, n_classes, config.fusion_hidden, config.dropout, uses_l2=spec.uses_l2
        )
    return UnimodalClassifier(canonical, speech if speech is not None else text, n_classes, config.dropout)


def _speech_shape(name: str, shape) -> tuple[int, int]:
    if shape is None:
        raise ConfigError(f"{name} reads speech: pass speech_shape=(max_frames, features per frame)")
    if (
        not isinstance(shape, (tuple, list))
        or len(shape) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in shape)
    ):
        raise ConfigError(f"speech_shape must be (max_frames, features) positive ints, got {shape!r}")
    return int(shape[0]), int(shape[1])


def _embedding_table(name: str, embeddings) -> torch.Tensor:
    if embeddings is None:
        raise ConfigError(f"{name} reads text: pass embeddings=, the (vocab, dim) word-vector table")
    if isinstance(embeddings, (tuple, list)):
        if len(embeddings) != 2 or not all(isinstance(v, int) and v >= 1 for v in embeddings):
            raise ConfigError(f"an embeddings shape must be (vocab, dim) positive ints, got {embeddings!r}")
        embeddings = torch.zeros(*embeddings)
    if not isinstance(embeddings, torch.Tensor) or embeddings.dim() != 2 or embeddings.shape[0] < 2:
        shape = tuple(embeddings.shape) if isinstance(embeddings, torch.Tensor) else type(embeddings).__name__
        raise ConfigError(f"embeddings must be a (vocab >= 2, dim) tensor, got {shape}")
    if not embeddings.is_floating_point() or not torch.isfinite(embeddings).all():
        raise ConfigError("embeddings must be a finite floating-point tensor")
    return embeddings


def model_summary(model: nn.Module) -> str:
    """Parameter counts per top-level block: trainable, frozen (word vectors) and in R(w)."""
    l2_ids = {id(p) for _, p in model.l2_parameters()} if isinstance(model, EmotionClassifier) else set()
    rows = []
    for block_name, block in model.named_children():
        if block is None:
            continue
        params = list(block.parameters())
        trainable = sum(p.numel() for p in params if p.requires_grad)
        frozen = sum(p.numel() for p in params if not p.requires_grad)
        in_l2 = sum(p.numel() for p in params if id(p) in l2_ids)
        rows.append((f"{block_name} ({type(block).__name__})", trainable, frozen, in_l2))
    rows.append(("total", *(sum(r[i] for r in rows) for i in (1, 2, 3))))
    title = getattr(model, "name", type(model).__name__)
    width = max(len(r[0]) for r in rows)
    lines = [f"{title}", f"{'block':<{width}}  {'trainable':>10}  {'frozen':>10}  {'in R(w)':>10}"]
    lines += [f"{r[0]:<{width}}  {r[1]:>10,}  {r[2]:>10,}  {r[3]:>10,}" for r in rows]
    return "\n".join(lines)
