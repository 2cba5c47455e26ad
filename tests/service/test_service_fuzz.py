"""Property-based fuzzing of the HTTP API from its own OpenAPI schema (schemathesis), on loopback.

Requests that fit the schema (any bytes as the recording, any string as the transcript) and
requests that break it (missing fields, wrong types) must each get a documented status with a
body matching its documented schema, and never a 500. Bounded and reproducible: a fixed number of
examples with Hypothesis' derandomised (fixed-seed) generation, a few seconds on two cores.
"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis", reason='schemathesis is not installed: pip install "emofusion[test]"')

from hypothesis import HealthCheck, given, settings  # noqa: E402 (after the skip)
from hypothesis import strategies as st  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = 80


def test_fuzzed_requests_get_documented_answers_and_never_a_server_error(fusion_server):
    schema = schemathesis.openapi.from_url(f"{fusion_server.url}/openapi.json")
    operations = {f"{op.ok().method.upper()} {op.ok().path}" for op in schema.get_all_operations()}
    assert operations == {"GET /health", "POST /v1/predict", "POST /v1/timeline"}
    cases = st.one_of(
        schema.as_strategy(generation_mode=GenerationMode.POSITIVE),
        schema.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )
    statuses: list[int] = []

    @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=cases)
    def fuzz(case):
        response = case.call_and_validate(checks=CHECKS, timeout=30)
        statuses.append(response.status_code)

    before = fusion_server.app.state.unexpected_errors
    fuzz()
    assert fusion_server.app.state.unexpected_errors == before
    # The fuzzer did reach the model's input checks, not only the form validation.
    assert 422 in statuses and 200 in statuses
