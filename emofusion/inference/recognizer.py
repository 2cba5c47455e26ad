"""The one Python object that turns a recording and its transcript into an emotion.

    >>> from emofusion import EmotionRecognizer          # doctest: +SKIP
    >>> rec = EmotionRecognizer.load()                   # the model shipped with the package
    >>> rec.predict("examples/angry.flac", text="Kids are talking by the door.").label
    'ang'

Long recordings: the models see at most ``max_frames`` frames (100 = 2.5 s at a 25 ms step, the
paper's input). Longer audio is cut into consecutive windows of that many frames, each window is
classified with the whole transcript, and the probabilities are averaged weighted by each window's
frame count, so every second of the recording counts equally.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from emofusion.artifacts import TrainedModel, load_trained
from emofusion.audio import AudioSource, load_audio
from emofusion.errors import ConfigError, TextError
from emofusion.features.acoustic import extract_frames
from emofusion.features.batching import EncodedSet, collate

# Ten minutes: longer input is almost certainly not one utterance.
MAX_AUDIO_SECONDS = 600.0
SHIPPED_MODEL = Path(__file__).resolve().parents[1] / "shipped" / "m-cbla-blr"


@dataclass(frozen=True)
class Prediction:
    label: str
    probabilities: dict[str, float]
    modalities: tuple[str, ...]
    windows: int = 1
    timings_ms: dict[str, float] = field(default_factory=dict, compare=False)

    def to_json(self) -> dict:
        return {
            "label": self.label,
            "probabilities": self.probabilities,
            "modalities": list(self.modalities),
            "windows": self.windows,
        }


@dataclass
class PreparedInput:
    """One utterance after decoding and feature extraction, ready for the model."""

    windows: list  # acoustic frame windows, or [None] for a text-only model
    text: str
    features_ms: float = 0.0


class EmotionRecognizer:
    """A loaded model plus its feature pipeline. Thread-safe for prediction (no shared state)."""

    def __init__(self, trained: TrainedModel, device: str | torch.device = "cpu"):
        self.trained = trained
        self.device = torch.device(device)
        self.trained.model.to(self.device).eval()

    @classmethod
    def load(cls, model: str | Path | None = None, device: str | torch.device = "cpu") -> "EmotionRecognizer":
        """Load a run folder written by `emofusion train`, or the shipped default when None."""
        path = Path(model) if model is not None else SHIPPED_MODEL
        return cls(load_trained(path, device=device), device=device)

    @property
    def name(self) -> str:
        return self.trained.name

    @property
    def labels(self) -> tuple[str, ...]:
        return self.trained.labels

    @property
    def modalities(self) -> frozenset[str]:
        return self.trained.modalities

    def predict(
        self, audio: AudioSource | None = None, text: str | None = None, *, sample_rate: int | None = None
    ) -> Prediction:
        """Emotion of one utterance. ``audio``: path, encoded bytes, or array with ``sample_rate``."""
        return self.predict_batch([(audio, text)], sample_rate=sample_rate)[0]

    def predict_batch(
        self, items: Sequence[tuple[AudioSource | None, str | None]], *, sample_rate: int | None = None
    ) -> list[Prediction]:
        """Predict many (audio, text) pairs in one forward pass over all their windows."""
        return self.predict_prepared([self.prepare(audio, text, sample_rate=sample_rate) for audio, text in items])

    def prepare(self, audio: AudioSource | None = None, text: str | None = None, *, sample_rate: int | None = None) -> "PreparedInput":
        """Decode and featurise one utterance (all input errors surface here, per utterance)."""
        t0 = time.perf_counter()
        windows = self._speech_windows(audio, sample_rate) if self.trained.pipeline.uses_speech else [None]
        prepared = PreparedInput(windows, self._check_text(text))
        prepared.features_ms = (time.perf_counter() - t0) * 1e3
        return prepared

    def predict_prepared(self, prepared: Sequence["PreparedInput"]) -> list[Prediction]:
        """One forward pass over every window of every prepared utterance.

        This is where batching pays: the LSTMs' per-step cost hardly grows with the batch, so a
        server that gathers concurrent requests here serves several for the price of one.
        """
        frames = [f for p in prepared for f in p.windows]
        texts = [p.text for p in prepared for _ in p.windows]
        t0 = time.perf_counter()
        probabilities = self._forward(frames, texts)
        model_ms = (time.perf_counter() - t0) * 1e3
        out: list[Prediction] = []
        start = 0
        for p in prepared:
            count = len(p.windows)
            # Weight each window by its frame count, so every second of audio counts equally.
            w = np.array([len(f) if f is not None else 1 for f in p.windows], dtype=np.float64)
            probs = (probabilities[start : start + count] * w[:, None]).sum(0) / w.sum()
            start += count
            out.append(
                Prediction(
                    label=self.labels[int(np.argmax(probs))],
                    probabilities={c: float(v) for c, v in zip(self.labels, probs)},
                    modalities=tuple(sorted(self.modalities)),
                    windows=count,
                    timings_ms={"features": p.features_ms, "model": model_ms},
                )
            )
        return out

    def _speech_windows(self, audio, sample_rate) -> list[np.ndarray]:
        if audio is None:
            raise ConfigError(f"{self.name} needs audio: pass a recording (or use a text-only model)")
        config = self.trained.pipeline.acoustic
        decoded = load_audio(audio, sample_rate, target_rate=config.sample_rate, max_seconds=MAX_AUDIO_SECONDS)
        all_frames = extract_frames(decoded.samples, decoded.sample_rate, config)
        span = config.max_frames
        return [all_frames[i : i + span] for i in range(0, len(all_frames), span)]

    def _check_text(self, text: str | None) -> str:
        if not self.trained.pipeline.uses_text:
            return ""
        if text is None or not text.strip():
            raise TextError(f"{self.name} needs the transcript: got an empty one (use a speech-only model for audio alone)")
        return text

    @torch.inference_mode()
    def _forward(self, frames: list[np.ndarray | None], texts: list[str]) -> np.ndarray:
        pipeline = self.trained.pipeline
        encoded = EncodedSet(labels=np.full(len(texts), -1, dtype=np.int64))
        if pipeline.uses_speech:
            encoded.speech = pipeline.speech_inputs(frames)
        if pipeline.uses_text:
            encoded.tokens = pipeline.text_inputs(texts)
        batch = collate(encoded, np.arange(len(texts)), self.device)
        logits = self.trained.model(**batch)
        return torch.softmax(logits.float(), dim=1).cpu().numpy().astype(np.float64)
