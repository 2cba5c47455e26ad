"""Response shapes of the HTTP API: they document /docs and /openapi.json for client authors."""

from __future__ import annotations

from pydantic import BaseModel, Field


class PredictResponse(BaseModel):
    label: str = Field(description="The most probable emotion class", examples=["ang"])
    probabilities: dict[str, float] = Field(
        description="Probability of every class the model knows; they sum to 1",
        examples=[{"ang": 0.71, "exc": 0.12, "neu": 0.1, "sad": 0.07}],
    )
    model: str = Field(description="Name of the model that answered (the paper's Table-1 name)", examples=["M-CBLA-BLR"])
    modalities: list[str] = Field(description="Inputs the model used: 'speech' and/or 'text'", examples=[["speech", "text"]])
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
}
