import io

import numpy as np
import pytest
import soundfile as sf

from emofusion.audio import load_audio
from emofusion.errors import AudioError


def _tone(rate, seconds=0.5, channels=1, freq=440.0):
    t = np.arange(int(rate * seconds)) / rate
    x = 0.5 * np.sin(2 * np.pi * freq * t)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_resamples_any_rate_to_16k_and_keeps_duration(tmp_path, rate):
    path = tmp_path / "tone.wav"
    sf.write(path, _tone(rate), rate)
    audio = load_audio(path)
    assert audio.sample_rate == 16000
    assert abs(audio.duration_s - 0.5) < 1e-3
    # The tone survives resampling: its spectrum peaks at 440 Hz.
    spectrum = np.abs(np.fft.rfft(audio.samples))
    assert abs(np.argmax(spectrum) * 16000 / len(audio.samples) - 440) < 3


def test_multichannel_is_averaged_to_mono(tmp_path):
    left = _tone(16000)
    stereo = np.stack([left, np.zeros_like(left)], axis=1)
    path = tmp_path / "stereo.flac"
    sf.write(path, stereo, 16000)
    audio = load_audio(path)
    assert audio.samples.ndim == 1
    np.testing.assert_allclose(audio.samples, left / 2, atol=1e-4)


def test_bytes_and_int16_arrays_decode_like_files(tmp_path):
    x = _tone(16000)
    buf = io.BytesIO()
    sf.write(buf, x, 16000, format="WAV", subtype="PCM_16")
    from_bytes = load_audio(buf.getvalue())
    from_int = load_audio((x * 32767).astype(np.int16), 16000)
    np.testing.assert_allclose(from_bytes.samples, from_int.samples, atol=1e-4)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_bytes(b"RIFF\x00\x00garbage-not-audio" * 10), "cannot decode"),
        (lambda p: sf.write(p, np.zeros(16000), 16000), "silent"),
        (lambda p: sf.write(p, np.zeros((0,)), 16000), "empty"),
    ],
    ids=["zero-bytes", "corrupt", "silence", "no-samples"],
)
def test_bad_files_raise_specific_errors(tmp_path, make, message):
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(AudioError, match=message) as info:
        load_audio(path)
    assert "bad.wav" in str(info.value)


def test_missing_file_and_overlong_audio_are_refused(tmp_path):
    with pytest.raises(AudioError, match="no such audio file"):
        load_audio(tmp_path / "nope.wav")
    with pytest.raises(AudioError, match="not a regular file"):
        load_audio(tmp_path)
    path = tmp_path / "long.wav"
    sf.write(path, _tone(16000, seconds=3.0), 16000)
    with pytest.raises(AudioError, match="exceeds the limit of 2 s"):
        load_audio(path, max_seconds=2)


def test_array_needs_sample_rate_and_finite_values():
    with pytest.raises(AudioError, match="sample rate is required"):
        load_audio(np.ones(100))
    with pytest.raises(AudioError, match="NaN"):
        load_audio(np.array([0.1, np.nan, 0.2]), 16000)
