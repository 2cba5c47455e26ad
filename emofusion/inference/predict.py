"""Class probabilities for encoded utterances: the one forward-pass loop scoring and training share.

It lives in inference, below training, so that scoring a model never imports the training loop;
the trainer takes `pick_device` and `autocast` from here.
"""

from __future__ import annotations

import numpy as np
import torch

from emofusion.features.batching import EncodedSet, iterate_batches
from emofusion.models.calibration import Calibration


def pick_device(device: str | torch.device | None = None) -> torch.device:
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def autocast(device: torch.device, enabled: bool):
    # bf16 on CPU and CUDA alike; only where emofusion.precision says it runs (no bf16 LSTM on AVX2-only CPUs).
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)


def predict_probabilities(
    model: torch.nn.Module, encoded: EncodedSet, *, device: torch.device, batch_size: int = 256, bf16: bool = False,
    calibration: Calibration | None = None,
) -> np.ndarray:
    """Class probabilities (n, n_classes) in the order of ``encoded``, through ``calibration``
    (a `TrainedModel.calibration`; None: temperature 1)."""
    calibration = calibration or Calibration()
    return _forward(model, encoded, device, batch_size, bf16, calibration.probabilities)


def predict_logits(
    model: torch.nn.Module, encoded: EncodedSet, *, device: torch.device, batch_size: int = 256, bf16: bool = False
) -> np.ndarray:
    """The model's raw logits (n, n_classes), before any calibration (what a temperature is fitted on)."""
    return _forward(model, encoded, device, batch_size, bf16, lambda logits: logits.float())


@torch.no_grad()
def _forward(model, encoded: EncodedSet, device, batch_size: int, bf16: bool, output) -> np.ndarray:
    model.eval()
    out: np.ndarray | None = None
    for inputs, _, index in iterate_batches(encoded, batch_size, device=device, shuffle=False, bucket=True):
        with autocast(device, bf16):
            logits = model(**inputs)
        values = output(logits).cpu().numpy()
        if out is None:
            out = np.zeros((len(encoded), values.shape[1]), dtype=np.float32)
        out[index] = values  # buckets reorder utterances; write each back to its own row
    return out if out is not None else np.zeros((0, 0), dtype=np.float32)
