"""The reproduction report: CSV numbers recomputed from the inputs, the Table-1 markdown, the figures."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
from matplotlib.image import imread

from emofusion.errors import ConfigError
from emofusion.evaluation.metrics import Metrics, compute_metrics
from emofusion.evaluation.plots import _feature_columns, plot_features
from emofusion.evaluation.report import write_report
from emofusion.evaluation.results import RunResult

L4 = ("ang", "exc", "neu", "sad")
FEATURE_NAMES = (["zcr", "energy", "energy_entropy", "spectral_centroid", "spectral_spread", "spectral_entropy",
                  "spectral_flux", "spectral_rolloff"] + [f"mfcc_{i}" for i in range(1, 14)]
                 + [f"chroma_{i}" for i in range(1, 13)] + ["chroma_std"])


def diag_metrics(correct: list[int], support: list[int]) -> Metrics:
    """Metrics where class i has support[i] utterances, correct[i] right and the rest called class (i+1)."""
    k = len(support)
    counts = np.zeros((k, k), dtype=int)
    for i, (c, s) in enumerate(zip(correct, support)):
        counts[i, i] = c
        counts[i, (i + 1) % k] += s - c
    return Metrics.from_counts(counts, L4[:k])


@pytest.fixture
def two_seed_results() -> list[RunResult]:
    # S-DNN, paper protocol: seed 0 WA 50 %, seed 1 WA 70 % (10 utterances per class).
    s0 = diag_metrics([5, 5, 5, 5], [10, 10, 10, 10])  # every recall 50 %
    s1 = diag_metrics([9, 5, 7, 7], [10, 10, 10, 10])  # recalls 90 50 70 70 -> WA = UA = 70 %
    return [RunResult("S-DNN", "paper", 0, "Ses05", s0), RunResult("S-DNN", "paper", 1, "Ses05", s1)]


def read_csv(path):
    with path.open() as fh:
        return list(csv.DictReader(fh))


def test_table_shows_mean_std_over_seeds_next_to_paper(tmp_path, two_seed_results):
    report = write_report(tmp_path, two_seed_results, title="Tiny", command="emofusion reproduce --x y")
    text = report.read_text()
    assert report == tmp_path / "report.md"
    assert text.startswith("# Tiny\n")
    assert "emofusion reproduce --x y" in text
    row = next(line for line in text.splitlines() if line.startswith("| S-DNN "))
    cells = [c.strip() for c in row.strip("|").split("|")]
    # WA: mean(50, 70) = 60, sample std = sqrt(((50-60)^2 + (70-60)^2) / 1) = 14.142 -> "14.1".
    sd = np.std([50.0, 70.0], ddof=1)
    assert f"{sd:.1f}" == "14.1"
    assert cells == ["S-DNN", "70.0 ± 28.3 (54)", "50.0 ± 0.0 (39)", "60.0 ± 14.1 (38)", "60.0 ± 14.1 (64)",
                     "60.0 ± 14.1 (47.37)", "60.0 ± 14.1 (48.75)", "2", "1", "40"]
    assert "| Gu et al. 2018 | 60.40 | 59.88 |" in text
    assert "| Shah et al. | — | 61.96 |" in text
    # Test set 10 per class: always-majority scores WA 25 %, UA 25 %.
    assert "always `ang` scores WA 25.00 %, UA 25.00 %" in text


def test_results_csv_recomputed_from_inputs(tmp_path, two_seed_results):
    rng = np.random.default_rng(3)
    extra = [RunResult("T-BL", "loso", seed, f"Ses0{f}", compute_metrics(rng.integers(0, 4, 30), rng.integers(0, 4, 30), L4))
             for seed in (0, 1) for f in (1, 2)]
    results = two_seed_results + extra
    write_report(tmp_path, results, title="t", command="c")
    rows = read_csv(tmp_path / "results.csv")
    assert len(rows) == len(results)
    by_key = {(r.model, r.protocol, str(r.seed), r.fold): r.metrics for r in results}
    for row in rows:
        m = by_key[(row["model"], row["protocol"], row["seed"], row["fold"])]
        assert int(row["n"]) == m.n
        assert float(row["wa_pct"]) == pytest.approx(100 * m.wa, abs=1e-4)
        assert float(row["ua_pct"]) == pytest.approx(100 * m.ua, abs=1e-4)
        for lab in L4:
            assert float(row[f"{lab}_pct"]) == pytest.approx(100 * m.per_class[lab], abs=1e-4)


def test_summary_pools_folds_within_a_seed_then_averages_seeds(tmp_path):
    # Seed 0: fold A 1/10 right, fold B 90/100 right -> pooled WA 91/110, not mean(10 %, 90 %) = 50 %.
    def fold(correct, n):
        return compute_metrics(["neu"] * n, ["neu"] * correct + ["sad"] * (n - correct), L4)

    results = [RunResult("M-CBLA-BLR", "loso", 0, "Ses01", fold(1, 10)), RunResult("M-CBLA-BLR", "loso", 0, "Ses02", fold(90, 100)),
               RunResult("M-CBLA-BLR", "loso", 1, "Ses01", fold(5, 10)), RunResult("M-CBLA-BLR", "loso", 1, "Ses02", fold(50, 100))]
    write_report(tmp_path, results, title="t", command="c")
    (row,) = read_csv(tmp_path / "summary.csv")
    pooled = [100 * 91 / 110, 100 * 55 / 110]
    assert (row["model"], row["protocol"], row["seeds"], row["folds"]) == ("M-CBLA-BLR", "loso", "2", "2")
    assert float(row["wa_mean_pct"]) == pytest.approx(np.mean(pooled), abs=1e-4)
    assert float(row["wa_std_pct"]) == pytest.approx(np.std(pooled, ddof=1), abs=1e-4)
    assert float(row["neu_mean_pct"]) == pytest.approx(np.mean(pooled), abs=1e-4)
    assert row["ang_mean_pct"] == ""  # ang never in the test set: no recall, not 0
    assert float(row["paper_ua_pct"]) == 71.25
    # UA is over the classes present (only neu) -> equals the neu recall.
    assert float(row["ua_mean_pct"]) == pytest.approx(np.mean(pooled), abs=1e-4)


def test_skipped_models_are_noted_and_keep_their_table_row(tmp_path, two_seed_results):
    text = write_report(tmp_path, two_seed_results, title="t", command="c", notes=["speech-only run"],
                        skipped={"T-LSTM": "the manifest has no text rows"}).read_text()
    assert "- speech-only run" in text
    assert "- T-LSTM skipped: the manifest has no text rows" in text
    row = next(line for line in text.splitlines() if line.startswith("| T-LSTM "))
    assert "— (68)" in row and "— (63.56)" in row and "skipped" in row
    lines = text.splitlines()
    assert lines.index(row) > lines.index(next(line for line in lines if line.startswith("| S-DNN ")))


def test_single_seed_prints_mean_without_std(tmp_path, two_seed_results):
    text = write_report(tmp_path, two_seed_results[:1], title="t", command="c").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| S-DNN "))
    assert "| 50.0 (47.37) |" in row and "±" not in row


def test_figures_are_valid_images(tmp_path, two_seed_results):
    rng = np.random.default_rng(0)
    frames = rng.random((60, 34))
    write_report(tmp_path, two_seed_results, title="t", command="c",
                 feature_example=(frames, FEATURE_NAMES, "Ses05F_impro01_F000"))
    text = (tmp_path / "report.md").read_text()
    for name in ("confusion_paper_S-DNN.png", "wa_ua_paper.png", "features.png"):
        image = imread(tmp_path / name)
        assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 200
        assert image[..., :3].std() > 0.05  # something drawn, not a blank canvas
        assert f"({name})" in text
    assert not list(tmp_path.glob("*loso*.png"))  # no loso runs, no loso figures


def test_feature_columns_found_by_name_in_any_order():
    shuffled = list(reversed(FEATURE_NAMES))
    cols = _feature_columns(shuffled, "u")
    assert [shuffled[i] for i in cols["mfcc"]] == [f"mfcc_{i}" for i in range(1, 14)]
    assert [shuffled[i] for i in cols["chroma"]] == [f"chroma_{i}" for i in range(1, 13)]  # not chroma_std
    assert shuffled[cols["flux"][0]] == "spectral_flux" and shuffled[cols["zcr"][0]] == "zcr"
    assert shuffled[cols["energy"][0]] == "energy"  # not energy_entropy


def test_feature_example_errors(tmp_path):
    names = [n for n in FEATURE_NAMES if n != "spectral_flux"]
    with pytest.raises(ConfigError, match=r"'u1' lacks \['flux'\]"):
        plot_features(tmp_path / "f.png", np.zeros((5, 33)), names, "u1")
    with pytest.raises(ConfigError, match="shape"):
        plot_features(tmp_path / "f.png", np.zeros((5, 30)), FEATURE_NAMES, "u1")


def test_run_result_round_trip_and_results_json(tmp_path, two_seed_results):
    write_report(tmp_path, two_seed_results, title="t", command="c")
    back = [RunResult.from_dict(d) for d in json.loads((tmp_path / "results.json").read_text())]
    assert [(r.model, r.protocol, r.seed, r.fold) for r in back] == [("S-DNN", "paper", 0, "Ses05"), ("S-DNN", "paper", 1, "Ses05")]
    assert [r.metrics.wa for r in back] == [0.5, 0.7]
    with pytest.raises(ConfigError, match="lacks"):
        RunResult.from_dict({"model": "S-DNN"})


def test_bad_runs_are_config_errors(tmp_path, two_seed_results):
    m = two_seed_results[0].metrics
    with pytest.raises(ConfigError, match="unknown protocol 'cv'"):
        RunResult("S-DNN", "cv", 0, "Ses05", m)
    with pytest.raises(ConfigError, match="duplicate run result for model 'S-DNN'.*seed 0"):
        write_report(tmp_path, two_seed_results + [two_seed_results[0]], title="t", command="c")
    other = compute_metrics(["a"], ["a"], ("a", "b"))
    with pytest.raises(ConfigError, match="different labels"):
        write_report(tmp_path, [two_seed_results[0], RunResult("S-DNN", "paper", 5, "Ses05", other)], title="t", command="c")


def test_nan_free_percent_formatting_for_absent_class(tmp_path):
    m = compute_metrics(["neu", "neu"], ["neu", "sad"], L4)
    text = write_report(tmp_path, [RunResult("X-NEW", "paper", 0, "Ses05", m)], title="t", command="c").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| X-NEW "))
    assert row.split("|")[2].strip() == "n/a" and "nan" not in row.lower().replace("n/a", "")
    assert not math.isnan(m.ua)


def test_report_judges_the_papers_claims_and_keeps_our_best_out_of_the_published_table(tmp_path):
    # T-BL clearly below T-LSTM over two seeds: the paper's "T-BL > T-LSTM" must be reported as failing.
    runs = []
    for seed, (bl, lstm) in enumerate([([4, 4, 4, 4], [7, 7, 7, 7]), ([5, 4, 4, 4], [7, 8, 7, 7])]):
        runs.append(RunResult("T-BL", "paper", seed, "5", diag_metrics(bl, [10, 10, 10, 10])))
        runs.append(RunResult("T-LSTM", "paper", seed, "5", diag_metrics(lstm, [10, 10, 10, 10])))
    text = write_report(tmp_path, runs, title="t", command="c").read_text()
    claims = text.split("## The paper's claims on this data")[1].split("## Published comparisons")[0]
    ua_line = next(l for l in claims.split("### Protocol `paper`, UA")[1].splitlines() if "T-BL > T-LSTM" in l)
    assert ua_line.startswith("- ") and ua_line.endswith(": does not hold")
    assert "(holds there)" in ua_line  # the paper's own numbers do order them that way
    fusion_line = next(l for l in claims.splitlines() if "M-CBLA-BLR > S-CBLA" in l)
    assert fusion_line.endswith("not tested")
    published = text.split("## Published comparisons")[1]
    table = [l for l in published.splitlines() if l.startswith("|")]
    assert not any("T-LSTM" in l or "ours" in l for l in table)
    assert "Our highest mean UA under `paper` is T-LSTM's" in published
    assert "picked after seeing these test results" in published


def test_header_states_data_vectors_precision_seeds_and_folds(tmp_path):
    from pathlib import Path

    from emofusion.evaluation.data_card import describe_data
    from emofusion.records import Utterance

    facts_bf16 = {"precision": "bf16", "device": "cpu", "cpu_capability": "AVX512",
                  "word_vectors": "glove.6B.300d.txt", "vector_dim": 300}
    runs = [
        RunResult("T-BL", "paper", 0, "5", diag_metrics([5, 5, 5, 5], [10] * 4), facts=facts_bf16),
        RunResult("T-BL", "paper", 1, "5", diag_metrics([6, 5, 5, 5], [10] * 4), facts=facts_bf16),
        RunResult("S-DNN", "loso", 0, "10", diag_metrics([5, 5, 5, 5], [10] * 4),
                  facts={"precision": "fp32", "device": "cpu", "cpu_capability": "AVX2"}),
        RunResult("S-DNN", "loso", 0, "2", diag_metrics([5, 5, 5, 5], [10] * 4)),
    ]
    rows = [Utterance("a", Path("a.wav"), "t", "ang", "s1", "1"), Utterance("b", Path("b.wav"), "t", "sad", "s2", "2")]
    text = write_report(tmp_path, runs, title="t", command="c", data=describe_data("mine.csv", rows)).read_text()
    header = text.split("## What was measured")[1].split("\n## ")[0]
    assert "- **Data**: `mine.csv`, 2 utterances (speech + text)" in header and "Not IEMOCAP" in header
    assert "- **Word vectors**: glove.6B.300d.txt, 300-d. The paper used GloVe 300-d." in header
    assert ("- **Precision**: bf16 autocast (loss and softmax in fp32) on cpu, CPU capability AVX512 (2 of 4 runs); "
            "fp32 on cpu, CPU capability AVX2 (1 of 4 runs); not recorded (1 runs saved before runs recorded it)") in header
    assert "- **Seeds**: 0, 1 (2)" in header
    assert "- **Test sessions, `paper`**: 5" in header
    assert "- **Test sessions, `loso`**: 2, 10" in header  # numeric order
    # Facts survive results.json, so a report rebuilt from it says the same.
    saved = json.loads((tmp_path / "results.json").read_text())
    assert RunResult.from_dict(saved[0]).facts in (facts_bf16, {"precision": "fp32", "device": "cpu", "cpu_capability": "AVX2"}, {})
    assert any(RunResult.from_dict(d).facts == facts_bf16 for d in saved)


def test_speech_only_runs_say_no_word_vectors(tmp_path, two_seed_results):
    text = write_report(tmp_path, two_seed_results, title="t", command="c").read_text()
    assert "- **Word vectors**: none (no model here reads text)" in text
    assert "- **Data**: not described" in text


def test_models_beside_table_1_follow_its_rows_without_a_paper_value(tmp_path, two_seed_results):
    # The pretrained-encoder models are registered but are not Table-1 rows: the report must still
    # be written (it once raised ValueError sorting them), with them after the paper's models.
    encoder = [RunResult(name, "paper", seed, "Ses05", r.metrics)
               for name in ("M-CBLA-ST", "T-ST") for seed, r in enumerate(two_seed_results)]
    text = write_report(tmp_path, encoder + two_seed_results, title="t", command="c").read_text()
    rows = [line.split("|")[1].strip() for line in text.splitlines()
            if line.startswith("| ") and line.split("|")[1].strip() in ("S-DNN", "M-CBLA-ST", "T-ST")]
    assert rows[:3] == ["S-DNN", "M-CBLA-ST", "T-ST"]
    st_row = next(line for line in text.splitlines() if line.startswith("| T-ST "))
    assert "(" not in st_row  # no paper value in brackets for a model the paper does not have
