"""IEMOCAP (Busso et al., 2008): 5 sessions x 2 actors, ~12 h of dyadic English speech.

Users bring their own licensed copy; ``root`` is the ``IEMOCAP_full_release/`` folder. What we read:

- ``SessionN/dialog/EmoEvaluation/<dialog>.txt`` -- one block per utterance, blocks separated by
  blank lines. The block's first line is the tab-separated summary
  ``[6.2901 - 8.2357]<TAB>Ses01F_impro01_F000<TAB>neu<TAB>[2.5000, 2.5000, 2.5000]`` (times,
  utterance id, majority label, valence/activation/dominance); the lines after it are individual
  annotators (``C-E2:<TAB>Neutral;<TAB>()``) and are ignored. The subfolders ``Attribute/``,
  ``Categorical/`` and ``Self-evaluation/`` hold per-annotator files in other formats: not read.
  Label ``xxx`` means the annotators did not agree; it, ``oth`` and anything else a label map does
  not name are dropped.
- ``SessionN/dialog/transcriptions/<dialog>.txt`` -- lines like
  ``Ses01F_impro01_F000 [006.2901-008.2357]: Excuse me.``.
  Interleaved noise lines (``M: breathing``, ids like ``Ses01F_impro01_MXX0``) are not utterances
  and are skipped: we keep only lines whose id is a well-formed utterance id.
- ``SessionN/sentences/wav/<dialog>/<utterance id>.wav`` -- 16 kHz mono, one file per utterance.

Quirks worth knowing:

- **Speaker pitfall.** ``Ses01F`` in a dialog name says which actor wore the motion-capture
  markers, not who speaks. The speaker is the session plus the gender letter of the *last* token:
  ``Ses01F_impro01_M003`` is spoken by the male actor of session 1 (``Ses01_M``). About half of
  all utterances differ from the prefix; readers that use the prefix leak speakers across folds.
- Irregular dialog names exist (``Ses03M_impro05a``, ``Ses03M_impro08b``, ``Ses05M_script01_1b``),
  so dialog names are matched by pattern, never split on ``_`` by position.
- macOS copies carry ``._*`` AppleDouble files beside the real ones; they are skipped.

The paper uses improvised dialogs only, classes ang/exc/neu/sad, train on sessions 1-4 and test
on session 5. A correct reader reproduces its counts exactly (:data:`PAPER_COUNTS`); a wav that the
evaluation lists but that is missing on disk is an error rather than a silent skip, because a
quietly shorter corpus gives wrong counts and unreproducible results.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from emofusion.errors import ConfigError, CorpusError
from emofusion.labels import label_map as named_label_map, ordered_classes
from emofusion.records import Utterance, session_sort_key

# The paper's split (improvised utterances, ang/exc/neu/sad): train = sessions 1-4, test = session 5.
PAPER_COUNTS: dict[str, dict[str, int]] = {
    "train": {"ang": 258, "exc": 489, "neu": 812, "sad": 475},
    "test": {"ang": 31, "exc": 174, "neu": 287, "sad": 133},
}
TRAIN_SESSIONS: tuple[str, ...] = ("1", "2", "3", "4")
TEST_SESSIONS: tuple[str, ...] = ("5",)

# Improvised + scripted, all five sessions, counted over the raw (unmapped) labels.
ALL_UTTERANCE_COUNTS: dict[str, int] = {"ang": 1103, "exc": 1041, "hap": 595, "neu": 1708, "sad": 1084}

ALL_SESSIONS: tuple[int, ...] = (1, 2, 3, 4, 5)

DIALOG_RE = re.compile(r"Ses0(?P<session>\d)[FM]_(?:(?P<impro>impro0\d[a-z]?)|script0\d_\d[a-z]?)")
UTTERANCE_RE = re.compile(rf"(?P<dialog>{DIALOG_RE.pattern})_(?P<gender>[FM])\d{{3}}")

# `[6.2901 - 8.2357]<TAB>Ses01F_impro01_F000<TAB>neu<TAB>[2.5000, 2.5000, 2.5000]`; whitespace is
# matched loosely because hand-edited copies sometimes turn tabs into spaces.
_SUMMARY_RE = re.compile(
    r"\[\s*(?P<start>\d+(?:\.\d+)?)\s*-\s*(?P<end>\d+(?:\.\d+)?)\s*\]"
    r"\s+(?P<id>\S+)\s+(?P<label>\S+)\s+\[.*\]\s*"
)
# `Ses01F_impro01_F000 [006.2901-008.2357]: Excuse me.`
_TRANSCRIPT_RE = re.compile(r"(?P<id>\S+)\s+\[[^\]]*\]:\s?(?P<text>.*)")


@dataclass(frozen=True)
class _Turn:
    """One summary line of an EmoEvaluation file."""

    id: str
    label: str
    start: str
    end: str


def read_iemocap(
    root: str | Path,
    *,
    label_map: Mapping[str, str] | str = "paper4",
    improvised_only: bool = True,
    sessions: Iterable[int] = ALL_SESSIONS,
) -> list[Utterance]:
    """Read IEMOCAP into utterance records, labels mapped and unmapped labels dropped.

    Arguments:
        root: the ``IEMOCAP_full_release/`` folder.
        label_map: a name from :data:`emofusion.labels.LABEL_MAPS` or a raw-label -> class dict.
        improvised_only: the paper's protocol; False adds the scripted dialogs.
        sessions: which of sessions 1-5 to read.

    Returns:
        Utterances sorted by id; ``extras`` holds ``dialog``, ``start``, ``end`` (seconds, as
        written in the evaluation file), ``raw_label``, ``kind`` (``impro``/``script``), ``gender``.

    Raises:
        CorpusError: a missing folder, evaluation/transcription file or wav, naming the path.
    """
    mapping = named_label_map(label_map) if isinstance(label_map, str) else dict(label_map)
    return map_labels(scan_iemocap(root, improvised_only=improvised_only, sessions=sessions), mapping)


def scan_iemocap(
    root: str | Path, *, improvised_only: bool = True, sessions: Iterable[int] = ALL_SESSIONS
) -> list[Utterance]:
    """Every evaluated utterance with its raw label (``xxx`` and ``oth`` included), sorted by id.

    Separate from :func:`read_iemocap` so one pass over the tree can serve several label maps
    (the CLI verifies the raw counts and writes the mapped manifest from the same scan).
    """
    root = Path(root)
    wanted = _check_sessions(sessions)
    _check_root(root)
    utterances: list[Utterance] = []
    for n in wanted:
        utterances.extend(_read_session(root, n, improvised_only))
    return sorted(utterances, key=lambda u: u.id)


def map_labels(utterances: Iterable[Utterance], mapping: Mapping[str, str]) -> list[Utterance]:
    """Relabel through ``mapping``; utterances whose label it does not name are dropped."""
    return [replace(u, label=mapping[u.label]) for u in utterances if u.label in mapping]


def count_table(utterances: Iterable[Utterance]) -> dict[str, dict[str, int]]:
    """Per-session, per-class counts. Every session row lists every class seen (zeros included)."""
    counts = Counter((u.session, u.label) for u in utterances)
    sessions = sorted({s for s, _ in counts}, key=session_sort_key)
    labels = ordered_classes(label for _, label in counts)
    return {s: {label: counts[(s, label)] for label in labels} for s in sessions}


def split_counts(utterances: Iterable[Utterance]) -> dict[str, dict[str, int]]:
    """Counts per class for the paper's split: ``train`` (sessions 1-4) and ``test`` (session 5)."""
    split_of = {s: "train" for s in TRAIN_SESSIONS} | {s: "test" for s in TEST_SESSIONS}
    counts = Counter((split_of[u.session], u.label) for u in utterances if u.session in split_of)
    labels = ordered_classes(label for _, label in counts)
    return {split: {label: counts[(split, label)] for label in labels} for split in ("train", "test")}


def verify_paper_counts(
    utterances: Iterable[Utterance], expected: Mapping[str, Mapping[str, int]] = PAPER_COUNTS
) -> None:
    """Fail unless the train/test per-class counts equal the paper's exactly.

    Pass the output of ``read_iemocap(root)`` with its defaults (paper4, improvised only, all
    sessions); any other selection is expected to fail. ``expected`` exists for small test trees.

    Raises:
        CorpusError: with a table of expected vs found counts for every split and class.
    """
    found = split_counts(utterances)
    rows = []
    for split in ("train", "test"):
        want, got = expected.get(split, {}), found.get(split, {})
        for label in ordered_classes(set(want) | {k for k, v in got.items() if v}):
            rows.append((split, label, want.get(label, 0), got.get(label, 0)))
    if any(w != g for _, _, w, g in rows):
        raise CorpusError(
            "IEMOCAP counts differ from the paper's (improvised only, labels ang/exc/neu/sad, "
            "train = sessions 1-4, test = session 5):\n" + _diff_table(rows)
        )


def verify_all_utterance_counts(
    utterances: Iterable[Utterance], expected: Mapping[str, int] = ALL_UTTERANCE_COUNTS
) -> None:
    """Fail unless the raw-label counts over all given utterances equal ``expected``.

    Counts ``extras["raw_label"]`` (so any label map may have been applied) for the labels
    ``expected`` names. Pass improvised + scripted utterances of all five sessions, read with a
    map that keeps those labels (e.g. :func:`scan_iemocap` with ``improvised_only=False``).

    Raises:
        CorpusError: with a table of expected vs found counts per raw label.
    """
    counts = Counter(u.extras.get("raw_label", u.label) for u in utterances)
    rows = [("all", label, expected[label], counts[label]) for label in ordered_classes(expected)]
    if any(w != g for _, _, w, g in rows):
        raise CorpusError(
            "IEMOCAP all-utterance counts (improvised + scripted, raw labels) differ from the "
            "expected ones:\n" + _diff_table(rows)
        )


# --- reading one session ---------------------------------------------------------------------


def _check_sessions(sessions: Iterable[int]) -> list[int]:
    given = list(sessions)
    if not given or any(n not in ALL_SESSIONS for n in given):
        raise ConfigError(f"IEMOCAP sessions must be among 1-5, got {given!r}")
    return sorted(set(given))


def _check_root(root: Path) -> None:
    if not root.is_dir():
        raise CorpusError(f"IEMOCAP root {root} is not a folder")
    if not any((root / f"Session{n}").is_dir() for n in ALL_SESSIONS):
        hint = ""
        if (root / "IEMOCAP_full_release").is_dir():
            hint = f"; did you mean {root / 'IEMOCAP_full_release'}?"
        raise CorpusError(
            f"{root} does not look like IEMOCAP_full_release/: no Session1..Session5 folders{hint}"
        )


def _read_session(root: Path, n: int, improvised_only: bool) -> list[Utterance]:
    session_dir = root / f"Session{n}"
    evaluation_dir = session_dir / "dialog" / "EmoEvaluation"
    if not session_dir.is_dir():
        raise CorpusError(f"IEMOCAP session folder {session_dir} is missing")
    if not evaluation_dir.is_dir():
        raise CorpusError(f"IEMOCAP evaluation folder {evaluation_dir} is missing")
    # Only top-level <dialog>.txt files: the subfolders hold per-annotator files in other formats.
    files = sorted(
        p for p in evaluation_dir.glob("*.txt") if p.is_file() and not p.name.startswith(".")
    )
    if not files:
        raise CorpusError(f"IEMOCAP evaluation folder {evaluation_dir} has no <dialog>.txt files")

    utterances = []
    for path in files:
        dialog = path.stem
        match = DIALOG_RE.fullmatch(dialog)
        if match is None or int(match["session"]) != n:
            raise CorpusError(f"{path}: {dialog!r} is not a Session{n} IEMOCAP dialog name")
        kind = "impro" if match["impro"] else "script"
        if improvised_only and kind != "impro":
            continue
        transcripts = _parse_transcription(session_dir / "dialog" / "transcriptions" / f"{dialog}.txt")
        for turn in _parse_evaluation(path, dialog):
            utterances.append(_utterance(session_dir, n, dialog, kind, turn, transcripts))
    return utterances


def _utterance(
    session_dir: Path, n: int, dialog: str, kind: str, turn: _Turn, transcripts: dict[str, str]
) -> Utterance:
    audio = session_dir / "sentences" / "wav" / dialog / f"{turn.id}.wav"
    if not audio.is_file():
        raise CorpusError(f"IEMOCAP wav {audio} is missing (listed in EmoEvaluation/{dialog}.txt)")
    if turn.id not in transcripts:
        raise CorpusError(
            f"{session_dir / 'dialog' / 'transcriptions' / (dialog + '.txt')}: "
            f"no transcript for {turn.id}"
        )
    gender = UTTERANCE_RE.fullmatch(turn.id)["gender"]  # checked in _parse_evaluation
    return Utterance(
        id=turn.id,
        audio=audio,
        text=transcripts[turn.id],
        label=turn.label,
        speaker=f"Ses0{n}_{gender}",
        session=str(n),
        extras={
            "dialog": dialog,
            "start": turn.start,
            "end": turn.end,
            "raw_label": turn.label,
            "kind": kind,
            "gender": gender,
        },
    )


def _parse_evaluation(path: Path, dialog: str) -> list[_Turn]:
    """Summary lines of one EmoEvaluation file; annotator and header lines are skipped."""
    turns: dict[str, _Turn] = {}
    for number, line in enumerate(_read_lines(path), start=1):
        # Summary lines are the only ones that start with '['; the header starts with '%',
        # annotator lines with 'C-' / 'A-'.
        if not line.startswith("["):
            continue
        match = _SUMMARY_RE.fullmatch(line.rstrip())
        if match is None:
            raise CorpusError(f"{path}:{number}: malformed evaluation line {line.rstrip()!r}")
        utt_id = match["id"]
        id_match = UTTERANCE_RE.fullmatch(utt_id)
        if id_match is None or id_match["dialog"] != dialog:
            raise CorpusError(f"{path}:{number}: {utt_id!r} is not an utterance id of dialog {dialog}")
        if utt_id in turns:
            raise CorpusError(f"{path}:{number}: utterance {utt_id} is evaluated twice")
        turns[utt_id] = _Turn(utt_id, match["label"], match["start"], match["end"])
    if not turns:
        raise CorpusError(f"{path}: no evaluation lines found")
    return list(turns.values())


def _parse_transcription(path: Path) -> dict[str, str]:
    """Utterance id -> transcript. Noise lines (no ``Ses`` id, ids with ``XX``) are skipped."""
    if not path.is_file():
        raise CorpusError(f"IEMOCAP transcription {path} is missing")
    texts: dict[str, str] = {}
    for number, line in enumerate(_read_lines(path), start=1):
        match = _TRANSCRIPT_RE.fullmatch(line.strip())
        # A well-formed id is the filter: it rejects `M: breathing` and `..._MXX0` alike.
        if match is None or UTTERANCE_RE.fullmatch(match["id"]) is None:
            continue
        if match["id"] in texts:
            raise CorpusError(f"{path}:{number}: second transcript for {match['id']}")
        texts[match["id"]] = match["text"].strip()
    return texts


def _read_lines(path: Path) -> list[str]:
    # The corpus is ASCII; a stray byte in a transcript should not make the whole corpus unreadable.
    return path.read_text(encoding="utf-8", errors="replace").splitlines()


# --- tables ----------------------------------------------------------------------------------


def _diff_table(rows: list[tuple[str, str, int, int]]) -> str:
    lines = [f"  {'split':<6} {'class':<6} {'expected':>8} {'found':>8} {'diff':>6}"]
    for split, label, want, got in rows:
        mark = "" if want == got else "  <-- mismatch"
        lines.append(f"  {split:<6} {label:<6} {want:>8} {got:>8} {got - want:>+6}{mark}")
    return "\n".join(lines)
