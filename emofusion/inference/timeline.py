"""Emotion over time: a recording cut into utterances, each transcribed and classified on its own.

    >>> rec = EmotionRecognizer.load()                         # doctest: +SKIP
    >>> timeline = build_timeline(rec, "call.wav")             # needs pip install "emofusion[asr]"
    >>> [(s.start, s.end, s.speaker, s.text, s.label) for s in timeline.segments]
    [(0.8, 3.1, 'S1', 'I told you already!', 'ang'), (3.1, 6.9, 'S2', 'Fine.', 'neu'), ...]
    >>> [(p.speaker, p.speaking_s, p.label) for p in timeline.speakers]
    [('S1', 31.2, 'ang'), ('S2', 18.5, 'neu')]

The timeline is a client of `EmotionRecognizer` (which knows nothing of timelines). Its stages, in
`build_timeline` top to bottom (each streams, so a two-hour call needs the memory of one block and
one utterance; the recording is decoded once per pass):
1. decode block by block (`AudioStream`) and score every 32-ms frame with Silero VAD; utterances
   end at pauses (`speech_regions`: pauses of 0.5 s split, over 15 s is split);
2. speaker turns (`diarization.Diarizer`, when the voice encoder is installed): a speaker embedding
   every 0.75 s of speech, clustered; a region is split where its speaker changes;
3. cut each utterance out as its blocks pass and transcribe it (when the model reads text and no
   transcript was given);
4. classify it with the recognizer's own `prepare` / `predict_prepared`, exactly as
   `EmotionRecognizer.predict` would classify that clip;
5. summary: overall and per speaker (speaking time, time per emotion, overall emotion), the
   probabilities averaged over the segments weighted by their duration.

A segment Whisper finds no words in (a laugh, a sob, a cough) cannot be read by a model that needs
text. It is classified from its sound alone by the shipped speech-only model (``"speech"``: S-WTV
with the encoders extra, else S-CBLA) when that model has the same classes; its ``model`` field
then names it. Otherwise, and for any other
unusable segment, the segment carries an ``error`` and no label; the rest of the timeline stands.

A transcript given by the caller (``text=``) is the transcript of the whole recording: every
segment is classified with it (as every 2.5-s window of a long clip is), since which of its words
belong to which utterance is unknown.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Iterable, Iterator

import numpy as np
from tqdm import tqdm

from emofusion.audio import TARGET_SAMPLE_RATE, AudioSource
from emofusion.audio_stream import AudioStream
from emofusion.errors import ConfigError, EmofusionError, TextError

if TYPE_CHECKING:
    from emofusion.asr.transcriber import Transcriber
    from emofusion.asr.vad import Region, VadConfig
    from emofusion.inference.diarization import Diarizer
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
    speaker: str | None = None  # "S1", "S2", ... (diarization); None when speakers were not told apart
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
            "speaker": self.speaker,
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
    speakers: tuple["SpeakerSummary", ...] = ()  # one per speaker, in order of first appearance
    speaker_note: str | None = None  # why speakers were not told apart, when they were not

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
            "speakers": [s.to_json() for s in self.speakers],
            "speaker_note": self.speaker_note,
        }


@dataclass(frozen=True)
class SpeakerSummary:
    """Who felt what: one speaker's speaking time, time per emotion and overall emotion."""

    speaker: str
    speaking_s: float  # total duration of the speaker's segments
    emotion_s: dict[str, float]  # seconds of the speaker's classified segments per label (every class listed)
    label: str | None  # duration-weighted over the speaker's classified segments, as the timeline's
    probabilities: dict[str, float] | None
    segments: int

    def to_json(self) -> dict:
        return {
            "speaker": self.speaker,
            "speaking_s": round(self.speaking_s, 3),
            "emotion_s": {k: round(v, 3) for k, v in self.emotion_s.items()},
            "label": self.label,
            "probabilities": self.probabilities,
            "segments": self.segments,
        }


def summarise_speakers(segments: Iterable[Segment], labels: tuple[str, ...]) -> tuple[SpeakerSummary, ...]:
    """The per-speaker summary of segments that carry a ``speaker`` (in order of first appearance)."""
    by_speaker: dict[str, list[Segment]] = {}
    for s in segments:
        if s.speaker is not None:
            by_speaker.setdefault(s.speaker, []).append(s)
    out = []
    for speaker, own in by_speaker.items():
        emotion_s = {c: 0.0 for c in labels}
        for s in own:
            if s.label is not None:
                emotion_s[s.label] += s.duration
        label, probabilities = _overall(own, labels)
        out.append(SpeakerSummary(speaker, sum(s.duration for s in own), emotion_s, label, probabilities, len(own)))
    return tuple(out)


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
    diarize: bool | None = None,
    speakers: int | None = None,
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
        progress: a progress bar per pass over the recording, in seconds (stderr).
        diarize: tell speakers apart (`diarization.Diarizer`): None: when the voice encoder is
            installed (otherwise ``speaker_note`` says how to install it); True: always (an error
            without it); False: never (segments end at pauses only, ``speaker`` is None).
        speakers: how many speakers there are (None: found automatically); implies ``diarize``.

    Raises:
        AudioError: the recording cannot be decoded, is empty or too long.
        MissingExtraError: the ``asr`` extra is not installed, or speakers were asked for
            (``diarize=True`` or ``speakers``) without the voice encoder.
        ConfigError: ``speakers`` below 1, or given with ``diarize=False``.
    """
    from emofusion.asr.transcriber import Transcriber
    from emofusion.asr.vad import Region, SpeechDetector, VadConfig, speech_regions

    clock = _Clock()
    stream = AudioStream.open(audio, sample_rate, max_seconds=max_seconds, name=name)
    rate, bars = stream.target_rate, _Progress(stream.duration_s, progress)
    diarizer, speaker_note = _diarizer(diarize, speakers, recognizer.device)

    # 1. Decode and find speech (first pass): Silero VAD over every 32-ms frame, utterances at pauses.
    with clock("vad"):
        blocks = bars.over_blocks(stream.blocks(), "voice activity", rate)
        regions = speech_regions(SpeechDetector.load().scan(blocks), stream.duration_s, vad or VadConfig())

    # 2. Speaker turns (second pass): a region is split where its speaker changes, not only at pauses.
    utterances: dict[Region, str | None] = {region: None for region in regions}
    if diarizer is not None and regions:
        with clock("speakers"):
            bar = bars.bar("speakers")
            for region, samples in cut_regions(stream.blocks(), regions, rate):
                diarizer.add(region.start, region.end, samples, rate)
                bar.to(region.end)
            utterances = {Region(t.start, t.end): t.speaker for t in diarizer.turns(speakers)}
            bar.close()

    # 3. Transcription and 4. emotion, utterance by utterance (third pass; classified BATCH at a time).
    reads_text = recognizer.trained.pipeline.uses_text
    if not (reads_text and text is None and utterances):
        transcriber = None
    elif transcriber is None:
        transcriber = Transcriber.load(recognizer.asr)
    classifier = _Classifier(recognizer, fallback, clock.wall)
    bar = bars.bar("emotion" if transcriber is None else "words + emotion")
    for region, samples in cut_regions(stream.blocks(), list(utterances), rate):
        words = text if reads_text else None
        language = None
        if transcriber is not None:
            with clock("transcription"):
                heard = transcriber.hear(samples)
            # Words the model cannot read (another language, or Whisper unsure: `reads`) are none:
            # the segment is classified from its sound, by the speech-only fallback.
            words, language = (heard.text if recognizer.reads(heard) else ""), heard.language
        with clock("emotion", wall=False):  # the classifier times its own wall clock (its batches)
            classifier.add(region, samples, words, utterances[region])
            if language is not None:
                classifier.segments[-1] = replace(classifier.segments[-1], language=language)
        bar.to(region.end)
    with clock("emotion", wall=False):
        segments = classifier.finish()
    bar.close()

    # 5. Summary: overall and per speaker, duration-weighted over the classified segments.
    label, probabilities = _overall(segments, recognizer.labels)
    timings, cpu = clock.totals()
    return Timeline(
        label, probabilities, tuple(segments), stream.duration_s, recognizer.name,
        transcriber.name if transcriber is not None else None, timings, cpu,
        speakers=summarise_speakers(segments, recognizer.labels), speaker_note=speaker_note,
    )


def _diarizer(diarize: bool | None, speakers: int | None, device) -> tuple["Diarizer | None", str | None]:
    """The diarizer to use (None: speakers are not told apart) and, when skipped for want of it, why."""
    from emofusion.inference import diarization

    if speakers is not None and speakers < 1:
        raise ConfigError(f"--speakers must be at least 1, got {speakers}")
    if diarize is False:
        if speakers is not None:
            raise ConfigError("--speakers needs speaker turns: leave out --no-diarize")
        return None, None
    if diarize is None and speakers is None and not diarization.available():
        return None, diarization.SKIPPED
    return diarization.Diarizer.load(device), None  # asked for explicitly: a missing encoder is an error


class _Clock:
    """Wall and process-CPU seconds per stage (on a busy shared machine wall time measures the
    neighbours, CPU time the work)."""

    def __init__(self):
        self.started, self.cpu_started = time.perf_counter(), time.process_time()
        self.wall: dict[str, float] = {"vad": 0.0, "transcription": 0.0, "emotion": 0.0}
        self.cpu: dict[str, float] = dict(self.wall)

    @contextmanager
    def __call__(self, stage: str, wall: bool = True):
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            if wall:
                self.wall[stage] = self.wall.get(stage, 0.0) + time.perf_counter() - t0
            self.cpu[stage] = self.cpu.get(stage, 0.0) + time.process_time() - c0

    def totals(self) -> tuple[dict[str, float], dict[str, float]]:
        self.wall["total"] = time.perf_counter() - self.started
        self.cpu["total"] = time.process_time() - self.cpu_started
        return self.wall, self.cpu


class _Progress:
    """One progress bar per pass over the recording, in whole seconds (a float total such as 3604.1
    accumulates float noise in tqdm's counter: 3604.100000000002/3604.1)."""

    def __init__(self, duration_s: float, enabled: bool):
        self.total, self.enabled = max(1, math.ceil(duration_s)), enabled

    def bar(self, desc: str) -> "_Bar":
        return _Bar(tqdm(total=self.total, unit="s", desc=desc, disable=not self.enabled))

    def over_blocks(self, blocks: Iterable[np.ndarray], desc: str, rate: int) -> Iterator[np.ndarray]:
        """``blocks`` as they are, the bar advancing by each block's seconds (the VAD pass)."""
        bar, read = self.bar(desc), 0
        for block in blocks:
            yield block
            read += len(block)
            bar.to(read / rate)
        bar.close()


class _Bar:
    def __init__(self, bar: tqdm):
        self._bar = bar

    def to(self, seconds: float) -> None:
        step = min(self._bar.total, int(seconds)) - self._bar.n
        if step > 0:
            self._bar.update(step)

    def close(self) -> None:
        self.to(self._bar.total)
        self._bar.close()


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

    def add(self, region: "Region", samples: np.ndarray, words: str | None, speaker: str | None = None) -> None:
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
        self.segments.append(Segment(region.start, region.end, text, None, None, model.name if model else None, error,
                                     speaker=speaker))
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
                # replace(): whatever else a segment carries (its speaker...) stays as it was
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
