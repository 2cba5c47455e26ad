"""Batch prediction over a manifest or a folder of recordings, written to a CSV.

A folder's transcripts, when the model needs them, come from a ``<name>.txt`` file beside each
recording (``clip.wav`` + ``clip.txt``), the layout most corpora ship.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from emofusion.corpora.manifest import read_manifest
from emofusion.errors import ConfigError, EmofusionError
from emofusion.fileio import write_atomic
from emofusion.inference.recognizer import EmotionRecognizer

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif", ".au"}
# Items per forward pass: large enough to amortise Python overhead, small enough for memory.
CHUNK = 32


@dataclass(frozen=True)
class BatchItem:
    id: str
    audio: Path | None
    text: str | None


def items_from_manifest(path: Path) -> list[BatchItem]:
    return [BatchItem(u.id, u.audio, u.text) for u in read_manifest(path, check_files=True, require=None)]


def items_from_folder(folder: Path) -> list[BatchItem]:
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
    if not files:
        raise ConfigError(f"{folder}: no audio files ({', '.join(sorted(AUDIO_SUFFIXES))}) found")
    items = []
    for f in files:
        transcript = f.with_suffix(".txt")
        text = transcript.read_text(encoding="utf-8").strip() if transcript.is_file() else None
        items.append(BatchItem(str(f.relative_to(folder).with_suffix("")), f, text))
    return items


def predict_to_csv(
    recognizer: EmotionRecognizer, items: list[BatchItem], out: Path, *, progress: bool = True
) -> tuple[int, int]:
    """Write id, predicted, p_<label>... (and error) per item; returns (predicted, failed).

    A bad row does not stop the batch: its ``error`` column says why and its other cells are empty.
    """
    labels = recognizer.labels
    rows: list[dict] = []
    failed = 0
    bar = tqdm(total=len(items), desc="predict", unit="utt", disable=not progress)
    for start in range(0, len(items), CHUNK):
        chunk = items[start : start + CHUNK]
        try:
            predictions = recognizer.predict_batch([(i.audio, i.text) for i in chunk])
            results = list(zip(chunk, predictions, [None] * len(chunk)))
        except EmofusionError:
            # Retry one by one so a single bad file costs only its own row.
            results = []
            for item in chunk:
                try:
                    results.append((item, recognizer.predict(item.audio, item.text), None))
                except EmofusionError as exc:
                    results.append((item, None, str(exc)))
        for item, prediction, error in results:
            row = {"id": item.id, "predicted": "", **{f"p_{c}": "" for c in labels}, "error": error or ""}
            if prediction is not None:
                row["predicted"] = prediction.label
                row.update({f"p_{c}": f"{prediction.probabilities[c]:.6f}" for c in labels})
            else:
                failed += 1
            rows.append(row)
        bar.update(len(chunk))
    bar.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    def write(f):
        writer = csv.DictWriter(f, fieldnames=["id", "predicted", *[f"p_{c}" for c in labels], "error"])
        writer.writeheader()
        writer.writerows(rows)

    write_atomic(out, write, mode="w", newline="", encoding="utf-8")
    return len(items) - failed, failed
