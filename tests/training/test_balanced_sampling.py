"""Balanced sampling over corpora and classes (TrainConfig.balance): quotas computed by hand, the
draws of an epoch counted, determinism from the seed, and a one-corpus run training exactly as a
plain shuffle."""

from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from tiny_corpus import LABELS, small_model_config

from emofusion.artifacts import WEIGHTS_FILE
from emofusion.errors import ConfigError
from emofusion.training import balance as balance_module
from emofusion.training.balance import BalancedSampler, balanced_sampler
from emofusion.training.config import TrainConfig
from emofusion.training.trainer import train

# Corpus A: 6 rows of class 0, 2 of class 1; corpus B: 10, 8 and 4 rows of classes 0, 1, 2.
CORPORA = ["A"] * 8 + ["B"] * 22
CLASSES = [0] * 6 + [1] * 2 + [0] * 10 + [1] * 8 + [2] * 4


def cell_counts(order: np.ndarray) -> Counter:
    return Counter((CORPORA[i], CLASSES[i]) for i in order)


def test_quotas_by_hand():
    # 30 rows: 15 per corpus; A's 2 classes 7.5 each, B's 3 classes 5 each. Rounded down that is 29;
    # the one left goes to the largest fraction, A's first class in (corpus, class) order.
    sampler = BalancedSampler.build(CORPORA, CLASSES)
    assert sampler.keys == (("A", 0), ("A", 1), ("B", 0), ("B", 1), ("B", 2))
    assert sampler.quotas == (8, 7, 5, 5, 5)
    assert sampler.class_counts(3).tolist() == [13, 12, 5]


def test_an_epoch_draws_each_cell_its_quota_and_spreads_repeats_evenly():
    sampler = BalancedSampler.build(CORPORA, CLASSES)
    order = sampler.epoch_order(torch.Generator().manual_seed(0))
    assert len(order) == 30  # an epoch is as long as the data
    assert cell_counts(order) == {("A", 0): 8, ("A", 1): 7, ("B", 0): 5, ("B", 1): 5, ("B", 2): 5}
    visits = Counter(order.tolist())
    assert sorted(visits[i] for i in (6, 7)) == [3, 4]  # A's class 1: 2 rows, 7 draws
    assert sorted(visits[i] for i in range(6)) == [1, 1, 1, 1, 2, 2]  # A's class 0: 6 rows, 8 draws
    assert all(visits[i] <= 1 for i in range(8, 18))  # B's class 0: 10 rows, 5 draws, none twice


def test_draws_are_reproducible_from_the_seed_and_vary_between_epochs():
    sampler = BalancedSampler.build(CORPORA, CLASSES)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    first, again = sampler.epoch_order(g1), sampler.epoch_order(g2)
    assert np.array_equal(first, again)
    second = sampler.epoch_order(g1)
    assert not np.array_equal(first, second) and cell_counts(second) == cell_counts(first)
    other = sampler.epoch_order(torch.Generator().manual_seed(6))
    assert not np.array_equal(first, other)


def test_batches_hold_exactly_an_epochs_draws():
    sampler = BalancedSampler.build(CORPORA, CLASSES)
    lengths = np.arange(30)[::-1].copy()
    for bucket in (True, False):
        batches = sampler.batches(lengths, 4, bucket=bucket, generator=torch.Generator().manual_seed(1))
        reference = sampler.epoch_order(torch.Generator().manual_seed(1))
        assert sorted(np.concatenate(batches).tolist()) == sorted(reference.tolist())
        assert [len(b) for b in batches].count(4) == 7 and sum(len(b) for b in batches) == 30


def test_which_settings_balance():
    assert balanced_sampler("auto", ["A"] * 4, [0, 0, 1, 1]) is None  # one corpus: a plain shuffle
    assert balanced_sampler("none", CORPORA, CLASSES) is None
    assert balanced_sampler("auto", CORPORA, CLASSES).quotas == (8, 7, 5, 5, 5)
    one = balanced_sampler("corpus_class", ["A"] * 4, [0, 0, 0, 1])  # one corpus: its classes in balance
    assert one.quotas == (2, 2)
    with pytest.raises(ConfigError, match="training balance must be one of auto, corpus_class, none, got 'x'"):
        balanced_sampler("x", CORPORA, CLASSES)
    with pytest.raises(ConfigError, match="training balance must be one of"):
        TrainConfig(balance="corpus")


# --- in the trainer, on a built corpus -------------------------------------------------------------


def _train(tiny, out, utts, **config):
    return train(
        "S-DNN", utts, labels=LABELS, out_dir=out, cache=tiny["cache"], acoustic=tiny["acoustic"],
        text_config=tiny["text"], model_config=small_model_config(),
        train_config=TrainConfig(epochs=2, batch_size=8, precision="fp32", **config), seed=0, progress=False,
    )


def _weights(run_dir):
    return load_file(str(run_dir / WEIGHTS_FILE))


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def two_corpora(tiny):
    """Session 1 as corpus A (8 rows, 2 per class), sessions 2-3 as corpus B (16 rows, 4 per class)."""
    return [dataclasses.replace(u, corpus="A" if u.session == "1" else "B") for u in tiny["utterances"]]


def test_training_epochs_draw_corpora_and_classes_in_balance(tiny, tmp_path, monkeypatch):
    utts = two_corpora(tiny)
    epochs = []
    original = balance_module.BalancedSampler.batches

    def recording(self, *args, **kwargs):
        batches = original(self, *args, **kwargs)
        epochs.append(Counter((utts[i].corpus, utts[i].label) for b in batches for i in b))
        return batches

    monkeypatch.setattr(balance_module.BalancedSampler, "batches", recording)
    trained = _train(tiny, tmp_path / "balanced", utts)
    # 24 rows: 12 per corpus, 3 per class within each; A's 2 rows of a class are drawn 3 times.
    assert epochs == [Counter({(c, label): 3 for c in "AB" for label in LABELS})] * 2
    assert trained.meta["train_config"]["balance"] == "auto"
    assert trained.meta["sampling"]["A"]["ang"] == {"rows": 2, "per_epoch": 3}
    assert trained.meta["sampling"]["B"]["sad"] == {"rows": 4, "per_epoch": 3}
    assert trained.meta["train_corpora"] == {"A": ["1"], "B": ["2", "3"]}


def test_balanced_training_is_reproducible_and_differs_from_a_plain_shuffle(tiny, tmp_path):
    utts = two_corpora(tiny)
    a = _train(tiny, tmp_path / "a", utts)
    _train(tiny, tmp_path / "b", utts)
    plain = _train(tiny, tmp_path / "plain", utts, balance="none")
    assert _same(_weights(tmp_path / "a"), _weights(tmp_path / "b"))
    assert not _same(_weights(tmp_path / "a"), _weights(tmp_path / "plain"))
    assert a.meta["fingerprint"] != plain.meta["fingerprint"] and "sampling" not in plain.meta


def test_one_corpus_trains_exactly_as_a_plain_shuffle(tiny, tmp_path):
    # "auto" on one corpus is the plain shuffle every run had before corpora: same weights, and the
    # same fingerprint, so run folders made before balancing existed are still recognised.
    auto = _train(tiny, tmp_path / "auto", tiny["utterances"])
    plain = _train(tiny, tmp_path / "none", tiny["utterances"], balance="none")
    assert _same(_weights(tmp_path / "auto"), _weights(tmp_path / "none"))
    assert auto.meta["fingerprint"] == plain.meta["fingerprint"] and "sampling" not in auto.meta
    forced = _train(tiny, tmp_path / "forced", tiny["utterances"], balance="corpus_class")
    assert forced.meta["fingerprint"] != auto.meta["fingerprint"]
