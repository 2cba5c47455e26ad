"""Run the service under uvicorn with every connection bounded in number and in time.

uvicorn closes idle keep-alive connections (``keep_alive_s``) and can refuse requests beyond a
connection count (``max_connections``: 503 at once), but it waits forever for a request that
trickles in: a client that opens a connection and sends nothing, or one header byte a minute, holds
it indefinitely, and a few hundred such clients exhaust the server. `TimedH11Protocol` adds the two
read timeouts a front-end server such as nginx applies:

* the request line and headers must arrive within ``header_timeout_s`` of the connection opening
  (or of the previous response on a kept-alive connection), however they trickle in;
* while the body streams in, no pause may exceed ``body_timeout_s``.

A client that breaks either gets ``408 Request Timeout`` (when it has sent part of a request) and
the connection is closed. All values come from `Limits` (``emofusion serve --help`` lists them).
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from emofusion.service.limits import Limits

# How `emofusion serve --workers N` hands its settings to each worker process (app and protocol).
SETTINGS_ENV = "EMOFUSION_SERVICE"
_TIMEOUT_BODY = json.dumps({"detail": "request timeout: the request did not arrive in time"}).encode()
_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
    b"content-length: " + str(len(_TIMEOUT_BODY)).encode() + b"\r\nconnection: close\r\n\r\n" + _TIMEOUT_BODY
)


class TimedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol plus the header and body read timeouts of ``limits``.

    `with_limits` makes a subclass for given limits; the class itself (used by worker processes,
    which receive the protocol by name) reads them from ``$EMOFUSION_SERVICE``.
    """

    limits: Limits | None = None

    @classmethod
    def with_limits(cls, limits: Limits) -> type[TimedH11Protocol]:
        return type(cls.__name__, (cls,), {"limits": limits})

    @classmethod
    def _limits(cls) -> Limits:
        if cls.limits is None:
            cls.limits = Limits(**settings_from_env().get("limits", {}))
        return cls.limits

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._timer: asyncio.TimerHandle | None = None
        self._waiting_for = ""  # "head", "body" or "" (nothing expected from the client)
        super().connection_made(transport)
        self._watch(data_arrived=False)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch(data_arrived=True)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch(data_arrived=False)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        super().connection_lost(exc)

    def _watch(self, *, data_arrived: bool) -> None:
        if self.transport.is_closing():
            self._cancel()
            return
        state = self.conn.their_state
        limits = self._limits()
        if state is h11.IDLE:
            # The head's deadline runs from when we began waiting for it: trickling bytes do not reset it.
            if self._waiting_for != "head":
                self._arm("head", limits.header_timeout_s)
        elif state is h11.SEND_BODY:
            if data_arrived or self._waiting_for != "body":
                self._arm("body", limits.body_timeout_s)
        else:
            self._cancel()

    def _arm(self, waiting_for: str, seconds: float) -> None:
        self._cancel()
        self._waiting_for = waiting_for
        self._timer = self.loop.call_later(seconds, self._expired)

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._waiting_for = ""

    def _expired(self) -> None:
        waiting_for = self._waiting_for
        self._timer, self._waiting_for = None, ""
        if self.transport.is_closing():
            return
        if waiting_for == "body" and self.flow.read_paused:
            # Reading is paused because the app has not consumed what arrived: not the client's fault.
            self._arm("body", self._limits().body_timeout_s)
            return
        started = waiting_for == "body" or bool(self.conn.trailing_data[0])
        if started and self.conn.our_state in (h11.IDLE, h11.SEND_RESPONSE) and not self._response_started():
            self.transport.write(_TIMEOUT_RESPONSE)
        self.transport.close()

    def _response_started(self) -> bool:
        return self.cycle is not None and self.cycle.response_started and not self.cycle.response_complete


def uvicorn_options(limits: Limits) -> dict[str, Any]:
    """The uvicorn settings that enforce ``limits`` (besides the protocol class)."""
    return {"timeout_keep_alive": limits.keep_alive_s, "limit_concurrency": limits.max_connections}


def settings_from_env() -> dict:
    return json.loads(os.environ.get(SETTINGS_ENV, "{}"))


def create_app_from_env():
    """App factory for ``uvicorn --factory`` worker processes: settings come from $EMOFUSION_SERVICE."""
    from emofusion.service.app import create_app

    settings = settings_from_env()
    return create_app(None, **{**settings, "limits": Limits(**settings.get("limits", {}))})


def run(
    settings: dict, *, recognizer=None, host: str = "127.0.0.1", port: int = 8000, workers: int = 1,
    log_level: str = "info",
) -> None:
    """Serve until interrupted. ``settings``: JSON-able keyword arguments of `create_app`, with
    ``limits`` as a dict; ``recognizer`` (one worker only) saves loading the model again."""
    limits = Limits(**settings.get("limits", {}))
    common = dict(host=host, port=port, log_level=log_level, **uvicorn_options(limits))
    if workers == 1:
        from emofusion.service.app import create_app

        app = create_app(recognizer, **{**settings, "limits": limits})
        uvicorn.run(app, http=TimedH11Protocol.with_limits(limits), **common)
        return
    # Several processes need importable names; each worker loads its own copy of the model.
    os.environ[SETTINGS_ENV] = json.dumps(settings)
    uvicorn.run("emofusion.service.server:create_app_from_env", factory=True, workers=workers,
                http=TimedH11Protocol, **common)
