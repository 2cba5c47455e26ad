"""Length masks and masked reductions, so padding never changes a model's output.

Batches are padded at the end to the longest member. Every reduction over time in the models
(global average pooling, attention, max pooling, the recurrent layers) goes through these helpers,
which is what makes an utterance's prediction independent of the batch it happens to be in.
"""

from __future__ import annotations

import torch


def length_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """Bool (B, max_len), True on real steps. Built on ``lengths``' device."""
    steps = torch.arange(max_len, device=lengths.device)
    return steps.unsqueeze(0) < lengths.unsqueeze(1)


def zero_padding(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Set padded steps of (B, T, C) ``x`` to 0 (where mask (B, T) is False)."""
    return x.masked_fill(~mask.unsqueeze(-1), 0.0)


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of (B, T, C) ``x`` over real steps only -> (B, C)."""
    total = zero_padding(x, mask).sum(dim=1)
    count = mask.sum(dim=1, keepdim=True).clamp_min(1).to(total.dtype)
    return total / count


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax of (B, T) ``scores`` over real steps; padded steps get exactly 0 weight."""
    filled = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    return torch.softmax(filled, dim=1).masked_fill(~mask, 0.0)


def pooled_lengths(lengths: torch.Tensor, pool: int) -> torch.Tensor:
    """Real steps left after max pooling with kernel = stride = ``pool`` and ceil_mode=True."""
    return torch.div(lengths + pool - 1, pool, rounding_mode="floor")


def recording_graph() -> bool:
    """True while an exporter traces the model (torch.onnx, torch.jit.trace, torch.export).

    The input checks below read tensor values (``int(lengths.min())``) or compare batch sizes in
    Python: a graph cannot hold them, and a tracer would freeze the example's answer into it. They
    run for eager calls only; an exported graph is fed by code that builds valid inputs.
    """
    return torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or torch.compiler.is_exporting()


def check_lengths(lengths: torch.Tensor | None, batch: int, max_len: int, what: str) -> torch.Tensor:
    """Validate a (B,) lengths tensor against its padded input; returns it as int64.

    While a graph is recorded (`recording_graph`) only the conversion to int64 is kept.
    """
    if recording_graph():
        return lengths.long()
    if lengths is None:
        raise ValueError(f"{what}_lengths is required together with {what}")
    if lengths.dim() != 1 or lengths.shape[0] != batch:
        raise ValueError(f"{what}_lengths must have shape ({batch},), got {tuple(lengths.shape)}")
    if lengths.dtype.is_floating_point or lengths.dtype == torch.bool:
        raise ValueError(f"{what}_lengths must be an integer tensor, got {lengths.dtype}")
    lengths = lengths.long()
    low, high = int(lengths.min()), int(lengths.max())
    if low < 1 or high > max_len:
        raise ValueError(f"{what}_lengths must lie in [1, {max_len}] (the padded length), got min {low}, max {high}")
    return lengths
