"""CSV manifest: the shipped benchmark manifests load as they are, round trips, every error case."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from emofusion.corpora.manifest import MANIFEST_COLUMNS, read_manifest, write_manifest
from emofusion.errors import ConfigError, ManifestError
from emofusion.records import Utterance

HEADER = ",".join(MANIFEST_COLUMNS)


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


@pytest.fixture
def wav(tmp_path: Path) -> Path:
    """An audio file beside the manifests (existence is all the reader checks)."""
    (tmp_path / "clips").mkdir()
    path = tmp_path / "clips" / "a.wav"
    path.write_bytes(b"RIFF")
    return path


# --- the benchmark manifests in ../shared/data (counts from its README) -----------------------


@pytest.mark.shared_data
def test_ravdess4_loads_with_readme_counts(shared_data):
    utts = read_manifest(shared_data / "bench" / "ravdess4.csv", labels=("ang", "exc", "neu", "sad"), require="audio")
    assert len(utts) == 560
    per_session = Counter((u.session, u.label) for u in utts)
    for session in "12345":
        assert [per_session[(session, c)] for c in ("ang", "exc", "neu", "sad")] == [32, 32, 16, 32]
    first = utts[0]
    assert first.id == "03-01-01-01-01-01-01"
    assert first.audio == shared_data / "ravdess" / "Actor_01" / "03-01-01-01-01-01-01.flac"
    assert first.text == "Kids are talking by the door."
    assert (first.label, first.speaker, first.session) == ("neu", "actor01", "1")
    # Sessions group actors four at a time: 4 speakers each, 20 in all.
    assert len({u.speaker for u in utts}) == 20
    assert all(len({u.speaker for u in utts if u.session == s}) == 4 for s in "12345")


@pytest.mark.shared_data
def test_meld4_is_text_only(shared_data):
    utts = read_manifest(shared_data / "bench" / "meld4.csv", require="text")
    assert Counter(u.session for u in utts) == {"train": 8245, "dev": 897}
    assert all(u.audio is None and u.has_text for u in utts)
    # Typographic apostrophe (U+2019) survives decoding.
    assert utts[1].text == "You must\u2019ve had your hands full."
    with pytest.raises(ManifestError, match=r"meld4.csv:2 \(id 'meld_train_dia0_utt0'\): audio is required"):
        read_manifest(shared_data / "bench" / "meld4.csv", require="audio")


@pytest.mark.shared_data
def test_paired4_has_both(shared_data):
    utts = read_manifest(shared_data / "bench" / "paired4.csv", require="both")
    assert len(utts) == 560
    assert all(u.audio.is_file() and u.has_text for u in utts)
    # A quoted field with a comma survives parsing.
    assert utts[1].id == "03-01-01-01-01-02-01+meld_train_dia856_utt1"
    assert utts[1].text == "Hey man, how did the audition go?"


@pytest.mark.shared_data
def test_paired4_sessions_share_no_dialogue_and_no_text(shared_data):
    """The rebuilt pairing's promise (shared/data/README.md): held-out text never leaks into training."""
    utts = read_manifest(shared_data / "bench" / "paired4.csv", require="both")
    sessions_of_dialogue: dict[str, set[str]] = {}
    sessions_of_text: dict[str, set[str]] = {}
    for u in utts:
        meld_id = u.id.split("+", 1)[1]  # meld_<split>_dia<D>_utt<U>
        dialogue = meld_id.rsplit("_utt", 1)[0]
        sessions_of_dialogue.setdefault(dialogue, set()).add(u.session)
        sessions_of_text.setdefault(u.text.strip().lower(), set()).add(u.session)
    assert all(len(s) == 1 for s in sessions_of_dialogue.values())
    assert all(len(s) == 1 for s in sessions_of_text.values())
    assert {u.session for u in utts if "+meld_dev_" in u.id} == {"5"}


# --- round trip ---------------------------------------------------------------------------------


def test_round_trip_preserves_everything(tmp_path, wav):
    utts = [
        Utterance(
            "u1", wav, "\u201cQuoted,\u201d she said \u2014 caf\u00e9.", "ang", "spk1", "1",
            {"dialog": "d1", "start": "6.2901"},
        ),
        Utterance("u2", None, "text only", "exc", "spk2", "train", {"dialog": "d2", "start": ""}),
        Utterance("u3", wav, None, "neu", "spk1", "5", {"dialog": "multi\nline", "start": "1"}),
    ]
    path = tmp_path / "out" / "manifest.csv"
    write_manifest(utts, path)
    back = read_manifest(path)
    assert back == utts  # id, audio, text, label, speaker, session
    assert [u.extras for u in back] == [u.extras for u in utts]
    # Audio is stored relative to the manifest's folder, so the tree can move as a whole.
    assert path.read_text(encoding="utf-8").splitlines()[1].startswith("u1,../clips/a.wav,")


def test_write_fills_missing_extras_and_keeps_first_seen_order(tmp_path, wav):
    utts = [
        Utterance("a", wav, "x", "ang", "s", "1", {"b": "1"}),
        Utterance("b", wav, "y", "sad", "s", "1", {"a": "2"}),
    ]
    path = tmp_path / "m.csv"
    write_manifest(utts, path)
    assert path.read_text().splitlines() == [
        HEADER + ",b,a",
        "a,clips/a.wav,x,ang,s,1,1,",
        "b,clips/a.wav,y,sad,s,1,,2",
    ]
    assert [u.extras for u in read_manifest(path)] == [{"b": "1", "a": ""}, {"b": "", "a": "2"}]


def test_write_is_atomic_and_overwrites(tmp_path, wav):
    path = tmp_path / "m.csv"
    write_manifest([Utterance("a", wav, "x", "ang", "s", "1")], path)
    write_manifest([Utterance("b", wav, "y", "sad", "s", "2")], path)
    assert [u.id for u in read_manifest(path)] == ["b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clips", "m.csv"]  # no temp file left


def test_write_rejects_extras_named_like_a_column(tmp_path, wav):
    with pytest.raises(ManifestError, match="u1: extras key 'label'"):
        write_manifest([Utterance("u1", wav, "x", "ang", "s", "1", {"label": "sad"})], tmp_path / "m.csv")
    assert not (tmp_path / "m.csv").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["clips"]


def test_absolute_audio_paths_and_bom_accepted(tmp_path, wav):
    path = write(tmp_path / "m.csv", f"\ufeff{HEADER}\nx,{wav},hi,ang,s,1\n")
    (u,) = read_manifest(path)
    assert u.id == "x" and u.audio == wav


def test_quoted_newline_keeps_line_numbers_right(tmp_path, wav):
    path = write(tmp_path / "m.csv", f'{HEADER}\na,clips/a.wav,"two\nlines",ang,s,1\nb,clips/missing.wav,x,ang,s,1\n')
    assert read_manifest(path, check_files=False)[0].text == "two\nlines"
    # Row b starts on physical line 4 because row a's text spans lines 2-3.
    with pytest.raises(ManifestError, match=r"m.csv:4 \(id 'b'\): audio file .*missing.wav does not exist"):
        read_manifest(path)


def test_empty_text_is_speech_only_and_labels_filter(tmp_path, wav):
    path = write(tmp_path / "m.csv", f"{HEADER}\na,clips/a.wav,  ,ang,s,1\n")
    (u,) = read_manifest(path, labels=["ang"], require="audio")
    assert u.text is None and u.has_audio


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("", r"m.csv: empty file"),
        ("\n\n", r"m.csv: empty file"),
        (f"{HEADER}\n", r"m.csv: header only"),
        ("id,audio,text,label\na,,x,ang\n", r"m.csv:1: header lacks required column\(s\) speaker, session"),
        (f"{HEADER},id\na,,x,ang,s,1,2\n", r"m.csv:1: header repeats column\(s\) id"),
        (f"{HEADER}\na,,x,ang,s\n", r"m.csv:2 \(id 'a'\): 5 fields, header has 6"),
        (f"{HEADER}\na,,x,ang,s,1,extra\n", r"m.csv:2 \(id 'a'\): 7 fields, header has 6"),
        (f"{HEADER}\n,,x,ang,s,1\n", r"m.csv:2: empty id"),
        (f"{HEADER}\na,,x,ang,s,1\nb,,y,sad,s,1\na,,z,neu,s,1\n", r"m.csv:4 \(id 'a'\): duplicate id, first used on line 2"),
        (f"{HEADER}\na,,,ang,s,1\n", r"m.csv:2 \(id 'a'\): row has neither audio nor text"),
        (f"{HEADER}\na,clips/nope.wav,x,ang,s,1\n", r"m.csv:2 \(id 'a'\): audio file .*clips/nope.wav does not exist"),
        (f"{HEADER}\na,,x,,s,1\n", r"m.csv:2 \(id 'a'\): empty label"),
        (f'{HEADER}\na,,"unterminated,ang,s,1\n', r"m.csv:2: malformed CSV"),
    ],
)
def test_bad_manifests(tmp_path, wav, body, message):
    with pytest.raises(ManifestError, match=message):
        read_manifest(write(tmp_path / "m.csv", body))


def test_unknown_label(tmp_path, wav):
    path = write(tmp_path / "m.csv", f"{HEADER}\na,,x,ang,s,1\nb,,y,fear,s,1\n")
    with pytest.raises(ManifestError, match=r"m.csv:3 \(id 'b'\): label 'fear' is not one of \['ang', 'sad'\]"):
        read_manifest(path, labels={"ang", "sad"})


def test_required_modalities(tmp_path, wav):
    path = write(tmp_path / "m.csv", f"{HEADER}\na,clips/a.wav,x,ang,s,1\nb,clips/a.wav,,ang,s,1\n")
    assert len(read_manifest(path, require="audio")) == 2
    with pytest.raises(ManifestError, match=r"m.csv:3 \(id 'b'\): transcript is required but empty"):
        read_manifest(path, require="text")
    with pytest.raises(ManifestError, match=r"m.csv:3 \(id 'b'\): transcript is required"):
        read_manifest(path, require="both")
    with pytest.raises(ConfigError, match="require must be one of"):
        read_manifest(path, require="video")


def test_missing_audio_tolerated_without_check_files(tmp_path):
    path = write(tmp_path / "m.csv", f"{HEADER}\na,later/a.wav,x,ang,s,1\n")
    (u,) = read_manifest(path, check_files=False)
    assert u.audio == tmp_path / "later" / "a.wav"


def test_not_utf8_and_missing_file(tmp_path):
    path = write(tmp_path / "m.csv", f"{HEADER}\na,,caf\u00e9,ang,s,1\n", encoding="latin-1")
    with pytest.raises(ManifestError, match=r"m.csv: not UTF-8"):
        read_manifest(path)
    with pytest.raises(ManifestError, match="does not exist"):
        read_manifest(tmp_path / "absent.csv")
