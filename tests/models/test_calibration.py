"""Temperature fitting, the confidence threshold rule and model.json's calibration block."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

from emofusion.errors import ConfigError
from emofusion.models.calibration import Calibration, choose_threshold, fit_temperature


def sampled(temperature: float, n: int = 4000, k: int = 4, seed: int = 0):
    """Logits, and labels drawn from softmax(logits / temperature): the true temperature is known."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, k)) * 4
    p = np.exp(log_softmax(logits / temperature, axis=1))
    labels = np.array([rng.choice(k, p=row) for row in p])
    return logits, labels


@pytest.mark.parametrize("true_t", [0.5, 1.0, 3.0])
def test_fit_recovers_the_temperature_the_labels_were_drawn_with(true_t):
    logits, labels = sampled(true_t)
    assert fit_temperature(logits, labels) == pytest.approx(true_t, rel=0.1)


def test_fit_is_the_minimum_scipy_finds():
    logits, labels = sampled(2.0, n=500, seed=1)

    def nll(log_t):
        return -log_softmax(logits / np.exp(log_t), axis=1)[np.arange(len(labels)), labels].mean()

    reference = np.exp(minimize_scalar(nll, bounds=(np.log(0.05), np.log(20)), method="bounded",
                                       options={"xatol": 1e-8}).x)
    assert fit_temperature(logits, labels) == pytest.approx(reference, rel=1e-4)


def test_fit_stops_at_the_edge_of_the_range():
    # Every label is the argmax: the sharper the better, so the lowest temperature searched.
    logits = np.array([[3.0, 0.0], [0.0, 3.0]] * 10)
    assert fit_temperature(logits, np.array([0, 1] * 10)) == pytest.approx(0.05, rel=1e-4)


def test_fit_refuses_bad_input():
    with pytest.raises(ConfigError, match="NaN"):
        fit_temperature(np.array([[np.nan, 0.0]]), np.array([0]))
    with pytest.raises(ConfigError, match="class indices"):
        fit_temperature(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ConfigError, match=r"\(n, k\) logits"):
        fit_temperature(np.zeros((0, 3)), np.zeros(0, dtype=int))


def test_threshold_is_the_lowest_cut_with_the_target_accuracy():
    # Sorted by top probability: .95 R, .90 R, .80 W, .70 R, .60 R, .50 W
    # accuracy of the top k: 1, 1, .667, .75, .8, .667 -> the lowest cut at >= .8 is .60
    top = np.array([0.5, 0.9, 0.6, 0.95, 0.7, 0.8])
    right = np.array([False, True, True, True, True, False])
    assert choose_threshold(top, right, 0.8) == 0.6
    assert choose_threshold(top, right, 0.9) == 0.9
    assert choose_threshold(top, np.zeros(6, dtype=bool), 0.8) == 1.0  # never reached


def test_tied_top_probabilities_are_cut_together():
    # .9 R, .9 W, .8 R: the top-1 cut (acc 1.0) would split a tie; the cut at .9 holds both (.5)
    assert choose_threshold(np.array([0.9, 0.9, 0.8]), np.array([True, False, True]), 0.6) == 0.8
    assert choose_threshold(np.array([0.9, 0.9, 0.8]), np.array([True, False, False]), 0.6) == 1.0


def test_temperature_one_is_bit_identical_and_other_temperatures_divide():
    logits = torch.randn(5, 4) * 3
    plain = torch.softmax(logits, dim=1)
    assert torch.equal(Calibration().probabilities(logits), plain)
    assert torch.equal(Calibration("temperature", 1.0, 0.5).probabilities(logits), plain)
    expected = torch.softmax(logits / 2.5, dim=1)
    assert torch.allclose(Calibration("temperature", 2.5).probabilities(logits), expected)
    assert not torch.allclose(expected, plain)


def test_model_json_block_is_read_and_checked():
    assert Calibration.from_meta({}) == Calibration()
    assert Calibration.from_meta({}).confident(0.99) is None  # no calibration: nothing known
    block = {"method": "temperature", "temperature": 1.7, "confidence_threshold": 0.6, "fitted_on": {"n": 3}}
    c = Calibration.from_meta({"calibration": block})
    assert (c.temperature, c.confidence_threshold) == (1.7, 0.6)
    assert c.confident(0.6) is True and c.confident(0.59) is False
    assert c.to_meta() == block
    for bad, message in ((0.0, "temperature"), (float("nan"), "temperature"), ("2", "temperature")):
        with pytest.raises(ConfigError, match=message):
            Calibration.from_meta({"calibration": {**block, "temperature": bad}}, "x/model.json")
    with pytest.raises(ConfigError, match="x/model.json: calibration confidence_threshold"):
        Calibration.from_meta({"calibration": {**block, "confidence_threshold": 1.5}}, "x/model.json")
    with pytest.raises(ConfigError, match="method"):
        Calibration.from_meta({"calibration": {**block, "method": "platt"}})
    with pytest.raises(ConfigError, match="must be an object"):
        Calibration.from_meta({"calibration": 2.0})
