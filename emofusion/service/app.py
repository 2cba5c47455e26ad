"""The HTTP service: a thin FastAPI shell over `EmotionRecognizer`, plus the web page.

    POST /v1/predict   multipart form: ``audio`` (file) + ``text`` (field) -> label and probabilities
    GET  /health       model name, labels and modalities once the model is loaded
    GET  /             the web page (static/index.html): upload or record, type, predict
    GET  /docs         interactive OpenAPI documentation

Inference is CPU-bound and never runs on the event loop, which keeps accepting connections.
Decoding and feature extraction run in worker threads (at most ``concurrency`` at once: more would
only time-slice the same cores); the model pass runs on one thread that batches every request that
queued meanwhile (`MicroBatcher`), so under load concurrent requests share a forward pass. Torch
uses ``torch_threads`` intra-op threads (1 by default: one utterance is too small for torch's
thread pool to pay for its synchronisation). ``emofusion serve --workers N`` adds processes.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
import torch
from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from emofusion import __version__
from emofusion.audio import load_audio
from emofusion.errors import ConfigError, TextError
from emofusion.inference.recognizer import EmotionRecognizer, PreparedInput
from emofusion.service.batcher import MicroBatcher
from emofusion.service.handlers import install_handlers
from emofusion.service.limits import BodySizeLimit
from emofusion.service.schemas import ERROR_RESPONSES, HealthResponse, PredictResponse

MiB = 1024 * 1024
STATIC = Path(__file__).parent / "static"
READ_CHUNK = 256 * 1024
# Multipart framing and the text field ride on top of the audio file in the request body.
FORM_OVERHEAD_BYTES = 64 * 1024
# How `emofusion serve --workers N` hands its settings to each worker process's app factory.
SETTINGS_ENV = "EMOFUSION_SERVICE"

DESCRIPTION = """
Emotion recognition from a spoken utterance and its transcript (speech + text fusion).

Send the recording as the multipart file field **audio** (WAV, FLAC or OGG/Vorbis/Opus; any
sample rate, mono or stereo) and the transcript as the form field **text**. A speech-only model
ignores `text`, a text-only model ignores `audio`; `GET /health` says which the loaded model uses.

    curl -F audio=@clip.wav -F "text=Kids are talking by the door." http://127.0.0.1:8000/v1/predict

Every error answers `{"detail": "<what was wrong>"}`: 413 for an upload over the size limit,
415 for a body that is not a form, 422 for unusable input (missing, empty, undecodable, silent or
over-long audio; missing or over-long transcript; a field sent in the wrong form).
"""


@dataclass(frozen=True)
class Limits:
    max_upload_bytes: int
    max_audio_seconds: float
    max_text_chars: int


def create_app(
    recognizer: EmotionRecognizer | None = None,
    *,
    model_dir: str | Path | None = None,
    max_upload_bytes: int = 20 * MiB,
    max_audio_seconds: float = 600.0,
    max_text_chars: int = 5000,
    concurrency: int | None = None,
    torch_threads: int | None = 1,
) -> FastAPI:
    """Build the service around ``recognizer``.

    Arguments:
        recognizer: the model to serve. None loads ``model_dir`` (None: the shipped default)
            when the server starts, so importing or building the app stays cheap.
        max_upload_bytes: largest audio file accepted (413 above it).
        max_audio_seconds: longest recording accepted (422 above it).
        max_text_chars: longest transcript accepted (422 above it).
        concurrency: predictions computed at once (default: the number of CPU cores).
        torch_threads: torch intra-op threads while the server runs (None leaves torch's
            setting alone); the previous value is restored at shutdown.
    """
    if max_upload_bytes < 1 or max_audio_seconds <= 0 or max_text_chars < 1:
        raise ConfigError(
            f"service limits must be positive: max_upload_bytes={max_upload_bytes}, "
            f"max_audio_seconds={max_audio_seconds}, max_text_chars={max_text_chars}"
        )
    limits = Limits(max_upload_bytes, float(max_audio_seconds), max_text_chars)
    slots = concurrency or os.cpu_count() or 1

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        previous_threads = torch.get_num_threads()
        if torch_threads is not None:
            torch.set_num_threads(torch_threads)
        app.state.limiter = anyio.CapacityLimiter(slots)
        if app.state.recognizer is None:
            app.state.recognizer = await anyio.to_thread.run_sync(EmotionRecognizer.load, model_dir)
        app.state.batcher = MicroBatcher(app.state.recognizer, torch_threads=torch_threads)
        try:
            yield
        finally:
            app.state.batcher.close()
            if torch_threads is not None:
                torch.set_num_threads(previous_threads)

    app = FastAPI(
        title="emofusion",
        version=__version__,
        summary="Speech + text emotion recognition",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.recognizer = recognizer
    app.state.limits = limits
    install_handlers(app)
    # The whole body may carry the file, the transcript (up to 4 UTF-8 bytes a character) and framing.
    app.add_middleware(
        BodySizeLimit,
        max_bytes=max_upload_bytes + 4 * max_text_chars + FORM_OVERHEAD_BYTES,
        describe=f"upload limit of {_size(max_upload_bytes)} for the audio file",
    )
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/health", response_model=HealthResponse, summary="Service and model status")
    async def health(request: Request) -> HealthResponse:
        rec: EmotionRecognizer = request.app.state.recognizer
        return HealthResponse(status="ok", model=rec.name, labels=list(rec.labels), modalities=sorted(rec.modalities))

    @app.post(
        "/v1/predict",
        response_model=PredictResponse,
        responses=ERROR_RESPONSES,
        summary="Predict the emotion of one utterance",
        description="The most probable emotion and the probability of every class, from the recording "
        "(field `audio`) and its transcript (field `text`), as the loaded model uses them.",
    )
    async def predict(
        request: Request,
        audio: UploadFile | None = File(
            None,
            description="The recording: WAV, FLAC or OGG (Vorbis/Opus), any sample rate. "
            f"At most {_size(max_upload_bytes)} and {max_audio_seconds:g} s. Required unless the model is text-only.",
        ),
        text: str | None = Form(
            None,
            description=f"The transcript of the recording, at most {max_text_chars} characters. "
            "Required unless the model is speech-only.",
        ),
    ) -> PredictResponse:
        started = time.perf_counter()
        _check_form(request)
        rec: EmotionRecognizer = request.app.state.recognizer
        uses_speech, uses_text = "speech" in rec.modalities, "text" in rec.modalities
        data, filename = None, None
        if uses_speech:
            if audio is None:
                raise ConfigError(f"no audio file: {rec.name} listens to speech; upload the recording in the field 'audio'")
            filename = audio.filename or "upload"
            data = await _read_limited(audio, limits.max_upload_bytes)
        if uses_text:
            text = _check_text(text, rec.name, limits.max_text_chars)
        read_ms = (time.perf_counter() - started) * 1e3
        prepared, decode_ms = await anyio.to_thread.run_sync(
            _prepare, rec, data, filename, text, limits, torch_threads, limiter=request.app.state.limiter
        )
        prediction = await asyncio.wrap_future(request.app.state.batcher.submit(prepared))
        body = {
            "label": prediction.label,
            "probabilities": prediction.probabilities,
            "model": rec.name,
            "modalities": list(prediction.modalities),
            "windows": prediction.windows,
            "timings_ms": {
                "read": round(read_ms, 3),
                "decode": round(decode_ms, 3),
                **{k: round(v, 3) for k, v in prediction.timings_ms.items()},
            },
        }
        body["latency_ms"] = round((time.perf_counter() - started) * 1e3, 3)
        return PredictResponse(**body)

    return app


def create_app_from_env() -> FastAPI:
    """App factory for ``uvicorn --factory`` worker processes: settings come from $EMOFUSION_SERVICE."""
    settings = json.loads(os.environ.get(SETTINGS_ENV, "{}"))
    return create_app(None, **settings)


def _prepare(
    rec: EmotionRecognizer, data: bytes | None, filename: str | None, text: str | None, limits: Limits,
    torch_threads: int | None,
) -> tuple[PreparedInput, float]:
    """Decode and featurise (runs in a worker thread); the model pass happens in the batcher."""
    # OpenMP keeps the thread count per thread: a pool thread created before startup would
    # otherwise keep torch's default (all cores) and fight the other workers for them.
    if torch_threads is not None and torch.get_num_threads() != torch_threads:
        torch.set_num_threads(torch_threads)
    t0 = time.perf_counter()
    if data is not None:
        decoded = load_audio(data, max_seconds=limits.max_audio_seconds, name=f"audio file {filename!r}")
        samples, rate = decoded.samples, decoded.sample_rate
    else:
        samples, rate = None, None
    decode_ms = (time.perf_counter() - t0) * 1e3
    return rec.prepare(samples, text, sample_rate=rate), decode_ms


def _check_form(request: Request) -> None:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in ("multipart/form-data", "application/x-www-form-urlencoded"):
        raise HTTPException(
            415,
            f"expected a multipart/form-data body with the fields 'audio' (file) and 'text', got {kind or 'no content type'}",
        )


async def _read_limited(upload: UploadFile, limit: int) -> bytes:
    """Read the uploaded file in chunks, stopping as soon as it passes ``limit``."""
    chunks, size = [], 0
    while chunk := await upload.read(READ_CHUNK):
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"audio file {upload.filename!r} is larger than the upload limit of {_size(limit)}")
        chunks.append(chunk)
    return b"".join(chunks)


def _check_text(text: str | None, model: str, max_chars: int) -> str:
    if text is None or not text.strip():
        raise TextError(f"no transcript: {model} reads the text; send the transcript in the field 'text'")
    if len(text) > max_chars:
        raise TextError(f"transcript of {len(text)} characters exceeds the limit of {max_chars}")
    return text


def _size(n: int) -> str:
    return f"{n / MiB:g} MiB" if n >= MiB else f"{n} bytes"
