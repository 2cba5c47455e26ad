"""Tokenizer: GloVe/PTB-style splitting of conversational English, checked token by token."""

from __future__ import annotations

import csv

import pytest

from emofusion.errors import TextError
from emofusion.features.tokenizer import normalize, tokenize
from emofusion.features.word_vectors import WordVectors


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # contractions, GloVe style
        ("don't", ["do", "n't"]),
        ("can't", ["ca", "n't"]),
        ("won't", ["wo", "n't"]),
        ("ain't", ["ai", "n't"]),
        ("I'm", ["i", "'m"]),
        ("must've", ["must", "'ve"]),
        ("they're we'll he'd it's", ["they", "'re", "we", "'ll", "he", "'d", "it", "'s"]),
        ("couldn't've", ["could", "n't", "'ve"]),
        ("Chandler's", ["chandler", "'s"]),
        ("x-ray's", ["x-ray", "'s"]),
        # typographic apostrophes and quotes (MELD)
        ("You must’ve had your hands full.", ["you", "must", "'ve", "had", "your", "hands", "full", "."]),
        ("“Hello,” she said.", ['"', "hello", ",", '"', "she", "said", "."]),
        ("‘Yes’", ["'", "yes", "'"]),
        # apostrophes that are not contractions
        ("o'clock ma'am c'mon", ["o'clock", "ma'am", "c'mon"]),
        ("'cause 'em 'til '90s", ["'cause", "'em", "'til", "'90s"]),
        ("rock 'n' roll", ["rock", "'n'", "roll"]),
        ("James' house", ["james", "'", "house"]),
        ("'Emma'", ["'", "emma", "'"]),
        # punctuation
        ("Wait!!!", ["wait", "!", "!", "!"]),
        ("Really?!", ["really", "?", "!"]),
        ("so.. then..... ok", ["so", "...", "then", "...", "ok"]),
        ("full…", ["full", "..."]),
        ("tired—really", ["tired", "--", "really"]),
        ("countdown – I", ["countdown", "--", "i"]),
        ("well---no", ["well", "--", "no"]),
        ("(yes); [no]", ["(", "yes", ")", ";", "[", "no", "]"]),
        # numbers, money, abbreviations
        ("$1,000 for 10%", ["$", "1,000", "for", "10", "%"]),
        ("at 3:30, 1.5 hours, 9/11, the 2nd", ["at", "3:30", ",", "1.5", "hours", ",", "9/11", ",", "the", "2nd"]),
        ("Mr. Geller at 5 a.m. in the U.S.", ["mr.", "geller", "at", "5", "a.m.", "in", "the", "u.s."]),
        ("Dr.Ross", ["dr", ".", "ross"]),
        # hyphens stay inside words
        ("KL-5 to GR-6 x-ray twenty-five", ["kl-5", "to", "gr-6", "x-ray", "twenty-five"]),
        ("-hey", ["-", "hey"]),
        # non-ASCII and control characters
        ("Café naïve 😊", ["café", "naïve", "😊"]),
        ("zero\u200bwidth soft\u00adhyphen a\x00b", ["zerowidth", "softhyphen", "ab"]),
        ("tab\tnew\nline\r\nend", ["tab", "new", "line", "end"]),
        ("must\x92ve \x93hi\x94 wait\x85", ["must", "'ve", '"', "hi", '"', "wait", "..."]),
        ("\ufb01ne", ["fine"]),  # NFKC: ligature
        # colloquial fusions GloVe has whole
        ("gonna wanna gotta cannot", ["gonna", "wanna", "gotta", "cannot"]),
        ("", []),
        ("  \t\n ", []),
    ],
)
def test_tokenize_examples(text, expected):
    assert tokenize(text) == expected


def test_case_is_kept_when_asked():
    assert tokenize("DON'T Stop, Mr. Bing", lowercase=False) == ["DO", "N'T", "Stop", ",", "Mr.", "Bing"]


def test_normalize_keeps_case_and_maps_typography():
    assert normalize("It’s “OK”…—") == "It's \"OK\"... -- "


@pytest.mark.parametrize("bad", [None, 3.5, b"bytes"])
def test_non_string_is_a_text_error(bad):
    with pytest.raises(TextError, match="must be a string"):
        tokenize(bad)


VOCAB = {"and", "i", "'m", "-", "um", "hmm", "y'", "know", "way", "no", "x-ray", "'s", "so", "oooh"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("and-and", ["and", "-", "and"]),
        ("I'm-I", ["i", "'m", "-", "i"]),
        ("um-hmm", ["um", "-", "hmm"]),
        ("x-ray's", ["x-ray", "'s"]),  # known hyphenated word stays whole
        ("y'know", ["y'", "know"]),
        ("waaay", ["way"]),
        ("sooooo", ["so"]),
        ("oooh", ["oooh"]),  # known as is: not squeezed
        ("nooo-way", ["no", "-", "way"]),
        ("zzzz", ["zzzz"]),  # nothing helps: unchanged
        ("pheebs-y'know", ["pheebs", "-", "y'", "know"]),
    ],
)
def test_vocab_fallback_for_unknown_words(text, expected):
    assert tokenize(text, vocab=VOCAB) == expected


def test_without_vocab_unknown_compounds_stay_whole():
    assert tokenize("and-and y'know waaay") == ["and-and", "y'know", "waaay"]


@pytest.mark.shared_data
def test_meld_tokens_are_mostly_glove_words(shared_data):
    """Real MELD dialogue: nearly every token must be a GloVe 6B word (measured: 98.9% without the
    vocab fallback, 99.7% with it; the rest are names like 'pheebs' and 'buffay')."""
    glove = WordVectors.load_default()
    texts = []
    for name in ("train_sent_emo.csv", "dev_sent_emo.csv"):
        with open(shared_data / "meld" / name, encoding="utf-8", newline="") as f:
            texts += [row["Utterance"] for row in csv.DictReader(f)]
    assert len(texts) > 10000

    def coverage(vocab):
        tokens = [t for text in texts for t in tokenize(text, vocab=vocab)]
        return sum(t in glove for t in tokens) / len(tokens)

    plain, with_vocab = coverage(None), coverage(glove)
    assert plain > 0.985
    assert with_vocab > 0.995
    # Sanity of the measurement itself: naive whitespace splitting is far worse.
    naive = [t for text in texts for t in text.lower().split()]
    assert sum(t in glove for t in naive) / len(naive) < 0.9
