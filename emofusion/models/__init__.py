"""The paper's eleven Table-1 models (SPEC §5): speech, text and feature-level fusion classifiers,
and the models on frozen pretrained encoders beside them (``ENCODER_MODEL_NAMES``)."""

from emofusion.models.classifier import EmotionClassifier
from emofusion.models.config import HeadConfig, ModelConfig
from emofusion.models.registry import (
    ALL_MODEL_NAMES,
    ENCODER_MODEL_NAMES,
    MODEL_NAMES,
    MODEL_SPECS,
    build_model,
    canonical_name,
    encoder_model,
    encoder_model_name,
    ModelSpec,
    modalities_of,
    model_summary,
    speech_feature,
    text_feature,
)

__all__ = [
    "ALL_MODEL_NAMES",
    "ENCODER_MODEL_NAMES",
    "MODEL_NAMES",
    "MODEL_SPECS",
    "EmotionClassifier",
    "HeadConfig",
    "ModelConfig",
    "ModelSpec",
    "build_model",
    "canonical_name",
    "encoder_model",
    "encoder_model_name",
    "modalities_of",
    "model_summary",
    "speech_feature",
    "text_feature",
]
