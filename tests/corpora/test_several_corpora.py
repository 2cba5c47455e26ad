"""Corpora in manifests: the optional corpus column, reading several manifests as one data set (ids
unique across them, label sets compared), and the shared benchmarks read together."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from emofusion.corpora.manifest import (
    MANIFEST_COLUMNS, corpus_label_gaps, label_gap_warning, read_manifest, read_manifests, write_manifest,
)
from emofusion.errors import ConfigError, ManifestError
from emofusion.records import Utterance

HEADER = ",".join(MANIFEST_COLUMNS)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_corpus_defaults_to_the_file_stem_and_a_column_overrides_it(tmp_path):
    plain = write(tmp_path / "tess4.csv", f"{HEADER}\na,,x,ang,s,1\n")
    assert [u.corpus for u in read_manifest(plain)] == ["tess4"]
    named = write(tmp_path / "m.csv", f"{HEADER},corpus,note\na,,x,ang,s,1,crema,n1\nb,,y,sad,s,1,,n2\n")
    rows = read_manifest(named)
    assert [u.corpus for u in rows] == ["crema", "m"]  # an empty cell falls back to the stem
    assert [u.extras for u in rows] == [{"note": "n1"}, {"note": "n2"}]  # the corpus is no extra column


def test_write_adds_a_corpus_column_only_where_the_stem_would_say_otherwise(tmp_path):
    rows = [Utterance("a", None, "x", "ang", "s", "1", corpus="ravdess4"),
            Utterance("b", None, "y", "sad", "s", "1", corpus="tess4")]
    same = tmp_path / "ravdess4.csv"
    write_manifest(rows[:1], same)
    assert same.read_text().splitlines()[0] == HEADER
    mixed = tmp_path / "both.csv"
    write_manifest(rows, mixed)
    assert mixed.read_text().splitlines()[0] == HEADER + ",corpus"
    assert [u.corpus for u in read_manifest(mixed)] == ["ravdess4", "tess4"]
    with pytest.raises(ManifestError, match="extras key 'corpus' collides"):
        write_manifest([Utterance("c", None, "z", "ang", "s", "1", {"corpus": "x"})], tmp_path / "bad.csv")


def test_one_manifest_reads_exactly_as_read_manifest(tmp_path):
    # Any label, as a single manifest always allowed: there is no other corpus to compare with.
    path = write(tmp_path / "m.csv", f"{HEADER}\na,,x,joy,s,1\nb,,y,ang,s,2\n")
    assert read_manifests([path]) == read_manifest(path)
    assert [u.label for u in read_manifests([path])] == ["joy", "ang"]
    with pytest.raises(ConfigError, match="no manifest given"):
        read_manifests([])


def test_several_manifests_keep_their_order_and_their_corpora(tmp_path):
    a = write(tmp_path / "a.csv", f"{HEADER}\na1,,x,ang,s,1\na2,,y,sad,s,1\n")
    b = write(tmp_path / "b.csv", f"{HEADER}\nb1,,x,neu,s,1\n")
    rows = read_manifests([a, b])
    assert [(u.id, u.corpus, u.session, u.speaker) for u in rows] == [
        ("a1", "a", "1", "s"), ("a2", "a", "1", "s"), ("b1", "b", "1", "s")]


def test_an_id_in_two_manifests_names_both_rows(tmp_path):
    a = write(tmp_path / "a.csv", f"{HEADER}\nx,,t,ang,s,1\nshared,,t,ang,s,1\n")
    b = write(tmp_path / "b.csv", f"{HEADER}\nz,,t,ang,s,1\nq,,t,ang,s,1\nshared,,t,sad,s,1\n")
    with pytest.raises(ManifestError, match=r"b.csv:4 \(id 'shared'\): id already used at .*a.csv:3; ids must "
                                            r"be unique across manifests"):
        read_manifests([a, b])


def test_a_clip_in_two_manifests_names_both_rows(tmp_path):
    (tmp_path / "clip.wav").write_bytes(b"RIFF")
    a = write(tmp_path / "a.csv", f"{HEADER}\na1,clip.wav,,ang,s,1\na2,clip.wav,,sad,s,1\n")  # within one: allowed
    b = write(tmp_path / "b.csv", f"{HEADER}\nb1,clip.wav,,ang,s,1\n")
    assert len(read_manifests([a])) == 2
    with pytest.raises(ManifestError, match=r"b.csv:2 \(id 'b1'\): audio .*clip.wav is also the clip of .*a.csv:2"):
        read_manifests([a, b])


def test_an_unknown_label_among_several_corpora_names_its_row(tmp_path):
    a = write(tmp_path / "a.csv", f"{HEADER}\na1,,x,ang,s,1\n")
    b = write(tmp_path / "b.csv", f"{HEADER}\nb1,,x,ang,s,1\nb2,,y,happy,s,1\n")
    with pytest.raises(ManifestError, match=r"b.csv:3 \(id 'b2'\): label 'happy' is not one of the known classes "
                                            r"\['ang', 'exc', 'neu', 'sad', 'fru', 'hap'\]"):
        read_manifests([a, b])
    # The caller's class set (a model's) replaces the known classes.
    with pytest.raises(ManifestError, match=r"a.csv:2 \(id 'a1'\): label 'ang' is not one of .*\['sad'\]"):
        read_manifests([a, b], labels=("sad",))


def test_two_manifests_of_one_default_name_are_refused_unless_their_rows_name_the_corpus(tmp_path):
    one = write(tmp_path / "x" / "manifest.csv", f"{HEADER}\na,,t,ang,s,1\n")
    two = write(tmp_path / "y" / "manifest.csv", f"{HEADER}\nb,,t,ang,s,1\n")
    with pytest.raises(ManifestError, match=r"both hold corpus 'manifest' \(from their file names\); give their "
                                            r"rows a 'corpus' column"):
        read_manifests([one, two])
    with pytest.raises(ManifestError, match="is given twice"):
        read_manifests([one, one])
    # Two files of one corpus, said so in both: one corpus, read together.
    p1 = write(tmp_path / "x" / "part1.csv", f"{HEADER},corpus\na,,t,ang,s,1,crema\n")
    p2 = write(tmp_path / "y" / "part2.csv", f"{HEADER},corpus\nb,,t,sad,s,2,crema\n")
    assert {u.corpus for u in read_manifests([p1, p2])} == {"crema"}


def test_label_gaps_say_which_corpus_lacks_which_class():
    rows = [Utterance(f"u{i}", None, "t", label, "s", "1", corpus=c)
            for i, (c, label) in enumerate([("A", "ang"), ("A", "sad"), ("A", "neu"), ("B", "ang"), ("C", "sad")])]
    assert corpus_label_gaps(rows) == {"B": ("neu", "sad"), "C": ("ang", "neu")}
    warning = label_gap_warning(rows)
    assert warning.startswith("warning: the corpora's label sets differ: B (1 rows) lacks neu, sad; "
                              "C (1 rows) lacks ang, neu.")
    assert "Training goes on" in warning
    assert label_gap_warning(rows[:3]) is None


@pytest.mark.shared_data
def test_ravdess4_and_tess4_read_together_as_two_corpora(shared_data):
    rows = read_manifests([shared_data / "bench" / "ravdess4.csv", shared_data / "bench" / "tess4.csv"])
    counts = Counter(u.corpus for u in rows)
    assert counts == {"ravdess4": 560, "tess4": 1600}  # the README's sizes
    assert Counter(u.label for u in rows if u.corpus == "tess4") == {"ang": 400, "exc": 400, "neu": 400, "sad": 400}
    assert label_gap_warning(rows) is None  # both have the four classes
