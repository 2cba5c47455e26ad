"""/v1/predict says which language was heard and whether the transcript was read (issue 16.3)."""

from __future__ import annotations

import io

import httpx
import numpy as np
import soundfile as sf
from foreign_speech import GERMAN, spoken

from emofusion.inference.recognizer import EmotionRecognizer


def test_german_speech_without_a_transcript_is_answered_from_its_sound(asr_extra, fusion_server):
    samples = spoken("de", GERMAN[1])
    buffer = io.BytesIO()
    sf.write(buffer, samples, 16_000, format="WAV", subtype="PCM_16")
    r = httpx.post(f"{fusion_server.url}/v1/predict", timeout=120, files={"audio": ("de.wav", buffer.getvalue(), "audio/wav")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["transcribed"] is True and body["transcript"]
    assert body["text_used"] is False and body["language"] is None  # tiny.en detects none, and was unsure
    assert body["modalities"] == ["speech"]
    expected = EmotionRecognizer.load("speech").predict(buffer.getvalue())
    assert body["label"] == expected.label
    for label, p in expected.probabilities.items():
        assert abs(body["probabilities"][label] - p) < 1e-5


def test_a_german_timeline_segment_is_classified_from_its_sound(asr_extra, fusion_server):
    quiet = 1e-3 * np.random.default_rng(0).standard_normal(16_000)
    speech = spoken("de", GERMAN[2])
    buffer = io.BytesIO()
    sf.write(buffer, np.concatenate([quiet, speech / np.abs(speech).max() * 0.5, quiet]), 16_000, format="WAV",
             subtype="PCM_16")
    assert len(buffer.getvalue()) < 8 * 2 * 16_000  # under the test server's 8-s limit
    r = httpx.post(f"{fusion_server.url}/v1/timeline", timeout=120, files={"audio": ("de.wav", buffer.getvalue(), "audio/wav")})
    assert r.status_code == 200, r.text
    segments = r.json()["segments"]
    speech_model = EmotionRecognizer.load("speech").name  # S-WTV with the encoders extra, else S-CBLA
    assert segments and all(s["model"] == speech_model and s["text"] == "" and s["label"] for s in segments)
    assert all("language" in s and s["language"] is None for s in segments)  # tiny.en detects none
