"""The HTTP API against a real uvicorn server on loopback: answers, documentation, and every bad input.

Each bad input must get its own 4xx with a ``{"detail": str}`` a person can act on, and must never
reach the catch-all 500 handler (counted in ``app.state.unexpected_errors``).
"""

from __future__ import annotations

import io
import threading
import time

import httpx
import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import LABELS, TEST_LIMITS, LiveServer

from emofusion.inference.recognizer import EmotionRecognizer
from emofusion.service import create_app
from emofusion.service.limits import Limits


def wav_bytes(samples: np.ndarray, rate: int = 16000, fmt: str = "WAV") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format=fmt, subtype="PCM_16" if fmt == "WAV" else None)
    return buf.getvalue()


def tone(seconds: float, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return 0.3 * np.sin(2 * np.pi * 220 * t)


@pytest.fixture(scope="module")
def clip(paired_utterances):
    """A real RAVDESS recording (FLAC) and its paired transcript, not one the model trained on."""

    u = paired_utterances[1]
    return u.audio.read_bytes(), u.audio.name, u.text, u.audio


def post(server, files=None, data=None, timeout=30, **kw) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/predict", files=files, data=data, timeout=timeout, **kw)


# ---------------------------------------------------------------- success


def test_predict_matches_the_in_process_recognizer(fusion_server, fusion_recognizer, clip):
    audio, name, text, path = clip
    r = post(fusion_server, files={"audio": (name, audio, "audio/flac")}, data={"text": text})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"label", "probabilities", "model", "modalities", "windows", "latency_ms", "timings_ms",
                         "transcript", "transcribed", "language", "language_probability", "text_used", "confident"}
    assert body["transcript"] == text and body["transcribed"] is False
    assert body["text_used"] is True and body["language"] is None and body["language_probability"] is None
    assert list(body["probabilities"]) == list(LABELS)
    assert sum(body["probabilities"].values()) == pytest.approx(1.0, abs=1e-6)
    assert body["label"] == max(body["probabilities"], key=body["probabilities"].get)
    assert body["model"] == "M-CBLA-BLR" and body["modalities"] == ["speech", "text"]
    # Same answer as the Python API reading the file from disk: the service changes nothing.
    expected = fusion_recognizer.predict(path, text)
    assert body["label"] == expected.label and body["windows"] == expected.windows
    for label in LABELS:
        assert body["probabilities"][label] == pytest.approx(expected.probabilities[label], abs=1e-6)
    assert 0 < body["latency_ms"] < 30_000
    assert set(body["timings_ms"]) == {"read", "decode", "features", "model"}


def test_stereo_wav_at_another_rate_is_accepted(fusion_server, fusion_recognizer, clip):
    audio, _, text, _ = clip
    mono, rate = sf.read(io.BytesIO(audio))
    stereo = np.stack([mono, mono], axis=1)
    r = post(fusion_server, files={"audio": ("s.wav", wav_bytes(stereo, rate), "audio/wav")}, data={"text": text})
    assert r.status_code == 200, r.text
    assert r.json()["windows"] == fusion_recognizer.predict(mono, text, sample_rate=rate).windows


def test_health_names_the_model(fusion_server):
    r = httpx.get(f"{fusion_server.url}/health")
    assert r.status_code == 200
    import importlib.util

    can_transcribe = importlib.util.find_spec("faster_whisper") is not None  # the asr extra
    assert r.json() == {"status": "ok", "model": "M-CBLA-BLR", "labels": list(LABELS), "modalities": ["speech", "text"],
                        "transcription": can_transcribe}


def test_openapi_documents_the_form_fields_and_errors(fusion_server):
    spec = httpx.get(f"{fusion_server.url}/openapi.json").json()
    op = spec["paths"]["/v1/predict"]["post"]
    assert "multipart/form-data" in op["requestBody"]["content"]
    schema_ref = op["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"].split("/")[-1]
    props = spec["components"]["schemas"][schema_ref]["properties"]
    assert "WAV, FLAC or OGG" in props["audio"]["description"]
    assert "at most 200 characters" in props["text"]["description"]
    assert {"413", "415", "422", "500"} <= set(op["responses"])
    assert "/health" in spec["paths"] and "/" not in spec["paths"]
    docs = httpx.get(f"{fusion_server.url}/docs")
    assert docs.status_code == 200 and "swagger-ui" in docs.text


def test_page_and_its_assets_are_served(fusion_server):
    page = httpx.get(f"{fusion_server.url}/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'id="audio-file"' in page.text and 'for="text"' in page.text
    for asset in ("app.js", "style.css", "recorder-worklet.js"):
        assert httpx.get(f"{fusion_server.url}/static/{asset}").status_code == 200
    # Offline: the page loads nothing from another host.
    assert "http://" not in page.text and "https://" not in page.text


def test_text_only_model_needs_no_audio(text_recognizer):
    with LiveServer(create_app(text_recognizer)) as server:
        health = httpx.get(f"{server.url}/health").json()
        r = post(server, data={"text": "I am so happy to see you!"})
        no_text = post(server, files={"audio": ("a.wav", wav_bytes(tone(1.0)), "audio/wav")})
    assert health["modalities"] == ["text"]
    assert r.status_code == 200, r.text
    assert r.json()["probabilities"] == pytest.approx(text_recognizer.predict(None, "I am so happy to see you!").probabilities)
    assert no_text.status_code == 422 and "no transcript" in no_text.json()["detail"]


# ---------------------------------------------------------------- bad input

FLAC = "audio/flac"


def bad_requests(clip):
    audio, name, text, _ = clip
    big = 1 + TEST_LIMITS.max_upload_bytes
    return {
        "no file": (dict(data={"text": text}), 422, "no audio file"),
        "empty file": (dict(files={"audio": ("e.wav", b"", "audio/wav")}, data={"text": text}), 422, "empty (0 bytes)"),
        "undecodable file": (dict(files={"audio": ("notes.wav", b"hello, not audio" * 50, "audio/wav")}, data={"text": text}),
                             422, "'notes.wav': cannot decode audio"),
        "truncated file": (dict(files={"audio": (name, audio[:60], FLAC)}, data={"text": text}), 422, "cannot decode audio"),
        "empty audio": (dict(files={"audio": ("z.wav", wav_bytes(np.zeros(0)), "audio/wav")}, data={"text": text}),
                        422, "empty (0 samples)"),
        "silent audio": (dict(files={"audio": ("s.wav", wav_bytes(np.zeros(16000)), "audio/wav")}, data={"text": text}),
                         422, "silent"),
        "audio too long": (dict(files={"audio": ("l.wav", wav_bytes(tone(9.0, 8000), 8000), "audio/wav")}, data={"text": text}),
                           422, "9.0 s of audio exceeds the limit of 8 s"),
        "file over the upload limit": (dict(files={"audio": ("big.wav", b"\0" * big, "audio/wav")}, data={"text": text}),
                                       413, "'big.wav' is larger than the upload limit of 524288 bytes"),
        "body far over the upload limit": (dict(files={"audio": ("huge.wav", b"\0" * (4 * big), "audio/wav")}, data={"text": text}),
                                           413, "exceeds the upload limit of 524288 bytes"),
        "text too long": (dict(files={"audio": (name, audio, FLAC)}, data={"text": "word " * 41}), 422,
                          "transcript of 205 characters exceeds the limit of 200"),
        "blank text": (dict(files={"audio": (name, audio, FLAC)}, data={"text": "  \n "}), 422, "no transcript"),
        "audio sent as a text field": (dict(data={"audio": "clip.wav", "text": text}), 422, "audio: expected a file upload"),
        "text sent as a file": (dict(files={"audio": (name, audio, FLAC), "text": ("t.txt", b"hi", "text/plain")}), 422,
                                "text: expected a plain text form field"),
        "json body": (dict(json={"audio": "x", "text": text}), 415, "expected a multipart/form-data body"),
        "malformed multipart": (dict(content=b"--nope\r\ngarbage", headers={"content-type": "multipart/form-data"}), 400,
                                "malformed multipart/form-data body (Missing boundary in multipart)"),
        "multipart part without a name": (dict(content=b"--b\r\nContent-Disposition: form-data\r\n\r\nhi\r\n--b--\r\n",
                                               headers={"content-type": "multipart/form-data; boundary=b"}), 400,
                                          '(The Content-Disposition header field "name" must be provided)'),
        "multipart garbage": (dict(content=b"garbage", headers={"content-type": "multipart/form-data; boundary=b"}), 400,
                              "malformed multipart/form-data body (Invalid multipart data)"),
    }


CASES = list(bad_requests((b"", "", "", None)))


@pytest.mark.parametrize("case", CASES)
def test_bad_input_gets_a_clear_4xx(fusion_server, clip, case):
    kwargs, status, message = bad_requests(clip)[case]
    before = fusion_server.app.state.unexpected_errors
    r = httpx.post(f"{fusion_server.url}/v1/predict", timeout=30, **kwargs)
    assert r.status_code == status, r.text
    body = r.json()
    assert list(body) == ["detail"] and isinstance(body["detail"], str)
    assert message in body["detail"]
    assert fusion_server.app.state.unexpected_errors == before  # the catch-all was not reached


def test_chunked_upload_over_the_limit_is_stopped(fusion_server):
    """No Content-Length: the limit must trip while the body streams, not after it is stored."""
    boundary = b"b0undary"
    head = (b"--" + boundary + b'\r\nContent-Disposition: form-data; name="audio"; filename="x.wav"\r\n'
            b"Content-Type: audio/wav\r\n\r\n")
    sent = []

    def body():
        yield head
        for _ in range(64):  # 4 MiB in 64 KiB chunks, 8x the limit
            sent.append(1)
            yield b"\0" * 65536
        yield b"\r\n--" + boundary + b"--\r\n"

    try:
        r = httpx.post(f"{fusion_server.url}/v1/predict", content=body(), timeout=30,
                       headers={"content-type": f"multipart/form-data; boundary={boundary.decode()}"})
    except httpx.TransportError:
        pytest.fail("the server reset the connection instead of answering 413")
    assert r.status_code == 413 and "exceeds the upload limit" in r.json()["detail"]


def test_wrong_method_and_path_are_4xx_json(fusion_server):
    assert httpx.get(f"{fusion_server.url}/v1/predict").status_code == 405
    r = httpx.get(f"{fusion_server.url}/v2/nothing")
    assert r.status_code == 404 and r.json() == {"detail": "Not Found"}


# ---------------------------------------------------------------- failures and concurrency


class _Broken(EmotionRecognizer):
    """A real recognizer whose prediction fails the way a bug would."""

    def window_probabilities(self, *args, **kwargs):
        raise RuntimeError("secret internal state 0xdeadbeef")


def test_unexpected_failure_is_a_generic_500(fusion_model_dir, clip):
    audio, name, text, _ = clip
    app = create_app(_Broken.load(fusion_model_dir))
    with LiveServer(app) as server:
        r = post(server, files={"audio": (name, audio, FLAC)}, data={"text": text})
    assert r.status_code == 500
    assert "internal server error" in r.json()["detail"]
    assert "0xdeadbeef" not in r.text  # internals stay in the server log
    assert app.state.unexpected_errors == 1


class _Gated(EmotionRecognizer):
    """Blocks every prediction until ``gate`` opens, to observe the server while one computes."""

    gate = threading.Event()
    entered = threading.Event()
    torch_threads: list[int] = []

    def window_probabilities(self, *args, **kwargs):
        self.torch_threads.append(torch.get_num_threads())
        self.entered.set()
        assert self.gate.wait(20)
        return super().window_probabilities(*args, **kwargs)


def test_inference_runs_off_the_event_loop_on_one_torch_thread(fusion_model_dir, clip):
    audio, name, text, _ = clip
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # what the worker must not inherit
    try:
        with LiveServer(create_app(_Gated.load(fusion_model_dir), torch_threads=1)) as server:
            result = {}
            worker = threading.Thread(
                target=lambda: result.update(r=post(server, files={"audio": (name, audio, FLAC)}, data={"text": text}))
            )
            worker.start()
            assert _Gated.entered.wait(20)
            # A prediction is computing (blocked); the event loop still answers at once.
            health = httpx.get(f"{server.url}/health", timeout=2)
            _Gated.gate.set()
            worker.join(20)
    finally:
        torch.set_num_threads(before)
    assert health.status_code == 200
    assert result["r"].status_code == 200
    assert _Gated.torch_threads == [1]


class _Counting(_Gated):
    gate = threading.Event()
    entered = threading.Event()
    torch_threads: list[int] = []
    batch_sizes: list[int] = []

    def window_probabilities(self, parts):
        self.batch_sizes.append(len(parts))
        return super().window_probabilities(parts)


def test_concurrent_requests_share_one_forward_pass_and_get_their_own_answers(fusion_model_dir, fusion_recognizer, paired_utterances):
    utts = paired_utterances[:5]
    expected = [fusion_recognizer.predict(u.audio, u.text) for u in utts]
    with LiveServer(create_app(_Counting.load(fusion_model_dir))) as server:
        results: dict[int, httpx.Response] = {}

        def send(i):
            u = utts[i]
            results[i] = post(server, files={"audio": (u.audio.name, u.audio.read_bytes(), FLAC)}, data={"text": u.text})

        first = threading.Thread(target=send, args=(0,))
        first.start()
        assert _Counting.entered.wait(20)  # the model thread is busy with request 0
        others = [threading.Thread(target=send, args=(i,)) for i in range(1, 5)]
        for t in others:
            t.start()
        deadline = time.time() + 20
        while server.app.state.batcher._queue.qsize() < 4 and time.time() < deadline:
            time.sleep(0.01)
        _Counting.gate.set()
        for t in [first, *others]:
            t.join(20)
    assert _Counting.batch_sizes == [1, 4]  # the four that queued meanwhile went through together
    for i, want in enumerate(expected):
        body = results[i].json()
        assert results[i].status_code == 200 and body["label"] == want.label
        for label, p in want.probabilities.items():
            assert body["probabilities"][label] == pytest.approx(p, abs=1e-5)


# ---------------------------------------------------------------- command line


def test_serve_command_maps_options_and_rejects_a_missing_model(tmp_path, capsys):
    from emofusion.cli.commands.serve import settings_of
    from emofusion.cli.main import build_parser, main

    args = build_parser().parse_args([
        "serve", "--model", "run", "--max-upload-mb", "1.5", "--max-text-chars", "99", "--max-audio-seconds", "1200",
        "--max-connections", "7", "--header-timeout", "2.5", "--body-timeout", "4", "--keep-alive", "3",
    ])
    settings = settings_of(args)
    assert Limits(**settings["limits"]) == Limits(
        max_upload_bytes=1572864, max_text_chars=99, max_audio_seconds=1200.0, max_connections=7,
        header_timeout_s=2.5, body_timeout_s=4.0, keep_alive_s=3.0,
    )
    assert settings["model_dir"] == "run" and settings["torch_threads"] == 1
    # Without options: the documented defaults, which live in Limits alone.
    assert settings_of(build_parser().parse_args(["serve"]))["limits"] == Limits().to_dict()
    assert main(["serve", "--model", str(tmp_path / "nowhere")]) == 2
    assert "not a trained model folder" in capsys.readouterr().err
    assert main(["serve", "--model", str(tmp_path), "--workers", "0"]) == 2


# ---------------------------------------------------------------- one request never harms another


def test_a_blank_looking_transcript_fails_alone_not_its_whole_batch(fusion_model_dir, fusion_recognizer, paired_utterances):
    """Regression (issue 8.2): a zero-width transcript raised inside the shared forward pass and every
    request batched with it got its 422, with that user's transcript in the message."""
    rec = EmotionRecognizer.load(fusion_model_dir)
    gate, entered = threading.Event(), threading.Event()

    def hold(module, args, kwargs):  # the model thread waits here until the others have queued
        entered.set()
        assert gate.wait(20)

    rec.trained.model.register_forward_pre_hook(hold, with_kwargs=True)
    utts = paired_utterances[:5]
    expected = [fusion_recognizer.predict(u.audio, u.text) for u in utts]
    poison = "\u200b\u200b"
    with LiveServer(create_app(rec)) as server:
        results: dict[int, httpx.Response] = {}

        def send(i):
            u = utts[i % len(utts)]
            text = poison if i == len(utts) else u.text
            results[i] = post(server, files={"audio": (u.audio.name, u.audio.read_bytes(), FLAC)}, data={"text": text})

        first = threading.Thread(target=send, args=(0,))
        first.start()
        assert entered.wait(20)  # request 0 holds the model thread
        others = [threading.Thread(target=send, args=(i,)) for i in range(1, len(utts) + 1)]
        for t in others:
            t.start()
        deadline = time.time() + 20
        # Wait until the good ones have queued and the poisoned one has queued or been refused.
        while time.time() < deadline:
            queued = server.app.state.batcher._queue.qsize()
            if queued + (len(utts) in results) >= len(utts):
                break
            time.sleep(0.01)
        gate.set()
        for t in [first, *others]:
            t.join(30)
        assert server.app.state.unexpected_errors == 0
    for i, want in enumerate(expected):
        assert results[i].status_code == 200, results[i].text
        for label, p in want.probabilities.items():
            assert results[i].json()["probabilities"][label] == pytest.approx(p, abs=1e-5)
    bad = results[len(utts)]
    assert bad.status_code == 422 and "no transcript" in bad.json()["detail"]


def test_the_service_audio_limit_is_the_one_applied_and_errors_name_the_upload(fusion_recognizer, clip):
    """Regression (issue 9.4): `serve --max-audio-seconds 1200` was still capped at 600 s inside the
    recogniser, whose error named "ndarray" instead of the uploaded file."""
    _, _, text, _ = clip
    rate = 8000
    t = np.arange(650 * rate) / rate
    long_tone = wav_bytes(0.3 * np.sin(2 * np.pi * 220 * t), rate, fmt="FLAC")
    raised = Limits(max_upload_bytes=16 * 1024 * 1024, max_audio_seconds=1200)
    lowered = Limits(max_upload_bytes=16 * 1024 * 1024, max_audio_seconds=300)
    with LiveServer(create_app(fusion_recognizer, limits=raised)) as server:
        accepted = post(server, files={"audio": ("talk.flac", long_tone, FLAC)}, data={"text": text}, timeout=120)
    with LiveServer(create_app(fusion_recognizer, limits=lowered)) as server:
        refused = post(server, files={"audio": ("talk.flac", long_tone, FLAC)}, data={"text": text})
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["windows"] == 260  # 650 s in 2.5-s windows
    assert refused.status_code == 422
    assert refused.json()["detail"] == "audio file 'talk.flac': 650.0 s of audio exceeds the limit of 300 s"


class _SlowLongDecode(EmotionRecognizer):
    """Preparing a long recording blocks until ``gate`` opens (as minutes of decoding would)."""

    gate = threading.Event()
    started: list[str] = []

    def prepare(self, audio=None, text=None, **kwargs):
        if isinstance(audio, bytes) and len(audio) > 100_000:
            self.started.append(kwargs.get("name"))
            assert self.gate.wait(30)
        return super().prepare(audio, text, **kwargs)


def test_a_short_request_does_not_queue_behind_long_recordings_being_decoded(fusion_model_dir, clip):
    """Regression (issue 8.3): long recordings took every decoding worker, so good requests waited."""
    audio, name, text, _ = clip
    rate = 8000
    t = np.arange(60 * rate) / rate
    long_flac = wav_bytes(0.3 * np.sin(2 * np.pi * 220 * t), rate, fmt="FLAC")
    assert len(long_flac) > 100_000
    limits = Limits(max_upload_bytes=4 * 1024 * 1024, max_audio_seconds=120)
    app = create_app(_SlowLongDecode.load(fusion_model_dir), limits=limits, concurrency=2)
    results: dict[int, httpx.Response] = {}
    with LiveServer(app) as server:
        def send_long(i):
            results[i] = post(server, files={"audio": (f"long{i}.flac", long_flac, FLAC)}, data={"text": text}, timeout=60)

        longs = [threading.Thread(target=send_long, args=(i,)) for i in range(3)]
        for th in longs:
            th.start()
        deadline = time.time() + 20
        while not _SlowLongDecode.started and time.time() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)  # let the other two reach the server and queue
        try:
            short = post(server, files={"audio": (name, audio, FLAC)}, data={"text": text}, timeout=15)
            decoding_long = len(_SlowLongDecode.started)
        finally:
            _SlowLongDecode.gate.set()
            for th in longs:
                th.join(60)
    # Answered while the long ones were stuck: one decoding, two waiting in their own lane.
    assert short.status_code == 200, short.text
    assert decoding_long == 1
    assert [results[i].status_code for i in range(3)] == [200, 200, 200]
    assert all(results[i].json()["windows"] == 24 for i in range(3))


def test_only_recordings_the_decoder_will_work_through_take_the_long_lane():
    """The lane is chosen from the header: long recordings wait for the one long-decoding worker;
    headers the decoder refuses at once (1 Hz, 8+ channels, over the limit) are never made to wait."""
    import io as _io

    from emofusion.service.app import _is_heavy

    def header(seconds: float, rate: int, channels: int = 1) -> _io.BytesIO:
        return _io.BytesIO(wav_bytes(np.zeros((max(1, int(seconds * rate)), channels)) + 0.1, rate))

    assert not _is_heavy(header(3.0, 16000), 600)
    assert _is_heavy(header(60.0, 8000), 600)
    assert _is_heavy(header(20.0, 48000, channels=4), 600)  # 3.8 M samples to decode
    assert not _is_heavy(header(500.0, 1), 600)  # 1 Hz: outside 8-48 kHz
    assert not _is_heavy(header(700.0, 8000), 600)  # over the limit
    assert not _is_heavy(_io.BytesIO(b"not audio at all"), 600)
