"""Utterances -> model inputs: the fitted state a trained model carries with it.

A `FeaturePipeline` is fitted on the training split only (feature means/stds, the text
vocabulary) and saved with the model, so evaluation and prediction transform data exactly as
training did.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from emofusion.errors import ConfigError
from emofusion.features.acoustic import AcousticConfig, fit_frames
from emofusion.features.vocabulary import TextConfig, Vocabulary
from emofusion.features.word_vectors import WordVectors

# Features with (near) zero variance in training (e.g. a chroma bin that never fires) keep std 1,
# so standardising them does not blow up noise.
MIN_STD = 1e-8


@dataclass
class SpeechInputs:
    frames: np.ndarray  # (n, max_frames, feature_dim) float32, standardised, zero after each length
    lengths: np.ndarray  # (n,) int64


class FeaturePipeline:
    """Acoustic standardisation + text encoding, for the modalities a model uses."""

    def __init__(
        self,
        modalities: frozenset[str],
        acoustic: AcousticConfig | None = None,
        mean: np.ndarray | None = None,
        std: np.ndarray | None = None,
        vocabulary: Vocabulary | None = None,
    ):
        self.modalities = frozenset(modalities)
        self.acoustic = acoustic
        self.mean = mean
        self.std = std
        self.vocabulary = vocabulary

    @property
    def uses_speech(self) -> bool:
        return "speech" in self.modalities

    @property
    def uses_text(self) -> bool:
        return "text" in self.modalities

    @property
    def speech_shape(self) -> tuple[int, int] | None:
        """(max_frames, feature_dim) of the speech inputs this pipeline produces; None without speech."""
        return self.acoustic.input_shape if self.acoustic is not None else None

    @classmethod
    def fit(
        cls,
        modalities: frozenset[str],
        *,
        train_frames: list[np.ndarray] | None = None,
        train_texts: list[str] | None = None,
        acoustic: AcousticConfig | None = None,
        text_config: TextConfig | None = None,
        vectors: WordVectors | None = None,
    ) -> "FeaturePipeline":
        """Fit on training data only: per-feature mean/std over the frames the model sees."""
        pipeline = cls(modalities)
        if pipeline.uses_speech:
            if not train_frames:
                raise ConfigError("a speech model needs training audio")
            pipeline.acoustic = acoustic or AcousticConfig()
            kept = [fit_frames(f, pipeline.acoustic) for f in train_frames]
            stacked = np.concatenate([a[:n] for a, n in kept]).astype(np.float64)
            pipeline.mean = stacked.mean(axis=0)
            std = stacked.std(axis=0)
            pipeline.std = np.where(std < MIN_STD, 1.0, std)
        if pipeline.uses_text:
            if not train_texts:
                raise ConfigError("a text model needs training transcripts")
            config = text_config or TextConfig()
            pipeline.vocabulary = Vocabulary.build(
                train_texts, vectors or WordVectors.load(config.vectors), config
            )
        return pipeline

    def speech_inputs(self, frames: list[np.ndarray]) -> SpeechInputs:
        """Cut/pad each utterance's frames to max_frames and standardise the real ones."""
        assert self.acoustic is not None and self.mean is not None
        out = np.zeros((len(frames), *self.acoustic.input_shape), dtype=np.float32)
        lengths = np.zeros(len(frames), dtype=np.int64)
        for i, f in enumerate(frames):
            fitted, length = fit_frames(f, self.acoustic)
            out[i, :length] = (fitted[:length] - self.mean) / self.std
            lengths[i] = length
        return SpeechInputs(out, lengths)

    def text_inputs(self, texts: list[str]) -> list[np.ndarray]:
        assert self.vocabulary is not None
        return self.vocabulary.encode_many(texts)

    # --- persistence: plain JSON-able state; the embedding table travels in the model weights
    def state(self) -> dict:
        return {
            "modalities": sorted(self.modalities),
            "acoustic": self.acoustic.to_dict() if self.acoustic else None,
            "mean": self.mean.tolist() if self.mean is not None else None,
            "std": self.std.tolist() if self.std is not None else None,
            "text": self.vocabulary.state() if self.vocabulary else None,
        }

    @classmethod
    def from_state(cls, state: dict, embedding_matrix: np.ndarray | None = None) -> "FeaturePipeline":
        pipeline = cls(frozenset(state["modalities"]))
        if state.get("acoustic"):
            pipeline.acoustic = AcousticConfig.from_dict(state["acoustic"])
            pipeline.mean = np.asarray(state["mean"], dtype=np.float64)
            pipeline.std = np.asarray(state["std"], dtype=np.float64)
        if state.get("text"):
            if embedding_matrix is None:
                raise ConfigError("a text model's pipeline needs its embedding table to load")
            pipeline.vocabulary = Vocabulary.from_state(state["text"], {"embedding": embedding_matrix})
        return pipeline
