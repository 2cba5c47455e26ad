"""The 34 acoustic features: numerical parity with pyAudioAnalysis (fed as its own reader feeds it),
the corrected mode's fixes checked by hand, frame counting, fitting to 100 frames, configuration and
bad input."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf
from scipy.io import wavfile

import emofusion.features.acoustic as acoustic
from emofusion.audio import load_audio
from emofusion.errors import AudioError, ConfigError
from emofusion.features.acoustic import (
    FEATURE_NAMES,
    N_FEATURES,
    PACKAGE_FULL_SCALE,
    AcousticConfig,
    count_frames,
    extract_file,
    extract_frames,
    fit_frames,
)
from emofusion.features.acoustic_tables import spectral_tables

ShortTermFeatures = pytest.importorskip("pyAudioAnalysis.ShortTermFeatures")

TOLERANCE = 1e-9  # max |ours - package| over every feature of every frame
RATE = 16000


def reference(package_input: np.ndarray, config: AcousticConfig) -> np.ndarray:
    """The package's features of exactly the array it is given."""
    features, _ = ShortTermFeatures.feature_extraction(
        package_input, config.sample_rate, config.window_samples, config.step_samples, deltas=False
    )
    return features.T


def read_as_the_package_does(path) -> tuple[int, np.ndarray]:
    """``audioBasicIO.read_audio_file`` for a .wav: scipy's reader (int16 values for 16-bit PCM),
    then ``stereo_to_mono`` (``left / 2 + right / 2``). That module cannot be imported here: it
    needs eyed3 and pydub, which ``pip install --no-deps pyAudioAnalysis`` leaves out."""
    rate, signal = wavfile.read(path)
    if signal.ndim == 2 and signal.shape[1] == 1:
        signal = signal.flatten()
    if signal.ndim == 2 and signal.shape[1] == 2:
        signal = (signal[:, 1] / 2) + (signal[:, 0] / 2)
    return rate, signal


def assert_close(ours: np.ndarray, theirs: np.ndarray, config: AcousticConfig, n: int) -> float:
    assert ours.shape == theirs.shape == (count_frames(n, config), N_FEATURES)
    worst = np.abs(ours - theirs).max(axis=0)
    assert worst.max() <= TOLERANCE, f"{FEATURE_NAMES[int(worst.argmax())]} differs by {worst.max():.3g}"
    return float(worst.max())


def assert_matches_package(signal: np.ndarray, config: AcousticConfig = AcousticConfig()) -> np.ndarray:
    """Our features of a full-scale-1.0 signal are the package's of the same signal at int16 scale."""
    ours = extract_frames(signal, config.sample_rate, config)
    assert_close(ours, reference(signal * PACKAGE_FULL_SCALE, config), config, len(signal))
    return ours


def tone(hz: float, seconds: float = 1.0, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return np.sin(2 * np.pi * hz * t)


def synthetic(rate: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    n = int(1.5 * rate)
    t = np.arange(n) / rate
    return {
        "tone": 0.3 * np.sin(2 * np.pi * 440 * t),
        "chirp": np.sin(2 * np.pi * (100 * t + 0.45 * rate / 3 * t**2)),  # 100 Hz -> ~0.45 fs
        "noise": 0.25 * rng.standard_normal(n),
        # a DC offset and a burst in digital silence: constant frames and a hard onset
        "burst": 0.2 + np.where((t > 0.5) & (t < 0.9), 0.25 * rng.standard_normal(n), 0.0),
    }


# ---------------------------------------------------------------- parity with pyAudioAnalysis


def test_feature_names_are_the_packages():
    _, names = ShortTermFeatures.feature_extraction(tone(300), RATE, 800, 400, deltas=False)
    assert FEATURE_NAMES == tuple(names) and N_FEATURES == 34


# (clip under ../shared/data/ravdess, the bundled example tested in its place when that is absent)
REAL_CLIPS = [
    ("Actor_01/03-01-01-01-01-01-01.flac", "neutral.flac"),  # neutral, male (the same recording)
    ("Actor_04/03-01-05-02-02-01-04.flac", "angry.flac"),  # angry, strong, female
    ("Actor_12/03-01-04-01-01-02-12.flac", "sad.flac"),  # sad
    ("Actor_09/03-01-01-01-01-01-09.flac", "neutral.flac"),  # one of the very quiet actors
    ("Actor_20/03-01-03-02-01-01-20.flac", "happy.flac"),  # the other one
]


LOUDNESS = [1.0, 1e-1, 1e-2, 1e-3, 1e-4]  # peak, full scale = 1


def speech_wav(path, clip_path, peak: float, channels: int = 1):
    """Real speech rescaled to ``peak`` and written as 16-bit PCM, as the paper's corpus is stored."""
    speech = sf.read(clip_path)[0]
    values = np.round(speech / np.abs(speech).max() * peak * 32767).astype(np.int16)
    if channels == 2:  # the right channel a little quieter, so the two differ
        values = np.stack([values, (values * 0.8).astype(np.int16)], axis=1)
    sf.write(path, values, RATE, subtype="PCM_16")
    return path


@pytest.mark.parametrize("peak", LOUDNESS, ids=[f"peak-{p:g}" for p in LOUDNESS])
@pytest.mark.parametrize("clip", [REAL_CLIPS[1], REAL_CLIPS[3]], ids=["loud-actor", "quiet-actor"])
def test_file_features_are_the_packages_on_what_its_reader_returns(ravdess_clip, tmp_path, clip, peak):
    # Issue 7.2: the paper ran the package on its reader's int16 values. Fed float samples in
    # [-1, 1] instead, the package's +1e-10 in the peak normalisation weighs 2^15 times more
    # (MFCC 1 was off by 9e-6 at full scale, 0.1 at peak 1e-4).
    path = speech_wav(tmp_path / "speech.wav", ravdess_clip(*clip), peak)
    rate, as_read = read_as_the_package_does(path)
    assert rate == RATE and as_read.dtype == np.int16
    theirs = reference(as_read, AcousticConfig())
    config, n = AcousticConfig(), len(as_read)
    assert_close(extract_file(path), theirs, config, n)
    assert_close(extract_file(path.read_bytes()), theirs, config, n)
    decoded = load_audio(as_read, RATE)  # an API user's int16 array
    assert_close(extract_frames(decoded.samples, RATE), theirs, config, n)


def test_stereo_file_features_are_the_packages_on_its_mono_mix(ravdess_clip, tmp_path):
    path = speech_wav(tmp_path / "stereo.wav", ravdess_clip(*REAL_CLIPS[0]), 0.5, channels=2)
    rate, as_read = read_as_the_package_does(path)
    assert as_read.ndim == 1
    assert_close(extract_file(path), reference(as_read, AcousticConfig()), AcousticConfig(), len(as_read))


def test_resampled_file_features_are_the_packages_on_the_resampled_signal_at_int16_scale(ravdess_clip, tmp_path):
    # The package's reader does not resample: for an 8-kHz file "exact" means its features of our
    # 16-kHz signal scaled as its reader scales 16-bit audio.
    speech = sf.read(ravdess_clip(*REAL_CLIPS[2]))[0][::2]
    path = tmp_path / "8k.wav"
    sf.write(path, 0.05 * speech / np.abs(speech).max(), 8000, subtype="PCM_16")
    resampled = load_audio(path).samples
    config = AcousticConfig()
    assert_close(extract_file(path), reference(resampled * 2**15, config), config, len(resampled))


def test_int16_scale_arrays_say_so_with_full_scale(ravdess_clip):
    values = sf.read(ravdess_clip(*REAL_CLIPS[3]), dtype="int16")[0]
    config = AcousticConfig()
    theirs = reference(values, config)
    assert_close(extract_frames(values.astype(np.float64), RATE, full_scale=2**15), theirs, config, len(values))
    assert_close(extract_frames(values / 2**15, RATE), theirs, config, len(values))


@pytest.mark.parametrize("clip", REAL_CLIPS, ids=[c for c, _ in REAL_CLIPS])
def test_real_speech_matches_package(ravdess_clip, clip):
    samples = load_audio(ravdess_clip(*clip)).samples
    frames = assert_matches_package(samples)
    assert len(frames) > 100  # RAVDESS clips are 3-4 s long


@pytest.mark.parametrize("name", ["tone", "chirp", "noise", "burst"])
def test_synthetic_signals_match_package(name):
    assert_matches_package(synthetic(RATE)[name])


@pytest.mark.parametrize(
    "config",
    [
        AcousticConfig(window_s=0.030, step_s=0.010),
        AcousticConfig(sample_rate=8000),
        AcousticConfig(sample_rate=8000, window_s=0.040, step_s=0.020),
        AcousticConfig(sample_rate=11025),  # 551-sample window: odd length
    ],
    ids=["16k-30/10ms", "8k-50/25ms", "8k-40/20ms", "11025-odd-window"],
)
def test_other_windows_and_rates_match_package(config):
    for signal in synthetic(config.sample_rate).values():
        assert_matches_package(signal, config)


def test_block_boundaries_change_nothing(monkeypatch):
    # Long files are processed in blocks; spectral flux must see the previous block's last frame.
    signal = synthetic(RATE)["chirp"]
    whole = extract_frames(signal, RATE)
    monkeypatch.setattr(acoustic, "_BLOCK_FRAMES", 7)
    blocked = extract_frames(signal, RATE)
    np.testing.assert_array_equal(blocked, whole)
    assert_matches_package(signal)


def test_result_does_not_depend_on_scale_or_offset():
    signal = synthetic(RATE)["noise"]
    np.testing.assert_allclose(extract_frames(3.0 * signal + 0.1, RATE), extract_frames(signal, RATE),
                               rtol=0, atol=1e-8)


def test_mfcc_filterbank_is_the_packages_and_corrected_sits_at_twice_the_frequency():
    n = 400  # 800-sample window at 16 kHz
    ours = spectral_tables(RATE, 800, "pyaudioanalysis").filterbank(np.eye(n)).T  # (40, n)
    theirs, _ = ShortTermFeatures.mfcc_filter_banks(RATE, n)
    np.testing.assert_allclose(ours, theirs, rtol=1e-14, atol=0)
    corrected = spectral_tables(RATE, 800, "corrected").filterbank(np.eye(n)).T
    # First filter peaks at 200 Hz: bin 10 at 20 Hz per bin; the package puts its peak on bin 5 (100 Hz).
    assert ours[0].argmax() == 5 and corrected[0].argmax() == 10
    # Top filter (nominal 6.4-6.9 kHz) lands around 3.3 kHz in the package.
    assert 3100 < 20 * ours[-1].nonzero()[0].mean() < 3500
    assert 6300 < 20 * corrected[-1].nonzero()[0].mean() < 6900


# ---------------------------------------------------------------- corrected mode, checked by hand


def test_centroid_of_a_pure_tone():
    # 1 kHz: exactly 50 cycles per 50 ms frame, so all power sits in bin 50 (20 Hz bins).
    signal = tone(1000)
    quirky = extract_frames(signal, RATE)
    fixed = extract_frames(signal, RATE, AcousticConfig(mode="corrected"))
    centroid = FEATURE_NAMES.index("spectral_centroid")
    np.testing.assert_allclose(fixed[:, centroid] * RATE / 2, 1000.0, atol=1e-6)
    np.testing.assert_allclose(quirky[:, centroid] * RATE / 2, 1020.0, atol=1e-6)  # bin k at (k+1) fs/W
    np.testing.assert_allclose(fixed[:, FEATURE_NAMES.index("spectral_spread")], 0.0, atol=1e-6)


def test_chroma_of_a_pure_a440():
    # 440 Hz = bin 22 exactly. Corrected: all power in pitch class A (chroma_1).
    # Package: bin k is labelled (k+1) * 20 Hz, so bin 22 is "460 Hz" -> pitch number 49 (A#, the
    # only bin with that number) -> slot 49. Slot u is then divided by counts[pitch[u]], the number
    # of bins sharing the pitch of *bin* pitch[49] = 62: bin 62 is "1260 Hz" -> pitch 66, shared by
    # the bins labelled 1260, 1280, 1300, 1320 Hz -> 4. So chroma_2 = 1/4 and the rest 0.
    signal = tone(440)
    chroma = slice(FEATURE_NAMES.index("chroma_1"), FEATURE_NAMES.index("chroma_std"))
    fixed = extract_frames(signal, RATE, AcousticConfig(mode="corrected"))[:, chroma]
    quirky = extract_frames(signal, RATE)[:, chroma]
    expected_fixed, expected_quirky = np.zeros(12), np.zeros(12)
    expected_fixed[0], expected_quirky[1] = 1.0, 1 / 4
    np.testing.assert_allclose(fixed, np.tile(expected_fixed, (len(fixed), 1)), atol=1e-9)
    np.testing.assert_allclose(quirky, np.tile(expected_quirky, (len(quirky), 1)), atol=1e-9)


def test_corrected_mode_changes_only_centroid_mfcc_chroma():
    signal = synthetic(RATE)["chirp"]
    quirky = extract_frames(signal, RATE)
    fixed = extract_frames(signal, RATE, AcousticConfig(mode="corrected"))
    same = [FEATURE_NAMES.index(n) for n in
            ("zcr", "energy", "energy_entropy", "spectral_entropy", "spectral_flux", "spectral_rolloff")]
    np.testing.assert_array_equal(fixed[:, same], quirky[:, same])
    # Every bin moves down by fs/W = 20 Hz: the centroid moves by exactly that, the spread (a
    # spread around the centroid) not at all.
    centroid, spread = FEATURE_NAMES.index("spectral_centroid"), FEATURE_NAMES.index("spectral_spread")
    np.testing.assert_allclose((quirky[:, centroid] - fixed[:, centroid]) * RATE / 2, 20.0, rtol=0, atol=1e-9)
    np.testing.assert_allclose(fixed[:, spread], quirky[:, spread], rtol=0, atol=1e-12)
    changed = np.abs(fixed - quirky).max(axis=0) > 1e-6
    assert [FEATURE_NAMES[i] for i in np.nonzero(changed)[0]] == [
        n for n in FEATURE_NAMES if n.startswith(("spectral_centroid", "mfcc_", "chroma_"))
    ]


# ---------------------------------------------------------------- frames and fitting


@pytest.mark.parametrize("n, expected", [(800, 1), (1199, 1), (1200, 2), (16000, 39), (16399, 39), (16400, 40)])
def test_frame_count(n, expected):
    config = AcousticConfig()
    assert count_frames(n, config) == expected
    assert len(extract_frames(synthetic(RATE)["noise"][:n], RATE)) == expected


def test_frame_count_other_config():
    config = AcousticConfig(window_s=0.030, step_s=0.010, sample_rate=8000)  # 240 / 80 samples
    assert (config.window_samples, config.step_samples, config.frame_shift) == (240, 80, 0.010)
    assert count_frames(239, config) == 0 and count_frames(240, config) == 1 and count_frames(8000, config) == 98


def numbered(n: int) -> np.ndarray:
    """Frames whose every value is the frame's index, so kept frames can be read off."""
    return np.repeat(np.arange(n, dtype=float)[:, None], N_FEATURES, axis=1)


@pytest.mark.parametrize("policy", ["head", "center", "uniform"])
def test_fit_shorter_pads_with_zeros_at_the_end(policy):
    fitted, kept = fit_frames(numbered(3) + 1, AcousticConfig(max_frames=5, length_policy=policy))
    assert fitted.dtype == np.float32 and fitted.shape == (5, N_FEATURES) and kept == 3
    np.testing.assert_array_equal(fitted[:, 0], [1, 2, 3, 0, 0])


@pytest.mark.parametrize("policy", ["head", "center", "uniform"])
def test_fit_exact_length_keeps_everything(policy):
    fitted, kept = fit_frames(numbered(5), AcousticConfig(max_frames=5, length_policy=policy))
    assert kept == 5
    np.testing.assert_array_equal(fitted[:, 0], [0, 1, 2, 3, 4])


@pytest.mark.parametrize(
    "policy, expected",
    [
        ("head", [0, 1, 2, 3]),
        ("center", [3, 4, 5, 6]),  # (10 - 4) // 2 = 3
        ("uniform", [1, 3, 6, 8]),  # middle of stretches [0, 2.5), [2.5, 5), [5, 7.5), [7.5, 10)
    ],
)
def test_fit_longer_by_policy(policy, expected):
    fitted, kept = fit_frames(numbered(10), AcousticConfig(max_frames=4, length_policy=policy))
    assert kept == 4
    np.testing.assert_array_equal(fitted[:, 0], expected)
    np.testing.assert_array_equal(fitted[:, -1], expected)


def test_fit_default_is_the_papers_100_frames(ravdess_clip):
    frames = extract_file(ravdess_clip(*REAL_CLIPS[0]))
    fitted, kept = fit_frames(frames, AcousticConfig())
    assert fitted.shape == (100, 34) and kept == 100
    np.testing.assert_array_equal(fitted, frames[:100].astype(np.float32))


def test_fit_rejects_wrong_shape():
    with pytest.raises(ValueError, match=r"\(n, 34\)"):
        fit_frames(np.zeros((5, 33)), AcousticConfig())


# ---------------------------------------------------------------- configuration


def test_config_round_trip():
    config = AcousticConfig(window_s=0.03, step_s=0.01, sample_rate=8000, max_frames=50,
                            length_policy="uniform", mode="corrected")
    d = config.to_dict()
    assert d == {"window_s": 0.03, "step_s": 0.01, "sample_rate": 8000, "max_frames": 50,
                 "length_policy": "uniform", "mode": "corrected"}
    assert AcousticConfig.from_dict(d) == config
    assert AcousticConfig.from_dict({}) == AcousticConfig()
    assert config.feature_dim == 34


@pytest.mark.parametrize(
    "d, message",
    [
        ({"window": 0.05}, "unknown acoustic config key.*'window'"),
        ({"window_s": 0}, "window_s must be a positive"),
        ({"step_s": "25ms"}, "step_s must be a positive"),
        ({"sample_rate": 16000.5}, "sample_rate must be a positive integer"),
        ({"sample_rate": True}, "sample_rate must be a positive integer"),
        ({"max_frames": 0}, "max_frames must be a positive integer"),
        ({"length_policy": "tail"}, "unknown length_policy 'tail'"),
        ({"mode": "librosa"}, "unknown acoustic feature mode 'librosa'"),
        ({"step_s": 0.00001}, "under one sample"),
        ({"window_s": 0.001}, "too short"),
        ({"window_s": 0.010}, "too short for pyAudioAnalysis's chroma"),  # the package itself crashes
    ],
)
def test_config_validation(d, message):
    with pytest.raises(ConfigError, match=message):
        AcousticConfig.from_dict(d)


def test_from_dict_needs_a_mapping():
    with pytest.raises(ConfigError, match="mapping"):
        AcousticConfig.from_dict([("window_s", 0.05)])


def test_short_window_is_fine_in_corrected_mode():
    config = AcousticConfig(window_s=0.010, step_s=0.005, mode="corrected")
    assert extract_frames(tone(440), RATE, config).shape == (count_frames(RATE, config), 34)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "signal, error, message",
    [
        (np.zeros(0), AudioError, "empty"),
        (np.ones(799) * np.arange(799), AudioError, r"49\.9 ms long, shorter than one 50 ms window"),
        (np.zeros(16000), AudioError, "silent or constant"),
        (np.full(16000, 0.25), AudioError, "silent or constant"),
        # issue 7.3: the offset hid the 1e-7 noise, which normalisation then blew up to full scale
        (0.5 + 1e-7 * tone(300), AudioError, "silent or constant .below -120 dBFS once its DC offset is removed"),
        (np.r_[np.ones(8000), np.nan, np.ones(7999)], AudioError, "NaN or infinite"),
        (np.zeros((16000, 2)), AudioError, r"mono signal of shape \(samples,\)"),
        (np.array(["a"] * 1000), AudioError, "real-valued"),
    ],
    ids=["empty", "short", "zeros", "constant", "dc-and-faint-noise", "nan", "stereo", "strings"],
)
def test_bad_signals(signal, error, message):
    with pytest.raises(error, match=message):
        extract_frames(signal, RATE)


def test_silence_is_judged_relative_to_full_scale():
    faint = 1e-7 * tone(300)
    with pytest.raises(AudioError, match="silent"):
        extract_frames(faint, RATE)
    # The same values are -30 dBFS when the caller says full scale is 1e-6 (e.g. int16-scale input
    # divided by something odd): what counts is the level, not the number.
    assert extract_frames(faint, RATE, full_scale=3.2e-6).shape == (39, N_FEATURES)
    for bad in (0, -1.0, np.inf, np.nan, "1"):
        with pytest.raises(ConfigError, match="full_scale must be a positive number"):
            extract_frames(tone(300), RATE, full_scale=bad)


def test_wrong_sample_rate_says_to_resample():
    with pytest.raises(ConfigError, match="audio at 44100 Hz but the acoustic config expects 16000 Hz; resample"):
        extract_frames(tone(440, rate=44100), 44100)


# ---------------------------------------------------------------- files


def wav_bytes(signal: np.ndarray, rate: int) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, signal, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def test_extract_file_decodes_then_extracts(tmp_path):
    data = wav_bytes(0.5 * synthetic(RATE)["chirp"], RATE)
    path = tmp_path / "chirp.wav"
    path.write_bytes(data)
    expected = extract_frames(load_audio(path).samples, RATE)
    np.testing.assert_array_equal(extract_file(path), expected)
    np.testing.assert_array_equal(extract_file(data), expected)


def test_extract_file_resamples_to_the_configured_rate(tmp_path):
    path = tmp_path / "chirp.wav"
    path.write_bytes(wav_bytes(0.5 * synthetic(RATE)["chirp"], RATE))
    config = AcousticConfig(sample_rate=8000)
    expected = extract_frames(load_audio(path, target_rate=8000).samples, 8000, config)
    frames = extract_file(path, config)
    assert len(frames) == count_frames(12000, config) == 59
    np.testing.assert_array_equal(frames, expected)


def test_extract_file_names_the_file_when_too_short(tmp_path):
    path = tmp_path / "blip.wav"
    path.write_bytes(wav_bytes(0.5 * tone(440, seconds=0.03), RATE))
    with pytest.raises(AudioError, match=r"blip\.wav: the audio is 30\.0 ms long, shorter than the 0\.1 s minimum"):
        extract_file(path)
