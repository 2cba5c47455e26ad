"""Connections are bounded in number and in time, and refused uploads still get their answer.

Raw sockets stand in for the clients a polite HTTP library never imitates: one that connects and
says nothing, one that trickles its headers, one that stops half-way through its body, one that
asks ``Expect: 100-continue``. Timeouts here are a fraction of a second so the tests are quick; the
bounds asserted are generous, since the point is that a connection is closed, not how fast.
"""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest
from conftest import TEST_LIMITS, LiveServer

from emofusion.service import create_app
from emofusion.service.limits import Limits

SHORT = Limits(
    max_upload_bytes=TEST_LIMITS.max_upload_bytes, max_audio_seconds=8.0, max_text_chars=200,
    max_connections=6, header_timeout_s=0.5, body_timeout_s=0.5, keep_alive_s=5.0,
)


@pytest.fixture(scope="module")
def short_server(fusion_recognizer):
    with LiveServer(create_app(fusion_recognizer, limits=SHORT)) as server:
        yield server


def connect(server) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    return s


def read_response(s: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response with a Content-Length body, read from ``s``."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed after {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    while len(body) < int(headers.get("content-length", 0)):
        body += s.recv(65536)
    return int(lines[0].split()[1]), headers, body


def closed_within(s: socket.socket, seconds: float) -> tuple[bool, bytes]:
    """(the server closed the connection within ``seconds``, what it sent before closing)."""
    s.settimeout(seconds)
    received = b""
    try:
        while chunk := s.recv(65536):
            received += chunk
        return True, received
    except ConnectionResetError:
        return True, received
    except socket.timeout:
        return False, received


def test_a_refused_upload_is_read_to_its_end_and_the_connection_stays_usable(fusion_server):
    """Regression: the 413 was sent and the socket closed with the upload unread, so the client's
    TCP stack could get a reset instead of the answer (a flaky `RemoteProtocolError` in the suite)."""
    size = 4 * TEST_LIMITS.max_upload_bytes
    s = connect(fusion_server)
    s.sendall(f"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
              f"Content-Length: {size}\r\n\r\n".encode())
    for _ in range(size // 65536):
        s.sendall(b"\0" * 65536)
    status, headers, body = read_response(s)
    assert status == 413 and "exceeds the upload limit" in json.loads(body)["detail"]
    assert headers.get("connection") != "close"
    # The whole body was consumed, so the same connection carries the next request.
    s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    status, _, body = read_response(s)
    assert status == 200 and json.loads(body)["status"] == "ok"
    s.close()


def test_refused_uploads_always_reach_the_client(fusion_server):
    for size in (2, 8, 8, 8, 8):
        r = httpx.post(f"{fusion_server.url}/v1/predict", timeout=30,
                       files={"audio": ("huge.wav", b"\0" * (size * 1024 * 1024), "audio/wav")}, data={"text": "hi"})
        assert r.status_code == 413 and "exceeds the upload limit" in r.json()["detail"]


def test_a_client_that_expects_100_continue_is_refused_before_it_sends_the_body(fusion_server):
    s = connect(fusion_server)
    s.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
              b"Expect: 100-continue\r\nContent-Length: 50000000\r\n\r\n")
    status, headers, body = read_response(s)
    assert status == 413 and headers["connection"] == "close"
    assert "request body of 50000000 bytes exceeds" in json.loads(body)["detail"]
    s.close()


def test_a_connection_that_sends_nothing_is_closed(short_server):
    s = connect(short_server)
    closed, received = closed_within(s, 10)
    assert closed and received == b""  # nothing was asked, so nothing is answered
    s.close()


def test_trickled_headers_get_408_and_are_closed(short_server):
    s = connect(short_server)
    started = time.monotonic()
    head = b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200
    sent = 0
    try:
        # One byte every 20 ms: each byte arrives well within any idle timeout, the whole head never.
        while time.monotonic() - started < 10 and sent < len(head):
            s.sendall(head[sent : sent + 1])
            sent += 1
            time.sleep(0.02)
    except OSError:
        pass  # the server closed while we were still trickling: what we want
    closed, received = closed_within(s, 10)
    assert closed and received.startswith(b"HTTP/1.1 408")
    assert sent < len(head)
    s.close()


def test_a_stalled_body_gets_408_and_is_closed(short_server):
    before = short_server.app.state.unexpected_errors
    s = connect(short_server)
    s.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
              b"Content-Length: 100000\r\n\r\n--b\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\nhel")
    closed, received = closed_within(s, 10)
    assert closed and received.startswith(b"HTTP/1.1 408")
    assert b"request timeout" in received
    s.close()
    time.sleep(0.2)
    assert short_server.app.state.unexpected_errors == before


def test_connections_beyond_the_limit_get_503_until_idle_ones_time_out(short_server, clip_request):
    idle = [connect(short_server) for _ in range(SHORT.max_connections)]
    time.sleep(0.1)
    refused = httpx.post(f"{short_server.url}/v1/predict", timeout=30, **clip_request)
    assert refused.status_code == 503
    for s in idle:  # the header timeout frees their places...
        assert closed_within(s, 10)[0]
        s.close()
    accepted = httpx.post(f"{short_server.url}/v1/predict", timeout=30, **clip_request)
    assert accepted.status_code == 200, accepted.text  # ...and the server serves again


def test_many_slow_clients_do_not_stop_good_requests(fusion_recognizer, clip_request):
    limits = Limits(max_upload_bytes=TEST_LIMITS.max_upload_bytes, max_connections=200, header_timeout_s=0.5)
    with LiveServer(create_app(fusion_recognizer, limits=limits)) as server:
        slow = [connect(server) for _ in range(100)]
        for s in slow:
            s.sendall(b"POST /v1/predict HTTP/1.1\r\n")
        good = [httpx.post(f"{server.url}/v1/predict", timeout=30, **clip_request) for _ in range(3)]
        assert all(closed_within(s, 10)[0] for s in slow)
        for s in slow:
            s.close()
        time.sleep(0.2)
        connections = len(server.server.server_state.connections)
    assert [r.status_code for r in good] == [200, 200, 200]
    assert connections == 0


def test_worker_processes_take_their_limits_from_the_environment(monkeypatch):
    """`serve --workers N` hands settings to worker processes through $EMOFUSION_SERVICE; the
    protocol class they receive by name reads its timeouts from there."""
    import json

    from emofusion.service.server import SETTINGS_ENV, TimedH11Protocol

    limits = Limits(header_timeout_s=1.5, body_timeout_s=2.5, max_connections=9)
    monkeypatch.setenv(SETTINGS_ENV, json.dumps({"limits": limits.to_dict()}))
    in_worker = type("TimedH11Protocol", (TimedH11Protocol,), {"limits": None})  # as a fresh import sees it
    assert in_worker._limits() == limits
    assert TimedH11Protocol.with_limits(SHORT)._limits() == SHORT
