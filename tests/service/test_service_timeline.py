"""POST /v1/timeline and transcription in /v1/predict, against a real uvicorn server on loopback."""

from __future__ import annotations

import io
import sys

import httpx
import numpy as np
import pytest
import soundfile as sf

from emofusion.audio import load_audio
from emofusion.inference import diarization
from emofusion.inference.timeline import build_timeline

RATE = 16_000


def wav(samples: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, RATE, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def two_utterances(shared_data) -> bytes:
    """Two RAVDESS sentences with a second of quiet around each: 7.7 s, under the tests' 8-s limit."""
    from conversation import trim_to_speech

    clips = [trim_to_speech(load_audio(shared_data / "ravdess" / "Actor_03" / name).samples)
             for name in ("03-01-05-02-01-01-03.flac", "03-01-04-01-02-01-03.flac")]
    gap = 1e-3 * np.random.default_rng(0).standard_normal(RATE)
    return wav(np.concatenate([gap, clips[0], gap, clips[1], gap]))


def post(server, path, **kwargs) -> httpx.Response:
    return httpx.post(f"{server.url}{path}", timeout=120, **kwargs)


def test_timeline_answers_what_the_recognizer_gives(asr_extra, fusion_server, fusion_recognizer, two_utterances):
    r = post(fusion_server, "/v1/timeline", files={"audio": ("call.wav", two_utterances, "audio/wav")})
    assert r.status_code == 200, r.text
    body = r.json()
    expected = build_timeline(fusion_recognizer, two_utterances).to_json()
    assert len(body["segments"]) == 2
    for got, want in zip(body["segments"], expected["segments"]):
        assert (got["start"], got["end"], got["text"], got["label"], got["speaker"]) == (
            want["start"], want["end"], want["text"], want["label"], want["speaker"])
        assert got["probabilities"] == pytest.approx(want["probabilities"], abs=1e-6)
        assert "by the door" in got["text"].lower()
    assert body["label"] == expected["label"] and body["probabilities"] == pytest.approx(expected["probabilities"])
    assert body["duration"] == pytest.approx(len(two_utterances[44:]) / 2 / RATE, abs=1e-3)
    told_apart = diarization.available()
    assert set(body["timings_ms"]) == {"vad", "transcription", "emotion", "total"} | ({"speakers"} if told_apart else set())
    assert body["latency_ms"] > 0
    # the speakers and their summary as the library gives them (none without the voice encoder)
    assert [p["speaker"] for p in body["speakers"]] == [p["speaker"] for p in expected["speakers"]]
    assert bool(body["speakers"]) == told_apart
    for got, want in zip(body["speakers"], expected["speakers"]):
        assert got["speaking_s"] == pytest.approx(want["speaking_s"]) and got["label"] == want["label"]
        assert got["emotion_s"] == pytest.approx(want["emotion_s"])
    assert body["speaker_note"] == expected["speaker_note"]


def test_timeline_with_a_transcript_uses_it_for_every_segment(asr_extra, fusion_server, two_utterances):
    r = post(fusion_server, "/v1/timeline", files={"audio": ("call.wav", two_utterances, "audio/wav")},
             data={"text": "You never listen to me."})
    assert r.status_code == 200, r.text
    assert [s["text"] for s in r.json()["segments"]] == ["You never listen to me."] * 2
    assert r.json()["transcriber"] is None


def test_noise_gives_an_empty_timeline_that_says_so(asr_extra, fusion_server):
    noise = 0.05 * np.random.default_rng(1).standard_normal(3 * RATE)
    r = post(fusion_server, "/v1/timeline", files={"audio": ("noise.wav", wav(noise), "audio/wav")})
    assert r.status_code == 200, r.text
    assert r.json()["segments"] == [] and r.json()["label"] is None and "no speech found" in r.json()["note"]


@pytest.mark.parametrize("kwargs, status, message", [
    (dict(files={"audio": ("l.wav", wav(np.zeros(9 * RATE) + 0.01), "audio/wav")}), 422, "exceeds the limit of 8 s"),
    (dict(data={"text": "hello"}), 422, "no audio file"),
    (dict(files={"audio": ("bad.wav", b"not audio" * 30, "audio/wav")}), 422, "'bad.wav': cannot decode audio"),
])
def test_timeline_bad_input_is_a_clear_4xx(asr_extra, fusion_server, kwargs, status, message):
    before = fusion_server.app.state.unexpected_errors
    r = post(fusion_server, "/v1/timeline", **kwargs)
    assert r.status_code == status and message in r.json()["detail"], r.text
    assert fusion_server.app.state.unexpected_errors == before


def test_predict_without_text_transcribes_the_recording(asr_extra, fusion_server, fusion_recognizer, paired_utterances):
    u = paired_utterances[2]
    r = post(fusion_server, "/v1/predict", files={"audio": (u.audio.name, u.audio.read_bytes(), "audio/flac")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["transcribed"] is True and "by the door" in body["transcript"].lower()
    expected = fusion_recognizer.predict(u.audio, body["transcript"])
    assert body["label"] == expected.label
    assert body["probabilities"] == pytest.approx(expected.probabilities, abs=1e-5)
    given = post(fusion_server, "/v1/predict", files={"audio": (u.audio.name, u.audio.read_bytes(), "audio/flac")},
                 data={"text": u.text}).json()
    assert given["transcript"] == u.text and given["transcribed"] is False


def test_without_the_extra_the_answer_names_it(fusion_server, paired_utterances, monkeypatch):
    from emofusion.asr import transcriber, vad

    monkeypatch.setitem(sys.modules, "faster_whisper", None)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    transcriber._load_cached.cache_clear()
    vad._load_detector.cache_clear()
    u = paired_utterances[2]
    try:
        for path in ("/v1/predict", "/v1/timeline"):
            r = post(fusion_server, path, files={"audio": (u.audio.name, u.audio.read_bytes(), "audio/flac")})
            assert r.status_code == 422 and 'pip install "emofusion[asr]"' in r.json()["detail"], (path, r.text)
    finally:
        transcriber._load_cached.cache_clear()
        vad._load_detector.cache_clear()
