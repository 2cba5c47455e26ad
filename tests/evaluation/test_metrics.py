"""WA / UA / per-class recall / confusion against hand-computed cases and a brute-force reference."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from emofusion.errors import ConfigError
from emofusion.evaluation.metrics import Metrics, aggregate, compute_metrics, pool

L4 = ("ang", "exc", "neu", "sad")


def test_hand_computed_case():
    y_true = ["ang", "ang", "exc", "exc", "exc", "neu", "neu", "neu", "neu", "sad"]
    y_pred = ["ang", "neu", "exc", "exc", "ang", "neu", "neu", "sad", "neu", "sad"]
    m = compute_metrics(y_true, y_pred, L4)
    # Counts (rows true, cols predicted ang exc neu sad):
    #   ang: 1 0 1 0   recall 1/2
    #   exc: 1 2 0 0   recall 2/3
    #   neu: 0 0 3 1   recall 3/4
    #   sad: 0 0 0 1   recall 1
    # WA = (1+2+3+1)/10 = 0.7; UA = (1/2 + 2/3 + 3/4 + 1)/4 = (6+8+9+12)/48 = 35/48.
    assert m.counts.tolist() == [[1, 0, 1, 0], [1, 2, 0, 0], [0, 0, 3, 1], [0, 0, 0, 1]]
    assert m.n == 10
    assert m.wa == pytest.approx(0.7, abs=1e-15)
    assert m.ua == pytest.approx(35 / 48, abs=1e-15)
    assert m.per_class == pytest.approx({"ang": 0.5, "exc": 2 / 3, "neu": 0.75, "sad": 1.0}, abs=1e-15)
    expected = [[0.5, 0, 0.5, 0], [1 / 3, 2 / 3, 0, 0], [0, 0, 0.75, 0.25], [0, 0, 0, 1]]
    np.testing.assert_allclose(m.confusion, expected, atol=1e-15)


def test_integer_indices_equal_names():
    names = compute_metrics(["ang", "sad", "neu"], ["sad", "sad", "exc"], L4)
    ints = compute_metrics([0, 3, 2], [np.int64(3), 3, 1], L4)
    assert ints.counts.tolist() == names.counts.tolist()
    assert (ints.wa, ints.ua) == (names.wa, names.ua)


def _brute_force(y_true, y_pred, k):
    """Independent reference: plain loops, no numpy."""
    correct = sum(1 for t, p in zip(y_true, y_pred) if t == p)
    recalls = {}
    for c in range(k):
        idx = [i for i, t in enumerate(y_true) if t == c]
        if idx:
            recalls[c] = sum(1 for i in idx if y_pred[i] == c) / len(idx)
    rows = []
    for c in range(k):
        total = sum(1 for t in y_true if t == c)
        rows.append([(sum(1 for t, p in zip(y_true, y_pred) if t == c and p == j) / total) if total else 0.0
                     for j in range(k)])
    return correct / len(y_true), sum(recalls.values()) / len(recalls), recalls, rows


@pytest.mark.parametrize("seed", range(5))
def test_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    k = 5
    labels = tuple(f"c{i}" for i in range(k))
    y_true = rng.integers(0, k - (seed % 2), size=97).tolist()  # odd seeds: last class absent
    y_pred = rng.integers(0, k, size=97).tolist()
    m = compute_metrics(y_true, y_pred, labels)
    wa, ua, recalls, rows = _brute_force(y_true, y_pred, k)
    assert m.wa == pytest.approx(wa, abs=1e-12)
    assert m.ua == pytest.approx(ua, abs=1e-12)
    for c in range(k):
        if c in recalls:
            assert m.per_class[labels[c]] == pytest.approx(recalls[c], abs=1e-12)
        else:
            assert math.isnan(m.per_class[labels[c]])
    np.testing.assert_allclose(m.confusion, rows, atol=1e-12)


def test_class_absent_from_test_set_is_excluded_from_ua():
    # sad never occurs in y_true but is predicted once.
    m = compute_metrics(["ang", "exc", "neu", "neu"], ["ang", "exc", "neu", "sad"], L4)
    # recalls: ang 1, exc 1, neu 1/2 -> UA over the 3 present classes = 2.5/3
    assert m.ua == pytest.approx(2.5 / 3)
    assert m.wa == pytest.approx(0.75)
    assert math.isnan(m.per_class["sad"])
    assert m.confusion[3].tolist() == [0, 0, 0, 0]
    assert m.counts[2].tolist() == [0, 0, 1, 1]


def test_always_neutral_on_paper_test_set():
    support = {"ang": 31, "exc": 174, "neu": 287, "sad": 133}
    y_true = [c for c, n in support.items() for _ in range(n)]
    m = compute_metrics(y_true, ["neu"] * len(y_true), L4)
    assert m.n == 625
    assert round(100 * m.wa, 2) == 45.92  # 287 / 625
    assert m.ua == 0.25
    assert m.per_class == {"ang": 0.0, "exc": 0.0, "neu": 1.0, "sad": 0.0}


def test_json_round_trip_with_absent_class():
    m = compute_metrics(["ang", "exc", "exc"], ["ang", "ang", "exc"], L4)
    d = json.loads(json.dumps(m.to_json(), allow_nan=False))  # NaN must have become null
    assert {"wa", "ua", "per_class", "confusion", "labels", "n"} <= set(d)
    assert d["per_class"]["neu"] is None and d["per_class"]["ang"] == 1.0
    back = Metrics.from_json(d)
    assert back.labels == m.labels and back.n == m.n and (back.wa, back.ua) == (m.wa, m.ua)
    np.testing.assert_array_equal(back.counts, m.counts)
    np.testing.assert_array_equal(back.confusion, m.confusion)
    assert math.isnan(back.per_class["sad"])


def test_from_json_rejects_inconsistent_or_incomplete():
    d = compute_metrics(["ang"], ["ang"], L4).to_json()
    with pytest.raises(ConfigError, match="n=5"):
        Metrics.from_json({**d, "n": 5})
    with pytest.raises(ConfigError, match="counts"):
        Metrics.from_json({k: v for k, v in d.items() if k != "counts"})


def test_arrays_are_read_only():
    m = compute_metrics(["ang"], ["ang"], L4)
    with pytest.raises(ValueError):
        m.counts[0, 0] = 5


@pytest.mark.parametrize(
    "y_true, y_pred, labels, message",
    [
        (["ang", "joy"], ["ang", "ang"], L4, r"y_true\[1\] = 'joy'"),
        (["ang"], [4], L4, r"y_pred\[0\] = 4 is out of range"),
        (["ang"], [-1], L4, r"y_pred\[0\] = -1 is out of range"),
        (["ang"], [True], L4, "neither a label name nor an integer"),
        (["ang"], [1.0], L4, "neither a label name nor an integer"),
        (["ang", "exc"], ["ang"], L4, "y_true has 2 items but y_pred has 1"),
        ([], [], L4, "empty test set"),
        (["a"], ["a"], ("a", "a"), "duplicates"),
        (["a"], ["a"], (), "at least one class"),
    ],
)
def test_bad_input_is_a_config_error(y_true, y_pred, labels, message):
    with pytest.raises(ConfigError, match=message):
        compute_metrics(y_true, y_pred, labels)


def test_from_counts_rejects_bad_matrices():
    with pytest.raises(ConfigError, match="shape"):
        Metrics.from_counts([[1, 0], [0, 1]], L4)
    with pytest.raises(ConfigError, match="non-negative integers"):
        Metrics.from_counts([[1, -1], [0, 1]], ("a", "b"))
    with pytest.raises(ConfigError, match="non-negative integers"):
        Metrics.from_counts([[1.5, 0], [0, 1]], ("a", "b"))


def test_pool_equals_scoring_concatenated_predictions():
    rng = np.random.default_rng(7)
    folds = [(rng.integers(0, 4, n).tolist(), rng.integers(0, 4, n).tolist()) for n in (10, 40, 3)]
    pooled = pool([compute_metrics(t, p, L4) for t, p in folds])
    direct = compute_metrics(sum((t for t, _ in folds), []), sum((p for _, p in folds), []), L4)
    np.testing.assert_array_equal(pooled.counts, direct.counts)
    assert (pooled.wa, pooled.ua, pooled.n) == (direct.wa, direct.ua, 53)


def test_aggregate_mean_and_sample_std():
    # seed A: WA 3/4 (ang 1/2, exc 1); seed B: WA 1/4 (ang 0, exc 1/2); seed C: WA 2/4.
    a = compute_metrics(["ang", "ang", "exc", "exc"], ["ang", "exc", "exc", "exc"], ("ang", "exc"))
    b = compute_metrics(["ang", "ang", "exc", "exc"], ["exc", "exc", "exc", "ang"], ("ang", "exc"))
    c = compute_metrics(["ang", "ang", "exc", "exc"], ["ang", "exc", "exc", "ang"], ("ang", "exc"))
    agg = aggregate([a, b, c])
    was = [0.75, 0.25, 0.5]
    assert agg["runs"] == 3
    assert agg["wa"]["mean"] == pytest.approx(0.5)
    assert agg["wa"]["std"] == pytest.approx(np.std(was, ddof=1))  # 0.25
    assert agg["wa"]["std"] == pytest.approx(0.25)
    assert agg["per_class"]["ang"]["mean"] == pytest.approx(np.mean([0.5, 0.0, 0.5]))
    assert agg["per_class"]["ang"]["std"] == pytest.approx(np.std([0.5, 0.0, 0.5], ddof=1))
    assert agg["ua"]["mean"] == pytest.approx(np.mean([a.ua, b.ua, c.ua]))
    np.testing.assert_allclose(agg["confusion"], np.mean([a.confusion, b.confusion, c.confusion], axis=0))


def test_aggregate_single_run_has_undefined_std_and_skips_absent_classes():
    a = compute_metrics(["ang", "exc"], ["ang", "ang"], ("ang", "exc"))
    b = compute_metrics(["ang", "ang"], ["exc", "ang"], ("ang", "exc"))  # exc absent
    single = aggregate([a])
    assert single["wa"]["mean"] == 0.5 and math.isnan(single["wa"]["std"])
    agg = aggregate([a, b])
    assert agg["per_class"]["exc"] == {"mean": 0.0, "std": pytest.approx(math.nan, nan_ok=True), "n": 1}
    assert agg["per_class"]["ang"]["n"] == 2 and agg["per_class"]["ang"]["mean"] == 0.75
    # exc's confusion row comes from run a alone (b never saw exc), not averaged with b's zero row.
    assert agg["confusion"][1].tolist() == [1.0, 0.0]


def test_aggregate_rejects_mixed_labels_and_empty():
    a = compute_metrics(["ang"], ["ang"], ("ang", "exc"))
    b = compute_metrics(["ang"], ["ang"], ("ang", "sad"))
    with pytest.raises(ConfigError, match="different labels"):
        aggregate([a, b])
    with pytest.raises(ConfigError, match="empty"):
        aggregate([])
    with pytest.raises(ConfigError, match="empty"):
        pool([])
