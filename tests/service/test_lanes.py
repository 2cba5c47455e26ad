"""Fair under load: long work runs in lanes of bounded concurrency and queue, and work whose client
has gone is stopped (issue 18, items 4 and 6).

The lanes are held with real blocking work (a function waiting on an event) where a test needs a
lane to be busy for a known time; everything else goes through a real uvicorn server.
"""

from __future__ import annotations

import io
import socket
import threading
import time

import httpx
import numpy as np
import pytest
import soundfile as sf
from conftest import TEST_LIMITS, LiveServer

from emofusion.audio_stream import Abandoned, abandon_when, check_abandoned
from emofusion.service import create_app
from emofusion.service.lanes import Lane, LaneFull
from emofusion.service.limits import Limits

RATE = 16_000
LONG_LIMITS = Limits(max_upload_bytes=8 * 1024 * 1024, max_audio_seconds=120.0, max_text_chars=200)


def flac(samples: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, RATE, format="FLAC")
    return buffer.getvalue()


def hold(lane: Lane) -> threading.Event:
    """Occupy every worker of ``lane`` until the returned event is set."""
    release = threading.Event()
    for _ in range(lane.workers):
        lane.submit(release.wait, 60)
    return release


@pytest.fixture(scope="module")
def conversation(shared_data, tmp_path_factory) -> bytes:
    """About 60 s of RAVDESS sentences with 1-2 s of quiet between them, as FLAC."""
    from conversation import make_conversation

    path = tmp_path_factory.mktemp("conversation") / "conversation.wav"
    make_conversation(shared_data, path, seconds=60.0, seed=3)
    samples, rate = sf.read(path)
    assert rate == RATE
    return flac(samples)


@pytest.fixture(scope="module")
def long_clip(paired_utterances) -> tuple[bytes, str]:
    """A 40-s recording (over the 30-s long-recording bound: the long lane) and a transcript."""
    samples, rate = sf.read(paired_utterances[0].audio)
    assert rate == RATE
    repeated = np.tile(samples, int(np.ceil(40 * RATE / len(samples))))[: 40 * RATE]
    return flac(repeated), paired_utterances[0].text


# ------------------------------------------------------------------------------ a lane on its own

def test_a_lane_refuses_beyond_its_workers_and_queue_and_says_when_to_retry():
    lane = Lane("test", workers=1, queue=1)
    release = threading.Event()
    try:
        running = lane.submit(release.wait, 60)
        waiting = lane.submit(lambda: "done")
        with pytest.raises(LaneFull, match="the test lane is full") as refused:
            lane.submit(lambda: "never")
        assert refused.value.retry_after_s >= 1
        assert lane.held == 2
        release.set()
        assert running.result(10) is True and waiting.result(10) == "done"
        assert lane.submit(lambda: 7).result(10) == 7  # room again once they finished
    finally:
        release.set()
        lane.close()
    assert lane.held == 0


def test_abandoning_cancels_waiting_work_and_frees_its_place():
    lane = Lane("test", workers=1, queue=1)
    release, gone = threading.Event(), threading.Event()
    ran = []
    try:
        lane.submit(release.wait, 60)
        waiting = lane.submit(ran.append, "ran", abandoned=gone)
        gone.set()
        assert lane.abandon(gone) == 1
        assert waiting.cancelled() and lane.held == 1
        lane.submit(lambda: None)  # its place is free at once, while the first still runs
    finally:
        release.set()
        lane.close()
    assert ran == []


def test_running_work_stops_at_its_next_seam_once_abandoned():
    gone = threading.Event()
    seams = []

    def work():
        for i in range(100):
            check_abandoned()
            seams.append(i)
            if i == 2:
                gone.set()

    with abandon_when(gone), pytest.raises(Abandoned):
        work()
    assert seams == [0, 1, 2]
    check_abandoned()  # outside the block the signal no longer applies


# ------------------------------------------------------------------------------ through the service

def test_a_full_lane_answers_503_with_retry_after(fusion_recognizer, clip_request):
    app = create_app(fusion_recognizer, limits=TEST_LIMITS, lane_queues={"timeline": 0, "transcribe": 0})
    with LiveServer(app) as server:
        lanes = app.state.lanes
        release = hold(lanes.timeline)
        release_asr = hold(lanes.transcribe)
        try:
            busy = httpx.post(f"{server.url}/v1/timeline", timeout=30, files=clip_request["files"])
            asr_busy = httpx.post(f"{server.url}/v1/predict", timeout=30, files=clip_request["files"])
            # An ordinary request (its transcript sent) is not held up by either full lane.
            ordinary = httpx.post(f"{server.url}/v1/predict", timeout=30, **clip_request)
        finally:
            release.set()
            release_asr.set()
        assert busy.status_code == 503, busy.text
        assert "timeline lane is full" in busy.json()["detail"]
        assert int(busy.headers["retry-after"]) >= 1
        assert asr_busy.status_code == 503 and "transcription lane is full" in asr_busy.json()["detail"]
        assert int(asr_busy.headers["retry-after"]) >= 1
        assert ordinary.status_code == 200, ordinary.text
        assert app.state.unexpected_errors == 0


def test_a_long_predict_does_not_wait_behind_timelines(fusion_recognizer, long_clip):
    app = create_app(fusion_recognizer, limits=LONG_LIMITS)
    audio, text = long_clip
    with LiveServer(app) as server:
        release = hold(app.state.lanes.timeline)  # a timeline running for as long as this test
        try:
            t0 = time.perf_counter()
            answer = httpx.post(f"{server.url}/v1/predict", timeout=60, files={"audio": ("long.flac", audio)},
                                data={"text": text})
            elapsed = time.perf_counter() - t0
            timeline_still_running = app.state.lanes.timeline.held == 1
        finally:
            release.set()
    assert answer.status_code == 200, answer.text
    assert answer.json()["windows"] == 16  # 40 s in 2.5-s windows: it went through the long lane
    assert timeline_still_running and elapsed < 30


def test_an_abandoned_timeline_stops_consuming_work(asr_extra, fusion_recognizer, conversation, monkeypatch):
    from emofusion.asr.transcriber import Transcriber

    heard = []
    real_hear = Transcriber.hear

    def counting_hear(self, samples):
        heard.append(time.monotonic())
        return real_hear(self, samples)

    monkeypatch.setattr(Transcriber, "hear", counting_hear)
    app = create_app(fusion_recognizer, limits=LONG_LIMITS)
    with LiveServer(app) as server:
        body, content_type = _multipart(conversation)
        s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        s.sendall(f"POST /v1/timeline HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
                  f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        deadline = time.monotonic() + 60
        while len(heard) < 2 and time.monotonic() < deadline:  # it is transcribing utterances
            time.sleep(0.05)
        assert len(heard) >= 2
        s.close()  # the client goes away
        gone_at = time.monotonic()
        deadline = gone_at + 30
        while app.state.lanes.timeline.held and time.monotonic() < deadline:
            time.sleep(0.05)
        stopped_after = time.monotonic() - gone_at
        after = [t for t in heard if t > gone_at]
        # The lane is free again, and at most the utterance begun by the time it noticed was heard.
        assert app.state.lanes.timeline.held == 0, "the abandoned timeline is still running"
        assert stopped_after < 5 and len(after) <= 2, (stopped_after, len(after), len(heard))
        assert app.state.unexpected_errors == 0


def _multipart(audio: bytes) -> tuple[bytes, str]:
    boundary = "emofusion-test-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"audio\"; filename=\"c.flac\"\r\n"
            f"Content-Type: audio/flac\r\n\r\n").encode() + audio + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def test_a_queued_transcription_whose_client_left_is_cancelled(asr_extra, fusion_recognizer, clip_request):
    app = create_app(fusion_recognizer, limits=TEST_LIMITS)
    with LiveServer(app) as server:
        lane = app.state.lanes.transcribe
        release = hold(lane)  # a transcription running for as long as this test
        try:
            body, content_type = _multipart(clip_request["files"]["audio"][1])  # no transcript: transcribed
            s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            s.sendall(f"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
                      f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
            deadline = time.monotonic() + 10
            while lane.held < 2 and time.monotonic() < deadline:  # queued behind the running one
                time.sleep(0.02)
            assert lane.held == 2
            s.close()
            deadline = time.monotonic() + 5
            while lane.held > 1 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert lane.held == 1  # cancelled while it waited: its place is free, it never ran
        finally:
            release.set()
        assert app.state.unexpected_errors == 0
