"""What a report's numbers were measured on, in one sentence a reader cannot miss.

The paper's Table 1 is printed beside every report as a yardstick, which invites reading our
numbers as IEMOCAP results. A report therefore opens with what the data is: its name, size,
sessions, speakers and classes, and whether it is IEMOCAP at all. It is IEMOCAP only when every
utterance id is an IEMOCAP utterance id (what `emofusion prepare iemocap` writes). Data of
several corpora names each with its size; its sessions are then ``corpus/session`` and its speakers
are counted within their corpus.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

from emofusion.corpora.iemocap import UTTERANCE_RE
from emofusion.labels import ordered_classes
from emofusion.records import Utterance, corpus_session, fold_sort_key, session_sort_key


@dataclass(frozen=True)
class DataCard:
    name: str
    utterances: int
    modalities: tuple[str, ...]  # what the rows carry: ("speech",), ("text",) or both
    sessions: tuple[str, ...]
    speakers: int
    class_counts: dict[str, int]
    iemocap: str | None  # None, "improvised" or "improvised + scripted"
    corpora: dict[str, int] = field(default_factory=dict)  # corpus -> utterances (named corpora only)

    def sentence(self) -> str:
        classes = ", ".join(f"{label} {count}" for label, count in self.class_counts.items())
        if len(self.corpora) > 1:
            classes += f"; {len(self.corpora)} corpora: " + ", ".join(f"{c} {n}" for c, n in self.corpora.items())
        elif self.corpora:
            classes += f"; corpus {next(iter(self.corpora))}"
        what = (
            f"IEMOCAP ({self.iemocap} utterances)"
            if self.iemocap
            else "not IEMOCAP: the paper's numbers beside ours are a yardstick, not a like-for-like comparison"
        )
        return (
            f"`{self.name}`, {self.utterances} utterances ({' + '.join(self.modalities)}), "
            f"{len(self.sessions)} sessions ({', '.join(self.sessions)}), {self.speakers} speakers; "
            f"classes {classes}. {what[0].upper() + what[1:]}."
        )


def describe_data(name: str, utterances: Sequence[Utterance]) -> DataCard:
    """Summarise ``utterances`` (the rows a run used) under the display ``name``."""
    counts = Counter(u.label for u in utterances)
    modalities = tuple(
        m for m, present in (("speech", any(u.has_audio for u in utterances)), ("text", any(u.has_text for u in utterances)))
        if present
    )
    corpora = Counter(u.corpus for u in utterances if u.corpus)
    many = len({u.corpus for u in utterances}) > 1
    return DataCard(
        name=name,
        utterances=len(utterances),
        modalities=modalities,
        sessions=tuple(sorted({corpus_session(u, many) for u in utterances}, key=fold_sort_key if many else session_sort_key)),
        speakers=len({(u.corpus, u.speaker) for u in utterances}),
        class_counts={c: counts[c] for c in ordered_classes(counts)},
        iemocap=_iemocap_selection(utterances),
        corpora={c: corpora[c] for c in sorted(corpora)},
    )


def _iemocap_selection(utterances: Sequence[Utterance]) -> str | None:
    matches = [UTTERANCE_RE.fullmatch(u.id) for u in utterances]
    if not utterances or not all(matches):
        return None
    return "improvised" if all(m.group("impro") for m in matches) else "improvised + scripted"
