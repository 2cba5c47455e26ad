"""Decode audio from a path, bytes or an array into one mono float signal at the target rate.

Every later stage (features, inference, the HTTP service) goes through `load_audio`, so the
checks for corrupt, empty, silent and over-long input live in one place.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np
import soundfile as sf
import soxr

from emofusion.errors import AudioError

TARGET_SAMPLE_RATE = 16_000
# Peak below this (full scale = 1.0) is digital silence: -120 dBFS, below 16-bit dither.
SILENCE_PEAK = 1e-6

AudioSource = Union[str, Path, bytes, bytearray, np.ndarray]


@dataclass(frozen=True)
class Audio:
    """A decoded mono signal in [-1, 1] and its sample rate."""

    samples: np.ndarray  # float64, shape (n,)
    sample_rate: int

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate


def load_audio(
    source: AudioSource,
    sample_rate: int | None = None,
    *,
    target_rate: int = TARGET_SAMPLE_RATE,
    max_seconds: float | None = None,
    name: str | None = None,
) -> Audio:
    """Decode ``source`` to mono float64 at ``target_rate``.

    Arguments:
        source: a file path, the encoded bytes of a file (WAV/FLAC/OGG/...), or a numpy array of
            samples (shape (n,) or (n, channels); integer arrays are scaled to [-1, 1]).
        sample_rate: required with an array, ignored otherwise.
        target_rate: rate to resample to (soxr, high quality).
        max_seconds: refuse longer input rather than decode minutes of audio by surprise.
        name: how to name the input in error messages (defaults to the path).

    Raises:
        AudioError: undecodable, empty, silent, wrong-shaped or over-long input.
    """
    label = name or (str(source) if isinstance(source, (str, Path)) else type(source).__name__)
    if isinstance(source, np.ndarray):
        if sample_rate is None:
            raise AudioError(f"{label}: a sample rate is required with a numpy array")
        samples, rate = _from_array(source, label), int(sample_rate)
    else:
        samples, rate = _decode(source, label, max_seconds)
    if rate <= 0:
        raise AudioError(f"{label}: invalid sample rate {rate}")
    if samples.ndim == 2:
        # Channels are averaged: emotion is carried by the voice, not the stereo image.
        samples = samples.mean(axis=1)
    if samples.size == 0:
        raise AudioError(f"{label}: the audio is empty (0 samples)")
    if not np.all(np.isfinite(samples)):
        raise AudioError(f"{label}: the audio contains NaN or infinite samples")
    duration = samples.size / rate
    if max_seconds is not None and duration > max_seconds:
        raise AudioError(f"{label}: {duration:.1f} s of audio exceeds the limit of {max_seconds:g} s")
    if rate != target_rate:
        samples = soxr.resample(samples, rate, target_rate, quality="HQ")
        rate = target_rate
    if np.max(np.abs(samples)) < SILENCE_PEAK:
        raise AudioError(f"{label}: the audio is silent (peak below -120 dBFS)")
    return Audio(np.ascontiguousarray(samples, dtype=np.float64), rate)


def _from_array(array: np.ndarray, label: str) -> np.ndarray:
    if array.ndim not in (1, 2):
        raise AudioError(f"{label}: expected shape (samples,) or (samples, channels), got {array.shape}")
    if np.issubdtype(array.dtype, np.integer):
        info = np.iinfo(array.dtype)
        return array.astype(np.float64) / max(abs(info.min), info.max)
    if not np.issubdtype(array.dtype, np.floating):
        raise AudioError(f"{label}: unsupported sample dtype {array.dtype}")
    return array.astype(np.float64, copy=False)


def _decode(source, label: str, max_seconds: float | None) -> tuple[np.ndarray, int]:
    if isinstance(source, (bytes, bytearray)):
        if len(source) == 0:
            raise AudioError(f"{label}: the audio is empty (0 bytes)")
        handle = io.BytesIO(bytes(source))
    else:
        path = Path(source)
        if not path.exists():
            raise AudioError(f"{label}: no such audio file")
        if not path.is_file():
            raise AudioError(f"{label}: not a regular file (a folder or device?)")
        if path.stat().st_size == 0:
            raise AudioError(f"{label}: the audio file is empty (0 bytes)")
        handle = path
    try:
        with sf.SoundFile(handle) as f:
            rate = f.samplerate
            if max_seconds is not None and f.frames > max_seconds * rate + 1:
                raise AudioError(
                    f"{label}: {f.frames / rate:.1f} s of audio exceeds the limit of {max_seconds:g} s"
                )
            samples = f.read(dtype="float64", always_2d=True)
    except AudioError:
        raise
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        # libsndfile prefixes "Error opening <object repr>: "; the label already names the input.
        detail = re.sub(r"^Error opening .*?: ", "", str(exc)).strip() or type(exc).__name__
        raise AudioError(f"{label}: cannot decode audio ({detail})") from exc
    return samples, rate
