"""A file cut short (an interrupted download) reports what it holds, and says it was cut (issue 18.6).

A truncated MP3 keeps its header, which declares the length before the cut: libsndfile reports
that length, and decoding yields less. Made here from real speech: an example clip repeated to
20 s, encoded as MP3 by libsndfile, and its bytes cut in half.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emofusion.audio import cut_short, load_audio
from emofusion.audio_stream import AudioStream

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
RATE = 16_000


@pytest.fixture(scope="module")
def mp3() -> bytes:
    if "MP3" not in sf.available_formats():
        pytest.skip("this libsndfile has no MP3 (needs libsndfile >= 1.1: pip install -U soundfile)")
    speech = load_audio(EXAMPLES / "angry.flac").samples
    samples = np.tile(speech, int(np.ceil(20 * RATE / len(speech))))[: 20 * RATE]
    buffer = io.BytesIO()
    sf.write(buffer, samples, RATE, format="MP3")
    return buffer.getvalue()


def decoded_seconds(data: bytes) -> float:
    with sf.SoundFile(io.BytesIO(data)) as f:
        return len(f.read()) / f.samplerate


def test_a_whole_mp3_decodes_to_its_declared_length_with_no_note(mp3, caplog):
    with caplog.at_level(logging.WARNING, "emofusion.audio"):
        audio = load_audio(mp3)
        stream = AudioStream.open(mp3)
        sum(len(b) for b in stream.blocks())
    assert audio.duration_s == pytest.approx(20.0, abs=1e-3) and audio.note is None
    assert stream.duration_s == pytest.approx(20.0, abs=1e-3) and stream.note is None
    assert not caplog.records


def test_a_truncated_mp3_reports_its_decoded_duration_and_says_it_was_cut(mp3, caplog):
    cut = mp3[: len(mp3) // 2]
    assert sf.info(io.BytesIO(cut)).duration == pytest.approx(20.0, abs=1e-3)  # the header still says 20 s
    really = decoded_seconds(cut)
    assert 8 < really < 12
    with caplog.at_level(logging.WARNING, "emofusion.audio"):
        audio = load_audio(cut, name="call.mp3")
    assert audio.duration_s == pytest.approx(really, abs=0.01)
    assert audio.note == (f"call.mp3: the file was cut short: its header declares 20.0 s, only {really:.1f} s "
                          "could be decoded (that part is used)")
    assert [r.getMessage() for r in caplog.records] == [audio.note]

    stream = AudioStream.open(cut, name="call.mp3")
    assert stream.duration_s == pytest.approx(20.0, abs=1e-3)  # before decoding, only the header is known
    with caplog.at_level(logging.WARNING, "emofusion.audio"):
        for _ in range(2):  # the timeline reads a stream more than once: said once
            decoded = sum(len(b) for b in stream.blocks()) / RATE
    assert stream.duration_s == pytest.approx(really, abs=0.01) and decoded == pytest.approx(really, abs=0.01)
    assert stream.note == audio.note and len(caplog.records) == 2  # load_audio's, then the stream's


def test_the_slack_allowed_before_calling_a_file_cut():
    assert cut_short("x", 16_000 * 10, 16_000 * 10 - 800, 16_000) is None  # 50 ms short: encoder padding
    assert cut_short("x", 16_000 * 100, 16_000 * 99, 16_000) is None  # 1% short
    assert "declares 10.0 s, only 9.0 s" in cut_short("x", 16_000 * 10, 16_000 * 9, 16_000)
