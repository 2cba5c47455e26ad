"""Batch prediction over a manifest or a folder of recordings, written to a CSV.

Every input row gets exactly one output row, in input order: ``id, predicted, p_<label>..., error``.
A row that cannot be predicted (missing or undecodable audio, no transcript, a duplicate or empty
id, a row with the wrong number of fields) gets an ``error`` and empty prediction cells; it never
stops the others. Only a manifest that cannot be read at all (absent, not UTF-8, malformed CSV,
no ``id`` column) is an error for the whole run.

Prediction needs no labels: a manifest needs an ``id`` column and the ``audio`` and/or ``text``
columns (``label``, ``speaker``, ``session`` and any others are ignored). A folder's transcripts,
when the model needs them, come from a ``<name>.txt`` file beside each recording (``clip.wav`` +
``clip.txt``), the layout most corpora ship.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from tqdm import tqdm

from emofusion.corpora.manifest import audio_path, read_csv_records
from emofusion.errors import ConfigError, ManifestError
from emofusion.fileio import spreadsheet_safe, write_atomic
from emofusion.inference.parallel import Result, predict_stream
from emofusion.inference.recognizer import EmotionRecognizer

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif", ".au"}


@dataclass(frozen=True)
class BatchItem:
    id: str
    audio: Path | None
    text: str | None
    error: str | None = None  # why the item cannot be predicted, found while reading the input


def items_from_manifest(path: str | Path) -> list[BatchItem]:
    """One item per data row of a CSV manifest, in file order (see the module docstring).

    Raises:
        ManifestError: the file cannot be read as a manifest at all.
    """
    path = Path(path)
    header, rows = _read_csv(path)
    if "id" not in header:
        raise ManifestError(f"{path}: the header lacks the column id; found {','.join(header)}")
    if "audio" not in header and "text" not in header:
        raise ManifestError(f"{path}: a manifest needs an audio and/or a text column; found {','.join(header)}")
    folder = path.parent.absolute()
    items: list[BatchItem] = []
    first_line: dict[str, int] = {}
    for line, values in rows:
        row = dict(zip(header, values))
        item_id = row["id"].strip() if len(values) > header.index("id") else ""
        if len(values) != len(header):
            items.append(BatchItem(item_id, None, None, f"line {line}: {len(values)} fields, header has {len(header)}"))
            continue
        if not item_id:
            items.append(BatchItem("", None, None, f"line {line}: empty id"))
            continue
        if item_id in first_line:
            items.append(BatchItem(item_id, None, None, f"line {line}: duplicate id, first used on line {first_line[item_id]}"))
            continue
        first_line[item_id] = line
        audio = audio_path(row.get("audio", ""), folder)
        text = row.get("text", "")
        text = text if text.strip() else None
        error = f"line {line}: row has neither audio nor text" if audio is None and text is None else None
        items.append(BatchItem(item_id, audio, text, error))
    return _unique_ids(items, [line for line, _ in rows])


def items_from_folder(folder: str | Path) -> list[BatchItem]:
    """One item per audio file under ``folder`` (recursively), id = its path without the suffix.

    Two recordings that differ only in their suffix (``a.wav``, ``a.flac``) keep it in their ids.
    """
    folder = Path(folder)
    # Symlinks count even when dangling: the user meant them as input, and their row says what is wrong.
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and not p.is_dir())
    if not files:
        raise ConfigError(f"{folder}: no audio files ({', '.join(sorted(AUDIO_SUFFIXES))}) found")
    stems = [f.relative_to(folder).with_suffix("").as_posix() for f in files]
    items = []
    for f, stem in zip(files, stems):
        item_id = stem if stems.count(stem) == 1 else f.relative_to(folder).as_posix()
        text, error = _sidecar_transcript(f)
        items.append(BatchItem(item_id, f, text, error))
    return items


def predict_to_csv(
    recognizer: EmotionRecognizer,
    items: list[BatchItem],
    out: Path,
    *,
    progress: bool = True,
    workers: int | None = 1,
    results: Iterable[Result] | None = None,
) -> tuple[int, int]:
    """Write id, predicted, p_<label>..., confident, transcript and error, one row per item; returns
    (predicted, failed). ``confident``: true/false from the model's calibration threshold, empty for
    a model without calibration (and for a failed row).

    ``transcript`` is the item's own, or Whisper's when it had none; ``language`` and
    ``language_probability`` what Whisper heard (empty: not detected); ``text_used`` whether the
    model read the transcript (false: another language or Whisper unsure, the speech answered).

    ``workers``: processes extracting features (None: every core; `emofusion.inference.parallel`).
    ``results``: (prediction, error) per item from another engine (e.g. Ray), in item order.
    Rows are written as they come, to a temporary file renamed into place at the end, so memory
    does not grow with the number of items.
    """
    labels = recognizer.labels
    if results is None:
        results = predict_stream(recognizer, items, workers=workers)
    failed = 0
    out.parent.mkdir(parents=True, exist_ok=True)

    def write(f):
        nonlocal failed
        writer = csv.DictWriter(
            f, fieldnames=["id", "predicted", *[f"p_{c}" for c in labels], "confident", "transcript", "language",
                           "language_probability", "text_used", "error"]
        )
        writer.writeheader()
        done = 0
        with tqdm(total=len(items), desc="predict", unit="utt", disable=not progress) as bar:
            for item, (prediction, error) in zip(items, results):
                row = {"id": item.id, "predicted": "", **{f"p_{c}": "" for c in labels}, "confident": "",
                       "transcript": "", "language": "", "language_probability": "", "text_used": "",
                       "error": error or ""}
                if prediction is not None:
                    row["predicted"] = prediction.label
                    row.update({f"p_{c}": f"{prediction.probabilities[c]:.6f}" for c in labels})
                    row["confident"] = _flag(prediction.confident)
                    row["transcript"] = prediction.transcript or ""
                    # Which language Whisper heard (blank: not detected) and whether the model read the text.
                    row["language"] = prediction.language or ""
                    if prediction.language_probability is not None:
                        row["language_probability"] = f"{prediction.language_probability:.3f}"
                    row["text_used"] = _flag(prediction.text_used)
                else:
                    failed += 1
                writer.writerow({k: spreadsheet_safe(v) for k, v in row.items()})
                done += 1
                bar.update(1)
        if done != len(items):
            raise RuntimeError(f"the prediction engine returned {done} results for {len(items)} items")

    write_atomic(out, write, mode="w", newline="", encoding="utf-8")
    return len(items) - failed, failed


def _read_csv(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and (starting line, values) of every non-blank row."""
    records = read_csv_records(path)
    if not records:
        raise ManifestError(f"{path}: empty file, expected a header with id and audio and/or text")
    header = [h.strip() for h in records[0][1]]
    if not records[1:]:
        raise ManifestError(f"{path}: header only, no rows")
    return header, records[1:]


def _unique_ids(items: list[BatchItem], lines: list[int]) -> list[BatchItem]:
    """Give rows whose id is empty or taken (errors) an id of their own, naming their line."""
    taken = {item.id for item in items if item.error is None}
    out = []
    for item, line in zip(items, lines):
        if item.error is not None and (not item.id or item.id in taken):
            base = f"{item.id} (line {line})" if item.id else f"(line {line})"
            new, k = base, 1
            while new in taken:
                k += 1
                new = f"{base} #{k}"
            item = BatchItem(new, item.audio, item.text, item.error)
        taken.add(item.id)
        out.append(item)
    return out


def _sidecar_transcript(recording: Path) -> tuple[str | None, str | None]:
    """(text, None) from ``<name>.txt`` beside ``recording`` (None if absent), or (None, error)."""
    transcript = recording.with_suffix(".txt")
    if not transcript.is_file():
        return None, None
    try:
        return transcript.read_text(encoding="utf-8-sig").strip() or None, None
    except UnicodeDecodeError as exc:
        return None, f"transcript {transcript}: not UTF-8 ({exc.reason} at byte {exc.start})"
    except OSError as exc:
        return None, f"transcript {transcript}: cannot be read ({exc.strerror})"


def _flag(value: bool | None) -> str:
    """A CSV cell for a yes/no that may be unknown: "true", "false" or empty."""
    return "" if value is None else str(bool(value)).lower()
