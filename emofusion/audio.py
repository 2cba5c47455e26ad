"""Decode audio from a path, bytes or an array into one mono float signal at the target rate.

Every later stage (features, inference, the HTTP service) goes through `load_audio`, so the
checks for corrupt, empty, too short, silent, over-long and out-of-range input live in one place.

Decoding is bounded by the header before any sample is read (rate 8-48 kHz, at most 8 channels,
duration), then streamed: blocks of ``_BLOCK_FRAMES`` frames are read, averaged to mono and fed to
a streaming resampler, so memory is a constant plus the mono output, whatever the channel count
or rate. (A 236 KB FLAC of 8 constant channels at 48 kHz for 599 s used to expand to 2 GB of
float64 before any check.) The samples are the same, bit for bit, as decoding the whole file,
averaging its channels and resampling it in one call.

Scale: samples have full scale 1.0 (16-bit PCM value ``v`` becomes ``v / 32768`` exactly, which
is what libsndfile returns). The acoustic features turn that into the int16 scale that
pyAudioAnalysis's reader returns; see :mod:`emofusion.features.acoustic`.
"""

from __future__ import annotations

import io
import logging
import math
import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Union

import numpy as np
import soundfile as sf
import soxr

from emofusion.errors import AudioError

TARGET_SAMPLE_RATE = 16_000
# The input rates we accept: telephone (8 kHz) to studio (48 kHz). Checked from the header, so a
# file claiming 1 Hz (500 samples = 500 s, resampled to 8 M samples) or 655,350 Hz costs nothing.
MIN_SAMPLE_RATE = 8_000
MAX_SAMPLE_RATE = 48_000
# 7.1 surround, and FLAC's own maximum. Decoding work grows with channels x frames, so this with the
# rate and duration limits bounds it (8 x 48 kHz x 600 s); more channels is a microphone array,
# which wants beamforming rather than an average.
MAX_CHANNELS = 8
# Shorter input is refused: 0.1 s is four 25-ms frame steps, two 50-ms windows.
MIN_SECONDS = 0.1
# Largest deviation from the mean (full scale = 1.0) below which the audio is silent: -120 dBFS.
# 16-bit audio's smallest step is 3.1e-5 (-90 dBFS) and the best converters' noise floors sit near
# -120 dBFS, so anything quieter is rounding residue, not sound. Judged after removing the DC offset,
# because that is what the features' peak normalisation would blow up to full scale.
SILENCE_PEAK = 1e-6
SILENCE_DBFS = round(20 * math.log10(SILENCE_PEAK))  # -120, for messages and the README

# Frames per decoded block. Float64 blocks keep the samples identical to a whole-file decode for
# every format (float32 would round 32-bit PCM); at 8 channels a block is 4 MiB, a constant.
_BLOCK_FRAMES = 65_536
# libsndfile's frame count when the header does not say (a FLAC stream written without its total).
# Refused: libsndfile cannot read such a file to its end through soundfile (a seek fails there).
_UNKNOWN_FRAMES = 2**63 - 1
# Most output preallocated (an hour at 16 kHz is 460 MB of address space; only touched pages cost
# memory): a header claiming days cannot make the allocation fail. Longer output is joined at the end.
_PREALLOCATE_MAX_S = 3600

AudioSource = Union[str, Path, bytes, bytearray, np.ndarray]

log = logging.getLogger("emofusion.audio")


@dataclass(frozen=True)
class Audio:
    """A decoded mono signal (full scale 1.0) and its sample rate."""

    samples: np.ndarray  # float64, shape (n,)
    sample_rate: int
    note: str | None = None  # e.g. that the file was cut short (`cut_short`)

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate


def cut_short(label: str, declared_frames: int, decoded_frames: int, rate: int) -> str | None:
    """A note when fewer frames decoded than the header declared, else None.

    A whole MP3, OGG, FLAC or WAV decodes to exactly its declared length (soundfile 0.13, libsndfile
    1.2); a truncated MP3 keeps its header's length (61 s declared for 31 s of audio), so the
    header alone would report the wrong duration. 50 ms or 1% of slack, whichever is more.
    """
    if declared_frames >= _UNKNOWN_FRAMES or declared_frames - decoded_frames <= max(0.05 * rate, 0.01 * declared_frames):
        return None
    return (f"{label}: the file was cut short: its header declares {declared_frames / rate:.1f} s, "
            f"only {decoded_frames / rate:.1f} s could be decoded (that part is used)")


def warn_cut_short(note: str) -> None:
    """Say it on the log (stderr when nothing else is configured: the CLI's and the server's)."""
    log.warning(note)


@dataclass
class _Stream:
    """What a header says, and the decoded blocks (float64, shape (frames, channels)) after it."""

    rate: int
    channels: int
    frames: int
    blocks: Callable[[], Iterator[np.ndarray]]


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
            samples (shape (n,) or (n, channels); integer arrays are scaled to full scale 1.0, float
            arrays are taken to have full scale 1.0).
        sample_rate: required with an array, ignored otherwise.
        target_rate: rate to resample to (soxr, high quality).
        max_seconds: refuse longer input (from the header, before decoding).
        name: how to name the input in error messages (defaults to the path).

    Raises:
        AudioError: undecodable, empty, shorter than ``MIN_SECONDS``, silent, wrong-shaped or
            over-long input, a rate outside ``MIN_SAMPLE_RATE``-``MAX_SAMPLE_RATE`` or more than
            ``MAX_CHANNELS`` channels.
    """
    label = name or (str(source) if isinstance(source, (str, Path)) else type(source).__name__)
    with _open(source, sample_rate, label) as stream:
        _check_header(stream, label, max_seconds)
        samples, decoded = _decode_mono(stream, label, target_rate, max_seconds)
    note = cut_short(label, stream.frames, decoded, stream.rate)
    if note:
        warn_cut_short(note)
    return Audio(samples, target_rate, note)


# ---------------------------------------------------------------- opening: header and blocks


@contextmanager
def _open(source, sample_rate, label: str) -> Iterator[_Stream]:
    if isinstance(source, np.ndarray):
        if sample_rate is None:
            raise AudioError(f"{label}: a sample rate is required with a numpy array")
        yield _array_stream(source, sample_rate, label)
        return
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
    with _decode_errors(label):
        f = sf.SoundFile(handle)
    try:
        if f.frames == _UNKNOWN_FRAMES:
            raise AudioError(f"{label}: the header does not state the audio's length; re-encode the file")
        yield _Stream(f.samplerate, f.channels, f.frames, lambda: _file_blocks(f, label))
    finally:
        f.close()


def _file_blocks(f: sf.SoundFile, label: str) -> Iterator[np.ndarray]:
    size = max(1, min(_BLOCK_FRAMES, f.frames))
    buffer = np.empty((size, f.channels), dtype=np.float64)  # reused: one block's memory in all
    while True:
        with _decode_errors(label):
            block = f.read(dtype="float64", always_2d=True, out=buffer)
        if len(block) == 0:
            return
        yield block


@contextmanager
def _decode_errors(label: str):
    try:
        yield
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        # libsndfile prefixes "Error opening <object repr>: "; the label already names the input.
        detail = re.sub(r"^Error opening .*?: ", "", str(exc)).strip() or type(exc).__name__
        raise AudioError(f"{label}: cannot decode audio ({detail})") from exc


def _array_stream(array: np.ndarray, sample_rate, label: str) -> _Stream:
    if array.ndim not in (1, 2):
        raise AudioError(f"{label}: expected shape (samples,) or (samples, channels), got {array.shape}")
    if np.issubdtype(array.dtype, np.integer):
        info = np.iinfo(array.dtype)
        scale = float(max(abs(info.min), info.max))  # int16 -> 32768: v / 32768, exact
    elif np.issubdtype(array.dtype, np.floating):
        scale = 1.0
    else:
        raise AudioError(f"{label}: unsupported sample dtype {array.dtype}")
    try:
        rate = float(sample_rate)
    except (TypeError, ValueError):
        rate = math.nan
    if isinstance(sample_rate, bool) or not rate.is_integer():
        raise AudioError(f"{label}: the sample rate must be a whole number of Hz, got {sample_rate!r}")
    frames = array[:, None] if array.ndim == 1 else array  # a view

    def blocks() -> Iterator[np.ndarray]:
        for start in range(0, len(frames), _BLOCK_FRAMES):
            block = frames[start : start + _BLOCK_FRAMES].astype(np.float64)
            if scale != 1.0:
                block /= scale
            yield block

    return _Stream(int(rate), frames.shape[1], len(frames), blocks)


# ---------------------------------------------------------------- checks and streaming decode


def _check_header(stream: _Stream, label: str, max_seconds: float | None) -> None:
    """Refuse what the header alone shows to be unusable, before decoding a sample."""
    rate = stream.rate
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise AudioError(
            f"{label}: sample rate {rate} Hz is outside the supported "
            f"{MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz"
        )
    if stream.channels < 1:
        raise AudioError(f"{label}: the audio has no channels")
    if stream.channels > MAX_CHANNELS:
        raise AudioError(
            f"{label}: {stream.channels} channels; at most {MAX_CHANNELS} are supported (mix down first)"
        )
    _check_duration(stream.frames, rate, label, max_seconds)


def _check_duration(frames: int, rate: int, label: str, max_seconds: float | None) -> None:
    if frames == 0:
        raise AudioError(f"{label}: the audio is empty (0 samples)")
    if frames / rate < MIN_SECONDS:
        raise AudioError(
            f"{label}: the audio is {1000 * frames / rate:.1f} ms long, shorter than the "
            f"{MIN_SECONDS:g} s minimum"
        )
    if max_seconds is not None and frames > max_seconds * rate + 1:
        raise AudioError(f"{label}: {frames / rate:.1f} s of audio exceeds the limit of {max_seconds:g} s")


def _decode_mono(stream: _Stream, label: str, target_rate: int, max_seconds: float | None) -> tuple[np.ndarray, int]:
    """Stream the blocks: average channels, resample, collect; check what the header could not.
    Returns the samples and the number of source frames decoded."""
    rate = stream.rate
    resampler = (
        None if rate == target_rate
        else soxr.ResampleStream(rate, target_rate, 1, dtype="float64", quality="HQ")  # = soxr.resample, tested
    )
    expected = min(stream.frames, _PREALLOCATE_MAX_S * rate)
    output = _Output(math.ceil(expected * target_rate / rate) + 16)  # + soxr's rounding of the length
    limit = math.inf if max_seconds is None else max_seconds * rate + 1
    n, total, low, high = 0, 0.0, math.inf, -math.inf
    for block in stream.blocks():
        # Channels are averaged: emotion is carried by the voice, not the stereo image.
        mono = block[:, 0] if block.shape[1] == 1 else block.mean(axis=1)
        block_sum = float(mono.sum())
        if not math.isfinite(block_sum) and not np.all(np.isfinite(mono)):  # the sum is the cheap test
            raise AudioError(f"{label}: the audio contains NaN or infinite samples")
        n += len(mono)
        if n > limit:  # a header that under-states the length
            raise AudioError(
                f"{label}: more than {max_seconds:g} s of audio (its header said {stream.frames / rate:.1f} s) "
                f"exceeds the limit of {max_seconds:g} s"
            )
        total += block_sum
        low, high = min(low, float(mono.min())), max(high, float(mono.max()))
        output.append(mono if resampler is None else resampler.resample_chunk(mono))
    if resampler is not None:
        output.append(resampler.resample_chunk(np.zeros(0), last=True))
    _check_duration(n, rate, label, max_seconds)  # what was decoded, whatever the header said
    # Silence in the decoded signal itself: the resampler turns a DC step at the edges into
    # ringing, so the resampled signal of a constant file is not constant.
    _check_not_silent(total / n, low, high, label)
    samples = output.result()
    if resampler is not None:
        # And in what the features see: content above the new Nyquist frequency is gone.
        _check_not_silent(float(samples.mean()), float(samples.min()), float(samples.max()), label)
    return samples, n


def _check_not_silent(mean: float, low: float, high: float, label: str) -> None:
    if max(high - mean, mean - low) < SILENCE_PEAK:
        raise AudioError(
            f"{label}: the audio is silent (below {SILENCE_DBFS} dBFS once its DC offset is removed)"
        )


class _Output:
    """The mono output, written into one array sized from the header, so the peak memory is the
    output itself rather than a list of chunks plus their concatenation. Untouched pages of an
    over-stated length cost no memory; output beyond it (an under-stated length) is joined at the end."""

    def __init__(self, capacity: int) -> None:
        self.buffer = np.empty(capacity, dtype=np.float64)
        self.size = 0
        self.overflow: list[np.ndarray] = []

    def append(self, chunk: np.ndarray) -> None:
        room = len(self.buffer) - self.size
        if len(chunk) <= room and not self.overflow:
            self.buffer[self.size : self.size + len(chunk)] = chunk
            self.size += len(chunk)
        else:
            self.buffer[self.size :] = chunk[:room]
            self.size = len(self.buffer)
            self.overflow.append(chunk[room:].copy())

    def result(self) -> np.ndarray:
        head = self.buffer[: self.size]
        return np.concatenate([head, *self.overflow]) if self.overflow else head
