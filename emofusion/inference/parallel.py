"""Batch prediction on every core of one machine: decoding and features in worker processes, the
model in this one, results in input order, memory bounded.

Decoding and feature extraction are per-file NumPy work that one process does one file at a time;
the model pass is batched (``BATCH_ITEMS`` utterances) and cheap per utterance. So worker processes
featurise chunks of ``BATCH_ITEMS`` inputs while this process runs the model on the chunk before:
at most ``2 x workers`` chunks are in flight, so memory does not grow with the manifest.

Each chunk is predicted exactly as a single process predicts it (same inputs, same batch), so the
rows equal the single-process ones.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from emofusion.errors import EmofusionError
from emofusion.inference.recognizer import EmotionRecognizer, Prediction, PreparedInput

# Utterances per model pass: the LSTMs' per-step cost hardly grows with the batch, and 64 windows
# of 100 frames stay a few MB.
BATCH_ITEMS = 64

Result = tuple  # (Prediction, None) or (None, error message)


@dataclass(frozen=True)
class Item:
    """One input: what `emofusion.inference.batch.BatchItem` carries, less its id."""

    audio: Path | str | None
    text: str | None
    error: str | None = None  # known before prediction (e.g. a malformed manifest row)


def predict_chunk(recognizer: EmotionRecognizer, items: Sequence[Item]) -> list[Result]:
    """Predict one chunk in a single pass; a bad input costs only its own result."""
    return predict_prepared_chunk(recognizer, prepare_chunk(recognizer, items))


def prepare_chunk(recognizer: EmotionRecognizer, items: Sequence[Item]) -> list[PreparedInput | str]:
    """Decode and featurise each input alone; an input error becomes its message."""
    out: list[PreparedInput | str] = []
    for item in items:
        if item.error is not None:
            out.append(item.error)
            continue
        try:
            out.append(recognizer.prepare(item.audio, item.text))
        except EmofusionError as exc:
            out.append(str(exc))
    return out


def predict_prepared_chunk(recognizer: EmotionRecognizer, prepared: Sequence[PreparedInput | str]) -> list[Result]:
    """The good inputs share one pass; the others keep their error message."""
    results: list[Result] = [(None, p) if isinstance(p, str) else (None, None) for p in prepared]
    good = {i: p for i, p in enumerate(prepared) if not isinstance(p, str)}
    if not good:
        return results
    try:
        for i, prediction in zip(good, recognizer.predict_prepared(list(good.values()))):
            results[i] = (prediction, None)
    except Exception:
        # A pass that fails is retried one by one, so the failure stays on the row that causes it.
        for i, p in good.items():
            try:
                results[i] = (recognizer.predict_prepared([p])[0], None)
            except Exception as exc:
                results[i] = (None, f"{type(exc).__name__}: {exc}")
    return results


def predict_stream(
    recognizer: EmotionRecognizer, items: Iterable[Item], *, workers: int | None = None
) -> Iterator[Result]:
    """(prediction, error) per item (anything with ``audio``, ``text``, ``error``), in input order;
    features in ``workers`` processes.

    ``workers``: None uses every core; 0 or 1 computes everything in this process.
    """
    if workers is None:
        workers = os.cpu_count() or 1
    chunks = ([Item(i.audio, i.text, i.error) for i in chunk] for chunk in _chunks(items, BATCH_ITEMS))
    if workers <= 1:
        for chunk in chunks:
            yield from predict_chunk(recognizer, chunk)
        return
    # Not fork: a forked child of a process that already ran torch's thread pools can hang. A fork
    # server imports this module once, in a clean process, and forks the workers from it: start-up
    # costs one interpreter's imports, not one per worker as with spawn.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    features_only = dataclasses.replace(recognizer.trained, model=None)
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker, initargs=(features_only,)) as pool:
        pending: deque = deque()
        for chunk in chunks:
            pending.append(pool.submit(_prepare_in_worker, chunk))
            if len(pending) >= 2 * workers:
                yield from predict_prepared_chunk(recognizer, pending.popleft().result())
        while pending:
            yield from predict_prepared_chunk(recognizer, pending.popleft().result())


class _NoModel:
    """The backend of a feature worker's recognizer: it prepares inputs and never runs the model."""

    name = "none"

    def probabilities(self, batch):
        raise RuntimeError("a feature worker does not run the model")


_WORKER: EmotionRecognizer | None = None


def _start_worker(trained) -> None:
    global _WORKER
    import torch

    torch.set_num_threads(1)  # one process per core: no nested thread pools
    _WORKER = EmotionRecognizer(trained, backend=_NoModel())


def _prepare_in_worker(items: list[Item]) -> list[PreparedInput | str]:
    return prepare_chunk(_WORKER, items)


def _chunks(items: Iterable[Item], size: int) -> Iterator[list[Item]]:
    chunk: list[Item] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
