"""Fixtures for the service tests: tiny real models trained on real clips, and real uvicorn servers.

The models are the real M-CBLA-BLR and T-BL architectures shrunk to a few units and trained for
one epoch on twelve RAVDESS clips paired with MELD sentences: quality is irrelevant here, what
matters is that the service drives the same code path as with the shipped model.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest
import uvicorn

from real_data import EXAMPLE_CLIPS, EXAMPLE_TRANSCRIPT, EXAMPLES, SHARED_DATA

from emofusion.corpora.manifest import read_manifest
from emofusion.features.acoustic import AcousticConfig
from emofusion.features.cache import FeatureCache
from emofusion.features.vocabulary import TextConfig
from emofusion.inference.recognizer import EmotionRecognizer
from emofusion.models import ModelConfig
from emofusion.records import Utterance
from emofusion.service.limits import Limits
from emofusion.training.config import TrainConfig
from emofusion.training.trainer import train

LABELS = ("ang", "exc", "neu", "sad")
TINY = ModelConfig(
    cnn_filters=(8, 8, 8, 8), speech_lstm_hidden=16, attention_dim=8, cbla_dense=16, text_lstm_hidden=16,
    fusion_hidden=(32, 16),
)


@pytest.fixture(scope="session")
def paired_utterances():
    """Three utterances per class from the paired speech + text benchmark manifest, or, without
    ../shared/data, the bundled example clip of each class three times with its transcript."""
    if (SHARED_DATA / "bench").is_dir():
        rows = read_manifest(SHARED_DATA / "bench" / "paired4.csv")
    else:
        rows = [
            Utterance(f"{label}-{k}", EXAMPLES / clip, EXAMPLE_TRANSCRIPT, label, clip, "1")
            for label, clip in EXAMPLE_CLIPS.items() for k in range(3)
        ]
    return [u for label in LABELS for u in [r for r in rows if r.label == label][:3]]


def _train(name: str, utterances, out: Path) -> EmotionRecognizer:
    train(
        name, utterances, labels=LABELS, out_dir=out, cache=FeatureCache(AcousticConfig(), root=out / "cache"),
        model_config=TINY, text_config=TextConfig(max_tokens=40, extra_vocab=1000),
        train_config=TrainConfig(epochs=1, batch_size=8, precision="fp32"), progress=False,
    )
    return EmotionRecognizer.load(out)


@pytest.fixture(scope="session")
def fusion_model_dir(paired_utterances, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("m-cbla-blr")
    _train("M-CBLA-BLR", paired_utterances, out)
    return out


@pytest.fixture(scope="session")
def fusion_recognizer(fusion_model_dir) -> EmotionRecognizer:
    return EmotionRecognizer.load(fusion_model_dir)


@pytest.fixture(scope="session")
def text_recognizer(paired_utterances, tmp_path_factory) -> EmotionRecognizer:
    return _train("T-BL", paired_utterances, tmp_path_factory.mktemp("t-bl"))


class LiveServer:
    """A uvicorn server for ``app`` on a free loopback port, run in a background thread, configured
    as `emofusion serve` configures it (timeouts and connection limit from the app's `Limits`)."""

    def __init__(self, app):
        from emofusion.service.server import TimedH11Protocol, uvicorn_options

        self.app = app
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))  # port 0: the kernel picks a free one, no race
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        limits = app.state.limits
        self.server = uvicorn.Server(uvicorn.Config(
            app, log_level="warning", lifespan="on", http=TimedH11Protocol.with_limits(limits), **uvicorn_options(limits)
        ))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> "LiveServer":
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


# Small limits so the limit tests send kilobytes, not the 20 MiB default.
TEST_LIMITS = Limits(max_upload_bytes=512 * 1024, max_audio_seconds=8.0, max_text_chars=200)


@pytest.fixture(scope="session")
def fusion_server(fusion_recognizer):
    from emofusion.service import create_app

    with LiveServer(create_app(fusion_recognizer, limits=TEST_LIMITS)) as server:
        yield server


@pytest.fixture(scope="session")
def clip_request(paired_utterances) -> dict:
    """httpx keyword arguments of one good prediction request: a real recording and its transcript."""
    u = paired_utterances[1]
    return {"files": {"audio": (u.audio.name, u.audio.read_bytes(), "audio/flac")}, "data": {"text": u.text}}


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser(request):
    """Debian's headless Chromium through playwright, with the test module's ``EXTRA_ARGS`` (a fake
    microphone for the recording test, autoplay for the timeline's player)."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is absent (Debian package 'chromium')")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    args = CHROMIUM_ARGS + list(getattr(request.module, "EXTRA_ARGS", ()))
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        yield browser
        browser.close()
