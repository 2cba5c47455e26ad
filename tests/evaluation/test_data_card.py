"""A report says what its data is: IEMOCAP only when every id is an IEMOCAP utterance id."""

from __future__ import annotations

from pathlib import Path

from emofusion.evaluation.data_card import describe_data
from emofusion.records import Utterance


def utt(uid: str, label: str, session: str, speaker: str, audio: bool = True, text: str | None = "hi") -> Utterance:
    return Utterance(uid, Path(f"{uid}.wav") if audio else None, text, label, speaker, session)


def test_iemocap_ids_are_recognised_and_improvised_only_is_named():
    rows = [
        utt("Ses01F_impro01_M000", "ang", "1", "Ses01_M"),
        utt("Ses05M_impro03a_F002", "neu", "5", "Ses05_F"),
    ]
    card = describe_data("manifest.csv", rows)
    assert card.iemocap == "improvised"
    assert "IEMOCAP (improvised utterances)" in card.sentence()
    scripted = rows + [utt("Ses05M_script01_1b_M010", "sad", "5", "Ses05_M")]
    assert describe_data("m.csv", scripted).iemocap == "improvised + scripted"


def test_other_data_says_it_is_not_iemocap_and_counts_what_it_has():
    rows = [
        utt("03-01-05-01-01-01-10+meld_dev_dia1_utt2", "sad", "5", "actor10"),
        utt("03-01-05-01-01-01-09+meld_dev_dia1_utt3", "ang", "5", "actor09"),
        utt("03-01-05-01-01-01-01+meld_train_dia4_utt0", "ang", "10", "actor01", text=None),
        utt("Ses01F_impro01_M000", "fru", "2", "actor02", audio=False),  # one IEMOCAP-looking id is not enough
    ]
    card = describe_data("paired4.csv", rows)
    assert card.iemocap is None
    assert card.sessions == ("2", "5", "10")  # numeric order, not string order
    assert card.speakers == 4 and card.utterances == 4
    assert list(card.class_counts.items()) == [("ang", 2), ("sad", 1), ("fru", 1)]  # paper order, then others
    assert card.modalities == ("speech", "text")
    sentence = card.sentence()
    assert sentence.startswith("`paired4.csv`, 4 utterances (speech + text), 3 sessions (2, 5, 10), 4 speakers; ")
    assert "classes ang 2, sad 1, fru 1" in sentence
    assert "Not IEMOCAP" in sentence
