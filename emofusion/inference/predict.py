"""Class probabilities for encoded utterances: the one forward-pass loop scoring and training share.

It lives in inference, below training, so that scoring a model never imports the training loop;
the trainer takes `pick_device` and `autocast` from here.
"""

from __future__ import annotations

import numpy as np
import torch

from emofusion.features.batching import EncodedSet, iterate_batches


def pick_device(device: str | torch.device | None = None) -> torch.device:
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def autocast(device: torch.device, enabled: bool):
    # bf16 on CPU and CUDA alike; only where emofusion.precision says it runs (no bf16 LSTM on AVX2-only CPUs).
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)


@torch.no_grad()
def predict_probabilities(
    model: torch.nn.Module, encoded: EncodedSet, *, device: torch.device, batch_size: int = 256, bf16: bool = False
) -> np.ndarray:
    """Class probabilities (n, n_classes) in the order of ``encoded``."""
    model.eval()
    out: np.ndarray | None = None
    for inputs, _, index in iterate_batches(encoded, batch_size, device=device, shuffle=False, bucket=True):
        with autocast(device, bf16):
            logits = model(**inputs)
        probs = torch.softmax(logits.float(), dim=1).cpu().numpy()
        if out is None:
            out = np.zeros((len(encoded), probs.shape[1]), dtype=np.float32)
        out[index] = probs  # buckets reorder utterances; write each back to its own row
    return out if out is not None else np.zeros((0, 0), dtype=np.float32)
