"""The shipped-model recipe scores its held-out check the way users get predictions, over seeds."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from emofusion.corpora.manifest import read_manifest
from emofusion.evaluation.metrics import Metrics, compute_metrics
from emofusion.features.encoders import extra
from emofusion.inference.recognizer import EmotionRecognizer

BUILD = Path(__file__).resolve().parents[2] / "recipes" / "shipped" / "build.py"


@pytest.fixture(scope="module")
def build():
    spec = importlib.util.spec_from_file_location("shipped_build", BUILD)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_held_out_score_is_what_predict_gives_with_every_window(build, shared_data):
    rows = [u for u in read_manifest(shared_data / "bench" / "paired4.csv") if u.session == "5"][:12]
    recognizer = EmotionRecognizer.load("fusion-paper")
    predictions = [recognizer.predict(u.audio, u.text) for u in rows]
    assert max(p.windows for p in predictions) > 1  # the clips are longer than one 2.5-s window
    expected = compute_metrics([u.label for u in rows], [p.label for p in predictions], recognizer.labels)
    got = build.held_out_score(recognizer.trained, rows)
    assert (got.wa, got.ua, got.n) == (expected.wa, expected.ua, expected.n)
    np.testing.assert_array_equal(got.counts, expected.counts)


@pytest.mark.skipif(not extra.available(), reason='needs the encoders extra: pip install "emofusion[encoders]"')
def test_encoder_models_held_out_score_is_what_predict_gives(build, shared_data):
    rows = [u for u in read_manifest(shared_data / "bench" / "paired4.csv") if u.session == "5"][:12]
    recognizer = EmotionRecognizer.load("fusion-encoders")  # Whisper frames + MiniLM vector, computed per call
    predictions = [recognizer.predict(u.audio, u.text) for u in rows]
    expected = compute_metrics([u.label for u in rows], [p.label for p in predictions], recognizer.labels)
    got = build.held_out_score(recognizer.trained, rows)
    assert (got.wa, got.ua, got.n) == (expected.wa, expected.ua, expected.n)
    np.testing.assert_array_equal(got.counts, expected.counts)
    assert "real length" in build._scoring(recognizer.trained.pipeline)
    assert "every 2.5-s window" in build._scoring(EmotionRecognizer.load("fusion-paper").trained.pipeline)


def test_seeds_are_summarised_as_mean_and_sample_std(build):
    labels = ("a", "b")
    per_seed = {
        0: Metrics.from_counts([[3, 1], [0, 4]], labels),  # WA 7/8, UA (0.75 + 1) / 2 = 0.875
        1: Metrics.from_counts([[2, 2], [1, 3]], labels),  # WA 5/8, UA (0.5 + 0.75) / 2 = 0.625
        2: Metrics.from_counts([[4, 0], [2, 2]], labels),  # WA 6/8, UA (1 + 0.5) / 2 = 0.75
    }
    summary = build.summarise(per_seed)
    assert summary["seeds"] == [0, 1, 2] and summary["n"] == 8
    # by hand: mean 0.75, sample std sqrt(((0.125)^2 + 0 + (0.125)^2) / 2) = 0.125
    assert summary["wa"] == pytest.approx({"mean": 0.75, "std": 0.125})
    assert summary["ua"] == pytest.approx({"mean": 0.75, "std": 0.125})
    assert summary["per_class"]["a"] == pytest.approx({"mean": 0.75, "std": 0.25})
    assert set(summary["per_seed"]) == {"0", "1", "2"} and summary["per_seed"]["1"]["wa"] == pytest.approx(0.625)
