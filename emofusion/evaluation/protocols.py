"""Evaluation protocols: which sessions a model trains on and which it is tested on.

``paper``: the paper's split, train on every session but one, test on that one. For IEMOCAP and the
RAVDESS benchmark that is session 5; for a corpus with ``train``/``dev`` sessions (MELD) it is dev.
``loso``: the field's leave-one-session-out, one fold per session.
Splits are by session, and sessions group speakers, so every fold is speaker-independent.
"""

from __future__ import annotations

from dataclasses import dataclass

from emofusion.errors import ConfigError
from emofusion.records import Utterance

# Every protocol by name, with the one-line description reports print under its results.
PROTOCOLS: dict[str, str] = {
    "paper": "the paper's split: train on every session but one, test on the held-out one",
    "loso": "leave-one-session-out, one fold per session; each seed's folds pooled before averaging over seeds",
}


@dataclass(frozen=True)
class Fold:
    name: str  # the held-out session
    train: list[Utterance]
    test: list[Utterance]


def paper_test_session(sessions: set[str]) -> str:
    """The session the paper protocol holds out: "5", else "dev", else the last in sort order."""
    for candidate in ("5", "dev"):
        if candidate in sessions:
            return candidate
    return sorted(sessions, key=_session_sort_key)[-1]


def make_folds(utterances: list[Utterance], protocol: str) -> list[Fold]:
    sessions = {u.session for u in utterances}
    if len(sessions) < 2:
        raise ConfigError(f"protocol {protocol!r} needs at least two sessions, found {sorted(sessions)}")
    if protocol == "paper":
        held_out = [paper_test_session(sessions)]
    elif protocol == "loso":
        held_out = sorted(sessions, key=_session_sort_key)
    else:
        raise ConfigError(f"unknown protocol {protocol!r}; choose one of {list(PROTOCOLS)}")
    return [
        Fold(
            name=s,
            train=[u for u in utterances if u.session != s],
            test=[u for u in utterances if u.session == s],
        )
        for s in held_out
    ]


def _session_sort_key(session: str):
    return (0, int(session), "") if session.isdigit() else (1, 0, session)
