"""Response shapes of the HTTP API: they document /docs and /openapi.json for client authors."""

from __future__ import annotations

from pydantic import BaseModel, Field


class PredictResponse(BaseModel):
    label: str = Field(description="The most probable emotion class", examples=["ang"])
    probabilities: dict[str, float] = Field(
        description="Probability of every class the model knows; they sum to 1",
        examples=[{"ang": 0.71, "exc": 0.12, "neu": 0.1, "sad": 0.07}],
    )
    confident: bool | None = Field(
        None, description="Whether the top probability reaches the model's confidence threshold, chosen on "
        "held-out validation speakers so that a confident prediction was wrong at most 1 time in 5 there; "
        "null for a model without calibration",
    )
    model: str = Field(description="Name of the model that answered (the paper's Table-1 name)", examples=["M-CBLA-BLR"])
    modalities: list[str] = Field(description="Inputs the model used: 'speech' and/or 'text'", examples=[["speech", "text"]])
    transcript: str | None = Field(
        None, description="The text the model read: the one sent, or Whisper's transcription when none was "
        "sent; null for a speech-only model", examples=["Kids are talking by the door."],
    )
    transcribed: bool = Field(False, description="Whether `transcript` came from speech recognition")
    language: str | None = Field(
        None, description="The language speech recognition heard (ISO 639-1), when it transcribed with a "
        "multilingual Whisper model; null otherwise (the English-only default detects none)", examples=["en"],
    )
    language_probability: float | None = Field(None, description="Whisper's probability of `language`")
    text_used: bool = Field(
        False, description="Whether the model read `transcript`. False for a transcript in a language the "
        "model's text side does not read (English), or one Whisper was unsure of: the speech-only model "
        "answered from the sound (then `modalities` is ['speech'])",
    )
    windows: int = Field(
        description="Number of windows the recording was cut into, each as long as the model's input "
        "(its max_frames frames); their probabilities are averaged",
        examples=[2],
    )
    latency_ms: float = Field(
        description="Server time for this request: decoding, features and the model (network excluded)",
        examples=[9.8],
    )
    timings_ms: dict[str, float] = Field(
        description="Where that time went: 'read', 'decode', 'features', 'model'",
        examples=[{"read": 0.1, "decode": 1.2, "features": 5.0, "model": 3.5}],
    )


class HealthResponse(BaseModel):
    status: str = Field(description="'ok' once the model is loaded and the service accepts predictions", examples=["ok"])
    model: str = Field(description="Name of the loaded model", examples=["M-CBLA-BLR"])
    labels: list[str] = Field(description="The classes it predicts, in output order", examples=[["ang", "exc", "neu", "sad"]])
    modalities: list[str] = Field(description="Inputs it needs: 'speech' (field 'audio') and/or 'text' (field 'text')")
    transcription: bool = Field(
        description="Whether the server can transcribe (the asr extra): /v1/timeline, and /v1/predict without 'text'"
    )


class SegmentResponse(BaseModel):
    start: float = Field(description="Start of the utterance, seconds from the start of the recording", examples=[0.82])
    end: float = Field(description="End of the utterance, seconds", examples=[3.1])
    text: str | None = Field(description="The words the model read for it (null: the model reads none)")
    label: str | None = Field(description="Its most probable emotion (null when it could not be classified)")
    probabilities: dict[str, float] | None = Field(description="Probability of every class (null on error)")
    confident: bool | None = Field(None, description="As in a prediction: whether the top probability reaches "
                                   "the model's confidence threshold (null on error or without calibration)")
    model: str | None = Field(description="The model that classified it: the speech-only fallback names "
                              "itself for an utterance without words")
    error: str | None = Field(description="Why this utterance has no label, if it has none")
    language: str | None = Field(None, description="The language Whisper heard in it (a multilingual transcriber; "
                                 "null otherwise). Words in a language the model does not read are not read: the "
                                 "speech-only fallback classifies the segment", examples=["en"])
    speaker: str | None = Field(None, description="Who spoke it: 'S1', 'S2', ... in order of first appearance "
                                "(null when the server cannot tell speakers apart)", examples=["S1"])


class SpeakerResponse(BaseModel):
    speaker: str = Field(description="'S1', 'S2', ... as in the segments", examples=["S1"])
    speaking_s: float = Field(description="Seconds of the speaker's segments")
    emotion_s: dict[str, float] = Field(description="Seconds of the speaker's classified segments per emotion")
    label: str | None = Field(description="The speaker's overall emotion (duration-weighted over their segments)")
    probabilities: dict[str, float] | None = Field(description="The speaker's overall probabilities")
    segments: int = Field(description="How many segments the speaker has")


class TimelineResponse(BaseModel):
    label: str | None = Field(description="Overall emotion: segment probabilities averaged by duration "
                              "(null when no segment was classified)", examples=["sad"])
    probabilities: dict[str, float] | None = Field(description="The overall probabilities")
    segments: list[SegmentResponse] = Field(description="The utterances in time order (empty: no speech found)")
    duration: float = Field(description="Length of the recording, seconds")
    model: str = Field(description="The emotion model")
    transcriber: str | None = Field(description="The Whisper model that transcribed the segments, if one did")
    note: str | None = Field(description="e.g. 'no speech found', or how many segments failed")
    speakers: list[SpeakerResponse] = Field([], description="Who felt what: per speaker, speaking time, time per "
                                            "emotion and overall emotion (empty when speakers were not told apart)")
    speaker_note: str | None = Field(None, description="Why speakers were not told apart, when they were not")
    latency_ms: float = Field(description="Server time for this request")
    timings_ms: dict[str, float] = Field(description="Where it went: 'vad', 'speakers', 'transcription', 'emotion', 'total'")


class ErrorResponse(BaseModel):
    detail: str = Field(description="What was wrong with the request, in one sentence meant for a person")


ERROR_RESPONSES = {
    400: {"model": ErrorResponse, "description": "Malformed multipart body"},
    413: {"model": ErrorResponse, "description": "Upload larger than the configured limit"},
    415: {"model": ErrorResponse, "description": "Body is not multipart/form-data"},
    422: {
        "model": ErrorResponse,
        "description": "Unusable input: missing, empty, undecodable, silent or too long audio; "
        "missing or too long transcript; a field sent in the wrong form",
    },
    500: {"model": ErrorResponse, "description": "Unexpected server failure (never caused by bad input)"},
    503: {"model": ErrorResponse, "description": "Busy: the lane for this kind of work (transcription, long "
          "recordings, timelines) is full; the Retry-After header says when to try again"},
}
