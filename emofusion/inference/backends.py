"""Where a recognizer's model pass runs: PyTorch, or onnxruntime on an exported ONNX graph.

Both take the model's keyword inputs (``speech``, ``speech_lengths``, ``tokens``,
``text_lengths``, as `collate` builds them) and return class probabilities, so everything before
and after the model (decoding, features, long-audio windows) is the same code for both.

``onnx`` runs a ``.onnx`` file written by ``emofusion export`` as it is. Given a run folder (or the
shipped model) it exports it once, verified against PyTorch, into the cache
(``$EMOFUSION_CACHE/onnx``, keyed by the weights, metadata and exporter versions); ``onnx-int8``
does the same with onnxruntime's dynamic int8 quantisation.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from emofusion import __version__
from emofusion.artifacts import META_FILE, WEIGHTS_FILE, TrainedModel, load_trained
from emofusion.errors import ConfigError
from emofusion.extras import require
from emofusion.features.pipeline import FeaturePipeline
from emofusion.models.calibration import Calibration

BACKENDS = ("torch", "onnx", "onnx-int8")
# One thread per session: one utterance is too small for a thread pool to pay for its
# synchronisation (as for torch in the service); batch callers pass more.
DEFAULT_ONNX_THREADS = 1


class TorchBackend:
    name = "torch"
    reads_tokens = False  # the recogniser may pass `text_features` (a transcript encoded once)

    def __init__(self, model: torch.nn.Module, device: torch.device, calibration: Calibration | None = None) -> None:
        self.model = model.to(device).eval()
        self.device = device
        # The exported graph divides by the temperature itself; here it is applied to the logits.
        self.calibration = calibration or Calibration()

    @torch.inference_mode()
    def probabilities(self, batch: dict[str, torch.Tensor]) -> np.ndarray:
        logits = self.model(**batch)
        return self.calibration.probabilities(logits).cpu().numpy().astype(np.float64)


class OnnxBackend:
    """An onnxruntime session over an exported graph (thread-safe: ``run`` may be called concurrently)."""

    name = "onnx"
    reads_tokens = True  # the graph is the whole model, from word ids

    def __init__(self, session, inputs: tuple[str, ...], output: str, path: Path | None = None) -> None:
        self.session = session
        self.inputs = inputs
        self.output = output
        self.path = path

    def probabilities(self, batch: dict[str, torch.Tensor]) -> np.ndarray:
        feeds = {name: batch[name].cpu().numpy() for name in self.inputs}
        return self.session.run([self.output], feeds)[0].astype(np.float64)


def load_onnx(
    model: Path, *, quantize: str | None = None, threads: int | None = None
) -> tuple[TrainedModel, OnnxBackend]:
    """The recognizer's parts for ``model``: an exported ``.onnx`` file, or a run folder to export."""
    model = Path(model)
    if model.suffix.lower() == ".onnx":
        if quantize is not None:
            raise ConfigError(f"{model} runs as it was exported; use backend 'onnx' (quantise with "
                              f"`emofusion export ... --quantize {quantize}`)")
        if not model.is_file():
            raise ConfigError(f"{model}: no such ONNX file")
        return open_onnx(model, threads=threads)
    return open_onnx(exported(model, quantize=quantize), threads=threads)


def open_onnx(path: Path, *, threads: int | None = None) -> tuple[TrainedModel, OnnxBackend]:
    """Open an exported file: its session, and the labels and feature pipeline from its metadata."""
    from emofusion.export.onnx_export import METADATA_FORMAT, METADATA_KEY

    ort = require("onnxruntime", "onnx", "the ONNX Runtime backend")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or DEFAULT_ONNX_THREADS
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's errors are not a public hierarchy
        raise ConfigError(f"{path}: not a loadable ONNX model ({exc})") from None
    raw = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
    try:
        meta = json.loads(raw) if raw else None
    except json.JSONDecodeError:
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != METADATA_FORMAT:
        raise ConfigError(f"{path}: not an emofusion export (no {METADATA_KEY!r} metadata of format {METADATA_FORMAT})")
    inputs = tuple(meta["inputs"])
    missing = sorted(set(inputs) - {i.name for i in session.get_inputs()})
    if missing:
        raise ConfigError(f"{path}: the graph lacks the inputs {missing} its metadata names")
    trained = TrainedModel(meta["name"], tuple(meta["labels"]), None, _pipeline(meta), meta)
    return trained, OnnxBackend(session, inputs, meta["output"], path)


def exported(run_dir: Path, *, quantize: str | None = None) -> Path:
    """The cached export of a run folder, exporting it first if needed."""
    from emofusion.export.onnx_export import OPSET, export_onnx
    from emofusion.export.quantize import INT8_SETTINGS
    from emofusion.features.cache import default_cache_root

    weights, meta = run_dir / WEIGHTS_FILE, run_dir / META_FILE
    if not weights.is_file() or not meta.is_file():
        raise ConfigError(f"{run_dir}: not a trained model folder (needs {META_FILE} and {WEIGHTS_FILE}) or .onnx file")
    digest = hashlib.sha256()
    # The quantisation recipe is part of the key: a changed recipe must not reuse an old export.
    recipe = json.dumps(INT8_SETTINGS, sort_keys=True) if quantize else ""
    for part in (weights.read_bytes(), meta.read_bytes(), f"{quantize}|{recipe}|{__version__}|{torch.__version__}|{OPSET}".encode()):
        digest.update(hashlib.sha256(part).digest())
    name = json.loads(meta.read_text(encoding="utf-8")).get("name", "model")
    path = default_cache_root() / "onnx" / f"{name}-{digest.hexdigest()[:20]}{'-' + quantize if quantize else ''}.onnx"
    if not path.is_file():
        export_onnx(load_trained(run_dir), path, quantize=quantize, source=str(run_dir))
    return path


def _pipeline(meta: dict) -> FeaturePipeline:
    # The word vectors live in the graph (its embedding initializer); the text encoder here only
    # maps words to ids, so a zero table of the right shape stands in for them.
    table = None
    if meta["pipeline"].get("text"):
        table = np.zeros(meta["embedding_shape"], dtype=np.float32)
    return FeaturePipeline.from_state(meta["pipeline"], table)
