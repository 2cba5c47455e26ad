"""`emofusion prepare iemocap` on the fixture tree, through the real CLI entry point."""

from __future__ import annotations

import pytest

from emofusion.cli.main import main
from emofusion.corpora.manifest import read_manifest


def test_prepare_writes_manifest_and_prints_counts(iemocap_root, tmp_path, capsys):
    out = tmp_path / "prepared"
    assert main(["prepare", "iemocap", str(iemocap_root), "--out", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    # Per-session rows, totals and the paper split: hand counts of the fixture (see test_iemocap.py).
    assert "session      ang    exc    neu    sad  total" in printed
    assert "1              1      0      1      1      3" in printed
    assert "5              0      1      1      1      3" in printed
    assert "total          2      3      5      3     13" in printed
    assert "train          2      2      4      2     10" in printed
    assert "test           0      1      1      1      3" in printed

    utts = read_manifest(out / "manifest.csv", labels=("ang", "exc", "neu", "sad"), require="both")
    assert len(utts) == 13
    by_id = {u.id: u for u in utts}
    assert by_id["Ses01F_impro01_M000"].speaker == "Ses01_M"
    assert by_id["Ses03M_impro05a_F000"].audio == (
        iemocap_root / "Session3" / "sentences" / "wav" / "Ses03M_impro05a" / "Ses03M_impro05a_F000.wav"
    )
    assert by_id["Ses03M_impro05a_F000"].extras["raw_label"] == "sad"
    # Paths are relative to the manifest's folder.
    row = (out / "manifest.csv").read_text().splitlines()[1]
    assert row.split(",")[1].startswith("../")


def test_prepare_all_utterances_and_label_map(iemocap_root, tmp_path, capsys):
    out = tmp_path / "prepared"
    args = ["prepare", "iemocap", str(iemocap_root), "--out", str(out), "--all-utterances", "--label-map", "merge_hap4"]
    assert main(args) == 0
    utts = {u.id: u for u in read_manifest(out / "manifest.csv")}
    assert len(utts) == 20
    assert utts["Ses03F_script03_1_M000"].label == "exc"  # scripted hap merged
    assert "total          4      6      6      4     20" in capsys.readouterr().out.splitlines()


def test_prepare_is_idempotent(iemocap_root, tmp_path):
    out = tmp_path / "prepared"
    assert main(["prepare", "iemocap", str(iemocap_root), "--out", str(out), "--all-utterances"]) == 0
    assert len(read_manifest(out / "manifest.csv")) == 18
    first = (out / "manifest.csv").read_bytes()
    assert main(["prepare", "iemocap", str(iemocap_root), "--out", str(out)]) == 0
    assert len(read_manifest(out / "manifest.csv")) == 13  # overwritten, not appended
    assert main(["prepare", "iemocap", str(iemocap_root), "--out", str(out), "--all-utterances"]) == 0
    assert (out / "manifest.csv").read_bytes() == first
    assert [p.name for p in out.iterdir()] == ["manifest.csv"]


def test_verify_fails_on_counts_that_differ_and_writes_nothing(iemocap_root, tmp_path, capsys):
    out = tmp_path / "prepared"
    assert main(["prepare", "iemocap", str(iemocap_root), "--out", str(out), "--verify"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("emofusion prepare: error: IEMOCAP counts differ from the paper's")
    assert "train  neu         812        4   -808  <-- mismatch" in err
    assert not (out / "manifest.csv").exists()


def test_verify_checks_paper_counts_whatever_the_label_map(iemocap_root, tmp_path, capsys):
    # merge_hap4 output would never match, but verify is about the tree, so the message is the
    # paper4 one (train exc found 2, not 3 with the merged hap).
    args = ["prepare", "iemocap", str(iemocap_root), "--out", str(tmp_path), "--verify", "--label-map", "merge_hap4"]
    assert main(args) == 2
    assert "train  exc         489        2   -487  <-- mismatch" in capsys.readouterr().err


def test_bad_root_is_one_clear_line(tmp_path, capsys):
    assert main(["prepare", "iemocap", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "does not look like IEMOCAP_full_release/" in err and err.count("\n") == 1


def test_out_is_required(iemocap_root):
    with pytest.raises(SystemExit):
        main(["prepare", "iemocap", str(iemocap_root)])
