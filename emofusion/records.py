"""The one record type every corpus reader produces and every later stage consumes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Utterance:
    """One utterance: its audio file and/or transcript, emotion label and who said it.

    ``audio`` is None for text-only corpora (e.g. MELD rows); ``text`` is None for speech-only
    rows. ``session`` is a string because corpora name their groups freely ("1", "train", "dev").
    ``extras`` keeps source-specific fields (IEMOCAP dialog, start/end times, manifest extra columns).
    ``corpus`` names the data set the row comes from (a manifest's ``corpus`` column, else its file
    stem; empty for rows built in code). Sessions and speakers are names *within* a corpus: session
    "1" of one corpus is not session "1" of another (`corpus_session`). Like ``extras`` it takes no
    part in equality, so a record read back from a manifest of another name still equals the original.
    """

    id: str
    audio: Path | None
    text: str | None
    label: str
    speaker: str
    session: str
    extras: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    corpus: str = field(default="", compare=False, hash=False)

    @property
    def has_audio(self) -> bool:
        return self.audio is not None

    @property
    def has_text(self) -> bool:
        return self.text is not None and self.text.strip() != ""


def session_sort_key(session: str) -> tuple[int, int, str]:
    """Sessions in natural order: numbered ones by number ("2" before "10"), then named ones
    ("dev", "train") alphabetically. Folds, count tables and reports all list sessions this way."""
    return (0, int(session), "") if session.isdigit() else (1, 0, session)


def corpus_session(u: Utterance, qualified: bool) -> str:
    """The session's name where several corpora meet: ``corpus/session`` when ``qualified``, else
    the bare session (one corpus: every name stays as it was)."""
    return f"{u.corpus}/{u.session}" if qualified else u.session


def fold_sort_key(name: str) -> tuple:
    """``corpus/session`` names sorted by corpus, then naturally by session (see `session_sort_key`)."""
    corpus, _, session = name.rpartition("/")
    return (corpus, session_sort_key(session))
