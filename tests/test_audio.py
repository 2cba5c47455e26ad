"""Decoding: any rate/format/channel count to 16 kHz mono, the input checks (header limits,
duration, silence after DC removal), block decoding equal to a whole-file decode, and the memory a
decompression bomb can take."""

import io
import json
import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

import emofusion.audio as audio_module
from emofusion.audio import (
    MAX_CHANNELS,
    MAX_SAMPLE_RATE,
    MIN_SAMPLE_RATE,
    MIN_SECONDS,
    SILENCE_DBFS,
    load_audio,
)
from emofusion.errors import AudioError

REPO = Path(__file__).resolve().parents[1]


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


def test_16_bit_samples_are_the_pcm_values_over_32768_exactly(tmp_path):
    # The features rely on this scale (see emofusion/features/acoustic.py): value v -> v / 2^15.
    values = np.array([-32768, -12345, -1, 0, 1, 2, 32767] * 300, dtype=np.int16)
    path = tmp_path / "pcm.wav"
    sf.write(path, values, 16000, subtype="PCM_16")
    expected = values / 32768.0
    np.testing.assert_array_equal(load_audio(path).samples, expected)
    np.testing.assert_array_equal(load_audio(values, 16000).samples, expected)


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
        load_audio(np.r_[_tone(16000), np.nan], 16000)
    with pytest.raises(AudioError, match="whole number of Hz, got 'fast'"):
        load_audio(_tone(16000), "fast")
    with pytest.raises(AudioError, match=r"shape \(samples,\) or \(samples, channels\)"):
        load_audio(np.zeros((2, 2, 2)), 16000)


# ---------------------------------------------------------------- limits read from the header


def wav_with_rate(path: Path, rate: int, n: int = 500) -> Path:
    """A 16-bit mono WAV whose header declares ``rate`` (any uint32, beyond what writers allow)."""
    sf.write(path, 0.3 * np.sin(np.arange(n) / 3), 16000, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    assert data[24:28] == struct.pack("<I", 16000)  # the fmt chunk's sample rate
    data[24:28] = struct.pack("<I", rate)
    data[28:32] = struct.pack("<I", (2 * rate) % 2**32)  # byte rate
    path.write_bytes(bytes(data))
    return path


def flac_with_header(src: Path, dst: Path, rate: int, total_frames: int) -> Path:
    """A copy of ``src`` whose STREAMINFO claims another rate and length (20 + 36 bits at byte 18)."""
    data = bytearray(src.read_bytes())
    assert data[:4] == b"fLaC" and data[4] & 0x7F == 0  # STREAMINFO comes first
    fields = int.from_bytes(data[18:26], "big")
    channels_and_bits = (fields >> 36) & 0xFF
    data[18:26] = ((rate << 44) | (channels_and_bits << 36) | total_frames).to_bytes(8, "big")
    dst.write_bytes(bytes(data))
    return dst


@pytest.mark.parametrize("rate", [1, 4000, 7999, 48001, 96000, 2**31 - 1])
def test_rates_outside_8_to_48_khz_are_refused_from_the_header(tmp_path, rate):
    # 1 Hz: 500 samples declare 500 s, which resampling would turn into 8 M samples of work;
    # 2^31 - 1 Hz used to resample to nothing and fail with a raw ValueError.
    path = wav_with_rate(tmp_path / "odd.wav", rate)
    assert sf.info(str(path)).samplerate == rate
    with pytest.raises(AudioError, match=rf"odd\.wav: sample rate {rate} Hz is outside the supported 8000-48000 Hz"):
        load_audio(path)


def test_arrays_have_the_same_rate_range():
    for rate in (MIN_SAMPLE_RATE, MAX_SAMPLE_RATE):
        assert load_audio(_tone(rate), rate).sample_rate == 16000
    for rate in (MIN_SAMPLE_RATE - 1, MAX_SAMPLE_RATE + 1, 0, -16000):
        with pytest.raises(AudioError, match=f"sample rate {rate} Hz is outside"):
            load_audio(_tone(16000), rate)


def test_more_channels_than_the_limit_are_refused_from_the_header(tmp_path):
    path = tmp_path / "eight.wav"
    sf.write(path, _tone(16000, channels=MAX_CHANNELS), 16000)
    np.testing.assert_allclose(load_audio(path).samples, _tone(16000), atol=1e-4)
    for channels in (MAX_CHANNELS + 1, 64):
        path = tmp_path / f"many-{channels}.wav"
        sf.write(path, _tone(16000, seconds=0.2, channels=channels), 16000)
        with pytest.raises(AudioError, match=f"many-{channels}.wav: {channels} channels; at most 8"):
            load_audio(path)
    with pytest.raises(AudioError, match="9 channels; at most 8"):
        load_audio(_tone(16000, channels=9), 16000)


@pytest.mark.parametrize("rate", [8000, 16000, 44100])
def test_minimum_duration_is_enforced_and_exactly_the_minimum_passes(tmp_path, rate):
    shortest = int(round(MIN_SECONDS * rate))
    assert load_audio(_tone(rate, seconds=1.0)[:shortest], rate).duration_s == pytest.approx(MIN_SECONDS)
    path = tmp_path / "clip.wav"
    sf.write(path, _tone(rate, seconds=0.06), rate)  # 60 ms: one 50-ms window fits, but it is too short
    with pytest.raises(AudioError, match=r"clip\.wav: the audio is 60\.0 ms long, shorter than the 0\.1 s minimum"):
        load_audio(path)
    with pytest.raises(AudioError, match="shorter than the 0.1 s minimum"):
        load_audio(_tone(rate)[: shortest - 1], rate)


def test_flac_without_a_length_in_its_header_says_so(tmp_path):
    # A streaming encoder may write total_samples = 0 (unknown): libsndfile then reports 2^63 - 1
    # frames (this used to be "exceeds the limit" for a 3-s file) and fails to read to the end.
    source = tmp_path / "known.flac"
    sf.write(source, _tone(16000, seconds=3.0), 16000, subtype="PCM_16")
    unknown = flac_with_header(source, tmp_path / "unknown.flac", 16000, 0)
    assert sf.info(str(unknown)).frames == 2**63 - 1
    for max_seconds in (None, 600):
        with pytest.raises(AudioError, match=r"unknown\.flac: the header does not state the audio's length"):
            load_audio(unknown, max_seconds=max_seconds)


def test_a_stream_longer_than_its_header_says_is_still_limited():
    # libsndfile stops at the length a WAV or FLAC header declares, but a decoder that only
    # estimates it (e.g. variable-bitrate MP3) may deliver more: the limit holds while decoding.
    blocks = lambda: iter([_tone(16000, 1.0)[:, None]] * 3)  # noqa: E731 - 3 s behind a 1-s header
    stream = audio_module._Stream(16000, 1, 16000, blocks)
    with pytest.raises(AudioError, match=r"clip: more than 2 s of audio \(its header said 1\.0 s\) exceeds"):
        audio_module._decode_mono(stream, "clip", 16000, max_seconds=2)
    whole, decoded = audio_module._decode_mono(stream, "clip", 16000, max_seconds=None)  # past the preallocation
    np.testing.assert_array_equal(whole, np.tile(_tone(16000, 1.0), 3))
    assert decoded == 3 * 16000


# ---------------------------------------------------------------- silence after DC removal


def test_dc_offset_with_faint_noise_is_silent():
    # What the features amplify is the signal minus its mean: here 1e-7, which peak normalisation
    # would blow up 10^7 times. The 0.5 offset must not hide it.
    noise = 1e-7 * np.sin(np.arange(16000) * 0.7)
    with pytest.raises(AudioError, match=f"silent \\(below {SILENCE_DBFS} dBFS once its DC offset is removed\\)"):
        load_audio(0.5 + noise, 16000)
    quiet = 1e-5 * np.sin(np.arange(16000) * 0.7)  # -100 dBFS: quiet, but sound
    assert load_audio(0.5 + quiet, 16000).samples.size == 16000


def test_24_bit_dc_offset_with_one_step_of_noise_is_silent(tmp_path):
    step = 2.0**-23  # one 24-bit step, -138 dBFS
    signal = 0.3 + step * (np.arange(32000) % 2)
    path = tmp_path / "hum.flac"
    sf.write(path, signal, 16000, subtype="PCM_24")
    with pytest.raises(AudioError, match=r"hum\.flac: the audio is silent"):
        load_audio(path)


@pytest.mark.parametrize("rate", [16000, 48000])
@pytest.mark.parametrize("seconds", [1, 120])
def test_dc_only_files_are_silent_at_any_length_and_rate(tmp_path, rate, seconds):
    # Resampling turns the edges of a constant into ringing; judged before it, a constant is silent.
    path = tmp_path / "dc.flac"
    sf.write(path, np.full(rate * seconds, 0.25), rate, subtype="PCM_16")
    with pytest.raises(AudioError, match="silent"):
        load_audio(path)


def test_content_the_resampler_removes_is_silence(tmp_path):
    # A 20 kHz tone at 48 kHz (faded in and out, as a recording would be, rather than switched on
    # with a click): nothing of it is left below the 8 kHz Nyquist frequency of 16 kHz.
    tone = 0.5 * np.sin(2 * np.pi * 20000 * np.arange(48000) / 48000) * np.hanning(48000)
    path = tmp_path / "ultrasonic.wav"
    sf.write(path, tone, 48000, subtype="FLOAT")
    with pytest.raises(AudioError, match="silent"):
        load_audio(path)


# ---------------------------------------------------------------- block decoding


def whole_file_decode(source, rate_for_array=None) -> np.ndarray:
    """How load_audio decoded before it streamed: everything at once, then average, then resample."""
    if isinstance(source, np.ndarray):
        x, rate = source, rate_for_array
        if np.issubdtype(x.dtype, np.integer):
            info = np.iinfo(x.dtype)
            x = x.astype(np.float64) / max(abs(info.min), info.max)
        x = x.astype(np.float64).reshape(len(x), -1)
    else:
        x, rate = sf.read(source, dtype="float64", always_2d=True)
    x = x.mean(axis=1)
    return x if rate == 16000 else soxr.resample(x, rate, 16000, quality="HQ")


def speechlike(rate: int, seconds: float, channels: int, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(rate * seconds)
    t = np.arange(n) / rate
    voice = np.sin(2 * np.pi * (120 + 40 * np.sin(3 * t)) * t) * (0.5 + 0.4 * np.sin(2 * np.pi * 2 * t))
    return np.stack([0.6 * voice + 0.05 * rng.standard_normal(n) for _ in range(channels)], axis=1)


@pytest.mark.parametrize(
    "fmt, subtype, rate, channels",
    [
        ("WAV", "PCM_16", 16000, 1),
        ("WAV", "PCM_24", 44100, 2),
        ("WAV", "PCM_32", 32000, 2),
        ("WAV", "FLOAT", 8000, 1),
        ("FLAC", "PCM_16", 48000, 6),
        ("FLAC", "PCM_24", 22050, 8),
        ("OGG", "VORBIS", 48000, 2),
    ],
)
def test_block_decoding_gives_the_whole_file_decodes_samples(tmp_path, monkeypatch, fmt, subtype, rate, channels):
    path = tmp_path / f"clip.{fmt.lower()}"
    sf.write(path, speechlike(rate, 1.3, channels), rate, format=fmt, subtype=subtype)
    expected = whole_file_decode(path)
    monkeypatch.setattr(audio_module, "_BLOCK_FRAMES", 1000)  # many blocks, a short remainder
    np.testing.assert_array_equal(load_audio(path).samples, expected)
    np.testing.assert_array_equal(load_audio(path.read_bytes()).samples, expected)
    monkeypatch.setattr(audio_module, "_BLOCK_FRAMES", 65536)  # one block
    np.testing.assert_array_equal(load_audio(path).samples, expected)


@pytest.mark.parametrize("dtype, rate", [(np.int16, 44100), (np.float32, 16000), (np.float64, 22050), (np.int32, 8000)])
def test_block_decoding_of_arrays_gives_the_old_samples(monkeypatch, dtype, rate):
    x = speechlike(rate, 1.3, 2)
    if np.issubdtype(dtype, np.integer):
        x = np.round(x * 0.9 * np.iinfo(dtype).max).astype(dtype)
    else:
        x = x.astype(dtype)
    monkeypatch.setattr(audio_module, "_BLOCK_FRAMES", 777)
    for array in (x, x[:, 0]):
        np.testing.assert_array_equal(load_audio(array, rate).samples, whole_file_decode(array, rate))


# ---------------------------------------------------------------- decompression bombs: bounded memory

BOMB_SECONDS = 599  # just under the service's 600-s limit
# Peak RSS of decoding may exceed the process's RSS before decoding by at most the mono 16-kHz
# float64 output plus this (blocks, resampler state, allocator slack). The README states it.
DECODE_MEMORY_SLACK = 32 * 2**20


@pytest.fixture(scope="module")
def bombs(tmp_path_factory):
    """FLACs of a few hundred kB that decode to 8 channels x 48 kHz x 599 s (230 M samples)."""
    folder = tmp_path_factory.mktemp("bombs")
    constant = folder / "constant.flac"  # issue 8.1's file: every sample 0.25
    square = folder / "square.flac"  # channel 0 flips sign every half second: decodes, is not silent
    second = np.full((48000, 8), 8192, dtype=np.int16)
    flipped = second.copy()
    flipped[24000:, 0] = -8192
    with sf.SoundFile(constant, "w", 48000, 8, "PCM_16", format="FLAC") as f1, \
            sf.SoundFile(square, "w", 48000, 8, "PCM_16", format="FLAC") as f2:
        for _ in range(BOMB_SECONDS):
            f1.write(second)
            f2.write(flipped)
    # The largest FLAC rate, 655,350 Hz x 8 x 600 s, would be 25 GB as float64: only the header is needed.
    huge_rate = flac_with_header(constant, folder / "655350hz.flac", 655350, 600 * 655350)
    return {"constant": constant, "square": square, "655350 Hz": huge_rate}


PEAK_RSS_CHILD = """
import json, resource, sys
from emofusion.audio import load_audio
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
try:
    result = "decoded %.1f s" % load_audio(sys.argv[1], max_seconds=600).duration_s
except Exception as exc:
    result = "%s: %s" % (type(exc).__name__, exc)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"before": before, "peak": peak, "result": result}))
"""


def peak_rss_of_decoding(path: Path) -> dict:
    """Decode in a fresh interpreter and report its peak resident memory (ru_maxrss) around it."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", PEAK_RSS_CHILD, str(path)], capture_output=True,
                         text=True, env=env, timeout=300, check=True)
    return json.loads(out.stdout)


@pytest.mark.parametrize("name, outcome", [
    ("constant", r"AudioError: .*silent"),
    ("square", r"decoded 599\.0 s"),
    ("655350 Hz", r"AudioError: .*sample rate 655350 Hz is outside"),
])
def test_decoding_a_bomb_takes_no_more_memory_than_its_mono_16khz_output(bombs, name, outcome):
    path = bombs[name]
    assert path.stat().st_size < 1_000_000
    measured = peak_rss_of_decoding(path)
    assert re.match(outcome, measured["result"]), measured["result"]
    output_bytes = BOMB_SECONDS * 16000 * 8 if "decoded" in outcome or "silent" in outcome else 0
    grown = measured["peak"] - measured["before"]
    assert grown <= output_bytes + DECODE_MEMORY_SLACK, (
        f"{name}: decoding grew the peak RSS by {grown / 2**20:.0f} MiB, over "
        f"{(output_bytes + DECODE_MEMORY_SLACK) / 2**20:.0f} MiB ({measured['result']})"
    )


# ---------------------------------------------------------------- the README states these limits


def test_readme_states_the_limits_the_code_enforces():
    readme = (REPO / "README.md").read_text().replace("\u2212", "-").replace("\u2013", "-")
    bullet = re.search(r"- \*\*Input\.\*\*(.*?)\n- \*\*", readme, re.S).group(1)
    bullet = " ".join(bullet.split())
    assert f"{MIN_SAMPLE_RATE // 1000}-{MAX_SAMPLE_RATE // 1000} kHz" in bullet
    assert f"at most {MAX_CHANNELS} channels" in bullet
    assert f"{MIN_SECONDS:g} s to 10 min" in bullet
    assert f"{SILENCE_DBFS} dBFS" in bullet
    assert f"{DECODE_MEMORY_SLACK // 2**20} MiB" in bullet
