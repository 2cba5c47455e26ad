"""Decode a long recording block by block, so memory stays bounded whatever its length.

`load_audio` (audio.py) decodes a whole utterance into one array; a two-hour call would be 900 MB
of float64 before any work starts. `AudioStream` decodes and resamples (soxr's streaming
resampler, the same HQ filter as `load_audio`) one block at a time, and can be read any number of
times: the timeline reads it once to find speech and once more to cut the utterances out.

    >>> stream = AudioStream.open("call.flac", max_seconds=7200)     # doctest: +SKIP
    >>> for block in stream.blocks():                                # float64, 16 kHz mono
    ...     ...
"""

from __future__ import annotations

import io
import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile as sf
import soxr

from emofusion.audio import TARGET_SAMPLE_RATE, AudioSource, _check_header, _open, cut_short, warn_cut_short
from emofusion.errors import AudioError

# Thirty seconds a block: large enough that per-block overhead vanishes, small enough (2.9 MB of
# 48 kHz stereo float64) that memory is set by the block, not the recording.
BLOCK_SECONDS = 30.0


class Abandoned(Exception):
    """Long work stopped because whoever asked for it has gone (a service client disconnected).

    Not an `EmofusionError`: nothing was wrong with the input, and nobody is left to tell."""


_abandon = threading.local()


@contextmanager
def abandon_when(event: threading.Event | None) -> Iterator[None]:
    """Within this block, on this thread, long work stops (`Abandoned`) once ``event`` is set.

    Checked where long work has natural seams: every block a stream decodes (`AudioStream.blocks`)
    and every utterance the transcriber starts (`check_abandoned`). The service sets the event
    when a client disconnects; a seam is at most one 30-s block or one utterance apart, so the
    work stops within about a second of CPU instead of running to the end for nobody.
    """
    previous = getattr(_abandon, "event", None)
    _abandon.event = event
    try:
        yield
    finally:
        _abandon.event = previous


def check_abandoned() -> None:
    """Raise `Abandoned` if the work running on this thread was abandoned (`abandon_when`)."""
    event = getattr(_abandon, "event", None)
    if event is not None and event.is_set():
        raise Abandoned("the client that asked for this work has gone")


@dataclass(frozen=True)
class AudioStream:
    """A recording that can be decoded block by block, as mono float64 at ``target_rate``."""

    source: object  # a Path, encoded bytes, or a numpy array (samples,) / (samples, channels)
    rate: int  # the source's own sample rate
    frames: int  # the source's length in samples, from its header (checked again while decoding)
    label: str
    target_rate: int = TARGET_SAMPLE_RATE
    max_seconds: float | None = None
    # Source frames found by the last complete pass, when fewer than the header declared.
    _decoded: dict = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def open(
        cls,
        source: AudioSource,
        sample_rate: int | None = None,
        *,
        target_rate: int = TARGET_SAMPLE_RATE,
        max_seconds: float | None = None,
        name: str | None = None,
    ) -> "AudioStream":
        """Check ``source`` (readable, not empty, not over ``max_seconds``) without decoding it."""
        label = name or (str(source) if isinstance(source, (str, Path)) else type(source).__name__)
        if isinstance(source, np.ndarray):
            if sample_rate is None:
                raise AudioError(f"{label}: a sample rate is required with a numpy array")
            if source.ndim not in (1, 2) or not (np.issubdtype(source.dtype, np.floating)
                                                  or np.issubdtype(source.dtype, np.integer)):
                raise AudioError(f"{label}: expected float or integer samples of shape (samples,) or "
                                 f"(samples, channels), got {source.dtype} {source.shape}")
            stream = cls(source, int(sample_rate), len(source), label, target_rate, max_seconds)
        else:
            if isinstance(source, (bytes, bytearray)):
                if not source:
                    raise AudioError(f"{label}: the audio is empty (0 bytes)")
                source = bytes(source)
            else:
                source = Path(source)
                if not source.exists():
                    raise AudioError(f"{label}: no such audio file")
                if not source.is_file():
                    raise AudioError(f"{label}: not a regular file (a folder or device?)")
                if source.stat().st_size == 0:
                    raise AudioError(f"{label}: the audio file is empty (0 bytes)")
            with _open_sound(source, label) as f:
                rate, frames = f.samplerate, f.frames
            stream = cls(source, rate, frames, label, target_rate, max_seconds)
        # The header checks load_audio makes (rate 8-48 kHz, channels, length): one home, in audio.py.
        with _open(stream.source, stream.rate, label) as header:
            _check_header(header, label, max_seconds)
        return stream

    @property
    def duration_s(self) -> float:
        """The recording's length: the header's until a pass has decoded it all, then the decoded
        length (a truncated MP3 declares the length it had before it was cut)."""
        return self._decoded.get("frames", self.frames) / self.rate

    @property
    def note(self) -> str | None:
        """Set once a complete pass found the file cut short (`emofusion.audio.cut_short`)."""
        return self._decoded.get("note")

    def blocks(self, block_seconds: float = BLOCK_SECONDS) -> Iterator[np.ndarray]:
        """Consecutive blocks of the whole recording: mono float64 at ``target_rate``."""
        size = max(1, int(block_seconds * self.rate))
        resampler = None
        if self.rate != self.target_rate:
            resampler = soxr.ResampleStream(self.rate, self.target_rate, 1, dtype="float64", quality="HQ")
        read = 0
        for block, last in _with_last(self._source_blocks(size)):
            check_abandoned()
            read += len(block)
            self._check_length(read)
            if not np.all(np.isfinite(block)):
                raise AudioError(f"{self.label}: the audio contains NaN or infinite samples")
            if resampler is not None:
                block = resampler.resample_chunk(block, last=last)
            if len(block):
                yield block
        if "frames" not in self._decoded and not isinstance(self.source, np.ndarray):
            note = cut_short(self.label, self.frames, read, self.rate)
            if note:  # said once, at the end of the first complete pass
                self._decoded.update(frames=read, note=note)
                warn_cut_short(note)

    def _source_blocks(self, size: int) -> Iterator[np.ndarray]:
        if isinstance(self.source, np.ndarray):
            for start in range(0, len(self.source), size):
                yield _mono(_as_float(self.source[start : start + size]))
            return
        handle = io.BytesIO(self.source) if isinstance(self.source, bytes) else self.source
        with _open_sound(handle, self.label) as f:
            try:
                while True:
                    block = f.read(size, dtype="float64", always_2d=True)
                    if not len(block):
                        return
                    yield _mono(block)
            except (sf.LibsndfileError, RuntimeError) as exc:
                raise AudioError(f"{self.label}: cannot decode audio ({exc})") from exc

    def _check_length(self, frames: int) -> None:
        if self.max_seconds is not None and frames > self.max_seconds * self.rate + 1:
            raise AudioError(f"{self.label}: {frames / self.rate:.1f} s of audio exceeds the limit of {self.max_seconds:g} s")


def _open_sound(handle, label: str) -> sf.SoundFile:
    try:
        return sf.SoundFile(io.BytesIO(handle) if isinstance(handle, bytes) else handle)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        detail = re.sub(r"^Error opening .*?: ", "", str(exc)).strip() or type(exc).__name__
        raise AudioError(f"{label}: cannot decode audio ({detail})") from exc


def _as_float(block: np.ndarray) -> np.ndarray:
    if np.issubdtype(block.dtype, np.integer):
        info = np.iinfo(block.dtype)
        return block.astype(np.float64) / max(abs(info.min), info.max)
    return block.astype(np.float64, copy=False)


def _mono(block: np.ndarray) -> np.ndarray:
    # Channels are averaged, as load_audio does: emotion is in the voice, not the stereo image.
    return np.ascontiguousarray(block.mean(axis=1) if block.ndim == 2 else block)


def _with_last(iterator):
    """(item, is_last) pairs: the resampler must be told which block ends the signal."""
    previous = None
    for item in iterator:
        if previous is not None:
            yield previous, False
        previous = item
    if previous is not None:
        yield previous, True
