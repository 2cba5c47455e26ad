"""The paper's eleven Table-1 models (SPEC §5): speech, text and feature-level fusion classifiers."""

from emofusion.models.classifier import EmotionClassifier
from emofusion.models.config import ModelConfig
from emofusion.models.registry import (
    MODEL_NAMES, MODEL_SPECS, ModelSpec, build_model, canonical_name, modalities_of, model_summary,
)

__all__ = [
    "MODEL_NAMES",
    "MODEL_SPECS",
    "EmotionClassifier",
    "ModelConfig",
    "ModelSpec",
    "build_model",
    "canonical_name",
    "modalities_of",
    "model_summary",
]
