"""Shared fixtures. Tests that need the real data in ../shared/data skip cleanly when it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ../shared/data; skips the test when it is not beside the checkout."""
    if not (SHARED_DATA / "bench").is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA
