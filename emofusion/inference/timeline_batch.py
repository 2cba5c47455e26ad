"""Timelines to CSV: one row per segment, for one recording or every row of a manifest or folder.

Columns: ``id, start, end, speaker, text, label, p_<class>..., model, error``. A recording that fails as a
whole (undecodable, too long) gets one row with its ``error`` and empty cells, and the batch goes
on; a recording with no speech gets one row saying so, so every input is accounted for.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterable

from tqdm import tqdm

from emofusion.errors import EmofusionError, MissingExtraError
from emofusion.fileio import spreadsheet_safe, write_atomic
from emofusion.inference.batch import BatchItem
from emofusion.inference.recognizer import EmotionRecognizer
from emofusion.inference.timeline import NO_SPEECH, Timeline, build_timeline


def timeline_rows(item_id: str, timeline: Timeline, labels: tuple[str, ...]) -> list[dict]:
    if not timeline.segments:
        return [_empty_row(item_id, labels, NO_SPEECH)]
    rows = []
    for s in timeline.segments:
        row = _empty_row(item_id, labels, s.error or "")
        row.update(start=f"{s.start:.3f}", end=f"{s.end:.3f}", speaker=s.speaker or "", text=s.text or "", model=s.model or "")
        if s.probabilities is not None:
            row["label"] = s.label
            row.update({f"p_{c}": f"{s.probabilities[c]:.6f}" for c in labels})
            row["confident"] = "" if s.confident is None else str(s.confident).lower()
        rows.append(row)
    return rows


def write_timeline_csv(out: Path, rows: Iterable[dict], labels: tuple[str, ...]) -> None:
    columns = ["id", "start", "end", "speaker", "text", "label", *[f"p_{c}" for c in labels], "confident", "model", "error"]
    out.parent.mkdir(parents=True, exist_ok=True)

    def write(f):
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        # Transcripts come from people and Whisper: a cell starting "=" must not run as a formula.
        writer.writerows({k: spreadsheet_safe(v) for k, v in row.items()} for row in rows)

    write_atomic(out, write, mode="w", newline="", encoding="utf-8")


def timelines_to_csv(
    recognizer: EmotionRecognizer, items: list[BatchItem], out: Path, *, progress: bool = True, **options
) -> tuple[int, int]:
    """The timeline of every item into one CSV; returns (recordings done, recordings failed).

    A missing extra stops the batch at once (every item would fail the same way).
    """
    rows: list[dict] = []
    failed = 0
    for item in tqdm(items, desc="timeline", unit="file", disable=not progress):
        if item.audio is None:
            failed += 1
            rows.append(_empty_row(item.id, recognizer.labels, "no audio: a timeline is made from a recording"))
            continue
        try:
            timeline = build_timeline(recognizer, item.audio, item.text, name=str(item.audio), **options)
        except MissingExtraError:
            raise
        except EmofusionError as exc:
            failed += 1
            rows.append(_empty_row(item.id, recognizer.labels, str(exc)))
            continue
        rows += timeline_rows(item.id, timeline, recognizer.labels)
    write_timeline_csv(out, rows, recognizer.labels)
    return len(items) - failed, failed


def _empty_row(item_id: str, labels: tuple[str, ...], error: str) -> dict:
    return {"id": item_id, "start": "", "end": "", "speaker": "", "text": "", "label": "", **{f"p_{c}": "" for c in labels},
            "confident": "", "model": "", "error": error}
