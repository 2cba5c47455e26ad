"""A trained model on disk: ``model.safetensors`` (weights, including the frozen word-vector table)
and ``model.json`` (name, labels, model/training/feature configs, fitted feature state,
provenance, metrics). Nothing is unpickled, so loading a model from an untrusted folder runs no code.

Loading checks a folder before trusting it: ``model.json`` must be well-formed, and the model it
describes is first built on PyTorch's ``meta`` device (no memory) and compared, tensor by tensor,
with the shapes in the safetensors header, which the library checks against the file's size. So
a tampered folder (wrong shapes, missing keys, a truncated file, a width or table size that asks
for gigabytes) is a `ConfigError` naming the file before anything large is allocated, and weights
or feature statistics that would turn predictions into NaN (non-finite values, a zero std) are
refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from emofusion.errors import ConfigError, EmofusionError
from emofusion.features.pipeline import FeaturePipeline
from emofusion.fileio import atomic_path, write_json_atomic
from emofusion.models import MODEL_SPECS, EmotionClassifier, ModelConfig, build_model, canonical_name
from emofusion.models.calibration import Calibration

WEIGHTS_FILE = "model.safetensors"
META_FILE = "model.json"
FORMAT_VERSION = 1


@dataclass
class TrainedModel:
    name: str
    labels: tuple[str, ...]
    model: torch.nn.Module
    pipeline: FeaturePipeline
    meta: dict

    @property
    def modalities(self) -> frozenset[str]:
        return self.pipeline.modalities

    @property
    def calibration(self) -> Calibration:
        """model.json's calibration (temperature, confidence threshold); temperature 1 without one."""
        return Calibration.from_meta(self.meta)


def build_for_pipeline(name: str, pipeline: FeaturePipeline, *, n_classes: int, config: ModelConfig) -> EmotionClassifier:
    """A fresh model shaped for ``pipeline``'s inputs: its (max_frames, features) and its vocabulary's
    word-vector table. Training and loading both build through here, so the input shape a model is
    built for is always the one its pipeline produces, never a number typed again."""
    embeddings = None
    if pipeline.vocabulary is not None:
        embeddings = torch.from_numpy(pipeline.vocabulary.embedding_matrix)
    return build_model(
        name, n_classes=n_classes, speech_shape=pipeline.speech_shape, embeddings=embeddings,
        text_vector_dim=pipeline.text_vector_dim, config=config,
    )


def save_trained(
    out_dir: str | Path,
    *,
    name: str,
    labels: tuple[str, ...],
    model: torch.nn.Module,
    pipeline: FeaturePipeline,
    model_config: ModelConfig,
    extra: dict | None = None,
    dtype: torch.dtype | None = None,
) -> Path:
    """Write weights and metadata atomically (each file renamed into place when complete).

    ``dtype=torch.float16`` halves the file (used for the shipped model); floats are loaded back
    as float32, so only storage precision changes.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: _stored(v, dtype) for k, v in model.state_dict().items()}
    embedding = _embedding_shape(state)
    meta = {
        "format": FORMAT_VERSION,
        "name": name,
        "labels": list(labels),
        "model_config": model_config.to_dict(),
        "embedding_shape": embedding,
        "pipeline": pipeline.state(),
        **(extra or {}),
    }
    with atomic_path(out / WEIGHTS_FILE) as tmp:
        save_file(state, tmp)
    write_json_atomic(out / META_FILE, meta)
    return out


def load_trained(run_dir: str | Path, device: str | torch.device = "cpu") -> TrainedModel:
    """Load a run folder, checking it first (see the module docstring).

    Raises:
        ConfigError: not a run folder, or a damaged or inconsistent one (the message names the file).
    """
    run = Path(run_dir)
    meta_path, weights_path = run / META_FILE, run / WEIGHTS_FILE
    if not meta_path.is_file() or not weights_path.is_file():
        raise ConfigError(f"{run}: not a trained model folder (needs {META_FILE} and {WEIGHTS_FILE})")
    meta = _read_meta(meta_path)
    name, labels, config = _described_model(meta, meta_path)
    Calibration.from_meta(meta, str(meta_path))  # a damaged calibration block is refused here, not at predict time
    # The pipeline without its vocabulary (which needs the weights): the input shapes, checked.
    state = meta["pipeline"]
    shapes = _pipeline_from_state({**state, "text": None} if isinstance(state, dict) else state, None, meta_path)
    header = _weights_header(weights_path)
    _check_weights_fit(name, labels, config, shapes, meta, header, meta_path, weights_path)
    try:
        state = {k: v.float() if v.is_floating_point() else v for k, v in load_file(str(weights_path)).items()}
    except (SafetensorError, OSError) as exc:
        raise ConfigError(f"{weights_path}: cannot read the weights ({exc})") from None
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise ConfigError(f"{weights_path}: weights {', '.join(bad[:3])} contain NaN or infinite values")
    # The vocabulary's vectors are the model's frozen embedding table: stored once, in the weights.
    table = _embedding_tensor(state)
    pipeline = _pipeline_from_state(meta["pipeline"], None if table is None else table.numpy(), meta_path)
    model = build_for_pipeline(name, pipeline, n_classes=len(labels), config=config)
    if pipeline.modalities != model.modalities:
        raise ConfigError(
            f"{meta_path}: the pipeline reads {sorted(pipeline.modalities)} but {name} reads {sorted(model.modalities)}"
        )
    # Two encoders of one width (Whisper tiny.en's last and middle layers) fit the same weights: the
    # pipeline must run the ones the model is named for.
    runs, expected = tuple(e.key for e in pipeline.encoders), MODEL_SPECS[name].frozen_encoders
    if runs != expected:
        raise ConfigError(f"{meta_path}: {name} reads the encoders {list(expected)} but its pipeline runs {list(runs)}")
    model.load_state_dict(state)
    model.to(device).eval()
    return TrainedModel(name, labels, model, pipeline, meta)


def _read_meta(path: Path) -> dict:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it ({exc})") from None
    if not isinstance(meta, dict):
        raise ConfigError(f"{path}: expected a JSON object, got {type(meta).__name__}")
    if meta.get("format") != FORMAT_VERSION:
        raise ConfigError(f"{path}: model format {meta.get('format')!r} is not {FORMAT_VERSION}")
    missing = [k for k in ("name", "labels", "model_config", "pipeline") if k not in meta]
    if missing:
        raise ConfigError(f"{path}: missing {', '.join(missing)}")
    return meta


def _pipeline_from_state(state, table, path: Path) -> FeaturePipeline:
    if not isinstance(state, dict):
        raise ConfigError(f"{path}: pipeline must be an object, got {type(state).__name__}")
    try:
        return FeaturePipeline.from_state(state, table)
    except EmofusionError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ConfigError(f"{path}: the feature pipeline state is damaged ({type(exc).__name__}: {exc})") from None


def _described_model(meta: dict, path: Path) -> tuple[str, tuple[str, ...], ModelConfig]:
    """Name, labels and architecture from model.json, each checked."""
    try:
        name = canonical_name(meta["name"])
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    labels = meta["labels"]
    if (
        not isinstance(labels, list) or len(labels) < 2
        or not all(isinstance(c, str) and c for c in labels) or len(set(labels)) != len(labels)
    ):
        raise ConfigError(f"{path}: labels must be two or more distinct names, got {labels!r}")
    try:
        config = ModelConfig.from_dict(meta["model_config"])
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: model_config is damaged ({exc})") from None
    return name, tuple(labels), config


def _weights_header(path: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Name -> (dtype, shape) of every tensor, read from the header only (nothing allocated)."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: (f.get_slice(k).get_dtype(), tuple(f.get_slice(k).get_shape())) for k in f.keys()}
    except (SafetensorError, OSError) as exc:
        raise ConfigError(f"{path}: not a complete safetensors file ({exc})") from None


def _check_weights_fit(name, labels, config, shapes: FeaturePipeline, meta, header, meta_path: Path, weights_path: Path) -> None:
    """The model that model.json describes has exactly the tensors of the weights file."""
    tables = {k: shape for k, (_, shape) in header.items() if k.endswith("embedding.weight")}
    table = None
    if tables:
        table_shapes = set(tables.values())
        shape = next(iter(table_shapes))
        if len(table_shapes) != 1 or len(shape) != 2 or shape[0] < 2 or shape[1] < 1:
            raise ConfigError(f"{weights_path}: word-vector tables of unusable shapes {sorted(table_shapes)}")
        # A 2-row stand-in: the skeleton's other shapes depend on the vectors' width, not their count.
        table = torch.zeros(2, shape[1])
    if meta.get("embedding_shape") is not None and (not tables or list(shape) != meta["embedding_shape"]):
        raise ConfigError(
            f"{meta_path}: embedding_shape {meta['embedding_shape']!r} does not match the weights "
            f"({list(shape) if tables else 'no table'})"
        )
    try:
        with torch.device("meta"):  # shapes only: a config asking for gigabytes allocates nothing
            skeleton = build_model(
                name, n_classes=len(labels), speech_shape=shapes.speech_shape, embeddings=table,
                text_vector_dim=shapes.text_vector_dim, config=config,
            )
    except ConfigError as exc:
        raise ConfigError(f"{meta_path}: {exc}") from None
    expected = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    for k in tables:
        expected[k] = tables[k]
    problems = [f"missing {k}" for k in expected if k not in header]
    problems += [f"unexpected {k}" for k in header if k not in expected]
    problems += [
        f"{k} is {list(header[k][1])}, the model needs {list(expected[k])}"
        for k in expected if k in header and header[k][1] != expected[k]
    ]
    problems += [f"{k} is {dtype}" for k, (dtype, _) in header.items() if dtype not in ("F32", "F16", "BF16", "F64")]
    if problems:
        more = f" and {len(problems) - 4} more" if len(problems) > 4 else ""
        raise ConfigError(
            f"{weights_path} does not fit the {name} that {META_FILE} describes: {'; '.join(problems[:4])}{more}"
        )


def _stored(tensor: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    tensor = tensor.detach().to("cpu")
    if dtype is not None and tensor.is_floating_point():
        tensor = tensor.to(dtype)
    return tensor.contiguous()


def _embedding_tensor(state: dict[str, torch.Tensor]) -> torch.Tensor | None:
    tables = [v for k, v in state.items() if k.endswith("embedding.weight")]
    if any(t.shape != tables[0].shape or not torch.equal(t, tables[0]) for t in tables[1:]):
        raise ConfigError("model has several different embedding tables")
    return tables[0].float() if tables else None


def _embedding_shape(state: dict[str, torch.Tensor]) -> list[int] | None:
    table = _embedding_tensor(state)
    return None if table is None else list(table.shape)
