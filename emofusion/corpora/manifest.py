"""The project's CSV manifest: one utterance per row, the hand-off between corpora and features.

Columns ``id,audio,text,label,speaker,session``, UTF-8 (a byte-order mark is accepted), then any
extra columns, which are kept in :attr:`Utterance.extras`. ``audio`` is a path relative to the
manifest's own folder (absolute paths allowed), so a data folder can move as a whole. An empty
``audio`` makes a text-only row (MELD), an empty ``text`` a speech-only row.

Errors name the file, the 1-based line number where the row starts and the row's id: a manifest
is usually written by hand or by a script someone else wrote, and "bad row" is not actionable.
"""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from emofusion.errors import ConfigError, ManifestError
from emofusion.records import Utterance

MANIFEST_COLUMNS: tuple[str, ...] = ("id", "audio", "text", "label", "speaker", "session")
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
        Utterances with absolute audio paths, ``text`` None for speech-only rows and extra
        columns in ``extras`` (as strings, empty ones included).

    Raises:
        ManifestError: naming the file, line and id of the first bad row.
    """
    if require not in REQUIRE_CHOICES:
        raise ConfigError(f"require must be one of {REQUIRE_CHOICES}, got {require!r}")
    path = Path(path)
    allowed = None if labels is None else set(labels)
    folder = path.parent.absolute()
    header, rows = _read_rows(path)

    utterances: list[Utterance] = []
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

        utterances.append(
            Utterance(
                id=utt_id,
                audio=audio,
                text=text,
                label=label,
                speaker=row["speaker"].strip(),
                session=row["session"].strip(),
                extras={k: row[k] for k in header if k not in MANIFEST_COLUMNS},
            )
        )
    return utterances


def write_manifest(utterances: Iterable[Utterance], path: str | Path) -> None:
    """Write utterances as a CSV manifest, atomically (a reader never sees half a file).

    Audio paths are written relative to the manifest's folder (absolute only where no relative
    path exists, e.g. another drive). Extra columns are the union of all ``extras`` keys in
    first-seen order; rows without one get an empty cell.

    Raises:
        ManifestError: an extras key that collides with a standard column.
    """
    path = Path(path)
    folder = path.parent.absolute()
    utterances = list(utterances)
    extra_columns: dict[str, None] = {}
    for u in utterances:
        for key in u.extras:
            if key in MANIFEST_COLUMNS:
                raise ManifestError(f"utterance {u.id}: extras key {key!r} collides with a manifest column")
            extra_columns.setdefault(key, None)
    header = [*MANIFEST_COLUMNS, *extra_columns]

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
