"""IEMOCAP reader on the fixture tree; expected numbers are hand counts of iemocap_fixture.DIALOGS."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import soundfile as sf
from iemocap_fixture import build_iemocap

from emofusion.corpora.iemocap import (
    PAPER_COUNTS,
    count_table,
    read_iemocap,
    scan_iemocap,
    split_counts,
    verify_all_utterance_counts,
    verify_paper_counts,
)
from emofusion.errors import ConfigError, CorpusError

# Improvised, paper4: xxx (S1), hap (S1) and oth (S2) dropped.
IMPRO_PAPER4 = {
    "1": {"ang": 1, "exc": 0, "neu": 1, "sad": 1},
    "2": {"ang": 0, "exc": 1, "neu": 1, "sad": 0},
    "3": {"ang": 0, "exc": 1, "neu": 1, "sad": 1},
    "4": {"ang": 1, "exc": 0, "neu": 1, "sad": 0},
    "5": {"ang": 0, "exc": 1, "neu": 1, "sad": 1},
}
FIXTURE_SPLIT = {
    "train": {"ang": 2, "exc": 2, "neu": 4, "sad": 2},
    "test": {"ang": 0, "exc": 1, "neu": 1, "sad": 1},
}
# Improvised + scripted, raw labels ang/exc/hap/neu/sad (xxx, oth, fru not counted).
FIXTURE_ALL = {"ang": 4, "exc": 4, "hap": 2, "neu": 6, "sad": 4}


def by_id(utterances):
    return {u.id: u for u in utterances}


def test_paper4_improvised_counts(iemocap_root):
    utts = read_iemocap(iemocap_root)
    assert len(utts) == 13
    assert count_table(utts) == IMPRO_PAPER4
    assert split_counts(utts) == FIXTURE_SPLIT
    assert [u.id for u in utts] == sorted(u.id for u in utts)
    assert {u.extras["kind"] for u in utts} == {"impro"}


def test_unmapped_labels_are_dropped(iemocap_root):
    ids = set(by_id(read_iemocap(iemocap_root)))
    assert "Ses01F_impro01_F001" not in ids  # xxx
    assert "Ses02M_impro02_M001" not in ids  # oth
    assert "Ses01F_impro01_F002" not in ids  # hap, not in paper4


def test_speaker_comes_from_last_token_not_dialog_prefix(iemocap_root):
    utts = by_id(read_iemocap(iemocap_root, improvised_only=False))
    # Female-prefixed dialog, male speaker and the reverse: the pitfall SPEC §2 warns about.
    assert utts["Ses01F_impro01_M000"].speaker == "Ses01_M"
    assert utts["Ses01F_impro01_M000"].extras["gender"] == "M"
    assert utts["Ses02M_impro02_F000"].speaker == "Ses02_F"
    assert utts["Ses05M_script01_1b_F000"].speaker == "Ses05_F"
    assert utts["Ses01F_impro01_F000"].speaker == "Ses01_F"
    # Two speakers per session, ten in all.
    assert {u.speaker for u in utts.values()} == {f"Ses0{n}_{g}" for n in range(1, 6) for g in "FM"}


def test_scripted_dialogs_only_when_asked(iemocap_root):
    utts = by_id(read_iemocap(iemocap_root, improvised_only=False))
    assert len(utts) == 18  # 13 improvised + 5 scripted with ang/exc/neu/sad (fru, hap dropped)
    assert utts["Ses05M_script01_1b_M000"].extras["kind"] == "script"
    assert utts["Ses05M_script01_1b_M000"].extras["dialog"] == "Ses05M_script01_1b"
    assert "Ses01F_script01_1_M001" not in utts  # fru


def test_session_filter(iemocap_root):
    utts = read_iemocap(iemocap_root, sessions=[3, 5])
    assert {u.session for u in utts} == {"3", "5"}
    assert len(utts) == 6
    assert "Ses03M_impro05a_F000" in by_id(utts)  # irregular dialog name


def test_merge_hap4_and_six_maps(iemocap_root):
    merged = by_id(read_iemocap(iemocap_root, label_map="merge_hap4", improvised_only=False))
    assert merged["Ses01F_impro01_F002"].label == "exc"
    assert merged["Ses01F_impro01_F002"].extras["raw_label"] == "hap"
    assert merged["Ses03F_script03_1_M000"].label == "exc"
    assert len(merged) == 20

    six = by_id(read_iemocap(iemocap_root, label_map="six", improvised_only=False))
    assert six["Ses01F_script01_1_M001"].label == "fru"
    assert six["Ses01F_impro01_F002"].label == "hap"
    assert "Ses01F_impro01_F001" not in six  # xxx still dropped
    assert len(six) == 21


def test_custom_label_map_dict(iemocap_root):
    utts = read_iemocap(iemocap_root, label_map={"ang": "negative", "sad": "negative", "exc": "positive"})
    assert sorted(u.label for u in utts) == ["negative"] * 5 + ["positive"] * 3


def test_unknown_label_map_name(iemocap_root):
    with pytest.raises(ConfigError, match="nope"):
        read_iemocap(iemocap_root, label_map="nope")


def test_transcripts_joined_by_id_and_noise_skipped(iemocap_root):
    utts = by_id(scan_iemocap(iemocap_root, improvised_only=False))
    assert utts["Ses01F_impro01_F000"].text == "Excuse me."
    assert utts["Ses01F_impro01_M001"].text == "Sorry: the office is closed."  # colon kept
    assert utts["Ses05M_script01_1b_M000"].text == "Stop it."
    # The `_MXX0` noise line is not an utterance.
    assert not any("XX" in i for i in utts)
    assert len(utts) == 23  # every evaluated utterance, xxx/oth/fru/hap included


def test_extras_audio_and_raw_scan(iemocap_root):
    u = by_id(scan_iemocap(iemocap_root))["Ses03M_impro05a_M001"]
    assert u.label == "exc" and u.session == "3"
    # Third utterance of its dialog: start 6.2901 + 2 * 3.0, end start + 1.9456.
    assert u.extras == {
        "dialog": "Ses03M_impro05a",
        "start": "12.2901",
        "end": "14.2357",
        "raw_label": "exc",
        "kind": "impro",
        "gender": "M",
    }
    wav_dir = iemocap_root / "Session3" / "sentences" / "wav" / "Ses03M_impro05a"
    assert u.audio == wav_dir / "Ses03M_impro05a_M001.wav"
    info = sf.info(u.audio)
    assert (info.samplerate, info.channels, info.frames) == (16000, 1, 4800)
    assert by_id(scan_iemocap(iemocap_root))["Ses01F_impro01_F001"].label == "xxx"


def test_verify_paper_counts_passes_on_matching_expectation(iemocap_root):
    verify_paper_counts(read_iemocap(iemocap_root), expected=FIXTURE_SPLIT)


def test_verify_paper_counts_reports_expected_vs_found(iemocap_root):
    with pytest.raises(CorpusError) as info:
        verify_paper_counts(read_iemocap(iemocap_root))
    message = str(info.value)
    assert "train  ang         258        2   -256  <-- mismatch" in message
    assert "test   sad         133        1   -132  <-- mismatch" in message
    assert PAPER_COUNTS["train"]["neu"] == 812  # the default really is SPEC §2's table


def test_verify_paper_counts_flags_only_the_differing_class(iemocap_root):
    expected = {"train": dict(FIXTURE_SPLIT["train"]), "test": dict(FIXTURE_SPLIT["test"])}
    expected["test"]["neu"] = 2
    with pytest.raises(CorpusError) as info:
        verify_paper_counts(read_iemocap(iemocap_root), expected=expected)
    mismatches = [line for line in str(info.value).splitlines() if "mismatch" in line]
    assert mismatches == ["  test   neu           2        1     -1  <-- mismatch"]


def test_verify_paper_counts_rejects_merged_labels(iemocap_root):
    # merge_hap4 adds the session-1 hap to train exc: verification must notice.
    with pytest.raises(CorpusError, match=r"train  exc           2        3     \+1"):
        verify_paper_counts(read_iemocap(iemocap_root, label_map="merge_hap4"), expected=FIXTURE_SPLIT)


def test_verify_all_utterance_counts(iemocap_root):
    everything = scan_iemocap(iemocap_root, improvised_only=False)
    verify_all_utterance_counts(everything, expected=FIXTURE_ALL)
    with pytest.raises(CorpusError, match=r"hap +2 +1 +-1"):
        # Improvised only: the scripted hap is missing.
        verify_all_utterance_counts(scan_iemocap(iemocap_root), expected=FIXTURE_ALL)
    with pytest.raises(CorpusError, match=r"ang +1103 +4"):
        verify_all_utterance_counts(everything)


def test_annotator_subfolders_and_appledouble_files_ignored(iemocap_root):
    evaluation = iemocap_root / "Session1" / "dialog" / "EmoEvaluation"
    assert (evaluation / "._Ses01F_impro01.txt").exists()
    assert (evaluation / "Categorical").is_dir()
    assert len(read_iemocap(iemocap_root, sessions=[1])) == 3


# --- errors ----------------------------------------------------------------------------------


def test_missing_wav_is_an_error(tmp_path):
    root = build_iemocap(tmp_path)
    wav = root / "Session2" / "sentences" / "wav" / "Ses02M_impro02" / "Ses02M_impro02_M000.wav"
    wav.unlink()
    with pytest.raises(CorpusError, match="Ses02M_impro02_M000.wav is missing"):
        read_iemocap(root)


def test_missing_transcription_file(tmp_path):
    root = build_iemocap(tmp_path)
    (root / "Session4" / "dialog" / "transcriptions" / "Ses04F_impro03.txt").unlink()
    with pytest.raises(CorpusError, match=r"transcriptions/Ses04F_impro03.txt is missing"):
        read_iemocap(root)
    assert len(read_iemocap(root, sessions=[1, 2, 3, 5])) == 11


def test_scripted_transcription_needed_only_with_scripted_dialogs(tmp_path):
    root = build_iemocap(tmp_path)
    (root / "Session1" / "dialog" / "transcriptions" / "Ses01F_script01_1.txt").unlink()
    assert len(read_iemocap(root)) == 13
    with pytest.raises(CorpusError, match="Ses01F_script01_1.txt is missing"):
        read_iemocap(root, improvised_only=False)


def test_utterance_without_transcript(tmp_path):
    root = build_iemocap(tmp_path)
    path = root / "Session5" / "dialog" / "transcriptions" / "Ses05M_impro04.txt"
    lines = [line for line in path.read_text().splitlines() if not line.startswith("Ses05M_impro04_M000 ")]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(CorpusError, match="no transcript for Ses05M_impro04_M000"):
        read_iemocap(root)


def test_missing_session_and_evaluation_folders(tmp_path):
    root = build_iemocap(tmp_path)
    shutil.rmtree(root / "Session5" / "dialog" / "EmoEvaluation")
    with pytest.raises(CorpusError, match=r"Session5/dialog/EmoEvaluation is missing"):
        read_iemocap(root)
    assert len(read_iemocap(root, sessions=[1, 2, 3, 4])) == 10
    shutil.rmtree(root / "Session5")
    with pytest.raises(CorpusError, match=r"session folder .*Session5 is missing"):
        read_iemocap(root)


def test_root_that_is_not_iemocap(tmp_path):
    build_iemocap(tmp_path)
    # The parent of IEMOCAP_full_release is a common mistake: say what was meant.
    with pytest.raises(CorpusError, match="did you mean .*IEMOCAP_full_release"):
        read_iemocap(tmp_path)
    with pytest.raises(CorpusError, match="is not a folder"):
        read_iemocap(tmp_path / "nowhere")


def test_malformed_evaluation_line(tmp_path):
    root = build_iemocap(tmp_path)
    path = root / "Session2" / "dialog" / "EmoEvaluation" / "Ses02M_impro02.txt"
    path.write_text(path.read_text().replace("\tSes02M_impro02_M000\tneu", "\tSes02M_impro02_M000"))
    with pytest.raises(CorpusError, match=r"Ses02M_impro02.txt:\d+: malformed evaluation line"):
        read_iemocap(root)


def test_utterance_of_another_dialog_in_evaluation(tmp_path):
    root = build_iemocap(tmp_path)
    path = root / "Session2" / "dialog" / "EmoEvaluation" / "Ses02M_impro02.txt"
    path.write_text(path.read_text().replace("Ses02M_impro02_M000", "Ses02M_impro09_M000"))
    with pytest.raises(CorpusError, match="'Ses02M_impro09_M000' is not an utterance id of dialog Ses02M_impro02"):
        read_iemocap(root)


def test_bad_sessions_argument(iemocap_root):
    with pytest.raises(ConfigError, match=r"\[0, 6\]"):
        read_iemocap(iemocap_root, sessions=[0, 6])
    with pytest.raises(ConfigError):
        read_iemocap(iemocap_root, sessions=[])


def test_empty_transcript_is_kept_as_no_text(tmp_path: Path):
    root = build_iemocap(tmp_path)
    path = root / "Session4" / "dialog" / "transcriptions" / "Ses04F_impro03.txt"
    path.write_text(path.read_text().replace(": Fine.", ":"))
    u = by_id(read_iemocap(root))["Ses04F_impro03_M000"]
    assert u.text == "" and not u.has_text
