"""Scoring a trained model on records: row order, the rows it may score, and held-out checks."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tiny_corpus import LABELS, small_model_config

from emofusion.errors import ConfigError
from emofusion.experiments.scoring import predict_utterances, rows_from_training_sessions, score
from emofusion.training.config import TrainConfig
from emofusion.training.trainer import train


@pytest.fixture(scope="module")
def text_model(tiny, tmp_path_factory):
    """T-BL trained on sessions 1 and 2 of the tiny corpus (session 3 held out)."""
    rows = [u for u in tiny["utterances"] if u.session != "3"]
    return train(
        "T-BL", rows, labels=LABELS, out_dir=tmp_path_factory.mktemp("t-bl"), text_config=tiny["text"],
        model_config=small_model_config(), train_config=TrainConfig(epochs=3, batch_size=8, precision="fp32"),
        progress=False,
    )


def test_probabilities_come_back_in_the_callers_order(tiny, text_model):
    utts = tiny["utterances"]
    forward = predict_utterances(text_model, utts, progress=False)
    backward = predict_utterances(text_model, utts[::-1], progress=False)
    assert forward.shape == (len(utts), len(LABELS))
    np.testing.assert_allclose(forward.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(backward[::-1], forward, rtol=1e-5, atol=1e-6)


def test_score_counts_every_usable_row_once(tiny, text_model):
    utts = tiny["utterances"]
    no_text = [dataclasses.replace(u, text=None) for u in utts[:5]]
    metrics, predicted = score(text_model, no_text + utts[5:], progress=False)
    assert metrics.n == len(utts) - 5 == len(predicted)
    assert int(metrics.counts.sum()) == metrics.n


def test_score_refuses_rows_it_cannot_read_or_labels_it_does_not_know(tiny, text_model):
    with pytest.raises(ConfigError, match=r"no rows carry what T-BL needs \(text\)"):
        score(text_model, [dataclasses.replace(u, text=None) for u in tiny["utterances"]], progress=False)
    with pytest.raises(ConfigError, match=r"labels \['fru'\] are not among the model's classes"):
        score(text_model, [dataclasses.replace(tiny["utterances"][0], label="fru")], progress=False)


def test_rows_from_training_sessions_are_counted_per_session(tiny, text_model):
    assert text_model.meta["train_sessions"] == ["1", "2"]
    utts = tiny["utterances"]
    assert rows_from_training_sessions(text_model, utts) == {"1": 8, "2": 8}
    assert rows_from_training_sessions(text_model, [u for u in utts if u.session == "3"]) == {}
    # A model saved before the sessions were recorded: unknown, not "all held out".
    older = dataclasses.replace(text_model, meta={k: v for k, v in text_model.meta.items() if k != "train_sessions"})
    assert rows_from_training_sessions(older, utts) is None


def test_rows_from_training_sessions_compare_sessions_within_their_corpus(tiny, text_model):
    # The fixture's rows carry no corpus, so the model records none and sessions alone decide.
    assert "train_corpora" not in text_model.meta
    named = dataclasses.replace(text_model, meta={**text_model.meta, "train_corpora": {"A": ["1"], "B": ["2"]}})
    rows = [dataclasses.replace(u, corpus="A") for u in tiny["utterances"]]
    # Corpus A trained on session 1 only: its session-2 rows are held out, though B's session 2 trained.
    assert rows_from_training_sessions(named, rows) == {"1": 8}
    other = [dataclasses.replace(u, corpus="C") for u in tiny["utterances"]]
    assert rows_from_training_sessions(named, other) == {}  # a corpus it never trained on
