"""Whisper tiny.en encoder frames over a clip's real length: shapes, windows, and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from emofusion.errors import AudioError
from emofusion.features.encoders.whisper import HOP, MAX_MEL_FRAMES, SAMPLE_RATE, n_frames


@pytest.fixture(scope="module")
def encoder(offline):
    from emofusion.features.encoders.whisper import WhisperEncoder

    return WhisperEncoder()


def _speechlike(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    tone = np.sin(2 * np.pi * (180 + 40 * np.sin(2 * np.pi * 3 * t)) * t)
    return (0.3 * tone * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)) + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


def test_frame_count_is_one_per_20_ms_of_real_audio():
    # 1 s = 100 mel frames -> 50 encoder frames; odd mel counts round up; 30-s pieces add up.
    assert n_frames(SAMPLE_RATE) == 50
    assert n_frames(101 * HOP) == 51
    assert n_frames(MAX_MEL_FRAMES * HOP) == 1500
    assert n_frames((MAX_MEL_FRAMES + 7) * HOP) == 1500 + 4


@pytest.mark.parametrize("seconds", [0.35, 1.0, 3.01])
def test_frames_have_the_predicted_shape(encoder, seconds):
    samples = _speechlike(seconds)
    frames = encoder.frames(samples)
    assert frames.shape == (n_frames(len(samples)), 384) and frames.dtype == np.float32
    assert np.isfinite(frames).all()


def test_audio_over_30_s_is_encoded_in_30_s_pieces(encoder):
    samples = _speechlike(31.0, seed=1)
    frames = encoder.frames(samples)
    assert frames.shape[0] == n_frames(len(samples)) == 1550
    # The first piece is the first 30 s encoded alone, up to the log-mel floor (set per clip from
    # its loudest frame) and int8 rounding: frame by frame the same direction. A piece shifted by
    # one second is a different input, the control that the comparison can fail.
    first = encoder.frames(samples[: MAX_MEL_FRAMES * HOP])
    shifted = encoder.frames(samples[SAMPLE_RATE : SAMPLE_RATE + MAX_MEL_FRAMES * HOP])

    def cosine(a, b):
        return float(np.mean(np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))))

    assert cosine(frames[:1500], first) > 0.99
    assert cosine(frames[:1500], shifted) < 0.99


def test_too_short_audio_is_rejected_with_its_length(encoder):
    with pytest.raises(AudioError, match="too short for Whisper"):
        encoder.frames(np.zeros(200, dtype=np.float32))
