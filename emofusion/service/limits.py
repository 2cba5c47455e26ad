"""Refuse over-sized request bodies while they stream in, before they are spooled to disk.

The multipart parser writes uploads to temporary files as they arrive, so a size check in the
endpoint would come only after a multi-gigabyte upload had already filled the disk. This ASGI
middleware counts body bytes as the server hands them over and answers 413 as soon as the count
passes the limit (or at once when ``Content-Length`` already says so), whatever the route does.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send


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
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(send, declared)
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
            await self._refuse(send, None)

    async def _refuse(self, send: Send, declared: int | None) -> None:
        size = f"{declared} bytes" if declared is not None else f"more than {self.max_bytes} bytes"
        body = json.dumps({"detail": f"request body of {size} exceeds the {self.describe}"}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    # The rest of the body is never read: tell the client not to reuse the socket.
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
