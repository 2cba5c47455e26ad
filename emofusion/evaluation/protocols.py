"""Evaluation protocols: which sessions a model trains on and which it is tested on.

``paper``: the paper's split, train on every session but one, test on that one. For IEMOCAP and the
RAVDESS benchmark that is session 5; for a corpus with ``train``/``dev`` sessions (MELD) it is dev.
``loso``: the field's leave-one-session-out, one fold per session.

Splits are by session. Whether that makes a fold speaker-independent depends on the corpus:
IEMOCAP's sessions and the RAVDESS benchmark's (four actors each) hold disjoint speakers, but
MELD's train and dev share its main characters (864 of ``meld4``'s 897 dev utterances are spoken
by people also heard in train). So every fold counts the test speakers that also speak in its
training rows (`SpeakerOverlap`, from the manifest's ``speaker`` column), and runs report it.
"""

from __future__ import annotations

from dataclasses import dataclass

from emofusion.errors import ConfigError
from emofusion.records import Utterance, session_sort_key

# Every protocol by name, with the one-line description reports print under its results.
PROTOCOLS: dict[str, str] = {
    "paper": "the paper's split: train on every session but one, test on the held-out one",
    "loso": "leave-one-session-out, one fold per session; each seed's folds pooled before averaging over seeds",
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
    name: str  # the held-out session
    train: list[Utterance]
    test: list[Utterance]

    @property
    def overlap(self) -> SpeakerOverlap:
        return speaker_overlap(self.train, self.test)


def speaker_overlap(train: list[Utterance], test: list[Utterance]) -> SpeakerOverlap:
    """Count the test speakers (and their test utterances) who also speak in ``train``."""
    seen = {u.speaker for u in train if u.speaker}
    test_speakers = {u.speaker for u in test if u.speaker}
    shared = test_speakers & seen
    return SpeakerOverlap(
        speakers=len(shared),
        test_speakers=len(test_speakers),
        utterances=sum(u.speaker in shared for u in test),
        test_utterances=len(test),
    )


def paper_test_session(sessions: set[str]) -> str:
    """The session the paper protocol holds out: "5", else "dev", else the last in sort order."""
    for candidate in ("5", "dev"):
        if candidate in sessions:
            return candidate
    return sorted(sessions, key=session_sort_key)[-1]


def make_folds(utterances: list[Utterance], protocol: str) -> list[Fold]:
    """The train/test folds of ``protocol``, in session order; every utterance is tested at most once."""
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown protocol {protocol!r}; choose one of {list(PROTOCOLS)}")
    sessions = {u.session for u in utterances}
    if len(sessions) < 2:
        raise ConfigError(f"protocol {protocol!r} needs at least two sessions, found {sorted(sessions)}")
    if protocol == "paper":
        held_out = [paper_test_session(sessions)]
    else:
        held_out = sorted(sessions, key=session_sort_key)
    return [
        Fold(
            name=s,
            train=[u for u in utterances if u.session != s],
            test=[u for u in utterances if u.session == s],
        )
        for s in held_out
    ]
