"""ECE, NLL, Brier and reliability data (`probability_scores`): hand-computed cases, sklearn as an
independent reference, exact pooling over folds, the reliability diagram drawn."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss, log_loss

from emofusion.errors import ConfigError
from emofusion.evaluation.metrics import Metrics, ProbabilityScores, compute_metrics, pool, probability_scores

# Four utterances, three classes; by hand:
#   row  probabilities      true  top   bin  right
#   0    .70 .20 .10        0     .70   7    yes
#   1    .30 .60 .10        2     .60   6    no
#   2    .25 .25 .50        2     .50   5    yes
#   3    .05 .90 .05        1     .90   9    yes
P = np.array([[0.7, 0.2, 0.1], [0.3, 0.6, 0.1], [0.25, 0.25, 0.5], [0.05, 0.9, 0.05]])
Y = np.array([0, 2, 2, 1])


def test_ece_nll_and_brier_of_a_hand_computed_case():
    s = probability_scores(P, Y)
    # ECE: one row per bin: |1-.7| + |0-.6| + |1-.5| + |1-.9| = .3+.6+.5+.1 = 1.5, over 4 rows -> 37.5 points
    assert s.ece == pytest.approx(37.5)
    # NLL: -(ln .7 + ln .1 + ln .5 + ln .9)/4
    assert s.nll == pytest.approx(-(np.log(0.7) + np.log(0.1) + np.log(0.5) + np.log(0.9)) / 4)
    # Brier: (.09+.04+.01) + (.09+.36+.81) + (.0625+.0625+.25) + (.0025+.01+.0025) = 1.79, /4
    assert s.brier == pytest.approx(1.79 / 4)
    assert s.mean_confidence == pytest.approx((0.7 + 0.6 + 0.5 + 0.9) / 4)
    assert s.reliability() == [
        {"low": 0.5, "high": 0.6, "count": 1, "confidence": pytest.approx(0.5), "accuracy": 1.0},
        {"low": 0.6, "high": 0.7, "count": 1, "confidence": pytest.approx(0.6), "accuracy": 0.0},
        {"low": 0.7, "high": 0.8, "count": 1, "confidence": pytest.approx(0.7), "accuracy": 1.0},
        {"low": 0.9, "high": 1.0, "count": 1, "confidence": pytest.approx(0.9), "accuracy": 1.0},
    ]


def test_a_bin_averages_before_the_gap_is_taken():
    # Two rows in bin 8 (.80 right, .84 wrong): |1/2 - .82| = .32, weighted 2/2 -> 32 points. Taking
    # each row's own gap (|1-.8| + |0-.84|)/2 = 52 would be wrong.
    s = probability_scores([[0.8, 0.2], [0.84, 0.16]], [0, 1])
    assert s.ece == pytest.approx(32.0)


def test_a_top_probability_of_one_falls_in_the_last_bin():
    s = probability_scores([[1.0, 0.0], [0.0, 1.0]], [0, 1])
    assert s.bin_count.tolist() == [0] * 9 + [2]
    assert s.ece == pytest.approx(0.0)


def test_ece_floor_of_hand_computed_bins():
    # The four hand rows above, one per bin: each bin's |X - c| with X ~ Bernoulli(c) has mean
    # 2c(1-c): .5 -> .5, .6 -> .48, .7 -> .42, .9 -> .18; summed 1.58 over 4 rows -> 39.5 points.
    assert probability_scores(P, Y).ece_floor == pytest.approx(39.5)
    # Two rows at .5 in one bin: X ~ Binomial(2, .5): |0-1| (1/4) + |1-1| (1/2) + |2-1| (1/4) = .5,
    # over 2 rows -> 25 points; a certain bin (top probability 1) adds nothing.
    s = probability_scores([[0.5, 0.5], [0.5, 0.5], [1.0, 0.0]], [0, 1, 0])
    assert s.ece_floor == pytest.approx(100 * 0.5 / 3)


def test_ece_floor_matches_a_simulated_perfectly_calibrated_model():
    # Independent reference: draw the true class from the model's own probabilities (so it is
    # calibrated by construction) many times and average the ECE the scorer gives.
    rng = np.random.default_rng(0)
    n = 112
    logits = rng.normal(0.0, 1.5, size=(n, 4))
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    floor = probability_scores(p, p.argmax(axis=1)).ece_floor  # depends only on the confidences
    simulated = [probability_scores(p, [rng.choice(4, p=row) for row in p]).ece for _ in range(400)]
    # The floor treats a bin's rows as sharing its mean confidence, which overstates the spread a
    # little; the simulation's standard error is ~0.1 points.
    assert np.mean(simulated) == pytest.approx(floor, rel=0.08)
    # And it shrinks like 1/sqrt(n): nine times the clips, about a third of the floor.
    big = probability_scores(np.repeat(p, 9, axis=0), np.repeat(p.argmax(axis=1), 9)).ece_floor
    assert big == pytest.approx(floor / 3, rel=0.15)


def test_nll_and_brier_agree_with_sklearn():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(200, 4)) * 2
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = rng.integers(0, 4, 200)
    s = probability_scores(p, y)
    assert s.nll == pytest.approx(log_loss(y, p, labels=[0, 1, 2, 3]), rel=1e-9)
    # sklearn's Brier is the binary one: on two classes the multi-class score is exactly twice it.
    p2 = p[:, :2] / p[:, :2].sum(axis=1, keepdims=True)
    y2 = rng.integers(0, 2, 200)
    assert probability_scores(p2, y2).brier == pytest.approx(2 * brier_score_loss(y2, p2[:, 1]), rel=1e-9)


def test_pooled_folds_score_as_the_concatenated_predictions():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(3), size=60)
    y = rng.integers(0, 3, 60)
    whole = probability_scores(p, y)
    pooled = ProbabilityScores.pool([probability_scores(p[:25], y[:25]), probability_scores(p[25:], y[25:])])
    assert pooled.ece == pytest.approx(whole.ece)
    assert pooled.nll == pytest.approx(whole.nll)
    assert pooled.brier == pytest.approx(whole.brier)
    # ...and the metrics pool carries them along with the confusion counts
    labels = ["a", "b", "c"]
    folds = []
    for part in (slice(0, 25), slice(25, 60)):
        m = compute_metrics(y[part].tolist(), p[part].argmax(1).tolist(), labels)
        folds.append(m.with_probability(probability_scores(p[part], y[part])))
    assert pool(folds).probability.ece == pytest.approx(whole.ece)
    assert pool([folds[0], compute_metrics([0], [0], labels)]).probability is None  # one fold lacks them


def test_json_round_trip_recomputes_from_the_sums():
    labels = ["a", "b", "c"]
    m = compute_metrics(Y.tolist(), P.argmax(1).tolist(), labels).with_probability(probability_scores(P, Y))
    data = json.loads(json.dumps(m.to_json()))
    data["probability"]["ece"] = 0.0  # a hand-edited figure does not survive: the sums decide
    back = Metrics.from_json(data)
    assert back.probability.ece == pytest.approx(37.5)
    assert Metrics.from_json({k: v for k, v in m.to_json().items() if k != "probability"}).probability is None


@pytest.mark.parametrize("p, y, message", [
    ([[0.5, 0.6]], [0], "sum to 1"),
    ([[np.nan, 1.0]], [0], "finite"),
    ([[0.5, 0.5]], [2], "0..1"),
    ([[0.5, 0.5]], [0, 1], "n labels"),
])
def test_bad_input_is_a_clear_error(p, y, message):
    with pytest.raises(ConfigError, match=message):
        probability_scores(p, y)


def test_scores_must_cover_the_same_utterances_as_the_metrics():
    m = compute_metrics([0, 1], [0, 1], ["a", "b"])
    with pytest.raises(ConfigError, match="cover 1 utterances"):
        m.with_probability(probability_scores([[0.9, 0.1]], [0]))


def test_reliability_diagram_is_drawn(tmp_path):
    from matplotlib.image import imread

    from emofusion.evaluation.plots import plot_reliability

    path = plot_reliability(tmp_path / "r.png", probability_scores(P, Y).reliability(), "hand case", ece=37.5)
    image = imread(path)
    assert image.shape[0] > 200 and image.shape[1] > 200
    assert image[..., :3].std() > 0.05  # something is drawn, not a blank canvas


def test_the_report_shows_ece_nll_brier_beside_wa_ua_and_draws_the_diagrams(tmp_path):
    from emofusion.evaluation.report import write_report
    from emofusion.evaluation.results import RunResult

    rng = np.random.default_rng(1)
    labels = ["ang", "exc", "neu", "sad"]
    results, per_seed = [], {}
    for seed in (0, 1):
        folds = []
        for fold in ("1", "2"):
            p = rng.dirichlet(np.ones(4) * 0.5, size=40)
            y = rng.integers(0, 4, 40)
            m = compute_metrics(y.tolist(), p.argmax(1).tolist(), labels).with_probability(probability_scores(p, y))
            results.append(RunResult("S-DNN", "loso", seed, fold, m))
            folds.append((p, y))
        p = np.concatenate([f[0] for f in folds])
        y = np.concatenate([f[1] for f in folds])
        per_seed[seed] = probability_scores(p, y)
    report = write_report(tmp_path, results, title="t", command="c").read_text()
    ece = [per_seed[s].ece for s in (0, 1)]
    nll = [per_seed[s].nll for s in (0, 1)]
    lines = report.splitlines()
    header = lines.index("| model | WA | UA | ECE | ECE floor | NLL | Brier | mean top probability | ECE per test fold |")
    row = lines[header + 2]
    cells = [c.strip() for c in row.split("|")[1:-1]]
    assert cells[3] == f"{np.mean(ece):.1f} ± {np.std(ece, ddof=1):.1f}"  # seeds' pooled-fold ECE
    floor = [per_seed[s].ece_floor for s in (0, 1)]
    assert cells[4] == f"{np.mean(floor):.1f} ± {np.std(floor, ddof=1):.1f}"
    assert cells[5] == f"{np.mean(nll):.3f} ± {np.std(nll, ddof=1):.3f}"
    fold_ece = {f: np.mean([r.metrics.probability.ece for r in results if r.fold == f]) for f in ("1", "2")}
    assert cells[8] == f"1 {fold_ece['1']:.1f}, 2 {fold_ece['2']:.1f}"
    assert (tmp_path / "reliability_loso_S-DNN.png").stat().st_size > 1000
    assert "![reliability_loso_S-DNN.png](reliability_loso_S-DNN.png)" in report
    saved = json.loads((tmp_path / "results.json").read_text())
    assert all(len(r["metrics"]["probability"]["bin_count"]) == 10 for r in saved)  # histograms, not rows
