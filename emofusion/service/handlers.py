"""Every failure becomes ``{"detail": "<one readable sentence>"}`` with the right status.

A client (or the web page) shows ``detail`` to a person as it is, so it is always a string:
FastAPI's default validation answer, a list of pydantic error objects, is flattened into one
sentence per bad field. User errors (EmofusionError) are 422; anything unexpected is a 500 with a
generic message (the traceback goes to the server log, not to the client) and is counted in
``app.state.unexpected_errors`` so tests can prove no bad input ever reaches it.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from emofusion.audio_stream import Abandoned
from emofusion.errors import EmofusionError
from emofusion.service.lanes import LaneFull

log = logging.getLogger("emofusion.service")

# What each form field should be, for messages about a field sent in the wrong form.
FIELD_HINTS = {
    "audio": "a file upload (multipart/form-data part with a filename), e.g. curl -F audio=@clip.wav",
    "text": "a plain text form field, e.g. curl -F 'text=I am fine.'",
}


def install_handlers(app: FastAPI) -> None:
    app.state.unexpected_errors = 0
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(EmofusionError, _user_error)
    app.add_exception_handler(LaneFull, _lane_full)
    app.add_exception_handler(Abandoned, _abandoned)
    app.add_exception_handler(Exception, _unexpected_error)


def describe_validation_errors(errors: list[dict], model: str = "the model") -> str:
    """One sentence per invalid field: ``audio: expected a file upload ..., got a plain text field``."""
    missing = {
        "audio": f"no audio file: {model} listens to speech; upload the recording in the field 'audio'",
        "text": f"no transcript: {model} reads the text; send the transcript in the field 'text'",
    }
    parts = []
    for error in errors:
        loc = [str(x) for x in error.get("loc", ()) if x not in ("body", "query", "header", "path")]
        field = loc[0] if loc else "request"
        kind = error.get("type", "")
        if field in FIELD_HINTS and kind != "missing":
            got = "a file" if field == "text" else "a plain text field"
            parts.append(f"{field}: expected {FIELD_HINTS[field]}, got {got}")
        elif kind == "missing":
            parts.append(missing.get(field, f"{field}: this field is required"))
        else:
            parts.append(f"{'.'.join(loc) or 'request'}: {error.get('msg', 'invalid value')}")
    return "; ".join(parts) or "invalid request"


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    model = request.app.state.recognizer.name
    return JSONResponse({"detail": describe_validation_errors(list(exc.errors()), model)}, status_code=422)


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if exc.status_code == 400:
        # Only body parsing answers 400 here (FastAPI's generic text, or the multipart parser's).
        reason = "" if detail == "There was an error parsing the body" else f" ({detail.rstrip('.')})"
        detail = f"malformed multipart/form-data body{reason}: send the fields 'audio' (a file) and 'text'"
    return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=getattr(exc, "headers", None))


async def _user_error(request: Request, exc: EmofusionError) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=422)


async def _lane_full(request: Request, exc: LaneFull) -> JSONResponse:
    # Retry-After: the lane's estimate of when a place frees up, so clients back off instead of hammering.
    return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": str(exc.retry_after_s)})


async def _abandoned(request: Request, exc: Abandoned) -> JSONResponse:
    # Nobody reads this (the client has gone); 499 is the customary status for it in access logs.
    log.info("%s", exc)
    return JSONResponse({"detail": str(exc)}, status_code=499)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    request.app.state.unexpected_errors += 1
    # Starlette re-raises the exception after this answer, so the server logs the traceback.
    log.error("unexpected %s on %s %s", type(exc).__name__, request.method, request.url.path)
    return JSONResponse(
        {"detail": "internal server error: the request could not be processed (the cause is in the server log)"},
        status_code=500,
    )
