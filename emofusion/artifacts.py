"""A trained model on disk: ``model.safetensors`` (weights, including the frozen word-vector table)
and ``model.json`` (name, labels, model/training/feature configs, fitted feature state,
provenance, metrics). Nothing is unpickled, so loading a model from an untrusted folder runs no code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from emofusion.errors import ConfigError
from emofusion.features.pipeline import FeaturePipeline
from emofusion.fileio import atomic_path, write_json_atomic
from emofusion.models import EmotionClassifier, ModelConfig, build_model

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
    run = Path(run_dir)
    meta_path, weights_path = run / META_FILE, run / WEIGHTS_FILE
    if not meta_path.is_file() or not weights_path.is_file():
        raise ConfigError(f"{run}: not a trained model folder (needs {META_FILE} and {WEIGHTS_FILE})")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if meta.get("format") != FORMAT_VERSION:
        raise ConfigError(f"{run}: model format {meta.get('format')} is not {FORMAT_VERSION}")
    state = {k: v.float() if v.is_floating_point() else v for k, v in load_file(str(weights_path)).items()}
    # The vocabulary's vectors are the model's frozen embedding table: stored once, in the weights.
    table = _embedding_tensor(state)
    pipeline = FeaturePipeline.from_state(meta["pipeline"], None if table is None else table.numpy())
    labels = tuple(meta["labels"])
    model = build_for_pipeline(
        meta["name"], pipeline, n_classes=len(labels), config=ModelConfig.from_dict(meta["model_config"])
    )
    model.load_state_dict(state)
    model.to(device).eval()
    return TrainedModel(meta["name"], labels, model, pipeline, meta)


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
