"""The recipes are scripts, not package modules: their tests load them by path."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def _load(relative: str, name: str):
    spec = importlib.util.spec_from_file_location(name, RECIPES / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def build():
    return _load("shipped/build.py", "shipped_build")


@pytest.fixture(scope="module")
def record_noise():
    return _load("shipped/record_noise.py", "record_noise")
