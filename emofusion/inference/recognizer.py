"""The one Python object that turns a recording and its transcript into an emotion.

    >>> from emofusion import EmotionRecognizer          # doctest: +SKIP
    >>> rec = EmotionRecognizer.load()                   # the model shipped with the package
    >>> rec.predict("examples/angry.flac", text="Kids are talking by the door.").label
    'ang'

Long recordings: the models see at most ``max_frames`` frames (100 = 2.5 s at a 25 ms step, the
paper's input). Longer audio is cut into consecutive windows of that many frames, each window is
classified with the whole transcript, and the probabilities are averaged weighted by each window's
frame count, so every second of the recording counts equally. The transcript is the same for
every window, so it is tokenised once (in `prepare`) and goes through the text network once per
utterance; only the speech network runs per window.

Every check of one utterance's input (audio and transcript) happens in `prepare`, so a batch of
prepared utterances never fails because of one member's data.

No transcript for a model that reads text: the recording is transcribed offline with Whisper
(``pip install "emofusion[asr]"``) and the transcript used is returned with the prediction.
A recording of several utterances: `emofusion.inference.timeline.build_timeline`, a client of this class
(this module knows nothing of timelines).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import soxr
import torch

from emofusion.artifacts import TrainedModel, load_trained
from emofusion.audio import TARGET_SAMPLE_RATE, AudioSource, load_audio
from emofusion.errors import ConfigError, EmofusionError, TextError
from emofusion.features.acoustic import extract_frames
from emofusion.features.batching import EncodedSet, collate, length_groups
from emofusion.features.encoders.whisper import SAMPLE_RATE as WHISPER_RATE
from emofusion.inference.backends import BACKENDS, TorchBackend, load_onnx
from emofusion.inference.limits import InputLimits
from emofusion.inference.shipped import PAPER_FUSION_MODEL, SHIPPED_DIR, SHIPPED_MODELS, shipped_model_path  # noqa: F401

if TYPE_CHECKING:
    from emofusion.asr.transcriber import AsrConfig

# Languages the text side of every model here reads: GloVe and MiniLM were trained on English text.
# The one home of that fact until the encoder registry carries it per text encoder. A transcript
# in another language (or one Whisper was unsure of: `Heard.reliable`) is not read: the shipped
# speech-only model answers (`speech_fallback`), as the timeline does for word-less segments;
# without one, the text branch gets a neutral input (zero features; an exported graph, which reads
# word ids, a lone padding token). Measured on 200 TESS clips, 50 a class (a corpus no shipped model
# heard; benchmarks/bench_language.py): S-CBLA 46.0% accuracy; M-WT-ST reading tiny.en's English
# nonsense for German speech 33.5%, with the neutral input 33.5%; M-CBLA-BLR 37.0% and 38.5%.
TEXT_LANGUAGES: tuple[str, ...] = ("en",)
_FALLBACK_LOCK = threading.Lock()  # the speech-only fallback is loaded once per recognizer
_NEUTRAL_TOKENS = np.zeros(1, dtype=np.int64)  # the vocabulary's padding id (Vocabulary.PAD)

# The paper's fusion model M-CBLA-BLR (the default without the encoders extra; ONNX export's default).
SHIPPED_MODEL = PAPER_FUSION_MODEL


@dataclass(frozen=True)
class Prediction:
    label: str
    probabilities: dict[str, float]
    modalities: tuple[str, ...]
    windows: int = 1
    timings_ms: dict[str, float] = field(default_factory=dict, compare=False)
    transcript: str | None = None  # the text the model read (given or transcribed); None: reads none
    transcribed: bool = False  # whether ``transcript`` came from speech recognition
    # Top probability at or above the model's validated threshold (model.json "calibration");
    # None: the model has no calibration, so nothing is known about it.
    confident: bool | None = None
    # What speech recognition heard (None when nothing was transcribed): its language ("en", "de"...)
    # and Whisper's probability of it. ``text_used``: whether the model read the transcript; False
    # when it was not in a language the text side reads or Whisper was unsure of it (`TEXT_LANGUAGES`).
    language: str | None = None
    language_probability: float | None = None
    text_used: bool = False

    def to_json(self) -> dict:
        return {
            "label": self.label,
            "probabilities": self.probabilities,
            "confident": self.confident,
            "modalities": list(self.modalities),
            "windows": self.windows,
            "transcript": self.transcript,
            "transcribed": self.transcribed,
            "language": self.language,
            "language_probability": self.language_probability,
            "text_used": self.text_used,
        }


@dataclass
class PreparedInput:
    """One utterance after decoding, feature extraction and tokenisation, ready for the model."""

    windows: list  # acoustic frame windows, or [None] for a text-only model
    text: str
    tokens: np.ndarray | None = None  # the transcript's word ids; None for a speech-only model
    timings_ms: dict[str, float] = field(default_factory=dict)  # "decode", "features" (+ "transcription")
    transcribed: bool = False  # ``text`` came from Whisper
    language: str | None = None  # what Whisper heard (with ``transcribed``)
    language_probability: float | None = None
    # False: the transcript is not read (another language, or Whisper unsure): the utterance is
    # classified by ``answered_by`` (the shipped speech-only model) or, without one, by this model
    # with the neutral text input (`TEXT_LANGUAGES`).
    text_used: bool = True
    answered_by: "EmotionRecognizer | None" = field(default=None, repr=False, compare=False)
    # The transcript's row of text features: computed by the first forward pass that needs it and
    # reused by any later pass over more of this utterance's windows (the service splits long ones).
    text_features: torch.Tensor | None = field(default=None, repr=False, compare=False)


# Windows start:stop of one prepared utterance: the unit a forward pass is built from.
WindowSlice = tuple[PreparedInput, int, int]


class EmotionRecognizer:
    """A loaded model plus its feature pipeline. Thread-safe for prediction (no shared state).

    ``limits`` (audio length, transcript length) apply to every `prepare` that does not pass its own.
    """

    def __init__(
        self, trained: TrainedModel, device: str | torch.device = "cpu", limits: InputLimits | None = None, backend=None,
        asr: "AsrConfig | None" = None,
    ):
        self.trained = trained
        self.device = torch.device(device)
        self.limits = limits or InputLimits()
        # Where the model pass runs (emofusion.inference.backends); PyTorch unless told otherwise.
        self.backend = backend if backend is not None else TorchBackend(trained.model, self.device, trained.calibration)
        # Its threshold marks predictions confident; its temperature is applied by the backend
        # (an exported graph carries it inside).
        self.calibration = trained.calibration
        self._asr = asr
        self._speech_fallback: "EmotionRecognizer | None | bool" = False  # False: not looked up yet

    @classmethod
    def load(
        cls,
        model: str | Path | None = None,
        device: str | torch.device = "cpu",
        limits: InputLimits | None = None,
        *,
        backend: str | None = None,
        threads: int | None = None,
        asr: "AsrConfig | None" = None,
    ) -> "EmotionRecognizer":
        """Load a run folder written by `emofusion train`, or a shipped model (`emofusion.inference.shipped`):
        None or "fusion" (the default: M-WTV-ST with the encoders extra, else M-CBLA-BLR, said once),
        "fusion-encoders" (M-WTV-ST), "fusion-paper" (M-CBLA-BLR), "speech" (no transcript needed: S-WTV
        with the extra, else S-CBLA, said once), "speech-encoders" (S-WTV), "speech-paper" (S-CBLA).

        ``backend``: ``"torch"``; ``"onnx"`` runs the model in onnxruntime (a ``.onnx`` file from
        ``emofusion export``, or a run folder exported once into the cache); ``"onnx-int8"`` the same,
        int8-quantised. Both need ``pip install "emofusion[onnx]"``. None: ``"onnx"`` for a ``.onnx``
        file, else ``"torch"``. ``threads``: onnxruntime's threads (default 1). ``asr``: the Whisper
        model used when a transcript must be made (default: the bundled tiny.en).
        """
        path = shipped_model_path(model, onnx=backend in ("onnx", "onnx-int8"))
        if backend is None:
            backend = "onnx" if path.suffix.lower() == ".onnx" else "torch"
        if backend not in BACKENDS:
            raise ConfigError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        if backend == "torch":
            if path.suffix.lower() == ".onnx":
                raise ConfigError(f"{path} is an ONNX file: load it with backend 'onnx'")
            return cls(load_trained(path, device=device), device=device, limits=limits, asr=asr)
        if torch.device(device).type != "cpu":
            raise ConfigError(f"the {backend} backend runs on the CPU; got device {device}")
        trained, runner = load_onnx(path, quantize="int8" if backend == "onnx-int8" else None, threads=threads)
        return cls(trained, "cpu", limits=limits, backend=runner, asr=asr)

    @property
    def asr(self) -> "AsrConfig":
        from emofusion.asr.transcriber import AsrConfig

        return self._asr or AsrConfig()

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

    def transcribe(self, samples: np.ndarray) -> str:
        """The words of one utterance (16 kHz mono samples), with this recognizer's Whisper model."""
        return self.hear(samples).text

    def hear(self, samples: np.ndarray):
        """What this recognizer's Whisper model hears in a recording of any length (16 kHz mono):
        words, language, confidence (`emofusion.asr.transcriber.Heard`). Over 30 s it is
        transcribed utterance by utterance (`Transcriber.transcribe_long`), in bounded memory."""
        from emofusion.asr.transcriber import Transcriber

        return Transcriber.load(self.asr).transcribe_long(samples)

    @property
    def text_languages(self) -> tuple[str, ...]:
        """Languages this model's text side reads (a transcript in another is not read)."""
        return TEXT_LANGUAGES

    def reads(self, heard) -> bool:
        """Whether this model reads what Whisper heard (`emofusion.asr.transcriber.Heard`): words in
        a language its text side reads (an English-only Whisper detects none: its words are
        English, and only its confidence tells foreign speech), that Whisper was sure of."""
        return bool(heard.text) and (heard.language or "en") in self.text_languages and heard.reliable

    def speech_fallback(self) -> "EmotionRecognizer | None":
        """The model that answers for this one when its transcript cannot be read: the shipped
        speech-only model, when it predicts the same classes in the same order; else None."""
        with _FALLBACK_LOCK:
            if self._speech_fallback is False:
                self._speech_fallback = None
                if self.trained.pipeline.uses_text and self.trained.pipeline.uses_speech:
                    try:
                        candidate = EmotionRecognizer.load("speech", device=self.device, limits=self.limits)
                    except EmofusionError:
                        candidate = None
                    if candidate is not None and candidate.labels == self.labels:
                        self._speech_fallback = candidate
            return self._speech_fallback

    def prepare(
        self,
        audio: AudioSource | None = None,
        text: str | None = None,
        *,
        sample_rate: int | None = None,
        name: str | None = None,
        limits: InputLimits | None = None,
    ) -> PreparedInput:
        """Check, decode, featurise and tokenise one utterance: all input errors surface here.

        ``text=None`` for a model that reads text, with audio: the audio is transcribed (the ``asr``
        extra) and the transcript is the one used and returned.

        Arguments:
            name: how error messages name the audio (default: its path, or its type).
            limits: overrides the recogniser's ``limits`` for this utterance.
        """
        limits = limits or self.limits
        pipeline = self.trained.pipeline
        must_transcribe = pipeline.uses_text and text is None and audio is not None
        t0 = time.perf_counter()
        # The transcript first: refusing a bad one costs no decoding.
        tokens = None if must_transcribe else self._encode_text(text, limits)
        t1 = time.perf_counter()
        decoded = None
        if pipeline.uses_speech or must_transcribe:
            if audio is None:
                raise ConfigError(f"{self.name} needs audio: pass a recording (or use a text-only model)")
            frame_encoder = pipeline.speech_encoder if pipeline.uses_speech else None
            if frame_encoder is not None:  # a frozen speech encoder (registry entry) hears at its own rate
                rate = frame_encoder.sample_rate
            elif pipeline.acoustic is None:  # a text-only model: its audio is only for Whisper (16 kHz)
                rate = WHISPER_RATE
            else:
                rate = pipeline.acoustic.sample_rate
            decoded = load_audio(audio, sample_rate, target_rate=rate, max_seconds=limits.max_audio_seconds, name=name)
        decode_ms = (time.perf_counter() - t1) * 1e3
        timings = {"decode": decode_ms}
        if must_transcribe:
            t2 = time.perf_counter()
            speech = decoded.samples
            if decoded.sample_rate != TARGET_SAMPLE_RATE:  # Whisper listens at 16 kHz
                speech = soxr.resample(speech, decoded.sample_rate, TARGET_SAMPLE_RATE, quality="HQ")
            heard = self.hear(speech)
            text = heard.text
            timings["transcription"] = (time.perf_counter() - t2) * 1e3
            if not text:
                raise TextError(f"no transcript: {self.name} reads the text, and no words were recognised in "
                                f"the audio (for sound alone use the speech-only model: --model speech)")
            text_used = self.reads(heard)
            if not (text_used or pipeline.uses_speech):
                raise TextError(
                    f"no usable transcript: {self.name} reads only the text, in {', '.join(self.text_languages)}"
                    + (f"; Whisper heard {heard.language} (p={heard.language_probability:.2f})" if heard.language else "")
                    + ("" if heard.reliable else "; Whisper was unsure of the words (another language?)")
                )
            tokens = self._encode_text(text, limits)
            fallback = None if text_used else self.speech_fallback()
            if fallback is not None:  # classified from the speech alone, by the speech-only model
                inner = fallback.prepare(decoded.samples, None, sample_rate=decoded.sample_rate, name=name, limits=limits)
                inner.text, inner.transcribed, inner.text_used, inner.answered_by = text, True, False, fallback
                inner.language, inner.language_probability = heard.language, heard.language_probability
                inner.timings_ms.update(decode=decode_ms, transcription=timings["transcription"])
                return inner
        windows: list = [None]
        if pipeline.uses_speech:
            if frame_encoder is not None:  # rounded as the training cache stores them: same inputs as in training
                all_frames = pipeline.speech_frames(decoded.samples)
            else:
                all_frames = extract_frames(decoded.samples, decoded.sample_rate, pipeline.acoustic)
            span = pipeline.max_frames
            windows = [all_frames[i : i + span] for i in range(0, len(all_frames), span)]
        timings["features"] = (time.perf_counter() - t0) * 1e3 - decode_ms - timings.get("transcription", 0.0)
        prepared = PreparedInput(
            windows, text if pipeline.uses_text else "", tokens, timings_ms=timings, transcribed=must_transcribe
        )
        if must_transcribe:
            prepared.language, prepared.language_probability = heard.language, heard.language_probability
            prepared.text_used = text_used
        return prepared

    def predict_prepared(self, prepared: Sequence[PreparedInput]) -> list[Prediction]:
        """One forward pass over every window of every prepared utterance.

        This is where batching pays: the LSTMs' per-step cost hardly grows with the batch, so a
        server that gathers concurrent requests here serves several for the price of one.
        """
        t0 = time.perf_counter()
        probabilities = self.window_probabilities([(p, 0, len(p.windows)) for p in prepared])
        model_ms = (time.perf_counter() - t0) * 1e3
        return [self.combine(p, probs, model_ms) for p, probs in zip(prepared, probabilities)]

    @torch.inference_mode()
    def window_probabilities(self, parts: Sequence[WindowSlice]) -> list[np.ndarray]:
        """Class probabilities (stop - start, n_classes) of windows start:stop of each utterance.

        One forward pass, or two when the windows' lengths differ enough (`length_groups`: full
        2.5-s windows and the short last windows of the same recordings). A transcript goes
        through the text network only the first time one of its utterance's windows does (its
        features are kept on the `PreparedInput`)."""
        if any(p.answered_by not in (None, self) for p, _, _ in parts):
            return self._delegated_probabilities(parts)
        pipeline = self.trained.pipeline
        counts = [stop - start for _, start, stop in parts]
        if any(c < 1 for c in counts):
            raise ValueError(f"every window slice needs at least one window, got counts {counts}")
        n = sum(counts)
        owners = [p for (p, _, _), c in zip(parts, counts) for _ in range(c)]  # the utterance of each window
        encoded = EncodedSet(labels=np.full(n, -1, dtype=np.int64))
        lengths = np.ones(n, dtype=np.int64)
        if pipeline.uses_speech:
            encoded.speech = pipeline.speech_inputs([f for p, start, stop in parts for f in p.windows[start:stop]])
            lengths = encoded.speech.lengths
        if pipeline.uses_text and self.backend.reads_tokens:
            # An exported graph is the whole model: each window gets its transcript's word ids.
            encoded.tokens = [p.tokens if p.text_used else _NEUTRAL_TOKENS for p in owners]
        elif pipeline.uses_text:
            self._encode_transcripts([p for p, _, _ in parts])
        probabilities = None
        for index in length_groups(lengths):
            batch = collate(encoded, index, self.device)
            if pipeline.uses_text and not self.backend.reads_tokens:
                batch["text_features"] = torch.cat([owners[i].text_features for i in index])
            group = self.backend.probabilities(batch)
            if probabilities is None:
                probabilities = np.empty((n, group.shape[1]), dtype=group.dtype)
            probabilities[index] = group
        if not np.isfinite(probabilities).all():
            # Weights that load (all finite) can still overflow the logits; never report NaN.
            raise ConfigError(
                f"{self.name}: the model produced non-finite probabilities (its weights overflow); "
                "it cannot be used, retrain it"
            )
        return np.split(probabilities, np.cumsum(counts)[:-1])

    def _delegated_probabilities(self, parts: Sequence[WindowSlice]) -> list[np.ndarray]:
        """`window_probabilities` when some utterances are answered by another model: each model's
        own pass over its utterances, the results back in the order of ``parts``."""
        out: list = [None] * len(parts)
        models = {id(p.answered_by or self): p.answered_by or self for p, _, _ in parts}
        for model in models.values():
            mine = [i for i, (p, _, _) in enumerate(parts) if (p.answered_by or self) is model]
            slices = [parts[i] for i in mine]
            result = model.window_probabilities(slices)
            for i, probs in zip(mine, result):
                out[i] = probs
        return out

    def combine(self, prepared: PreparedInput, probabilities: np.ndarray, model_ms: float) -> Prediction:
        """The prediction of one utterance from the probabilities of all its windows."""
        if prepared.answered_by not in (None, self):
            answer = prepared.answered_by.combine(prepared, probabilities, model_ms)
            return dataclasses.replace(answer, transcript=prepared.text, transcribed=prepared.transcribed)
        if len(probabilities) != len(prepared.windows):
            raise ValueError(f"{len(probabilities)} window probabilities for {len(prepared.windows)} windows")
        # Weight each window by its frame count, so every second of audio counts equally.
        w = np.array([len(f) if f is not None else 1 for f in prepared.windows], dtype=np.float64)
        probs = (probabilities * w[:, None]).sum(0) / w.sum()
        return Prediction(
            label=self.labels[int(np.argmax(probs))],
            probabilities={c: float(v) for c, v in zip(self.labels, probs)},
            modalities=tuple(sorted(self.modalities)),
            windows=len(prepared.windows),
            timings_ms={**prepared.timings_ms, "model": model_ms},
            transcript=prepared.text if self.trained.pipeline.uses_text else None,
            transcribed=prepared.transcribed,
            confident=self.calibration.confident(float(probs.max())),
            language=prepared.language,
            language_probability=prepared.language_probability,
            text_used=self.trained.pipeline.uses_text and prepared.text_used,
        )

    def _encode_text(self, text: str | None, limits: InputLimits) -> np.ndarray | None:
        """The transcript's word ids, or a TextError saying why this transcript cannot be used."""
        if not self.trained.pipeline.uses_text:
            return None
        if text is None or not text.strip():
            state = "missing" if text is None else "empty"
            raise TextError(
                f"no transcript: {self.name} reads the text and the transcript is {state} "
                "(use a speech-only model for audio alone)"
            )
        if limits.max_text_chars is not None and len(text) > limits.max_text_chars:
            raise TextError(f"transcript of {len(text)} characters exceeds the limit of {limits.max_text_chars}")
        if self.trained.pipeline.text_encoder is not None:
            return None  # its sentence vector is computed with the batch, in _encode_transcripts
        try:
            return self.trained.pipeline.vocabulary.encode(text)
        except TextError as err:  # e.g. only zero-width or control characters: nothing to read
            raise TextError(f"no transcript: {self.name} reads the text; {err}") from None

    def _encode_transcripts(self, prepared: Sequence[PreparedInput]) -> None:
        todo = list({id(p): p for p in prepared if p.text_features is None}.values())
        if not todo:
            return
        if self.trained.pipeline.text_encoder is not None:  # one text-encoder pass for the batch's transcripts
            vectors = torch.from_numpy(self.trained.pipeline.text_vectors([p.text for p in todo])).to(self.device)
            features = self.trained.model.encode_text(text_vectors=vectors)
        else:
            encoded = EncodedSet(labels=np.full(len(todo), -1, dtype=np.int64), tokens=[p.tokens for p in todo])
            batch = collate(encoded, np.arange(len(todo)), self.device)
            features = self.trained.model.encode_text(batch["tokens"], batch["text_lengths"])
        for i, p in enumerate(todo):
            # A transcript not to be read (`PreparedInput.text_used`): the neutral input, zeros.
            p.text_features = features[i : i + 1] if p.text_used else torch.zeros_like(features[i : i + 1])
