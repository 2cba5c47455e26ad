"""Batch prediction over a Ray cluster with Ray Data: one model replica per worker.

    emofusion predict manifest.csv --out preds.csv --engine ray [--address ray://head:10001] [--workers N]

The inputs are cut into chunks of ``BATCH_ITEMS`` (as the single-machine path cuts them); Ray Data
hands chunks to a pool of ``workers`` actors, each holding one recognizer (one CPU, one torch or
onnxruntime thread), and streams the results back in input order, so the CSV is written as they
arrive and equals the single-process CSV row for row. Every worker reads the model folder and the
audio files by path: on a multi-node cluster they must sit at the same path on every node (a
shared file system). Without ``address`` a local cluster of ``workers`` CPUs is started and shut
down afterwards; it starts no dashboard and sends no usage statistics.
"""

from __future__ import annotations

import dataclasses

import json
import logging
import os
from pathlib import Path
from typing import Iterator, Sequence

from emofusion.extras import require
from emofusion.inference.parallel import BATCH_ITEMS, Item, Result, predict_chunk
from emofusion.inference.recognizer import EmotionRecognizer, Prediction

# A local cluster's shared-memory object store: chunks are file paths and results a few numbers,
# so a small store suffices (Ray's default takes 30% of RAM).
LOCAL_OBJECT_STORE_BYTES = 256 * 2**20


def predict_stream_ray(
    model: str | Path | None,
    items: Sequence[Item],
    *,
    backend: str | None = None,
    address: str | None = None,
    workers: int | None = None,
) -> Iterator[Result]:
    """(prediction, error) per item (``audio`` path, ``text``, ``error``), in input order, computed
    by ``workers`` Ray actors.

    ``model``: a run folder or .onnx file readable by every worker (None: the shipped model).
    ``address``: a Ray cluster (``ray://host:10001`` or ``auto``); None starts a local one.
    ``workers``: actors (model replicas); default: the cluster's CPUs.
    """
    # Before ray is imported: no usage-statistics report leaves the machine.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray = require("ray", "ray", "prediction on a Ray cluster (--engine ray)")
    require("ray.data", "ray", "prediction on a Ray cluster (--engine ray)")
    model, backend = _shared_model(model, backend)
    items = [Item(i.audio, i.text, i.error) for i in items]
    for item in items:
        if item.audio is not None and not isinstance(item.audio, (str, Path)):
            raise TypeError("the Ray engine reads audio files by path; got in-memory audio")

    started_here = not ray.is_initialized()
    if started_here:
        if address is None:
            ray.init(num_cpus=workers or os.cpu_count() or 1, include_dashboard=False,
                     object_store_memory=LOCAL_OBJECT_STORE_BYTES, log_to_driver=False, configure_logging=False)
        else:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
    try:
        workers = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True  # rows come back in input order
        context.enable_progress_bars = False
        logging.getLogger("ray.data").setLevel(logging.WARNING)  # its per-dataset INFO lines, on every run
        chunks = [
            {"chunk": i, "items": json.dumps([[None if it.audio is None else str(it.audio), it.text, it.error]
                                              for it in items[s : s + BATCH_ITEMS]])}
            for i, s in enumerate(range(0, len(items), BATCH_ITEMS))
        ]
        dataset = ray.data.from_items(chunks, override_num_blocks=max(1, len(chunks))).map_batches(
            _ChunkPredictor,
            fn_constructor_kwargs={"model": str(model), "backend": backend},
            batch_size=1,  # one chunk per call: the same model batch as the single-process path
            concurrency=workers,
            num_cpus=1,
        )
        for row in dataset.iter_rows():
            for result in json.loads(row["results"]):
                yield _result(result)
    finally:
        if started_here:
            ray.shutdown()


class _ChunkPredictor:
    """A Ray Data actor: loads the model once, then predicts chunk after chunk."""

    def __init__(self, model: str, backend: str | None) -> None:
        import torch

        torch.set_num_threads(1)  # one actor per CPU
        self.recognizer = EmotionRecognizer.load(model, backend=backend, threads=1)

    def __call__(self, batch: dict) -> dict:
        results = []
        for chunk in batch["items"]:
            out = []
            for prediction, error in predict_chunk(self.recognizer, [Item(*i) for i in json.loads(chunk)]):
                out.append({"error": error} if prediction is None else _fields(prediction))
            results.append(json.dumps(out))
        return {"chunk": batch["chunk"], "results": results}


def _shared_model(model, backend) -> tuple[Path, str | None]:
    """The model every worker loads: an onnx backend's run folder is exported once, here."""
    from emofusion.inference.backends import exported
    from emofusion.inference.shipped import shipped_model_path

    onnx = backend in ("onnx", "onnx-int8")
    path = shipped_model_path(model, onnx=onnx)  # None: the default, as EmotionRecognizer.load resolves it
    if onnx and path.suffix.lower() != ".onnx":
        return exported(path, quantize="int8" if backend == "onnx-int8" else None), "onnx"
    return path, backend


def _fields(prediction: Prediction) -> dict:
    """Every field of a prediction but its timings, as JSON: a field added to `Prediction` (as
    ``confident`` and ``text_used`` were) reaches the CSV from the workers without an edit here."""
    data = dataclasses.asdict(prediction)
    del data["timings_ms"]
    return data


def _result(data: dict) -> Result:
    if "error" in data:
        return None, data["error"]
    return Prediction(**{**data, "modalities": tuple(data["modalities"])}), None
