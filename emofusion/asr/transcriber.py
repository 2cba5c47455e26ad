"""Transcribe one utterance offline with faster-whisper (CTranslate2; int8 on CPU).

    >>> t = Transcriber.load()                     # doctest: +SKIP
    >>> t.transcribe(samples_16k)                  # doctest: +SKIP
    'Kids are talking by the door.'

Each utterance is transcribed on its own (after voice-activity segmentation), so the words given
to the emotion model are that utterance's words and nothing from its neighbours. Whisper always
encodes 30 s of (zero-padded) audio: we measured that cutting its encoder context to the
utterance's length, though 10-25x cheaper, makes tiny.en repeat itself (word error rate 3.5 instead
of 0.028 on 120 RAVDESS clips), so the full context stays.

Nothing is ever downloaded: the default model is the bundled tiny.en (`bundled.py`); ``"base"``
is multilingual Whisper base, joined and verified from its part packages
(`emofusion.bundled_whisper.whisper_model_folder`); another model is a folder, or a faster-whisper
name already in the local Hugging Face cache.

Which model by default: tiny.en. Measured on 30 RAVDESS clips (actors 01-04, 1 in 8), greedy,
int8, on this 2-core machine under load: tiny.en 0.39 CPU-s a clip, base 2.15 (5.5x); both heard
every clip, and both were sure of every English one. With base transcribing, the timeline (93% of
its 0.094 real-time factor is transcription) would run near 0.5x real time, over its 0.15 target.
base is what detects the language (espeak-ng German "de" at p=0.99, French "fr" at 0.85); tiny.en
detects none, but is unsure of foreign speech (below), which is what keeps its English nonsense out
of a fusion model. ``AsrConfig(model="base")`` / ``--asr-model base`` when the language matters.

`Transcriber.hear` gives the words with what Whisper says of them (`Heard`): the language detected
(a multilingual model detects it; an English-only model hears English), its probability, and the
utterance's confidence (mean token log-probability, probability of no speech). A model whose text
side reads English uses that to decide whether the words are worth reading (the recognizer).

A recording longer than Whisper's 30-s window is transcribed utterance by utterance
(`Transcriber.transcribe_long`): the voice-activity regions of `vad.py`, each transcribed on its
own. Whisper run on a whole 3-min recording in one go heard 30 of its 41 sentences (it skips
stretches after a pause) and took 1.4 GB on 9 min (issue 18); utterance by utterance every sentence
is heard and memory is one utterance's whatever the length. On 181 s of 57 TESS sentences: 57 heard
(54 in one go), 325 MiB peak (343 in one go), at 4.5x the CPU (32.9 vs 7.3 s: each utterance is
padded to Whisper's 30 s, see above). On 541 s of 173: 172 heard (161), 358 MiB (684), 1.5x the CPU
(96.8 vs 64.2 s). tests/asr/test_transcribe_long.py, benchmarks/bench_long_transcription.py.
"""

from __future__ import annotations

import functools
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from emofusion.audio_stream import check_abandoned
from emofusion.bundled_whisper import JOINED_MODELS, MODEL_FILES, bundled_whisper_model, whisper_model_folder
from emofusion.errors import ConfigError, MissingExtraError

if TYPE_CHECKING:
    from emofusion.asr.vad import VadConfig

SAMPLE_RATE = 16_000  # what Whisper's feature extractor expects
# Whisper hears 30 s at a time: a longer recording is transcribed utterance by utterance.
WHISPER_WINDOW_S = 30.0
# Below this mean token log-probability (or above this no-speech probability) the words are not
# read as evidence. Measured with tiny.en (greedy): 30 RAVDESS clips (actors 01-04) -0.27 at worst,
# median -0.11; German and French sentences spoken by espeak-ng, which tiny.en turns into English
# nonsense ("begin the stealing 1,000 in captain"), -0.89 to -1.26. -0.6 lies between, with room on
# both sides; Whisper's own failed-decode bound (-1) would have read two of those three German
# sentences. No-speech: 0.6 is Whisper's own bound (English clips: 0.21 at most).
# Checked in tests/asr/test_language.py.
MIN_AVG_LOGPROB = -0.6
MAX_NO_SPEECH_PROB = 0.6


@dataclass(frozen=True)
class Heard:
    """What Whisper heard in a recording: its words, their language, and how sure it was.

    ``language``: ISO 639-1 code ("en", "de"...) and its probability, detected by a multilingual
    model; None for an English-only model, which detects nothing: it writes English words whatever
    it hears, and its confidence (below) is what tells foreign speech. ``avg_logprob``: the mean log-probability of the
    words' tokens (Whisper's own "decoding failed" test is < -1); ``no_speech_prob``: Whisper's
    probability that there is no speech. Over several utterances each figure is the mean weighted
    by utterance duration, and ``language`` the one heard for the longest time. None: no words.
    """

    text: str
    language: str | None = None
    language_probability: float | None = None
    avg_logprob: float | None = None
    no_speech_prob: float | None = None
    utterances: int = 1

    @property
    def reliable(self) -> bool:
        """Whisper was sure enough of the words to read them (`MIN_AVG_LOGPROB`, `MAX_NO_SPEECH_PROB`)."""
        return (self.avg_logprob is not None and self.avg_logprob >= MIN_AVG_LOGPROB
                and (self.no_speech_prob is None or self.no_speech_prob <= MAX_NO_SPEECH_PROB))


@dataclass(frozen=True)
class AsrConfig:
    model: str | None = None  # a faster-whisper model folder or name; None: the bundled tiny.en
    compute_type: str = "int8"  # int8 weights: ~3x faster than float32 on CPU, same transcripts here
    device: str = "cpu"
    cpu_threads: int = 0  # 0: one per core (more only time-slices the same cores)
    beam_size: int = 1  # greedy: word error rate 2.8% on 120 RAVDESS clips, a fraction of beam 5's cost
    language: str | None = None  # None: English for an English-only model, detected otherwise
    # model: also "tiny.en" (the bundled one) or "base" (multilingual, joined from its part packages)


def _require_faster_whisper():
    try:
        import faster_whisper
    except ImportError as exc:
        raise MissingExtraError("asr", "transcription", "faster-whisper") from exc
    return faster_whisper


def resolve_model_folder(model: str | Path | None) -> Path:
    """A loadable folder for ``model`` (None: the bundled tiny.en), never touching the network."""
    if model is None:
        return bundled_whisper_model()
    if model in JOINED_MODELS:
        return whisper_model_folder(model)
    path = Path(model).expanduser()
    if not path.exists():
        name = str(model)
        if "/" in name or "\\" in name or name.startswith("."):
            raise ConfigError(f"{model}: no such Whisper model folder")
        faster_whisper = _require_faster_whisper()
        try:
            # local_files_only: the Hugging Face cache is read, nothing is requested from the hub.
            path = Path(faster_whisper.utils.download_model(name, local_files_only=True))
        except ValueError as exc:  # not a faster-whisper size name
            raise ConfigError(f"{model}: not a Whisper model folder nor a faster-whisper model name ({exc})") from exc
        except Exception as exc:  # huggingface_hub's "not in the local cache" errors
            raise ConfigError(
                f"Whisper model {name!r} is not on this machine and emofusion never downloads: pass a model "
                f"folder, or fetch it once (e.g. huggingface-cli download Systran/faster-whisper-{name})"
            ) from exc
    if not path.is_dir():
        raise ConfigError(f"{path}: a Whisper model is a folder (CTranslate2 format), not a file")
    # Without tokenizer.json faster-whisper would fetch a tokenizer from the hub: refuse instead.
    missing = [name for name in MODEL_FILES if not (path / name).is_file()]
    if missing:
        raise ConfigError(f"{path}: not a CTranslate2 Whisper model folder (missing {', '.join(missing)})")
    return path


class Transcriber:
    """A loaded Whisper model. Thread-safe: concurrent calls take turns on the one model."""

    def __init__(self, model, config: AsrConfig, folder: Path):
        self.model = model
        self.config = config
        self.folder = folder
        self._lock = threading.Lock()

    @classmethod
    def load(cls, config: AsrConfig | None = None) -> "Transcriber":
        """Load (once per process and config: later calls return the same object)."""
        return _load_cached(config or AsrConfig())

    @property
    def name(self) -> str:
        return self.config.model or "whisper-tiny.en (bundled)"

    @property
    def multilingual(self) -> bool:
        return bool(self.model.model.is_multilingual)

    def transcribe(self, samples: np.ndarray) -> str:
        """The words of one utterance (16 kHz mono float samples); '' when Whisper hears none."""
        return self.hear(samples).text

    def hear(self, samples: np.ndarray) -> Heard:
        """The words of one utterance (16 kHz mono float samples), their language and confidence.

        Stops with `emofusion.audio_stream.Abandoned` before it starts when the work was abandoned.
        """
        check_abandoned()
        audio = np.ascontiguousarray(samples, dtype=np.float32)
        language = self.config.language
        if language is None and not self.multilingual:
            language = "en"
        with self._lock:
            segments, info = self.model.transcribe(
                audio,
                language=language,
                beam_size=self.config.beam_size,
                # One utterance at a time: no text from a previous call may leak into this one.
                condition_on_previous_text=False,
                without_timestamps=True,
                vad_filter=False,  # segmentation is ours (vad.py), done once for the whole file
            )
            segments = list(segments)  # the generator decodes: inside the lock
        words = " ".join(" ".join(s.text.strip() for s in segments).split())
        detected = (info.language, float(info.language_probability)) if self.multilingual else (None, None)
        if not words:
            return Heard("", *detected)
        weights = np.array([max(s.end - s.start, 1e-3) for s in segments])
        return Heard(
            words, *detected,
            float(np.average([s.avg_logprob for s in segments], weights=weights)),
            float(np.average([s.no_speech_prob for s in segments], weights=weights)),
        )

    def transcribe_long(self, samples: np.ndarray, vad: "VadConfig | None" = None) -> Heard:
        """The words of a recording of any length (16 kHz mono), transcribed utterance by utterance.

        Up to `WHISPER_WINDOW_S` it is one utterance (`hear`). Longer, the voice-activity regions
        (`emofusion.asr.vad.speech_regions`, the timeline's) are transcribed one at a time, so
        Whisper's memory is that of one utterance (at most ``vad.max_segment_s``), and their words
        joined in order. Stops between utterances once the work is abandoned (`abandon_when`).

        Arguments:
            samples: the recording, 16 kHz mono float.
            vad: voice-activity settings (default `VadConfig()`).
        Returns:
            `Heard`: the words of every utterance; language and confidence over them (weighted by
            duration; the language is the one heard for the longest time).
        """
        from emofusion.asr.vad import SpeechDetector, VadConfig, speech_regions

        if len(samples) <= WHISPER_WINDOW_S * SAMPLE_RATE:
            return self.hear(samples)
        block = int(WHISPER_WINDOW_S * SAMPLE_RATE)
        blocks = (samples[i : i + block] for i in range(0, len(samples), block))
        regions = speech_regions(SpeechDetector.load().scan(blocks), len(samples) / SAMPLE_RATE, vad or VadConfig())
        heard = [(r.duration, self.hear(samples[int(r.start * SAMPLE_RATE) : int(r.end * SAMPLE_RATE)])) for r in regions]
        return combine_heard([(d, h) for d, h in heard if h.text])


def combine_heard(parts: list[tuple[float, Heard]]) -> Heard:
    """One `Heard` for consecutive utterances ``(duration, heard)``: words joined in order, the language
    heard for the longest time, every figure a duration-weighted mean (``language_probability``
    over the utterances of that language)."""
    if not parts:
        return Heard("", utterances=0)
    seconds: dict[str | None, float] = {}
    for duration, h in parts:
        seconds[h.language] = seconds.get(h.language, 0.0) + duration
    language = max(seconds, key=seconds.get)
    same = [(d, h) for d, h in parts if h.language == language and h.language_probability is not None]

    def mean(pairs, value):
        pairs = [(d, value(h)) for d, h in pairs if value(h) is not None]
        return float(np.average([v for _, v in pairs], weights=[d for d, _ in pairs])) if pairs else None

    return Heard(
        " ".join(h.text for _, h in parts), language, mean(same, lambda h: h.language_probability),
        mean(parts, lambda h: h.avg_logprob), mean(parts, lambda h: h.no_speech_prob), len(parts),
    )


@functools.lru_cache(maxsize=4)
def _load_cached(config: AsrConfig) -> Transcriber:
    faster_whisper = _require_faster_whisper()
    folder = resolve_model_folder(config.model)
    try:
        model = faster_whisper.WhisperModel(
            str(folder), device=config.device, compute_type=config.compute_type,
            cpu_threads=config.cpu_threads or os.cpu_count() or 1, local_files_only=True,
        )
    except (RuntimeError, ValueError, OSError) as exc:
        raise ConfigError(f"{folder}: cannot load the Whisper model ({exc})") from exc
    return Transcriber(model, config, folder)
