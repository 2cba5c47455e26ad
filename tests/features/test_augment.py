"""Waveform augmentation: exact SNR, G.711 against the standard, RIR decay, band limits, seeding."""

from __future__ import annotations

import math

import numpy as np
import pytest

from emofusion.errors import AudioError, ConfigError
from emofusion.features.augment import (
    AUGMENT_CONFIGS,
    CONDITIONS,
    SAFE_PEAK,
    AugmentConfig,
    add_noise,
    apply_gain,
    augment,
    augment_config,
    babble_noise,
    change_speed,
    coloured_noise,
    mulaw_decode,
    mulaw_encode,
    reverberate,
    room_impulse_response,
    telephone_band,
    test_condition as make_condition,
)

SR = 16_000


def tone(freq=440.0, seconds=1.0, amplitude=0.5):
    t = np.arange(int(SR * seconds)) / SR
    return amplitude * np.sin(2 * np.pi * freq * t)


def power(x):
    return float(np.mean(np.asarray(x) ** 2))


def band_power(x, low, high):
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1 / SR)
    return float(spectrum[(f >= low) & (f < high)].sum())


def test_snr_mixing_is_exact_on_a_hand_checked_case():
    # A 0.5-amplitude sine over whole periods has power 0.5^2 / 2 = 0.125; at 10 dB the added
    # noise must have power 0.0125. Noise: a +-1 square wave (power exactly 1) at a frequency
    # orthogonal to the sine, so the mix's power is 0.125 + 0.0125 too.
    signal = tone(400.0, 1.0, 0.5)
    noise = np.where(np.arange(SR) % 2 == 0, 1.0, -1.0)
    mixed = add_noise(signal, noise, 10.0)
    added = mixed - signal
    assert power(signal) == pytest.approx(0.125, rel=1e-9)
    assert power(added) == pytest.approx(0.0125, rel=1e-9)
    assert power(mixed) == pytest.approx(0.1375, rel=1e-6)


@pytest.mark.parametrize("snr", [0.0, 7.5, 20.0])
def test_snr_within_a_tenth_of_a_db_for_generated_noise(snr):
    rng = np.random.default_rng(1)
    signal = tone(300.0, 2.0, 0.1)  # quiet enough that no mix needs the peak rescue
    mixed = add_noise(signal, coloured_noise(len(signal), "pink", rng), snr)
    assert np.max(np.abs(mixed)) < 1.0
    measured = 10 * math.log10(power(signal) / power(mixed - signal))
    assert abs(measured - snr) < 0.1


def test_loud_mix_is_scaled_not_clipped_and_keeps_its_snr():
    signal = tone(300.0, 1.0, 0.95)
    noise = coloured_noise(len(signal), "white", np.random.default_rng(2))
    mixed = add_noise(signal, noise, 0.0)  # 0 dB: peaks well above 1 before the rescue
    # By hand: at 0 dB the noise is scaled to the signal's power, sqrt(P_s / P_n) = 0.95 / sqrt(2).
    unscaled = signal + noise * (0.95 / math.sqrt(2))
    assert np.max(np.abs(unscaled)) > 1.5
    assert np.allclose(mixed, unscaled * (SAFE_PEAK / np.max(np.abs(unscaled))))  # scaled as a whole
    assert np.max(np.abs(mixed)) == pytest.approx(SAFE_PEAK)


def test_gain_is_exact_until_full_scale_then_scaled_down():
    x = tone(amplitude=0.1)
    assert np.allclose(apply_gain(x, -6.0), x * 10 ** (-6 / 20))
    assert np.allclose(apply_gain(x, 6.0), x * 10 ** (6 / 20))
    loud = apply_gain(x, 30.0)  # 0.1 * 31.6 = 3.16 > 1
    assert np.max(np.abs(loud)) == pytest.approx(SAFE_PEAK)
    assert np.allclose(loud / np.max(np.abs(loud)), x / np.max(np.abs(x)))  # same shape, no clipping


def test_coloured_noise_slopes():
    rng = np.random.default_rng(3)
    n = 4 * SR
    slopes = {}
    for colour in ("white", "pink", "brown"):
        x = coloured_noise(n, colour, rng)
        assert power(x) == pytest.approx(1.0)
        assert abs(x.mean()) < 1e-9
        # power per Hz in 100-200 Hz against 1600-3200 Hz: 4 octaves apart
        low = band_power(x, 100, 200) / 100
        high = band_power(x, 1600, 3200) / 1600
        slopes[colour] = 10 * math.log10(low / high)
    # 1/f^k over a factor of 16: 0, 12.0 and 24.1 dB
    assert abs(slopes["white"]) < 1.0
    assert slopes["pink"] == pytest.approx(10 * math.log10(16), abs=1.5)
    assert slopes["brown"] == pytest.approx(20 * math.log10(16), abs=1.5)


def test_mulaw_matches_hand_worked_g711_codes():
    # Worked by hand from G.711 / g711.c: 1000 (16-bit) >> 2 = 250, + bias 33 = 283, which lies in
    # segment 3 (256..511); mantissa (283 >> 4) & 15 = 1; code 0x31, inverted 0xCE. Decoding 0xCE:
    # ((1 << 3) + 132) << 3 = 1120, minus the bias 132 = 988.
    pcm = np.array([0, 1000, -1000, 32767, -32768]) / 32768
    codes = mulaw_encode(pcm)
    assert codes.dtype == np.uint8
    assert codes.tolist() == [0xFF, 0xCE, 0x4E, 0x80, 0x00]
    assert (mulaw_decode(codes) * 32768).tolist() == [0, 988, -988, 32124, -32124]


def test_mulaw_follows_the_standards_log_curve_and_its_step_sizes():
    x = np.linspace(-1, 1, 40001)
    codes = mulaw_encode(x)
    magnitude = (~codes).astype(int) & 0x7F  # 0..127, sign bit removed
    # The segmented code approximates F(x) = ln(1 + 255|x|) / ln(256) scaled to 128 levels.
    curve = np.log1p(255 * np.abs(x)) / np.log(256) * 128
    assert np.max(np.abs(magnitude - curve)) < 2.5
    # Monotone: a larger input never gets a smaller code magnitude on either side.
    positive = x >= 0
    assert np.all(np.diff(magnitude[positive]) >= 0)
    # Round trip: within half a step of the segment (2^(segment+3) in 16-bit units) of the input,
    # plus the 4 units g711.c's 16 -> 14-bit shift drops (it floors negative values).
    decoded = mulaw_decode(codes)
    segment = magnitude >> 4
    step = 2.0 ** (segment + 3) / 32768
    inside = np.abs(x) < 32124 / 32768  # beyond the largest decoded value the codec saturates
    assert np.all(np.abs(decoded - x)[inside] <= step[inside] / 2 + 4 / 32768)
    # A sine at -12 dBFS: G.711's signal-to-quantisation-noise ratio is about 38 dB (6 dB per bit
    # of its 8, less the log companding's loss, over a wide range of levels).
    sine = tone(1000.0, 1.0, 0.25)
    sqnr = 10 * math.log10(power(sine) / power(mulaw_decode(mulaw_encode(sine)) - sine))
    assert 34 < sqnr < 40


def test_room_impulse_response_decays_60_db_in_rt60_behind_a_direct_path():
    rng = np.random.default_rng(4)
    rt60, drr = 0.5, 5.0
    rir = room_impulse_response(rt60, drr, rng)
    assert rir[0] == 1.0
    tail = rir[1:]
    assert 10 * math.log10(1.0 / float(np.sum(tail**2))) == pytest.approx(drr, abs=1e-6)
    # Schroeder backward integration: energy remaining falls 60 dB over RT60 (fit -5..-35 dB, x2).
    edc = np.cumsum(tail[::-1] ** 2)[::-1]
    edc_db = 10 * np.log10(edc / edc[0])
    t = np.arange(len(edc)) / SR
    fit = (edc_db <= -5) & (edc_db >= -35)
    slope = np.polyfit(t[fit], edc_db[fit], 1)[0]
    assert -60 / slope == pytest.approx(rt60, rel=0.1)


def test_reverberation_keeps_level_and_length_and_smears_the_signal():
    rng = np.random.default_rng(5)
    x = np.zeros(SR)
    x[1000:1160] = tone(1000.0, 0.01, 0.5)  # a 10-ms burst
    wet = reverberate(x, room_impulse_response(0.8, 0.0, rng))
    assert len(wet) == len(x)
    assert power(wet) == pytest.approx(power(x))
    # after the burst: silence dry, a decaying tail wet
    assert np.all(x[4000:6000] == 0) and power(wet[4000:6000]) > 1e-6


def test_telephone_band_removes_what_a_phone_line_cannot_carry():
    x = tone(100.0, 1.0, 0.25) + tone(1000.0, 1.0, 0.25) + tone(6000.0, 1.0, 0.25)
    y = telephone_band(x)
    assert len(y) == len(x)
    kept = band_power(y, 950, 1050)
    assert kept / band_power(x, 950, 1050) > 0.5  # speech band passes
    assert band_power(y, 5900, 6100) < 1e-4 * kept  # above 4 kHz: gone (8-kHz sampling)
    assert band_power(y, 90, 110) < 0.02 * kept  # below 300 Hz: attenuated 20+ dB
    # the codec is lossy: the 1 kHz tone alone comes back with mu-law's quantisation noise, about
    # G.711's 38 dB below it (a lossless chain would leave only the resamplers' 100+ dB floor)
    alone = telephone_band(tone(1000.0, 1.0, 0.25))
    noise = band_power(alone, 0, 900) + band_power(alone, 1100, 4000)
    assert 30 < 10 * math.log10(band_power(alone, 950, 1050) / noise) < 42


def test_speed_changes_length_and_pitch():
    x = tone(500.0, 1.0, 0.5)
    fast = change_speed(x, 1.1)
    assert len(fast) == pytest.approx(len(x) / 1.1, abs=2)
    peak_hz = np.argmax(np.abs(np.fft.rfft(fast))) * SR / len(fast)
    assert peak_hz == pytest.approx(550.0, abs=2.0)
    assert np.array_equal(change_speed(x, 1.0), x)


def test_babble_never_uses_the_clip_itself_and_mixes_the_requested_talkers():
    rng = np.random.default_rng(6)
    pool = [tone(f, 0.5, 0.3) for f in (200.0, 300.0, 500.0, 700.0, 1100.0)]
    mix = babble_noise(SR, pool, 3, rng, exclude=0)
    present = [band_power(mix, f - 5, f + 5) > 0.01 * band_power(mix, 0, SR / 2) for f in (200, 300, 500, 700, 1100)]
    assert not present[0]  # clip 0 is the clip being augmented
    assert sum(present) == 3
    with pytest.raises(ConfigError, match="other clip"):
        babble_noise(SR, pool[:1], 4, rng, exclude=0)


def test_augment_is_reproducible_from_the_generator_and_varies_with_it():
    x = tone(300.0, 1.5, 0.4)
    pool = [tone(f, 1.0, 0.3) for f in (200.0, 450.0, 800.0, 1200.0)]
    a = augment(x, np.random.default_rng(7), babble_pool=pool)
    b = augment(x, np.random.default_rng(7), babble_pool=pool)
    c = augment(x, np.random.default_rng(8), babble_pool=pool)
    assert np.array_equal(a, b)
    assert not (len(a) == len(c) and np.array_equal(a, c))
    assert np.max(np.abs(a)) <= 1.0


def test_augment_with_every_probability_zero_returns_the_clip():
    off = AugmentConfig(p_noise=0, p_reverb=0, p_telephone=0, p_gain=0, p_speed=0)
    x = tone(300.0, 1.0, 0.4)
    assert np.array_equal(augment(x, np.random.default_rng(0), off), x)


def test_augment_with_every_probability_one_applies_every_transform():
    full = AugmentConfig(p_noise=1, p_babble=0, p_reverb=1, p_telephone=1, p_gain=1, p_speed=1, speed=(1.1, 1.1))
    x = tone(1000.0, 1.0, 0.4)
    y = augment(x, np.random.default_rng(0), full)
    assert len(y) == pytest.approx(len(x) / 1.1, abs=2)  # speed
    assert band_power(y, 5000, 8000) < 1e-3 * band_power(y, 0, 8000)  # telephone: nothing above 4 kHz


def test_conditions_are_seeded_and_at_the_stated_snr():
    x = tone(300.0, 1.0, 0.4)
    pool = [tone(f, 1.0, 0.3) for f in (200.0, 450.0, 800.0, 1200.0, 1500.0)]
    assert CONDITIONS == ("clean", "white-10dB", "babble4-10dB", "telephone")
    assert np.array_equal(make_condition("clean", x, np.random.default_rng(0)), x)
    for name in ("white-10dB", "babble4-10dB"):
        y = make_condition(name, x, np.random.default_rng(0), babble_pool=pool)
        assert np.array_equal(y, make_condition(name, x, np.random.default_rng(0), babble_pool=pool))
        assert 10 * math.log10(power(x) / power(y - x)) == pytest.approx(10.0, abs=0.1)
    with pytest.raises(ConfigError, match="babble_pool"):
        make_condition("babble4-10dB", x, np.random.default_rng(0))
    with pytest.raises(ConfigError, match="unknown test condition"):
        make_condition("underwater", x, np.random.default_rng(0))


def test_bad_input_gets_a_specific_error():
    rng = np.random.default_rng(0)
    with pytest.raises(AudioError, match="silent"):
        augment(np.zeros(100), rng)
    with pytest.raises(AudioError, match="NaN"):
        augment(np.array([0.1, np.nan]), rng)
    with pytest.raises(AudioError, match="mono"):
        augment(np.zeros((10, 2)), rng)
    with pytest.raises(AudioError, match="float"):
        augment(np.array([1, 2, 3], dtype=np.int16), rng)
    with pytest.raises(ConfigError, match="Generator"):
        augment(tone(), 0)
    with pytest.raises(AudioError, match="shape"):
        add_noise(tone(), np.ones(10), 10.0)
    with pytest.raises(ConfigError, match="snr_db"):
        add_noise(tone(), np.ones(SR), float("nan"))
    with pytest.raises(AudioError, match="noise is silent"):
        add_noise(tone(), np.zeros(SR), 10.0)


def test_config_validation_and_round_trip():
    config = AugmentConfig(p_noise=0.25, snr_db=(5.0, 15.0))
    assert AugmentConfig.from_dict(config.to_dict()) == config
    assert augment_config("default") is AUGMENT_CONFIGS["default"]
    with pytest.raises(ConfigError, match="probability"):
        AugmentConfig(p_noise=1.5)
    with pytest.raises(ConfigError, match="snr_db"):
        AugmentConfig(snr_db=(20.0, 0.0))
    with pytest.raises(ConfigError, match="noise_colours"):
        AugmentConfig(noise_colours=("purple",))
    with pytest.raises(ConfigError, match="unknown augmentation option"):
        AugmentConfig.from_dict({"p_echo": 0.5})
    with pytest.raises(ConfigError, match="unknown augmentation 'loud'"):
        augment_config("loud")
