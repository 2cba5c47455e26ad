"""make_folds decides what is held out: checked on hand-made corpora, with the speaker overlap each
fold reports, and on the shared benchmarks against what shared/data/README.md says of them."""

from __future__ import annotations

import pytest

from emofusion.corpora.manifest import read_manifest
from emofusion.errors import ConfigError
from emofusion.evaluation.protocols import PROTOCOLS, SpeakerOverlap, make_folds, paper_test_session, speaker_overlap
from emofusion.records import Utterance


def corpus(rows: list[tuple[str, str]]) -> list[Utterance]:
    """(session, speaker) per row -> text-only utterances with ids u0, u1, ..."""
    return [Utterance(f"u{i}", None, "hello", "neu", speaker, session) for i, (session, speaker) in enumerate(rows)]


def ids(utterances: list[Utterance]) -> list[str]:
    return [u.id for u in utterances]


def test_protocols_are_one_table_of_names_and_descriptions():
    assert list(PROTOCOLS) == ["paper", "loso", "loco"]
    assert all(isinstance(d, str) and d for d in PROTOCOLS.values())


@pytest.mark.parametrize("sessions, held_out", [
    ({"1", "2", "3", "4", "5"}, "5"),  # IEMOCAP / RAVDESS benchmark
    ({"train", "dev"}, "dev"),  # MELD
    ({"1", "2", "10"}, "10"),  # otherwise the last in natural order, not string order ("2")
    ({"a", "b", "7"}, "b"),  # named sessions sort after numbered ones
])
def test_paper_protocol_holds_out_5_else_dev_else_the_last_session(sessions, held_out):
    assert paper_test_session(sessions) == held_out


def test_paper_fold_tests_exactly_the_held_out_session_and_trains_on_the_rest():
    utts = corpus([("1", "a"), ("5", "e"), ("2", "b"), ("5", "f"), ("3", "c")])
    (fold,) = make_folds(utts, "paper")
    assert fold.name == "5"
    assert ids(fold.test) == ["u1", "u3"]
    assert ids(fold.train) == ["u0", "u2", "u4"]  # manifest order kept


def test_loso_tests_every_utterance_exactly_once_never_on_its_own_training_rows():
    utts = corpus([("10", "x"), ("2", "y"), ("1", "z"), ("2", "y"), ("10", "w"), ("1", "z")])
    folds = make_folds(utts, "loso")
    assert [f.name for f in folds] == ["1", "2", "10"]  # natural session order
    tested = [u.id for f in folds for u in f.test]
    assert sorted(tested) == sorted(ids(utts))  # each once
    for f in folds:
        assert {u.session for u in f.test} == {f.name}
        assert f.name not in {u.session for u in f.train}
        assert sorted(ids(f.train) + ids(f.test)) == sorted(ids(utts))


def test_bad_protocol_and_single_session_are_clear_errors():
    with pytest.raises(ConfigError, match=r"unknown protocol 'kfold'; choose one of \['paper', 'loso', 'loco'\]"):
        make_folds(corpus([("1", "a"), ("2", "b")]), "kfold")
    with pytest.raises(ConfigError, match=r"needs at least two sessions, found \['1'\]"):
        make_folds(corpus([("1", "a"), ("1", "b")]), "loso")


def test_speaker_overlap_counted_by_hand():
    # Session 2's speakers: b (2 utterances, also in session 1), c (only here), '' (unknown).
    utts = corpus([("1", "a"), ("1", "b"), ("2", "b"), ("2", "b"), ("2", "c"), ("2", "")])
    (fold,) = make_folds(utts, "paper")
    assert fold.overlap == SpeakerOverlap(speakers=1, test_speakers=2, utterances=2, test_utterances=4)
    assert not fold.overlap.independent
    assert fold.overlap.warning("T-BL") == (
        "warning: T-BL: 1 of 2 test speakers also speak in training (2 of 4 test utterances); "
        "this split is not speaker-independent"
    )
    # An empty speaker cell is unknown, not one speaker shared by every unlabelled row.
    unknown = corpus([("1", ""), ("2", "")])
    assert speaker_overlap(unknown[:1], unknown[1:]).independent


def test_speaker_independent_folds_have_no_overlap_and_no_warning():
    utts = corpus([("1", "a"), ("1", "b"), ("2", "c"), ("3", "d")])
    for fold in make_folds(utts, "loso"):
        assert fold.overlap.speakers == 0 and fold.overlap.utterances == 0
        assert fold.overlap.warning("x") is None


def test_overlap_round_trips_through_json():
    o = SpeakerOverlap(speakers=33, test_speakers=46, utterances=864, test_utterances=897)
    assert SpeakerOverlap.from_json(o.to_json()) == o
    with pytest.raises(ConfigError, match="speaker overlap must have"):
        SpeakerOverlap.from_json({"shared_speakers": 1})


@pytest.mark.shared_data
def test_benchmarks_independence_is_what_their_readme_says(shared_data):
    # ravdess4: speaker-independent by construction (four actors per session).
    for fold in make_folds(read_manifest(shared_data / "bench" / "ravdess4.csv"), "loso"):
        assert fold.overlap.independent and fold.overlap.test_speakers == 4
    # paired4: its speaker is the RAVDESS actor, so the same holds.
    for fold in make_folds(read_manifest(shared_data / "bench" / "paired4.csv"), "loso"):
        assert fold.overlap.independent
    # meld4: MELD's train and dev share the main characters.
    (dev,) = make_folds(read_manifest(shared_data / "bench" / "meld4.csv"), "paper")
    assert dev.name == "dev"
    assert (dev.overlap.utterances, dev.overlap.test_utterances) == (864, 897)


# --- several corpora ----------------------------------------------------------------------------


def corpora(rows: list[tuple[str, str, str]]) -> list[Utterance]:
    """(corpus, session, speaker) per row -> text-only utterances with ids u0, u1, ..."""
    return [Utterance(f"u{i}", None, "hello", "neu", speaker, session, corpus=c)
            for i, (c, session, speaker) in enumerate(rows)]


TWO = [("A", "1", "a1"), ("A", "1", "a1"), ("A", "2", "a2"), ("A", "5", "a5"),
       ("B", "1", "b1"), ("B", "2", "b2"), ("B", "2", "b2")]


def test_loco_holds_out_each_corpus_once_and_trains_on_the_others():
    rows = corpora(TWO)
    folds = make_folds(rows, "loco")
    assert [f.name for f in folds] == ["A", "B"]
    assert ids(folds[0].test) == ["u0", "u1", "u2", "u3"] and ids(folds[0].train) == ["u4", "u5", "u6"]
    assert ids(folds[1].test) == ["u4", "u5", "u6"] and ids(folds[1].train) == ["u0", "u1", "u2", "u3"]
    assert [f.folder for f in folds] == ["test-A", "test-B"]


def test_loco_needs_two_corpora():
    with pytest.raises(ConfigError, match=r"'loco' \(leave one corpus out\) needs at least two corpora, found \['A'\]"):
        make_folds(corpora([("A", "1", "x"), ("A", "2", "y")]), "loco")


def test_loso_over_corpora_keeps_same_named_sessions_apart():
    # Session "1" of A and session "1" of B are two folds, never one.
    folds = make_folds(corpora(TWO), "loso")
    assert [f.name for f in folds] == ["A/1", "A/2", "A/5", "B/1", "B/2"]
    by_name = {f.name: f for f in folds}
    assert ids(by_name["A/1"].test) == ["u0", "u1"] and "u4" in ids(by_name["A/1"].train)
    assert ids(by_name["B/1"].test) == ["u4"]
    assert by_name["A/1"].folder == "test-A_1"
    assert sorted(u for f in folds for u in ids(f.test)) == sorted(f"u{i}" for i in range(7))


def test_paper_over_corpora_holds_out_each_corpus_paper_session_in_one_fold():
    (fold,) = make_folds(corpora(TWO), "paper")
    assert fold.name == "A/5+B/2"  # 5 in A, B's last session
    assert ids(fold.test) == ["u3", "u5", "u6"] and ids(fold.train) == ["u0", "u1", "u2", "u4"]
    with pytest.raises(ConfigError, match="corpus 'C' has only \\['1'\\]"):
        make_folds(corpora([*TWO, ("C", "1", "c")]), "paper")


def test_speakers_of_different_corpora_never_overlap():
    train = corpora([("A", "1", "spk1")])
    test = [Utterance("t", None, "hi", "neu", "spk1", "2", corpus="B")]
    assert speaker_overlap(train, test).speakers == 0
    same = [Utterance("t", None, "hi", "neu", "spk1", "2", corpus="A")]
    assert speaker_overlap(train, same).speakers == 1


def test_one_corpus_folds_are_named_as_before():
    rows = corpora([("A", "1", "x"), ("A", "2", "y"), ("A", "10", "z")])
    assert [f.name for f in make_folds(rows, "loso")] == ["1", "2", "10"]
    assert [f.name for f in make_folds(rows, "paper")] == ["10"]
