"""Voice activity: streamed Silero scores equal faster-whisper's, and the region rules, by hand."""

import numpy as np
import pytest

from emofusion.asr.vad import FRAME, FRAME_S, FrameScores, Region, VadConfig, speech_regions
from emofusion.errors import ConfigError

RATE = 16_000


def scores(p, level=None):
    p = np.asarray(p, dtype=np.float64)
    return FrameScores(p, np.full(len(p), -60.0) if level is None else np.asarray(level, dtype=np.float64))


def frames(t):
    return int(round(t / FRAME_S))


def test_streamed_probabilities_equal_faster_whispers_whole_signal_call(asr_extra, shared_data):
    from faster_whisper.vad import get_vad_model

    from emofusion.asr.vad import SpeechDetector
    from emofusion.audio import load_audio

    clip = shared_data / "ravdess" / "Actor_01" / "03-01-05-01-01-01-01.flac"
    x = load_audio(clip).samples.astype(np.float32)
    x = np.concatenate([x, x[::-1], x])  # ~11 s, not a multiple of the frame
    reference = get_vad_model()(np.pad(x, (0, FRAME - len(x) % FRAME))).ravel()
    detector = SpeechDetector.load()
    block = 5003  # blocks that cut frames anywhere
    streamed = detector.scan(x[i : i + block] for i in range(0, len(x), block))
    assert len(streamed.speech) == len(reference) == len(streamed.level_db)
    # onnxruntime may pick other kernels for other batch sizes: agreement to rounding, not bits
    np.testing.assert_allclose(streamed.speech, reference, atol=1e-3)
    assert reference.max() > 0.9  # the clip is speech: the comparison is not between two zeros
    level = 10 * np.log10(np.mean(np.pad(x, (0, FRAME - len(x) % FRAME)).reshape(-1, FRAME).astype(np.float64) ** 2, axis=1) + 1e-12)
    np.testing.assert_allclose(streamed.level_db, level, atol=1e-4)


def test_hysteresis_starts_at_the_threshold_and_ends_after_a_long_enough_pause():
    config = VadConfig(min_silence_s=5 * FRAME_S, min_speech_s=0, pad_s=0)
    #        0-9 quiet, 10-19 speech, 20-22 dip (short pause), 23-29 speech, 30-39 quiet,
    p = [0.0] * 10 + [0.9] * 10 + [0.1] * 3 + [0.9] * 7 + [0.0] * 10
    # 40-42 between the thresholds after silence: not a start; 43-50 speech; 51-54 between: still speech
    p += [0.4] * 3 + [0.9] * 8 + [0.4] * 4 + [0.0] * 10
    regions = speech_regions(scores(p), len(p) * FRAME_S, config)
    assert [(frames(r.start), frames(r.end)) for r in regions] == [(10, 30), (43, 55)]


def test_short_blips_are_dropped_and_regions_padded_without_overlap():
    config = VadConfig(min_silence_s=3 * FRAME_S, min_speech_s=4 * FRAME_S, pad_s=2 * FRAME_S)
    p = [0.0] * 5 + [0.9] * 3 + [0.0] * 10 + [0.9] * 10 + [0.0] * 4 + [0.9] * 10 + [0.0] * 1
    regions = speech_regions(scores(p), len(p) * FRAME_S, config)
    # blip at 5-8 dropped; regions 18-28 and 32-42; their 4-frame gap is shared at its middle (30);
    # the last pad is cut at the end of the recording (43 frames)
    assert [(frames(r.start), frames(r.end)) for r in regions] == [(16, 30), (30, 43)]


def test_overlong_speech_is_split_at_its_least_speechlike_frame():
    config = VadConfig(max_segment_s=20 * FRAME_S, min_speech_s=0, pad_s=0)
    p = np.full(50, 0.9)
    p[14] = 0.6  # the dip inside the first piece's second half [10, 20)
    p[33] = 0.55  # and inside the next piece's [24, 34)
    regions = speech_regions(scores(p), 50 * FRAME_S, config)
    assert [(frames(r.start), frames(r.end)) for r in regions] == [(0, 14), (14, 33), (33, 50)]
    assert all(r.duration <= 20 * FRAME_S + 1e-9 for r in regions)


def test_loud_sound_joins_when_silero_confirms_it_somewhere():
    config = VadConfig(min_silence_s=3 * FRAME_S, min_speech_s=0, pad_s=0)
    level = np.full(60, -60.0)
    p = np.zeros(60)
    level[10:30] = -20.0  # loud for 20 frames, Silero lukewarm: max 0.35 >= confirm 0.3
    p[10:30] = 0.2
    p[20] = 0.35
    level[40:50] = -20.0  # loud, but Silero never above 0.25: a door, music
    p[40:50] = 0.25
    regions = speech_regions(scores(p, level), 60 * FRAME_S, config)
    assert [(frames(r.start), frames(r.end)) for r in regions] == [(10, 30)]


def test_voiced_region_grows_over_the_loud_sound_around_it():
    config = VadConfig(min_silence_s=3 * FRAME_S, min_speech_s=0, pad_s=0)
    level = np.full(60, -60.0)
    level[8:40] = -25.0  # a soft first word at 8, a laugh up to 40
    p = np.zeros(60)
    p[15:30] = 0.9  # what Silero calls speech
    regions = speech_regions(scores(p, level), 60 * FRAME_S, config)
    assert [(frames(r.start), frames(r.end)) for r in regions] == [(8, 40)]


def test_no_frames_no_regions_and_bad_settings_are_refused():
    assert speech_regions(scores([]), 0.0) == []
    with pytest.raises(ConfigError):
        VadConfig(threshold=0.2, confirm=0.3)
    with pytest.raises(ConfigError):
        VadConfig(max_segment_s=0.05)


def synthetic_music(seconds, rng):
    """Notes with harmonics and decays over chords, a drum hit every other note."""
    t = np.arange(int(0.25 * RATE)) / RATE
    notes = []
    for i in range(int(seconds * 4)):
        f = rng.choice([220, 247, 262, 294, 330, 349, 392, 440]) * rng.choice([1, 2])
        tone = sum(np.sin(2 * np.pi * f * k * t) / k for k in range(1, 8)) * np.exp(-6 * t)
        tone += 0.2 * sum(np.sin(2 * np.pi * f * r * t) for r in (1, 1.26, 1.5))
        if i % 2 == 0:
            tone += 0.5 * rng.standard_normal(len(t)) * np.exp(-40 * t)
        notes.append(tone)
    x = np.concatenate(notes)
    return x / np.abs(x).max() * 0.5


@pytest.mark.parametrize("kind", ["music", "white noise", "noise bursts"])
def test_music_and_noise_give_no_regions(asr_extra, kind):
    from emofusion.asr.vad import SpeechDetector

    rng = np.random.default_rng(0)
    if kind == "music":
        x = synthetic_music(20, rng)
    elif kind == "white noise":
        x = 0.1 * rng.standard_normal(20 * RATE)
    else:  # loud bursts over a quiet floor: loud runs that Silero must not confirm
        x = 1e-3 * rng.standard_normal(20 * RATE)
        for start in range(0, 20 * RATE, 2 * RATE):
            x[start : start + RATE // 2] += 0.3 * rng.standard_normal(RATE // 2)
    found = speech_regions(SpeechDetector.load().scan([x]), len(x) / RATE)
    assert found == []


def test_speech_between_quiet_gaps_is_found(asr_extra, shared_data):
    from emofusion.asr.vad import SpeechDetector
    from emofusion.audio import load_audio

    clip = load_audio(shared_data / "ravdess" / "Actor_02" / "03-01-01-01-01-01-02.flac").samples
    gap = 1e-3 * np.random.default_rng(1).standard_normal(2 * RATE)
    x = np.concatenate([gap, clip, gap, clip, gap])
    found = speech_regions(SpeechDetector.load().scan([x]), len(x) / RATE)
    middle = 2 + len(clip) / RATE / 2  # of the first clip; the second's is 2 + clip + 2 later
    assert len(found) == 2 and all(isinstance(r, Region) for r in found)
    assert found[0].start < middle < found[0].end <= found[1].start < middle + len(clip) / RATE + 2 < found[1].end
