"""`emofusion train`, `evaluate` and `reproduce` on the generated corpus, through the real CLI."""

import csv
import json

import pytest

from emofusion.cli.main import main


def _common(tiny):
    return ["--manifest", str(tiny["manifest"]), "--vectors", str(tiny["vectors"]),
            "--cache", str(tiny["root"] / "cli-cache"), "--quiet", "--max-frames", "40"]


def test_train_paper_protocol_then_evaluate_json(tiny, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--model", "t_bl", "--out", str(run), "--epochs", "3", *_common(tiny)]) == 0
    out = capsys.readouterr().out
    assert "T-BL test session 3" in out  # the last session is held out when there is no session 5
    saved = json.loads((run / "metrics.json").read_text())
    assert saved["test_session"] == "3" and saved["n"] == 8

    code = main(["evaluate", str(run), "--manifest", str(tiny["manifest"]), "--sessions", "3", "--json"])
    assert code == 0
    captured = capsys.readouterr()
    metrics = json.loads(captured.out)
    assert set(metrics) >= {"wa", "ua", "per_class", "confusion", "labels", "n"}
    assert metrics["n"] == 8 and metrics["labels"] == ["ang", "exc", "neu", "sad"]
    assert metrics["wa"] == pytest.approx(saved["wa"])  # the same model on the same rows
    assert "warning" not in captured.err  # session 3 was held out


def test_evaluate_warns_when_scored_rows_include_training_sessions(tiny, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--model", "T-LSTM", "--out", str(run), "--epochs", "1", *_common(tiny)]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run), "--manifest", str(tiny["manifest"]), "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["n"] == 24  # every row is still scored, as asked
    assert ("warning: 16 of the 24 scored rows come from sessions the model was trained on (1, 2); "
            "they are not held out") in captured.err


def test_loso_writes_one_run_per_session_and_a_pooled_summary(tiny, tmp_path, capsys):
    run = tmp_path / "loso"
    args = ["train", "--model", "S-DNN", "--protocol", "loso", "--out", str(run), "--epochs", "2"]
    assert main([*args, *_common(tiny)]) == 0
    assert sorted(p.name for p in run.glob("test-*")) == ["test-1", "test-2", "test-3"]
    summary = json.loads((run / "metrics.json").read_text())
    assert sorted(summary["folds"]) == ["1", "2", "3"]
    # Pooled: the folds' confusion counts summed, so WA is correct predictions over all 24 rows.
    correct = sum(summary["folds"][s]["wa"] * summary["folds"][s]["n"] for s in "123")
    assert summary["pooled"]["n"] == 24 and summary["pooled"]["wa"] == pytest.approx(correct / 24)
    assert "aggregate" not in summary  # no second, fold-averaged LOSO number
    for s in "123":
        fold = json.loads((run / f"test-{s}" / "metrics.json").read_text())
        assert fold["test_session"] == s and fold["speaker_overlap"]["shared_speakers"] == 0
    assert "S-DNN LOSO over 3 folds, pooled (confusion counts summed over folds" in capsys.readouterr().out


def test_train_and_reproduce_give_the_same_loso_score(tiny, tmp_path, capsys):
    # One definition of LOSO: the same model, seed and data score the same in both commands.
    common = [*_common(tiny), "--epochs", "2"]
    assert main(["train", "--model", "T-LSTM", "--protocol", "loso", "--out", str(tmp_path / "t"), *common]) == 0
    assert main(["reproduce", "--models", "T-LSTM", "--protocol", "loso", "--seeds", "1",
                 "--out", str(tmp_path / "r"), *common]) == 0
    trained = json.loads((tmp_path / "t" / "metrics.json").read_text())["pooled"]
    with open(tmp_path / "r" / "summary.csv") as f:
        (row,) = list(csv.DictReader(f))
    assert float(row["ua_mean_pct"]) == pytest.approx(100 * trained["ua"], abs=1e-3)
    assert float(row["wa_mean_pct"]) == pytest.approx(100 * trained["wa"], abs=1e-3)


def test_evaluate_errors_are_one_clear_line(tiny, tmp_path, capsys):
    assert main(["evaluate", str(tmp_path), "--manifest", str(tiny["manifest"])]) == 2
    assert "not a trained model folder" in capsys.readouterr().err
    assert main(["train", "--model", "S-XYZ", "--out", str(tmp_path / "x"), *_common(tiny)]) == 2
    assert "unknown model" in capsys.readouterr().err.lower()


def test_reproduce_writes_table_csv_and_figures(tiny, tmp_path, capsys):
    out = tmp_path / "report"
    args = ["reproduce", "--out", str(out), "--seeds", "2", "--epochs", "2", "--protocol", "paper", "loso",
            "--models", "S-DNN", "T-LSTM", "M-D-BL"]
    assert main([*args, *_common(tiny)]) == 0
    report = (out / "report.md").read_text()
    assert "emofusion reproduce --out " + str(out) + " --seeds 2" in report  # the exact command
    for name in ("S-DNN", "T-LSTM", "M-D-BL", "47.37", "63.56"):
        assert name in report
    assert "Speaker-independent: no test speaker of any fold" in report
    runs = json.loads((out / "results.json").read_text())
    assert all(r["speaker_overlap"]["shared_speakers"] == 0 for r in runs)
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    # 3 models x (paper: 1 fold + loso: 3 folds) x 2 seeds
    assert len(rows) == 3 * 4 * 2
    pngs = {p.name for p in out.glob("*.png")}
    assert "features.png" in pngs and any(n.startswith("confusion_") for n in pngs)


def test_reproduce_on_speech_only_data_notes_skipped_text_models(tiny, tmp_path, capsys):
    out = tmp_path / "speech"
    args = ["reproduce", "--out", str(out), "--seeds", "1", "--epochs", "1", "--ignore-text",
            "--models", "S-DNN", "T-BL"]
    assert main([*args, *_common(tiny)]) == 0
    report = (out / "report.md").read_text()
    assert "skipped" in report and "T-BL" in report
