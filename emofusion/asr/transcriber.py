"""Transcribe one utterance offline with faster-whisper (CTranslate2; int8 on CPU).

    >>> t = Transcriber.load()                     # doctest: +SKIP
    >>> t.transcribe(samples_16k)                  # doctest: +SKIP
    'Kids are talking by the door.'

Each utterance is transcribed on its own (after voice-activity segmentation), so the words given
to the emotion model are that utterance's words and nothing from its neighbours. Whisper always
encodes 30 s of (zero-padded) audio: we measured that cutting its encoder context to the
utterance's length, though 10-25x cheaper, makes tiny.en repeat itself (word error rate 3.5 instead
of 0.028 on 120 RAVDESS clips), so the full context stays.

Nothing is ever downloaded: the default model is the bundled tiny.en (`bundled.py`); another model
is a folder, or a faster-whisper name already in the local Hugging Face cache.
"""

from __future__ import annotations

import functools
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emofusion.bundled_whisper import MODEL_FILES, bundled_whisper_model
from emofusion.errors import ConfigError, MissingExtraError

SAMPLE_RATE = 16_000  # what Whisper's feature extractor expects


@dataclass(frozen=True)
class AsrConfig:
    model: str | None = None  # a faster-whisper model folder or name; None: the bundled tiny.en
    compute_type: str = "int8"  # int8 weights: ~3x faster than float32 on CPU, same transcripts here
    device: str = "cpu"
    cpu_threads: int = 0  # 0: one per core (more only time-slices the same cores)
    beam_size: int = 1  # greedy: word error rate 2.8% on 120 RAVDESS clips, a fraction of beam 5's cost
    language: str | None = None  # None: English for an English-only model, detected otherwise


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

    def transcribe(self, samples: np.ndarray) -> str:
        """The words of one utterance (16 kHz mono float samples); '' when Whisper hears none."""
        audio = np.ascontiguousarray(samples, dtype=np.float32)
        language = self.config.language
        if language is None and not self.model.model.is_multilingual:
            language = "en"
        with self._lock:
            segments, _ = self.model.transcribe(
                audio,
                language=language,
                beam_size=self.config.beam_size,
                # One utterance at a time: no text from a previous call may leak into this one.
                condition_on_previous_text=False,
                without_timestamps=True,
                vad_filter=False,  # segmentation is ours (vad.py), done once for the whole file
            )
            words = " ".join(s.text.strip() for s in segments)
        return " ".join(words.split())


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
