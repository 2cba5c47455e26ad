"""Block-by-block decoding gives exactly what whole-file decoding gives, with the same checks."""

import io

import numpy as np
import pytest
import soundfile as sf

from emofusion.audio import load_audio
from emofusion.audio_stream import AudioStream
from emofusion.errors import AudioError


def tone(seconds, rate, channels=1):
    t = np.arange(int(seconds * rate)) / rate
    x = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * np.sin(2 * np.pi * 3100 * t)
    return np.stack([x * (1 - 0.3 * c) for c in range(channels)], axis=1) if channels > 1 else x


@pytest.mark.parametrize("rate, channels, fmt", [(16_000, 1, "WAV"), (44_100, 2, "FLAC"), (8_000, 1, "OGG")])
def test_blocks_join_to_the_whole_file_decode(tmp_path, rate, channels, fmt):
    path = tmp_path / f"clip.{fmt.lower()}"
    sf.write(path, tone(3.3, rate, channels), rate, format=fmt)
    whole = load_audio(path).samples
    stream = AudioStream.open(path)
    for block_seconds in (0.37, 1.0, 30.0):
        joined = np.concatenate(list(stream.blocks(block_seconds)))
        assert len(joined) == len(whole)
        # the streaming resampler is the whole-signal one, chunked: identical samples
        np.testing.assert_allclose(joined, whole, atol=1e-12)
    assert stream.duration_s == pytest.approx(3.3, abs=1e-3)


def test_arrays_and_bytes_stream_too(tmp_path):
    x = tone(2.0, 22_050, channels=2)
    from_array = np.concatenate(list(AudioStream.open(x, 22_050).blocks(0.5)))
    np.testing.assert_allclose(from_array, load_audio(x, 22_050).samples, atol=1e-12)
    buffer = io.BytesIO()
    sf.write(buffer, x, 22_050, format="WAV", subtype="FLOAT")
    from_bytes = np.concatenate(list(AudioStream.open(buffer.getvalue()).blocks(0.5)))
    np.testing.assert_allclose(from_bytes, from_array, atol=1e-6)
    ints = (x[:, 0] * 32767).astype(np.int16)
    np.testing.assert_allclose(np.concatenate(list(AudioStream.open(ints, 22_050).blocks())),
                               load_audio(ints, 22_050).samples, atol=1e-12)


def test_over_long_audio_is_refused_before_decoding(tmp_path):
    path = tmp_path / "long.wav"
    sf.write(path, np.zeros(16_000 * 5), 16_000)
    with pytest.raises(AudioError, match="5.0 s of audio exceeds the limit of 4 s"):
        AudioStream.open(path, max_seconds=4)


def test_a_header_that_understates_the_length_is_caught_while_decoding():
    x = tone(3.0, 16_000)
    stream = AudioStream(x, 16_000, frames=16_000, label="lying header", max_seconds=2.0)
    with pytest.raises(AudioError, match="lying header: 2.5 s of audio exceeds the limit of 2 s"):
        list(stream.blocks(0.5))


@pytest.mark.parametrize("source, message", [
    (b"", "empty"), (b"not audio at all" * 10, "cannot decode audio"), ("missing.wav", "no such audio file"),
])
def test_bad_sources_say_what_is_wrong(source, message):
    with pytest.raises(AudioError, match=message):
        AudioStream.open(source)


def test_nan_samples_and_arrays_without_a_rate_are_refused():
    with pytest.raises(AudioError, match="sample rate is required"):
        AudioStream.open(np.zeros(100))
    bad = np.zeros(16_000)
    bad[500] = np.nan
    with pytest.raises(AudioError, match="NaN"):
        list(AudioStream.open(bad, 16_000).blocks())


def test_the_header_checks_are_load_audios(tmp_path):
    # A rate outside 8-48 kHz (resampling 1 Hz would multiply the samples 16,000-fold) is refused
    # before decoding, with load_audio's own message.
    path = tmp_path / "odd.wav"
    sf.write(path, np.zeros(4000) + 0.1, 4000)
    with pytest.raises(AudioError) as streamed:
        AudioStream.open(path)
    with pytest.raises(AudioError) as whole:
        load_audio(path)
    assert str(streamed.value) == str(whole.value) and "outside the supported" in str(streamed.value)
