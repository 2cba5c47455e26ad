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
    """

    id: str
    audio: Path | None
    text: str | None
    label: str
    speaker: str
    session: str
    extras: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

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
