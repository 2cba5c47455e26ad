"""Emotion over time: a recording cut into utterances, each transcribed and classified on its own.

    >>> rec = EmotionRecognizer.load()                         # doctest: +SKIP
    >>> timeline = rec.timeline("call.wav")                    # needs pip install "emofusion[asr]"
    >>> [(s.start, s.end, s.text, s.label) for s in timeline.segments]
    [(0.8, 3.1, 'I told you already!', 'ang'), (4.4, 6.9, 'Fine.', 'neu'), ...]

How (each step streams, so a two-hour call needs the memory of one block and one utterance):
1. decode the recording block by block (`AudioStream`) and score every 32-ms frame with Silero VAD;
2. find the utterances (`speech_regions`: pauses of 0.5 s split, over 15 s is split);
3. decode again and cut each utterance out as its blocks pass; transcribe it (when the model reads
   text and no transcript was given) and classify it with the recognizer's own `prepare` /
   `predict_prepared`, exactly as `EmotionRecognizer.predict` would classify that clip;
4. the overall label: probabilities averaged over the segments weighted by their duration.

A segment Whisper finds no words in (a laugh, a sob, a cough) cannot be read by a model that needs
text. It is classified from its sound alone by the shipped speech-only model (S-CBLA) when that
model has the same classes; its ``model`` field then names S-CBLA. Otherwise, and for any other
unusable segment, the segment carries an ``error`` and no label; the rest of the timeline stands.

A transcript given by the caller (``text=``) is the transcript of the whole recording: every
segment is classified with it (as every 2.5-s window of a long clip is), since which of its words
belong to which utterance is unknown.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Iterable, Iterator

import numpy as np
from tqdm import tqdm

from emofusion.audio import TARGET_SAMPLE_RATE, AudioSource
from emofusion.audio_stream import AudioStream
from emofusion.errors import EmofusionError, TextError

if TYPE_CHECKING:
    from emofusion.asr.transcriber import Transcriber
    from emofusion.asr.vad import Region, VadConfig
    from emofusion.inference.recognizer import EmotionRecognizer, PreparedInput

# Two hours: a long meeting or interview. Memory does not grow with it; time does (see benchmarks).
MAX_TIMELINE_SECONDS = 7200.0
# Utterances classified per forward pass: the LSTMs' cost per step hardly grows with the batch.
BATCH = 16
NO_SPEECH = "no speech found: the recording holds no utterance (music, noise or silence?)"


@dataclass(frozen=True)
class Segment:
    """One utterance: where it is, what was said, and its emotion (or why it has none)."""

    start: float  # seconds from the start of the recording
    end: float
    text: str | None  # the words the model read; None when the model reads no text
    label: str | None
    probabilities: dict[str, float] | None
    model: str | None  # the model that classified it (the speech-only fallback names itself)
    error: str | None = None
    confident: bool | None = None  # `Prediction.confident` of its classification
    language: str | None = None  # what Whisper heard here (a multilingual transcriber); None otherwise

    @property
    def duration(self) -> float:
        return self.end - self.start

    def to_json(self) -> dict:
        return {
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "text": self.text,
            "label": self.label,
            "probabilities": self.probabilities,
            "confident": self.confident,
            "model": self.model,
            "error": self.error,
            "language": self.language,
        }


@dataclass(frozen=True)
class Timeline:
    """A recording's utterances and the overall emotion (duration-weighted over the segments)."""

    label: str | None  # None when no segment could be classified
    probabilities: dict[str, float] | None
    segments: tuple[Segment, ...]
    duration: float  # of the whole recording, seconds
    model: str
    transcriber: str | None  # the Whisper model that wrote the segments' text, if any did
    timings_s: dict[str, float] = field(default_factory=dict, compare=False)  # wall seconds per stage
    cpu_s: dict[str, float] = field(default_factory=dict, compare=False)  # process CPU seconds per stage

    @property
    def note(self) -> str | None:
        if not self.segments:
            return NO_SPEECH
        failed = sum(s.error is not None for s in self.segments)
        return f"{failed} of {len(self.segments)} segments could not be classified" if failed else None

    def to_json(self) -> dict:
        return {
            "label": self.label,
            "probabilities": self.probabilities,
            "segments": [s.to_json() for s in self.segments],
            "duration": round(self.duration, 3),
            "model": self.model,
            "transcriber": self.transcriber,
            "note": self.note,
        }


def build_timeline(
    recognizer: "EmotionRecognizer",
    audio: AudioSource,
    text: str | None = None,
    *,
    sample_rate: int | None = None,
    vad: "VadConfig | None" = None,
    fallback: "EmotionRecognizer | None | str" = "shipped",
    transcriber: "Transcriber | None" = None,
    max_seconds: float = MAX_TIMELINE_SECONDS,
    name: str | None = None,
    progress: bool = False,
) -> Timeline:
    """The emotion timeline of one recording (see the module docstring).

    Arguments:
        recognizer: the model; its ``asr`` config chooses the Whisper model.
        audio: a path, encoded bytes, or an array with ``sample_rate``.
        text: the transcript of the whole recording; None: each utterance is transcribed.
        vad: voice-activity settings (default `VadConfig()`).
        fallback: the model for segments without words: "shipped" (the shipped speech-only model,
            when its classes match), a recognizer, or None (such segments get an error).
        transcriber: a loaded `Transcriber` (default: the one ``recognizer.asr`` names).
        max_seconds: longest recording accepted.
        name: how to name the input in errors.
        progress: a progress bar over the recording's seconds (stderr).

    Raises:
        AudioError: the recording cannot be decoded, is empty or too long.
        MissingExtraError: the ``asr`` extra is not installed.
    """
    from emofusion.asr.transcriber import Transcriber
    from emofusion.asr.vad import SpeechDetector, VadConfig, speech_regions

    started, cpu_started = time.perf_counter(), time.process_time()
    stream = AudioStream.open(audio, sample_rate, max_seconds=max_seconds, name=name)
    detector = SpeechDetector.load()
    regions = speech_regions(detector.scan(stream.blocks()), stream.duration_s, vad or VadConfig())
    timings = {"vad": time.perf_counter() - started, "transcription": 0.0, "emotion": 0.0}
    # CPU time too: on a busy shared machine wall time measures the neighbours, CPU time the work.
    cpu = {"vad": time.process_time() - cpu_started, "transcription": 0.0, "emotion": 0.0}

    reads_text = recognizer.trained.pipeline.uses_text
    if not (reads_text and text is None and regions):
        transcriber = None
    elif transcriber is None:
        transcriber = Transcriber.load(recognizer.asr)
    classifier = _Classifier(recognizer, fallback, timings)
    bar = tqdm(total=round(stream.duration_s, 1), unit="s", desc="timeline", disable=not progress)
    for region, samples in cut_regions(stream.blocks(), regions, stream.target_rate):
        words = text if reads_text else None
        language = None
        if transcriber is not None:
            t0, c0 = time.perf_counter(), time.process_time()
            heard = transcriber.hear(samples)
            # Words the model cannot read (another language, or Whisper unsure: `reads`) are none:
            # the segment is classified from its sound, by the speech-only fallback.
            words, language = (heard.text if recognizer.reads(heard) else ""), heard.language
            timings["transcription"] += time.perf_counter() - t0
            cpu["transcription"] += time.process_time() - c0
        c0 = time.process_time()
        classifier.add(region, samples, words)
        if language is not None:
            classifier.segments[-1] = replace(classifier.segments[-1], language=language)
        cpu["emotion"] += time.process_time() - c0
        bar.update(round(region.end - bar.n, 1))
    c0 = time.process_time()
    segments = classifier.finish()
    cpu["emotion"] += time.process_time() - c0
    bar.update(round(stream.duration_s - bar.n, 1))
    bar.close()
    timings["total"] = time.perf_counter() - started
    cpu["total"] = time.process_time() - cpu_started
    label, probabilities = _overall(segments, recognizer.labels)
    return Timeline(
        label, probabilities, tuple(segments), stream.duration_s, recognizer.name,
        transcriber.name if transcriber is not None else None, timings, cpu,
    )


def cut_regions(blocks: Iterable[np.ndarray], regions: list["Region"], rate: int = TARGET_SAMPLE_RATE) -> Iterator[tuple["Region", np.ndarray]]:
    """Each region's samples, cut from consecutive blocks as they pass (regions ordered, disjoint)."""
    bounds = [(int(round(r.start * rate)), int(round(r.end * rate))) for r in regions]
    index, parts, position = 0, [], 0
    for block in blocks:
        block_end = position + len(block)
        while index < len(regions):
            start, end = bounds[index]
            lo, hi = max(start, position), min(end, block_end)
            if hi > lo:
                parts.append(block[lo - position : hi - position])
            if end > block_end:
                break
            yield regions[index], np.concatenate(parts) if parts else np.zeros(0)
            index, parts = index + 1, []
        position = block_end
        if index == len(regions):
            return
    if index < len(regions) and parts:  # the last region reached the very end of the audio
        yield regions[index], np.concatenate(parts)


class _Classifier:
    """Collects prepared segments and classifies them ``BATCH`` at a time, in order."""

    def __init__(self, recognizer: "EmotionRecognizer", fallback, timings: dict):
        self.recognizer = recognizer
        self.fallback_choice = fallback
        self._fallback = None
        self.timings = timings
        self.segments: list[Segment] = []
        self.pending: list[tuple[int, "EmotionRecognizer", "PreparedInput"]] = []

    def add(self, region: "Region", samples: np.ndarray, words: str | None) -> None:
        t0 = time.perf_counter()
        rate = TARGET_SAMPLE_RATE
        model, error = self.recognizer, None
        try:
            prepared = model.prepare(samples, words if words is not None else None, sample_rate=rate)
        except TextError as exc:
            model = self.fallback()
            prepared = None
            if model is None:
                error = f"no words to read in this segment ({exc})"
            else:
                try:
                    prepared = model.prepare(samples, None, sample_rate=rate)
                except EmofusionError as inner:
                    error = str(inner)
        except EmofusionError as exc:
            prepared, error = None, str(exc)
        text = words if self.recognizer.trained.pipeline.uses_text else None
        self.segments.append(Segment(region.start, region.end, text, None, None, model.name if model else None, error))
        if prepared is not None:
            self.pending.append((len(self.segments) - 1, model, prepared))
        self.timings["emotion"] += time.perf_counter() - t0
        if len(self.pending) >= BATCH:
            self._flush()

    def finish(self) -> list[Segment]:
        self._flush()
        return self.segments

    def fallback(self) -> "EmotionRecognizer | None":
        if self._fallback is None and self.fallback_choice is not None:
            self._fallback = _resolve_fallback(self.recognizer, self.fallback_choice)
            self.fallback_choice = None  # resolve once, even when there is none
        return self._fallback

    def _flush(self) -> None:
        t0 = time.perf_counter()
        for model in {id(m): m for _, m, _ in self.pending}.values():
            items = [(i, p) for i, m, p in self.pending if m is model]
            for (i, _), prediction in zip(items, model.predict_prepared([p for _, p in items])):
                s = self.segments[i]
                self.segments[i] = replace(s, label=prediction.label, probabilities=prediction.probabilities,
                                           confident=prediction.confident)
        self.pending = []
        self.timings["emotion"] += time.perf_counter() - t0


def _resolve_fallback(recognizer: "EmotionRecognizer", choice) -> "EmotionRecognizer | None":
    from emofusion.inference.recognizer import EmotionRecognizer

    if isinstance(choice, EmotionRecognizer):
        candidate = choice
    elif choice == "shipped":
        try:
            candidate = EmotionRecognizer.load("speech", device=recognizer.device)
        except EmofusionError:
            return None
    else:
        return None
    # Mixing two models' probabilities is only meaningful over the same classes in the same order.
    if candidate.labels != recognizer.labels or candidate.trained.pipeline.uses_text:
        return None
    return candidate


def _overall(segments: list[Segment], labels: tuple[str, ...]) -> tuple[str | None, dict[str, float] | None]:
    scored = [s for s in segments if s.probabilities is not None]
    if not scored:
        return None, None
    weights = np.array([max(s.duration, 1e-6) for s in scored])
    table = np.array([[s.probabilities[c] for c in labels] for s in scored])
    mean = weights @ table / weights.sum()
    return labels[int(np.argmax(mean))], {c: float(v) for c, v in zip(labels, mean)}
