"""Fixtures for corpus tests: a read-only IEMOCAP-shaped tree shared by a module's tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from iemocap_fixture import build_iemocap


@pytest.fixture(scope="module")
def iemocap_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture tree; tests that damage it build their own with ``build_iemocap(tmp_path)``."""
    return build_iemocap(tmp_path_factory.mktemp("iemocap"))
