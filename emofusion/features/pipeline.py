"""Utterances -> model inputs: the fitted state a trained model carries with it.

A `FeaturePipeline` is fitted on the training split only (feature means/stds, the text
vocabulary) and saved with the model, so evaluation and prediction transform data exactly as
training did.

What each modality reads is the pipeline's ``speech_kind`` / ``text_kind``: the paper's 34 acoustic
features and GloVe word ids (``"acoustic"``, ``"words"``), or the key of a frozen pretrained
encoder's entry in :data:`emofusion.features.encoders.registry.ENCODERS` (``"wt"`` frames, ``"st"``
vectors, ...), whose entry gives the width, window and normalisation. Models saved before the
registry say ``"whisper"`` / ``"sentence"``: read as ``"wt"`` / ``"st"``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from emofusion.errors import ConfigError
from emofusion.features.acoustic import AcousticConfig, fit_frames
from emofusion.features.encoders.registry import LEGACY_KINDS, WHISPER_WINDOW_FRAMES, EncoderSpec, encoder, load_encoder
from emofusion.features.vocabulary import TextConfig, Vocabulary
from emofusion.features.word_vectors import WordVectors

# Features with (near) zero variance in training (e.g. a chroma bin that never fires) keep std 1,
# so standardising them does not blow up noise.
MIN_STD = 1e-8
# Most frames per utterance a model may be configured to see: ten minutes, the longest recording
# prediction accepts, at a 25-ms step. A config (or a tampered model.json) asking for more would
# only ask for memory: 10^8 frames is 13.6 GB per utterance.
MAX_FRAMES_LIMIT = 24_000


def check_max_frames(config: AcousticConfig, what: str) -> None:
    """Refuse a ``max_frames`` beyond MAX_FRAMES_LIMIT before anything is allocated for it."""
    if config.max_frames > MAX_FRAMES_LIMIT:
        raise ConfigError(
            f"{what}: max_frames {config.max_frames:,} is above the limit of {MAX_FRAMES_LIMIT:,} "
            "(ten minutes of frames at a 25-ms step)"
        )

# The kinds that need no pretrained encoder; any other kind is an ENCODERS key of that modality.
SPEECH_KINDS = ("acoustic",)
TEXT_KINDS = ("words",)
# Whisper frames a model sees at most per window: its 30-s input window (1,500 frames of 20 ms).
WHISPER_MAX_FRAMES = WHISPER_WINDOW_FRAMES
# Per-frame / per-window normalisation: a constant frame or dimension (or a one-frame window) becomes
# zeros instead of 0/0. 1e-5 is the epsilon recipes/encoders/validation/layers.py measured "utt" with.
UTTERANCE_STD_FLOOR = 1e-5


@dataclass
class SpeechInputs:
    frames: np.ndarray  # (n, longest kept <= max_frames, feature_dim) float32, standardised, zero after each length
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
        *,
        speech_kind: str = "acoustic",
        text_kind: str = "words",
    ):
        speech_kind, text_kind = LEGACY_KINDS.get(speech_kind, speech_kind), LEGACY_KINDS.get(text_kind, text_kind)
        self.speech_encoder: EncoderSpec | None = None if speech_kind in SPEECH_KINDS else _entry(speech_kind, "speech")
        self.text_encoder: EncoderSpec | None = None if text_kind in TEXT_KINDS else _entry(text_kind, "text")
        self.modalities = frozenset(modalities)
        self.acoustic = acoustic
        self.mean = mean
        self.std = std
        self.vocabulary = vocabulary
        self.speech_kind = speech_kind
        self.text_kind = text_kind

    @property
    def uses_speech(self) -> bool:
        return "speech" in self.modalities

    @property
    def uses_text(self) -> bool:
        return "text" in self.modalities

    @property
    def speech_shape(self) -> tuple[int, int] | None:
        """(max_frames, feature_dim) of the speech inputs this pipeline produces; None without speech."""
        if self.uses_speech and self.speech_encoder is not None:
            return (self.speech_encoder.window_frames, self.speech_encoder.dim)
        return self.acoustic.input_shape if self.acoustic is not None else None

    @property
    def text_vector_dim(self) -> int | None:
        """Width of the vectors a pipeline on a text encoder produces; None otherwise."""
        return self.text_encoder.dim if self.uses_text and self.text_encoder is not None else None

    @property
    def encoders(self) -> tuple[EncoderSpec, ...]:
        """The registry entries of the frozen encoders this pipeline runs (speech first)."""
        used = [(self.uses_speech, self.speech_encoder), (self.uses_text, self.text_encoder)]
        return tuple(spec for uses, spec in used if uses and spec is not None)

    @property
    def pretrained_encoders(self) -> tuple[str, ...]:
        """Frozen pretrained encoders this pipeline runs, as reports name them (empty for the Table-1 models)."""
        return tuple(spec.label for spec in self.encoders)

    @property
    def max_frames(self) -> int:
        """Frames per window the model sees (the acoustic config's, or the encoder's window, Whisper's 30 s)."""
        shape = self.speech_shape
        assert shape is not None
        return shape[0]

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
        speech_kind: str = "acoustic",
        text_kind: str = "words",
    ) -> "FeaturePipeline":
        """Fit on training data only: per-feature mean/std over the frames the model sees."""
        pipeline = cls(modalities, speech_kind=speech_kind, text_kind=text_kind)
        if pipeline.uses_speech:
            if not train_frames:
                raise ConfigError("a speech model needs training audio")
            if pipeline.speech_encoder is None:  # an encoder's frames come from its own front end
                pipeline.acoustic = acoustic or AcousticConfig()
                check_max_frames(pipeline.acoustic, "acoustic config")
            kept = [pipeline._fit(f) for f in train_frames]
            stacked = np.concatenate([a[:n] for a, n in kept]).astype(np.float64)
            pipeline.mean = stacked.mean(axis=0)
            std = stacked.std(axis=0)
            pipeline.std = np.where(std < MIN_STD, 1.0, std)
            if not (np.isfinite(pipeline.mean).all() and np.isfinite(pipeline.std).all()):
                raise ConfigError("the training frames contain NaN or infinite values; their features cannot be standardised")
        if pipeline.uses_text and pipeline.text_encoder is not None:
            return pipeline  # a text encoder's vectors are used as it gives them: nothing to fit
        if pipeline.uses_text:
            if not train_texts:
                raise ConfigError("a text model needs training transcripts")
            config = text_config or TextConfig()
            pipeline.vocabulary = Vocabulary.build(
                train_texts, vectors or WordVectors.load(config.vectors), config
            )
        return pipeline

    def speech_inputs(self, frames: list[np.ndarray]) -> SpeechInputs:
        """Cut each utterance's frames to max_frames, standardise them, pad to the longest kept.

        Padding goes to the longest utterance kept, not to max_frames: batches are cut to their own
        longest anyway (S-DNN pads its input to max_frames itself), and a large max_frames, or
        Whisper's 1,500 frames, must not cost memory that no utterance uses.
        """
        assert self.mean is not None and self.speech_shape is not None
        fitted = [self._fit(f) for f in frames]
        _, dim = self.speech_shape
        longest = max([k for _, k in fitted], default=1)
        out = np.zeros((len(frames), max(longest, 1), dim), dtype=np.float32)
        lengths = np.zeros(len(frames), dtype=np.int64)
        for i, (kept, length) in enumerate(fitted):
            out[i, :length] = (kept[:length] - self.mean) / self.std
            lengths[i] = length
        return SpeechInputs(out, lengths)

    def _fit(self, frames: np.ndarray) -> tuple[np.ndarray, int]:
        spec = self.speech_encoder
        if spec is None:
            return fit_frames(frames, self.acoustic)
        kept = frames[: spec.window_frames]  # a window is at most 30 s; longer audio is windowed upstream
        if spec.norm != "global" and len(kept):
            kept = normalise_window(kept, spec.norm)
        return kept, len(kept)

    def text_inputs(self, texts: list[str]) -> list[np.ndarray]:
        assert self.vocabulary is not None
        return self.vocabulary.encode_many(texts)

    def text_vectors(self, texts: list[str], *, cache_root=None, progress: bool = False) -> np.ndarray:
        """Vectors (n, dim) of a pipeline on a text encoder: from the on-disk cache when
        ``cache_root`` is given (training, evaluation), else straight from the encoder (prediction),
        rounded as the cache stores them so both paths feed the model the same numbers."""
        from emofusion.features.encoders.cache import VectorCache, as_stored

        spec = self.text_encoder
        assert spec is not None
        if cache_root is not None:
            return VectorCache(spec, cache_root).get_many(texts, progress=progress)
        unique = list(dict.fromkeys(texts))  # a long recording repeats its transcript per window
        vectors = dict(zip(unique, as_stored(load_encoder(spec).embed(unique)))) if unique else {}
        return np.stack([vectors[t] for t in texts]) if texts else np.zeros((0, spec.dim), np.float32)

    def speech_frames(self, samples: np.ndarray) -> np.ndarray:
        """A speech encoder's frames of one recording (``spec.sample_rate`` samples), rounded as its
        cache stores them: prediction feeds the model the numbers training read from the cache."""
        from emofusion.features.encoders.cache import as_stored

        spec = self.speech_encoder
        assert spec is not None
        return as_stored(load_encoder(spec).frames(samples))

    # --- persistence: plain JSON-able state; the embedding table travels in the model weights
    def state(self) -> dict:
        return {
            "modalities": sorted(self.modalities),
            "speech_kind": self.speech_kind,
            "text_kind": self.text_kind,
            "acoustic": self.acoustic.to_dict() if self.acoustic else None,
            "mean": self.mean.tolist() if self.mean is not None else None,
            "std": self.std.tolist() if self.std is not None else None,
            "text": self.vocabulary.state() if self.vocabulary else None,
            # What the encoders were when the model was trained: checked against the registry on load.
            **{f"{spec.modality}_encoder": spec.identity() for spec in self.encoders},
        }

    @classmethod
    def from_state(cls, state: dict, embedding_matrix: np.ndarray | None = None) -> "FeaturePipeline":
        # Models saved before the encoder models carry no kinds: they are the paper's.
        pipeline = cls(
            frozenset(state["modalities"]),
            speech_kind=state.get("speech_kind", "acoustic"),
            text_kind=state.get("text_kind", "words"),
        )
        for spec in pipeline.encoders:  # models saved before the registry recorded none: the entries then
            recorded = state.get(f"{spec.modality}_encoder")
            if recorded is not None and recorded != spec.identity():
                raise ConfigError(
                    f"pipeline: the model was trained on encoder {recorded}, but this emofusion's entry "
                    f"{spec.key!r} is {spec.identity()}: its features would differ; use the emofusion "
                    "version the model was trained with, or retrain it"
                )
        if state.get("acoustic"):
            pipeline.acoustic = AcousticConfig.from_dict(state["acoustic"])
            check_max_frames(pipeline.acoustic, "pipeline.acoustic")
        if state.get("mean") is not None:  # speech standardisation, of acoustic or Whisper frames
            shape = pipeline.speech_shape
            if shape is None:
                raise ConfigError("pipeline: feature statistics without a speech configuration")
            pipeline.mean = _statistic(state.get("mean"), "mean", shape[1])
            pipeline.std = _statistic(state.get("std"), "std", shape[1])
            if (pipeline.std <= 0).any():
                raise ConfigError(f"pipeline.std must be positive (features are divided by it), got {pipeline.std.min():g}")
        elif pipeline.uses_speech:
            raise ConfigError("pipeline: a speech model's feature statistics (mean, std) are missing")
        if state.get("text"):
            if embedding_matrix is None:
                raise ConfigError("a text model's pipeline needs its embedding table to load")
            pipeline.vocabulary = Vocabulary.from_state(state["text"], {"embedding": embedding_matrix})
        return pipeline


def _statistic(values, name: str, size: int) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(f"pipeline.{name} must be {size} numbers") from None
    if array.shape != (size,) or not np.isfinite(array).all():
        raise ConfigError(f"pipeline.{name} must be {size} finite numbers, got shape {array.shape}")
    return array


def normalise_window(frames: np.ndarray, norm: str) -> np.ndarray:
    """One window's (T, D) frames normalised by its own statistics (``EncoderSpec.norm``, registry.NORMS).

    ``"utt"``: each frame over its dimensions, ``(f - mean) / (std + 1e-5)`` as the validation
    measured it; ``"utt-cmn"``: the window's mean over time removed per dimension; ``"utt-mvn"``:
    the window standardised over time per dimension (std floored at 1e-5).
    """
    x = np.asarray(frames, dtype=np.float64)
    if norm == "utt":
        x = (x - x.mean(axis=1, keepdims=True)) / (x.std(axis=1, keepdims=True) + UTTERANCE_STD_FLOOR)
    elif norm == "utt-cmn":
        x = x - x.mean(axis=0)
    elif norm == "utt-mvn":
        x = (x - x.mean(axis=0)) / np.maximum(x.std(axis=0), UTTERANCE_STD_FLOOR)
    elif norm != "global":
        raise ConfigError(f"unknown normalisation {norm!r}")
    return x.astype(np.float32)


def _entry(kind, modality: str) -> EncoderSpec:
    if not isinstance(kind, str):
        raise ConfigError(f"a {modality} feature kind must be a string, got {kind!r}")
    try:
        return encoder(kind, modality)
    except ConfigError as err:
        valid = SPEECH_KINDS if modality == "speech" else TEXT_KINDS
        raise ConfigError(f"unknown {modality} feature kind {kind!r}: neither {'/'.join(valid)} nor a {modality} encoder ({err})") from None
