"""The service's limits, in one place, and the middleware that enforces the body size.

`Limits` holds every bound the service puts on a client: what one request may carry (upload size,
audio length, transcript length: the last two are the library's `InputLimits`, passed down to the
recogniser) and what one connection may hold (open connections, read timeouts; enforced by the
server, see `service/server.py`). `emofusion serve` builds it from its options; its defaults are the
documented ones.

`BodySizeLimit` refuses over-sized request bodies while they stream in, before they are spooled to
disk: the multipart parser writes uploads to temporary files as they arrive, so a size check in the
endpoint would come only after a multi-gigabyte upload had filled the disk.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from emofusion.errors import ConfigError
from emofusion.inference.limits import InputLimits

MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Arguments:
        max_upload_bytes: largest audio file accepted (413 above it).
        max_audio_seconds: longest recording accepted (422 above it).
        max_text_chars: longest transcript accepted (422 above it).
        max_connections: open connections at once; beyond it new requests get 503 at once. Bounds
            the memory and file descriptors that idle or slow clients can hold.
        header_timeout_s: a request's line and headers must arrive within this many seconds of the
            connection opening (or of the previous response): idle and trickling connections close.
        body_timeout_s: the longest pause while a request body streams in.
        keep_alive_s: how long an idle keep-alive connection is kept after a response.
    """

    max_upload_bytes: int = 20 * MiB
    max_audio_seconds: float = InputLimits.max_audio_seconds
    max_text_chars: int = 5000
    max_connections: int = 64
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    keep_alive_s: float = 5.0

    def __post_init__(self) -> None:
        bad = [f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self) if not getattr(self, f.name) > 0]
        if bad:
            raise ConfigError(f"service limits must be positive: {', '.join(bad)}")

    @property
    def input_limits(self) -> InputLimits:
        """The part the recogniser checks, passed down to `EmotionRecognizer.prepare`."""
        return InputLimits(max_audio_seconds=self.max_audio_seconds, max_text_chars=self.max_text_chars)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# A refused body is still read (and thrown away) up to this much and this long: a server that
# closes a socket with unread data makes the kernel reset the connection, which can destroy the 413
# before the client reads it. Beyond these bounds the connection is simply closed.
DRAIN_MAX_BYTES = 64 * MiB
DRAIN_MAX_SECONDS = 10.0


class BodyTooLarge(Exception):
    """Raised inside the app's ``receive`` once the body passes the limit."""


class BodySizeLimit:
    """ASGI middleware: a 413 JSON answer for any HTTP request body above ``max_bytes``.

    Arguments:
        app: the wrapped application.
        max_bytes: the largest body accepted, multipart framing and form fields included.
        describe: how to name the limit in the error message (e.g. "20 MiB upload limit").
    """

    def __init__(self, app: ASGIApp, max_bytes: int, describe: str) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.describe = describe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            # A client that asked "Expect: 100-continue" has not sent the body and will not: answer
            # at once, and close, since the connection cannot tell its next request from that body.
            waiting = (_header(scope, b"expect") or "").lower() == "100-continue"
            drained = not waiting and await _drain(receive, 0)
            await self._refuse(send, f"{int(declared)} bytes", close=not drained)
            return

        received = 0
        tripped = False
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received, tripped
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    tripped = True
                    raise BodyTooLarge()
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            # Once the limit trips, whatever the app answers (FastAPI turns a failed body read
            # into a generic 400) is replaced by the 413 below.
            if tripped:
                return
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except BodyTooLarge:
            pass
        if tripped and not response_started:
            drained = await _drain(receive, received)
            await self._refuse(send, f"more than {self.max_bytes} bytes", close=not drained)

    async def _refuse(self, send: Send, size: str, *, close: bool) -> None:
        body = json.dumps({"detail": f"request body of {size} exceeds the {self.describe}"}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if close:
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


async def _drain(receive: Receive, received: int) -> bool:
    """Read and discard the rest of the body; True if it ended within the drain bounds."""
    with anyio.move_on_after(DRAIN_MAX_SECONDS):
        while received <= DRAIN_MAX_BYTES:
            message = await receive()
            if message["type"] != "http.request":
                return False  # the client went away
            received += len(message.get("body", b""))
            if not message.get("more_body", False):
                return True
    return False


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1").strip()
    return None
