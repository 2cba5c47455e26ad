"""Evaluation protocols: which sessions a model trains on and which it is tested on.

``paper``: the paper's split, train on every session but one, test on that one. For IEMOCAP and the
RAVDESS benchmark that is session 5; for a corpus with ``train``/``dev`` sessions (MELD) it is dev.
``loso``: the field's leave-one-session-out, one fold per session.
``loco``: leave one corpus out, one fold per corpus (`Utterance.corpus`): train on every other
corpus, test on the held-out one. It needs two corpora or more.

Over several corpora a session is a session *of its corpus*: folds are keyed by (corpus, session)
and named ``corpus/session``, so session "1" of one corpus is never held out with session "1" of
another. ``loso`` then holds out each corpus's sessions in turn and trains on everything else,
the other corpora included; ``paper`` holds out each corpus's paper session (5, else dev, else its
last) in one fold. With one corpus, folds and their names are exactly those of a single manifest.
Speakers are likewise compared within a corpus.

Splits are by session. Whether that makes a fold speaker-independent depends on the corpus:
IEMOCAP's sessions and the RAVDESS benchmark's (four actors each) hold disjoint speakers, but
MELD's train and dev share its main characters (864 of ``meld4``'s 897 dev utterances are spoken
by people also heard in train). So every fold counts the test speakers that also speak in its
training rows (`SpeakerOverlap`, from the manifest's ``speaker`` column), and runs report it.
"""

from __future__ import annotations

from dataclasses import dataclass

from emofusion.errors import ConfigError
from emofusion.records import Utterance, corpus_session, fold_sort_key, session_sort_key

# Every protocol by name, with the one-line description reports print under its results.
PROTOCOLS: dict[str, str] = {
    "paper": "the paper's split: train on every session but one, test on the held-out one",
    "loso": "leave-one-session-out, one fold per session; each seed's folds pooled before averaging over seeds",
    "loco": "leave-one-corpus-out: train on every corpus but one, test on the held-out one; one fold per corpus, "
            "each seed's folds pooled before averaging over seeds",
}


@dataclass(frozen=True)
class SpeakerOverlap:
    """How far a fold is from speaker-independent: test speakers also heard in training."""

    speakers: int  # distinct test speakers who also speak in the training rows
    test_speakers: int  # distinct test speakers (an empty speaker cell is unknown, not a speaker)
    utterances: int  # test utterances spoken by those shared speakers
    test_utterances: int

    @property
    def independent(self) -> bool:
        return self.speakers == 0

    def to_json(self) -> dict:
        return {
            "shared_speakers": self.speakers,
            "test_speakers": self.test_speakers,
            "shared_speaker_utterances": self.utterances,
            "test_utterances": self.test_utterances,
        }

    @classmethod
    def from_json(cls, d: dict) -> "SpeakerOverlap":
        try:
            return cls(int(d["shared_speakers"]), int(d["test_speakers"]),
                       int(d["shared_speaker_utterances"]), int(d["test_utterances"]))
        except (KeyError, TypeError, ValueError):
            raise ConfigError(f"speaker overlap must have integer shared_speakers, test_speakers, "
                              f"shared_speaker_utterances, test_utterances; got {d!r}") from None

    def warning(self, what: str) -> str | None:
        """A one-line warning for a fold that is not speaker-independent, else None."""
        if self.independent:
            return None
        return (f"warning: {what}: {self.speakers} of {self.test_speakers} test speakers also speak in training "
                f"({self.utterances} of {self.test_utterances} test utterances); this split is not "
                "speaker-independent")


@dataclass(frozen=True)
class Fold:
    name: str  # the held-out session (``corpus/session`` over several corpora), or corpus (loco)
    train: list[Utterance]
    test: list[Utterance]

    @property
    def overlap(self) -> SpeakerOverlap:
        return speaker_overlap(self.train, self.test)

    @property
    def folder(self) -> str:
        """The run folder's name: ``test-<name>``, with a corpus's ``/`` made ``_`` (one level)."""
        return "test-" + self.name.replace("/", "_")


def speaker_overlap(train: list[Utterance], test: list[Utterance]) -> SpeakerOverlap:
    """Count the test speakers (and their test utterances) who also speak in ``train``.

    A speaker is a name within a corpus: ``spk1`` of two corpora are two people."""
    seen = {(u.corpus, u.speaker) for u in train if u.speaker}
    test_speakers = {(u.corpus, u.speaker) for u in test if u.speaker}
    shared = test_speakers & seen
    return SpeakerOverlap(
        speakers=len(shared),
        test_speakers=len(test_speakers),
        utterances=sum((u.corpus, u.speaker) in shared for u in test),
        test_utterances=len(test),
    )


def paper_test_session(sessions: set[str]) -> str:
    """The session the paper protocol holds out: "5", else "dev", else the last in sort order."""
    for candidate in ("5", "dev"):
        if candidate in sessions:
            return candidate
    return sorted(sessions, key=session_sort_key)[-1]


def make_folds(utterances: list[Utterance], protocol: str) -> list[Fold]:
    """The train/test folds of ``protocol``, in session (or corpus) order; every utterance is tested
    at most once.

    Raises:
        ConfigError: an unknown protocol, fewer than two sessions, or ``loco`` on fewer than two corpora.
    """
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown protocol {protocol!r}; choose one of {list(PROTOCOLS)}")
    corpora = sorted({u.corpus for u in utterances})
    if protocol == "loco":
        if len(corpora) < 2:
            raise ConfigError(
                f"protocol 'loco' (leave one corpus out) needs at least two corpora, found {corpora}: pass "
                "several manifests (--manifest A.csv B.csv) or give the rows a corpus column"
            )
        return [Fold(name=c, train=[u for u in utterances if u.corpus != c],
                     test=[u for u in utterances if u.corpus == c]) for c in corpora]
    many = len(corpora) > 1
    sessions = {corpus_session(u, many) for u in utterances}
    if len(sessions) < 2:
        raise ConfigError(f"protocol {protocol!r} needs at least two sessions, found {sorted(sessions)}")
    if protocol == "paper" and many:
        held = set()
        for c in corpora:
            own = {u.session for u in utterances if u.corpus == c}
            if len(own) < 2:
                raise ConfigError(f"protocol 'paper' holds out one session of each corpus; corpus {c!r} has only "
                                  f"{sorted(own)} (use loco to hold out a whole corpus)")
            held.add(f"{c}/{paper_test_session(own)}")
        test = [u for u in utterances if corpus_session(u, True) in held]
        return [Fold(name="+".join(sorted(held, key=fold_sort_key)), test=test,
                     train=[u for u in utterances if corpus_session(u, True) not in held])]
    if protocol == "paper":
        held_out = [paper_test_session(sessions)]
    else:
        held_out = sorted(sessions, key=fold_sort_key if many else session_sort_key)
    return [
        Fold(
            name=s,
            train=[u for u in utterances if corpus_session(u, many) != s],
            test=[u for u in utterances if corpus_session(u, many) == s],
        )
        for s in held_out
    ]
