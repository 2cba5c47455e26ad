"""Turn utterance records into an `EncodedSet` with a fitted `FeaturePipeline`."""

from __future__ import annotations

import numpy as np

from emofusion.errors import ConfigError
from emofusion.features.cache import FeatureCache, default_cache_root
from emofusion.features.pipeline import FeaturePipeline
from emofusion.records import Utterance
from emofusion.features.batching import EncodedSet


def usable(utterances: list[Utterance], modalities: frozenset[str]) -> list[Utterance]:
    """The utterances that carry every modality a model needs."""
    return [
        u
        for u in utterances
        if ("speech" not in modalities or u.has_audio) and ("text" not in modalities or u.has_text)
    ]


def load_frames(
    utterances: list[Utterance], cache: FeatureCache, *, kind: str = "acoustic", progress: bool = True
) -> list[np.ndarray]:
    """Per-utterance frames of the given kind: the 34 acoustic features (``cache``), or the frames
    of the speech encoder whose registry key ``kind`` is (cached beside them, under the same root)."""
    missing = [u.id for u in utterances if u.audio is None]
    if missing:
        raise ConfigError(f"{len(missing)} utterances have no audio, e.g. {missing[:3]}")
    if kind != "acoustic":
        from emofusion.features.encoders.cache import FrameCache
        from emofusion.features.encoders.registry import encoder

        frames = FrameCache(encoder(kind, "speech"), cache_root(cache)).get_many([u.audio for u in utterances], progress=progress)
    else:
        frames = cache.get_many([u.audio for u in utterances], progress=progress)
    return [frames[str(u.audio)] for u in utterances]


def cache_root(cache: FeatureCache | None):
    """The folder that holds every feature cache: the acoustic cache's parent, or the default."""
    return cache.directory.parent if cache is not None else default_cache_root()


def encode_utterances(
    pipeline: FeaturePipeline,
    utterances: list[Utterance],
    *,
    labels: tuple[str, ...] | None,
    cache: FeatureCache | None,
    frames: list[np.ndarray] | None = None,
    progress: bool = True,
) -> EncodedSet:
    """Model inputs for ``utterances``; labels outside ``labels`` are an error, None means -1."""
    if labels is None:
        label_ids = np.full(len(utterances), -1, dtype=np.int64)
    else:
        index = {c: i for i, c in enumerate(labels)}
        unknown = sorted({u.label for u in utterances} - set(index))
        if unknown:
            raise ConfigError(f"labels {unknown} are not among the model's classes {list(labels)}")
        label_ids = np.array([index[u.label] for u in utterances], dtype=np.int64)
    encoded = EncodedSet(labels=label_ids)
    if pipeline.uses_speech:
        if frames is None:
            if cache is None and pipeline.speech_encoder is None:
                raise ConfigError("speech features need a feature cache or precomputed frames")
            frames = load_frames(utterances, cache, kind=pipeline.speech_kind, progress=progress)
        encoded.speech = pipeline.speech_inputs(frames)
    if pipeline.uses_text and pipeline.text_encoder is not None:
        texts = [u.text or "" for u in utterances]
        encoded.text_vectors = pipeline.text_vectors(texts, cache_root=cache_root(cache), progress=progress)
    elif pipeline.uses_text:
        encoded.tokens = pipeline.text_inputs([u.text or "" for u in utterances])
    return encoded
