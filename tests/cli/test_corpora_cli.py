"""Several manifests through the real CLI: leave-one-corpus-out in `train` and `reproduce`, LOSO over
two corpora whose session and speaker names repeat, label-set messages, and `evaluate` on several
manifests. Two generated corpora, each with sessions 1 and 2 and the same speaker names."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from tiny_corpus import make_corpus, write_vectors

from emofusion.cli.main import main
from emofusion.corpora.manifest import read_manifest, write_manifest


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    root = tmp_path_factory.mktemp("two")
    manifests = {}
    for name, seed in (("alpha", 1), ("beta", 2)):
        rows = make_corpus(root / name, sessions=("1", "2"), seed=seed)  # 16 rows, 2 per class and session
        manifests[name] = root / name / f"{name}.csv"
        write_manifest([dataclasses.replace(u, id=f"{name}_{u.id}") for u in rows], manifests[name])
    beta = read_manifest(manifests["beta"])
    manifests["beta_no_neu"] = root / "beta" / "beta3.csv"
    # Beta's clips without neu, named as a corpus of their own by a corpus column (the file stem is beta3).
    write_manifest([dataclasses.replace(u, corpus="gamma") for u in beta if u.label != "neu"], manifests["beta_no_neu"])
    return {"root": root, "vectors": write_vectors(root / "vectors.txt"), **manifests}


def _common(two, *manifests):
    return ["--manifest", *(str(two[m]) for m in manifests), "--vectors", str(two["vectors"]),
            "--cache", str(two["root"] / "cache"), "--quiet", "--max-frames", "40", "--epochs", "2"]


def test_train_loco_scores_each_held_out_corpus_and_pools_them(two, tmp_path, capsys):
    run = tmp_path / "loco"
    assert main(["train", "--model", "S-DNN", "--protocol", "loco", "--out", str(run),
                 *_common(two, "alpha", "beta")]) == 0
    out = capsys.readouterr().out
    assert sorted(p.name for p in run.glob("test-*")) == ["test-alpha", "test-beta"]
    summary = json.loads((run / "metrics.json").read_text())
    assert summary["protocol"] == "loco" and sorted(summary["folds"]) == ["alpha", "beta"]
    folds = summary["folds"]
    assert folds["alpha"]["n"] == 16 and folds["beta"]["n"] == 16
    # Pooled: the two corpora's confusion counts summed, so WA is all correct predictions over 32 rows.
    correct = sum(folds[c]["wa"] * folds[c]["n"] for c in folds)
    assert summary["pooled"]["n"] == 32 and summary["pooled"]["wa"] == pytest.approx(correct / 32)
    fold = json.loads((run / "test-alpha" / "metrics.json").read_text())
    assert fold["test_corpus"] == "alpha"
    model = json.loads((run / "test-alpha" / "model.json").read_text())
    assert model["train_corpora"] == {"beta": ["1", "2"]}  # trained on the other corpus only
    assert model["train_config"]["balance"] == "auto" and "sampling" not in model  # one corpus: plain
    assert model["provenance"]["manifest"] == [str(two["alpha"]), str(two["beta"])]
    assert "S-DNN LOCO over 2 folds, pooled" in out and "S-DNN test corpus beta:" in out


def test_loco_on_one_corpus_is_one_clear_error(two, tmp_path, capsys):
    assert main(["train", "--model", "S-DNN", "--protocol", "loco", "--out", str(tmp_path / "x"),
                 *_common(two, "alpha")]) == 2
    err = capsys.readouterr().err
    assert "'loco' (leave one corpus out) needs at least two corpora, found ['alpha']" in err
    assert not (tmp_path / "x").exists()


def test_loso_over_two_corpora_keeps_their_sessions_and_speakers_apart(two, tmp_path, capsys):
    run = tmp_path / "loso"
    assert main(["train", "--model", "S-DNN", "--protocol", "loso", "--out", str(run), "--epochs", "1",
                 *_common(two, "alpha", "beta")]) == 0
    summary = json.loads((run / "metrics.json").read_text())
    assert sorted(summary["folds"]) == ["alpha/1", "alpha/2", "beta/1", "beta/2"]
    assert sorted(p.name for p in run.glob("test-*")) == ["test-alpha_1", "test-alpha_2", "test-beta_1", "test-beta_2"]
    # spk10 speaks in session 1 of both corpora: two people, so no fold shares a speaker.
    assert all(f["speaker_overlap"]["shared_speakers"] == 0 for f in summary["folds"].values())
    assert all(f["n"] == 8 for f in summary["folds"].values())
    model = json.loads((run / "test-alpha_1" / "model.json").read_text())
    # Two corpora in training: balanced, 12 draws per corpus, 3 per class (alpha has 2 rows of each).
    assert model["sampling"]["alpha"]["ang"] == {"rows": 2, "per_epoch": 3}
    assert model["sampling"]["beta"]["ang"] == {"rows": 4, "per_epoch": 3}
    assert "warning" not in capsys.readouterr().err


def test_a_corpus_lacking_a_class_is_a_warning_and_training_goes_on(two, tmp_path, capsys):
    run = tmp_path / "gap"
    assert main(["train", "--model", "S-DNN", "--protocol", "loco", "--out", str(run), "--epochs", "1",
                 *_common(two, "alpha", "beta_no_neu")]) == 0
    err = capsys.readouterr().err
    assert "warning: the corpora's label sets differ: gamma (12 rows) lacks neu. Training goes on" in err
    assert "note: held-out corpus gamma has no neu rows" in err
    summary = json.loads((run / "metrics.json").read_text())
    assert summary["folds"]["gamma"]["n"] == 12 and summary["labels"] == ["ang", "exc", "neu", "sad"]


def test_same_named_manifests_and_reused_ids_are_refused_before_any_work(two, tmp_path, capsys):
    alpha, beta = two["root"] / "alpha" / "manifest.csv", two["root"] / "beta" / "manifest.csv"
    args = ["train", "--model", "S-DNN", "--protocol", "loco", "--out", str(tmp_path / "x"), "--manifest"]
    assert main([*args, str(alpha), str(beta)]) == 2
    assert "both hold corpus 'manifest' (from their file names)" in capsys.readouterr().err
    assert main([*args, str(alpha), str(two["alpha"])]) == 2  # the same clips under other ids
    assert re.search(r"alpha.csv:2 \(id 'alpha_s1_ang_0'\): audio .*s1_ang_0.wav is also the clip of "
                     r".*manifest.csv:2; a clip belongs to one corpus", capsys.readouterr().err)
    assert main([*args, str(two["alpha"]), str(two["beta"]), str(two["beta_no_neu"])]) == 2
    assert re.search(r"beta3.csv:2 \(id 'beta_s1_ang_0'\): id already used at .*beta.csv:2",
                     capsys.readouterr().err)
    assert not (tmp_path / "x").exists()


def test_reproduce_loco_reports_each_corpus_and_the_pool(two, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["reproduce", "--out", str(out), "--seeds", "2", "--protocol", "loco", "--models", "S-DNN",
                 *_common(two, "alpha", "beta")]) == 0
    report = (out / "report.md").read_text()
    runs = json.loads((out / "results.json").read_text())
    assert sorted((r["fold"], r["seed"]) for r in runs) == [("alpha", 0), ("alpha", 1), ("beta", 0), ("beta", 1)]
    assert "- **Held-out corpora, `loco`**: alpha, beta" in report
    assert "(held-out corpora: alpha, beta)" in report
    assert "Per held-out corpus (trained on all the others)" in report
    assert "2 corpora: alpha 16, beta 16" in report  # the data card
    assert "Corpora: alpha, beta." in report and "Under loco with two corpora each training fold is one corpus." in report
    lines = report.splitlines()
    header = lines.index("| model | alpha WA | alpha UA | beta WA | beta UA | pooled WA | pooled UA | seeds |")
    row = lines[header + 2]
    cells = [c.strip() for c in row.strip("|").split("|")]
    for i, corpus in enumerate(("alpha", "beta")):
        for j, key in enumerate(("wa", "ua")):
            values = [100 * r["metrics"][key] for r in runs if r["fold"] == corpus]
            mean = sum(values) / 2
            assert cells[1 + 2 * i + j].startswith(f"{mean:.1f} ± ")
    # Pooled per seed (both corpora's counts summed), then averaged over the seeds.
    pooled_wa = [sum(r["metrics"]["wa"] * r["metrics"]["n"] for r in runs if r["seed"] == s) / 32 for s in (0, 1)]
    assert cells[5].startswith(f"{50 * sum(pooled_wa):.1f} ± ")
    assert cells[7] == "2"


def test_evaluate_on_several_manifests_checks_sessions_within_their_corpus(two, tmp_path, capsys):
    run = tmp_path / "beta-only"
    assert main(["train", "--model", "S-DNN", "--protocol", "all", "--out", str(run),
                 *_common(two, "beta")]) == 0
    capsys.readouterr()
    # alpha's sessions 1 and 2 share their names with the beta sessions it trained on, yet are held out.
    assert main(["evaluate", str(run), "--manifest", str(two["alpha"]), str(two["beta"]),
                 "--sessions", "alpha/1", "alpha/2", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["n"] == 16 and "warning" not in captured.err
    assert main(["evaluate", str(run), "--manifest", str(two["alpha"]), str(two["beta"]),
                 "--sessions", "beta/2", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["n"] == 8
    assert "warning: 8 of the 8 scored rows come from sessions the model was trained on (2)" in captured.err


def test_evaluate_names_the_row_of_a_label_the_model_does_not_know(two, tmp_path, capsys):
    run = tmp_path / "m"
    assert main(["train", "--model", "S-DNN", "--protocol", "all", "--out", str(run), "--epochs", "1",
                 *_common(two, "alpha")]) == 0
    rows = read_manifest(two["alpha"])
    odd = tmp_path / "odd.csv"
    write_manifest([rows[0], dataclasses.replace(rows[1], label="fru")], odd)
    capsys.readouterr()
    assert main(["evaluate", str(run), "--manifest", str(odd)]) == 2
    err = capsys.readouterr().err
    assert f"odd.csv:3 (id '{rows[1].id}'): label 'fru' is not one of ['ang', 'exc', 'neu', 'sad']" in err


def test_loco_calibrate_leaves_a_fold_without_spare_speakers_uncalibrated_and_says_so(two, tmp_path, capsys):
    # "duo": beta's clips as a corpus of two speakers (TESS's case): the fold trained on it cannot hold
    # a speaker out for calibration; the fold trained on alpha (4 speakers) can. Before, the whole
    # run stopped with an error at the first such fold.
    duo = two["root"] / "duo.csv"
    write_manifest([dataclasses.replace(u, speaker=f"v{u.session}", corpus="duo") for u in read_manifest(two["beta"])], duo)
    run = tmp_path / "loco-cal"
    args = ["train", "--model", "S-DNN", "--protocol", "loco", "--calibrate", "--out", str(run), *_common(two, "alpha")]
    args[args.index("--manifest") + 1 : args.index("--manifest") + 2] = [str(two["alpha"]), str(duo)]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "test alpha: no training corpus has 3 or more speakers to hold out, so this fold is not calibrated" in err
    trained_on_duo = json.loads((run / "test-alpha" / "model.json").read_text())
    trained_on_alpha = json.loads((run / "test-duo" / "model.json").read_text())
    assert "calibration" not in trained_on_duo
    held = trained_on_alpha["calibration"]["fitted_on"]["speakers"]
    assert held and all(s.startswith("alpha/") for s in held)
