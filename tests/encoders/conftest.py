"""Fixtures for the pretrained-encoder tests: skip with the install command when the extra is absent."""

from __future__ import annotations

import pytest

from emofusion.features.encoders import extra


@pytest.fixture(scope="session")
def encoders_extra():
    """Skips the test unless ``emofusion[encoders]`` (MiniLM + Whisper tiny.en) is installed."""
    missing = extra.missing_packages({**extra.SENTENCE_PACKAGES, **extra.WHISPER_PACKAGES})
    if missing:
        pytest.skip(f"needs the encoders extra ({', '.join(missing)} missing): pip install \"emofusion[encoders]\"")


@pytest.fixture(scope="module")
def offline(encoders_extra):
    """The hub must never be asked: any attempt to open a network socket fails the test."""
    import socket

    real = socket.socket.connect

    def refuse(self, address):
        if isinstance(address, tuple) and address and address[0] not in ("127.0.0.1", "::1", "localhost"):
            raise AssertionError(f"network access attempted: {address}")
        return real(self, address)

    socket.socket.connect = refuse
    yield
    socket.socket.connect = real
