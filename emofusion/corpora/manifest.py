"""The project's CSV manifest: one utterance per row, the hand-off between corpora and features.

Columns ``id,audio,text,label,speaker,session``, UTF-8 (a byte-order mark is accepted), an
optional ``corpus`` column (default: the manifest's file stem, so ``bench/tess4.csv`` is corpus
``tess4``), then any extra columns, which are kept in :attr:`Utterance.extras`. ``audio`` is a path relative to the
manifest's own folder (absolute paths allowed), so a data folder can move as a whole. An empty
``audio`` makes a text-only row (MELD), an empty ``text`` a speech-only row.

Errors name the file, the 1-based line number where the row starts and the row's id: a manifest
is usually written by hand or by a script someone else wrote, and "bad row" is not actionable.

Several manifests are read together by `read_manifests`: one corpus each (or as their ``corpus``
column says). Ids must be unique across them: a clash is an error naming both rows, never a silent
rename, because ids name cached features, run fingerprints and prediction rows.
"""

from __future__ import annotations

import csv
import os
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from emofusion.errors import ConfigError, ManifestError
from emofusion.labels import LABEL_MAPS, ordered_classes
from emofusion.records import Utterance

MANIFEST_COLUMNS: tuple[str, ...] = ("id", "audio", "text", "label", "speaker", "session")
# Optional; where absent or empty the corpus is the manifest's file stem.
CORPUS_COLUMN = "corpus"
REQUIRE_CHOICES: tuple[str | None, ...] = (None, "audio", "text", "both")


def read_manifest(
    path: str | Path,
    *,
    labels: Iterable[str] | None = None,
    check_files: bool = True,
    require: str | None = None,
) -> list[Utterance]:
    """Read a CSV manifest into utterances, in file order.

    Arguments:
        path: the manifest file.
        labels: allowed labels; a row with any other label is an error. None allows any
            non-empty label.
        check_files: check that every audio file exists (off for manifests of files that are
            produced later or live on another machine).
        require: ``"audio"``, ``"text"`` or ``"both"`` to demand that modality on every row;
            None demands only that each row has at least one.

    Returns:
        Utterances with absolute audio paths, ``text`` None for speech-only rows, ``corpus`` from
        the ``corpus`` column or else the file stem, and extra columns in ``extras`` (as strings,
        empty ones included).

    Raises:
        ManifestError: naming the file, line and id of the first bad row.
    """
    return [u for _, u in _read_lines(path, labels=labels, check_files=check_files, require=require)[0]]


def _read_lines(
    path: str | Path, *, labels: Iterable[str] | None, check_files: bool, require: str | None
) -> tuple[list[tuple[int, Utterance]], set[str]]:
    """`read_manifest`'s rows, each with the line it starts on, and the corpora named in ``corpus`` cells."""
    if require not in REQUIRE_CHOICES:
        raise ConfigError(f"require must be one of {REQUIRE_CHOICES}, got {require!r}")
    path = Path(path)
    allowed = None if labels is None else set(labels)
    folder = path.parent.absolute()
    header, rows = _read_rows(path)

    utterances: list[tuple[int, Utterance]] = []
    named: set[str] = set()
    first_line: dict[str, int] = {}
    for line, values in rows:
        row = dict(zip(header, values))
        where = f"{path}:{line}"
        utt_id = row["id"].strip()
        if not utt_id:
            raise ManifestError(f"{where}: empty id")
        where = f"{where} (id {utt_id!r})"
        if utt_id in first_line:
            raise ManifestError(f"{where}: duplicate id, first used on line {first_line[utt_id]}")
        first_line[utt_id] = line

        audio = audio_path(row["audio"], folder)
        text = row["text"] if row["text"].strip() else None
        if audio is None and text is None:
            raise ManifestError(f"{where}: row has neither audio nor text")
        if require in ("audio", "both") and audio is None:
            raise ManifestError(f"{where}: audio is required but empty")
        if require in ("text", "both") and text is None:
            raise ManifestError(f"{where}: transcript is required but empty")
        if check_files and audio is not None and not audio.is_file():
            raise ManifestError(f"{where}: audio file {audio} does not exist")

        label = row["label"].strip()
        if not label:
            raise ManifestError(f"{where}: empty label")
        if allowed is not None and label not in allowed:
            raise ManifestError(f"{where}: label {label!r} is not one of {sorted(allowed)}")

        utterances.append((line, Utterance(
            id=utt_id,
            audio=audio,
            text=text,
            label=label,
            speaker=row["speaker"].strip(),
            session=row["session"].strip(),
            extras={k: row[k] for k in header if k not in MANIFEST_COLUMNS and k != CORPUS_COLUMN},
            corpus=row.get(CORPUS_COLUMN, "").strip() or path.stem,
        )))
        if row.get(CORPUS_COLUMN, "").strip():
            named.add(row[CORPUS_COLUMN].strip())
    return utterances, named


def read_manifests(
    paths: Sequence[str | Path],
    *,
    labels: Iterable[str] | None = None,
    check_files: bool = True,
    require: str | None = None,
) -> list[Utterance]:
    """Read several manifests as one data set of several corpora, in argument then file order.

    One manifest reads exactly as `read_manifest`. With several, every label must also be a class
    some `emofusion.labels` map produces (so ``happy`` in one corpus and ``exc`` in another cannot
    become two classes by accident), and two manifests may share a corpus name only where both
    name it in a ``corpus`` column (two files of one corpus): two ``manifest.csv`` from different
    folders would otherwise merge their sessions and speakers silently.

    Arguments:
        paths: the manifest files, at least one.
        labels, check_files, require: as `read_manifest`.

    Returns:
        The utterances of every manifest.

    Raises:
        ManifestError: an id or an audio file used in two manifests (naming both rows), an
            unknown label (naming its row), or two manifests that default to the same corpus name.
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise ConfigError("no manifest given")
    if len(paths) == 1:
        return read_manifest(paths[0], labels=labels, check_files=check_files, require=require)
    known = set(labels) if labels is not None else {c for m in LABEL_MAPS.values() for c in m.values()}
    first: dict[str, str] = {}  # id -> "file:line"
    first_audio: dict[Path, str] = {}  # audio file -> "file:line"
    corpus_from: dict[str, tuple[Path, bool]] = {}  # corpus -> (its first manifest, named in a column)
    utterances: list[Utterance] = []
    for path in paths:
        rows, named_here = _read_lines(path, labels=None, check_files=check_files, require=require)
        for corpus in dict.fromkeys(u.corpus for _, u in rows):
            named = corpus in named_here
            if corpus in corpus_from:
                other, other_named = corpus_from[corpus]
                if other == path.absolute():
                    raise ManifestError(f"manifest {path} is given twice")
                if not (named and other_named):
                    raise ManifestError(
                        f"{other} and {path} both hold corpus {corpus!r} (from their file names); give "
                        f"their rows a {CORPUS_COLUMN!r} column, or rename a file, to say whether they are one corpus"
                    )
            else:
                corpus_from[corpus] = (path.absolute(), named)
        for line, u in rows:
            where = f"{path}:{line} (id {u.id!r})"
            if u.id in first:
                raise ManifestError(f"{where}: id already used at {first[u.id]}; ids must be unique across "
                                    "manifests (they name cached features and prediction rows)")
            first[u.id] = f"{path}:{line}"
            if u.audio is not None and u.audio in first_audio and not first_audio[u.audio].startswith(f"{path}:"):
                raise ManifestError(f"{where}: audio {u.audio} is also the clip of {first_audio[u.audio]}; a clip "
                                    "belongs to one corpus (else a held-out corpus shares clips with training)")
            if u.audio is not None:
                first_audio.setdefault(u.audio, f"{path}:{line}")
            if u.label not in known:
                raise ManifestError(f"{where}: label {u.label!r} is not one of the known classes "
                                    f"{list(ordered_classes(known))}; map the corpus's labels onto them")
            utterances.append(u)
    return utterances


def corpus_label_gaps(utterances: Iterable[Utterance]) -> dict[str, tuple[str, ...]]:
    """Corpus -> the classes other corpora have and it lacks (only corpora lacking some).

    A corpus lacking a class still trains: that class is learned from the other corpora only, and
    under ``loco`` a held-out corpus's missing class simply has no test rows.
    """
    by_corpus: dict[str, set[str]] = {}
    for u in utterances:
        by_corpus.setdefault(u.corpus, set()).add(u.label)
    every = set().union(*by_corpus.values()) if by_corpus else set()
    return {c: ordered_classes(every - have) for c, have in sorted(by_corpus.items()) if every - have}


def label_gap_warning(utterances: Iterable[Utterance]) -> str | None:
    """One warning line naming which corpus lacks which class, or None when all have the same classes."""
    utterances = list(utterances)
    gaps = corpus_label_gaps(utterances)
    if not gaps:
        return None
    counts = Counter(u.corpus for u in utterances)
    detail = "; ".join(f"{c} ({counts[c]} rows) lacks {', '.join(missing)}" for c, missing in gaps.items())
    return (f"warning: the corpora's label sets differ: {detail}. Training goes on: each class is learned "
            "from the corpora that have it.")


def write_manifest(utterances: Iterable[Utterance], path: str | Path) -> None:
    """Write utterances as a CSV manifest, atomically (a reader never sees half a file).

    Audio paths are written relative to the manifest's folder (absolute only where no relative
    path exists, e.g. another drive). Extra columns are the union of all ``extras`` keys in
    first-seen order; rows without one get an empty cell. A ``corpus`` column is written only where
    some row's corpus is not the file's stem (which reading assumes), so one corpus's manifest keeps
    the six standard columns.

    Raises:
        ManifestError: an extras key that collides with a standard column.
    """
    path = Path(path)
    folder = path.parent.absolute()
    utterances = list(utterances)
    extra_columns: dict[str, None] = {}
    for u in utterances:
        for key in u.extras:
            if key in MANIFEST_COLUMNS or key == CORPUS_COLUMN:
                raise ManifestError(f"utterance {u.id}: extras key {key!r} collides with a manifest column")
            extra_columns.setdefault(key, None)
    with_corpus = any(u.corpus and u.corpus != path.stem for u in utterances)
    header = [*MANIFEST_COLUMNS, *([CORPUS_COLUMN] if with_corpus else []), *extra_columns]

    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(header)
            for u in utterances:
                writer.writerow(
                    [
                        u.id,
                        _relative(u.audio, folder),
                        u.text or "",
                        u.label,
                        u.speaker,
                        u.session,
                        *([u.corpus] if with_corpus else []),
                        *(str(u.extras.get(k, "")) for k in extra_columns),
                    ]
                )
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_csv_records(path: Path) -> list[tuple[int, list[str]]]:
    """(starting line, values) of every non-blank record of a CSV file, header included; unreadable
    files (missing, a folder, not UTF-8, malformed CSV) are ManifestErrors naming the file and line."""
    records = []
    next_line = 1
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f, strict=True)
            for values in reader:
                # reader.line_num is where the record ended; quoted newlines make it span lines.
                records.append((next_line, values))
                next_line = reader.line_num + 1
    except FileNotFoundError:
        raise ManifestError(f"manifest {path} does not exist") from None
    except IsADirectoryError:
        raise ManifestError(f"manifest {path} is a folder, not a CSV file") from None
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise ManifestError(f"{path}:{next_line}: malformed CSV: {exc}") from None
    return [(line, values) for line, values in records if any(v.strip() for v in values)]


def _read_rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and (starting line, values) of every non-blank row, shape-checked."""
    records = read_csv_records(path)
    if not records:
        raise ManifestError(f"{path}: empty file, expected a header {','.join(MANIFEST_COLUMNS)}")
    header_line, header = records[0]
    header = [h.strip() for h in header]
    missing = [c for c in MANIFEST_COLUMNS if c not in header]
    if missing:
        raise ManifestError(
            f"{path}:{header_line}: header lacks required column(s) {', '.join(missing)}; "
            f"found {','.join(header)}"
        )
    duplicated = sorted({h for h in header if header.count(h) > 1})
    if duplicated:
        raise ManifestError(f"{path}:{header_line}: header repeats column(s) {', '.join(duplicated)}")
    rows = records[1:]
    if not rows:
        raise ManifestError(f"{path}: header only, no rows")
    for line, values in rows:
        if len(values) != len(header):
            first = values[0].strip() if values else ""
            raise ManifestError(
                f"{path}:{line} (id {first!r}): {len(values)} fields, header has {len(header)}"
            )
    return header, rows


def audio_path(cell: str, folder: Path) -> Path | None:
    """The path an ``audio`` cell names (relative to the manifest's ``folder``); None when empty."""
    cell = cell.strip()
    if not cell:
        return None
    # normpath, not resolve(): keep the user's symlinks, only fold away the `..` of `../ravdess/..`.
    return Path(os.path.normpath(folder / cell))


def _relative(audio: Path | None, folder: Path) -> str:
    if audio is None:
        return ""
    try:
        return Path(os.path.relpath(Path(audio).absolute(), folder)).as_posix()
    except ValueError:  # no relative path between drives on Windows
        return str(Path(audio).absolute())
