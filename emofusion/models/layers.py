"""Building blocks shared by the speech and text encoders: a packed LSTM, a padding-aware
Conv1D stack, additive attention, and per-feature input standardisation."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from emofusion.models.masking import length_mask, masked_softmax, pooled_lengths, zero_padding


class PackedLSTM(nn.Module):
    """One-layer (Bi-)LSTM over padded input that never reads the padding.

    Packing (rather than masking afterwards) is what makes the backward direction start at each
    sequence's real last step, and the final states belong to the real last step too.
    """

    def __init__(self, input_dim: int, hidden: int, *, bidirectional: bool) -> None:
        super().__init__()
        self.lstm = nn.LSTM(input_dim, hidden, batch_first=True, bidirectional=bidirectional)
        self.output_dim = hidden * (2 if bidirectional else 1)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, T, D), lengths (B,) -> (outputs (B, T, output_dim) zero on padding, final (B, output_dim)).

        ``final`` concatenates the forward state after the last real step and the backward state
        after the first step.
        """
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, (h_n, _) = self.lstm(packed)
        outputs, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        final = torch.cat(list(h_n), dim=-1)  # (num_directions, B, H) -> (B, num_directions * H)
        return outputs, final


class MaskedConvStack(nn.Module):
    """Conv1D -> Leaky ReLU -> (max pool) layers over time that treat padding as absent.

    After every layer the padded steps are zeroed again, so the next convolution sees exactly the
    zeros its own 'same' padding would give a batch-of-one; max pooling fills padding with the
    dtype's minimum so a partial window at a sequence's end only pools real steps.
    """

    def __init__(self, input_dim: int, filters, kernels, pools, leaky_slope: float) -> None:
        super().__init__()
        self.convs = nn.ModuleList()
        channels = input_dim
        for n_filters, kernel in zip(filters, kernels):
            self.convs.append(nn.Conv1d(channels, n_filters, kernel, padding=kernel // 2))
            channels = n_filters
        self.pools = tuple(pools)
        self.act = nn.LeakyReLU(leaky_slope)
        self.output_dim = channels

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, T, D) zero on padding -> (features (B, T', C) zero on padding, lengths (B,))."""
        h = x.transpose(1, 2)  # (B, D, T): Conv1d wants channels first
        for conv, pool in zip(self.convs, self.pools):
            h = self.act(conv(h))
            mask = length_mask(lengths, h.shape[-1]).unsqueeze(1)
            if pool > 1:
                h = h.masked_fill(~mask, torch.finfo(h.dtype).min)
                h = nn.functional.max_pool1d(h, pool, pool, ceil_mode=True)
                lengths = pooled_lengths(lengths, pool)
                mask = length_mask(lengths, h.shape[-1]).unsqueeze(1)
            h = h.masked_fill(~mask, 0.0)
        return h.transpose(1, 2), lengths


class AdditiveAttention(nn.Module):
    """Bahdanau-style attention pooling over time: a_t = softmax_t(v^T tanh(W h_t + b)), c = sum a_t h_t."""

    def __init__(self, input_dim: int, attention_dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(input_dim, attention_dim)
        self.score = nn.Linear(attention_dim, 1, bias=False)
        self.output_dim = input_dim

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """h (B, T, D), mask (B, T) -> (context (B, D), weights (B, T), 0 on padding)."""
        scores = self.score(torch.tanh(self.proj(h))).squeeze(-1)
        weights = masked_softmax(scores.float(), mask)  # softmax in fp32 even under bf16 autocast
        context = torch.bmm(weights.unsqueeze(1).to(h.dtype), h).squeeze(1)
        return context, weights


class FrameNorm(nn.Module):
    """Per-feature standardisation of acoustic frames, padding kept at exactly 0.

    The 34 features differ by orders of magnitude (energy vs spectral centroid), so the models
    standardise them. The statistics are buffers, saved with the model, so a shipped model needs no
    side file; they default to identity until ``set_stats`` is called with training-set statistics.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def set_stats(self, mean: torch.Tensor, std: torch.Tensor, eps: float = 1e-5) -> None:
        mean = torch.as_tensor(mean, dtype=torch.float32).flatten()
        std = torch.as_tensor(std, dtype=torch.float32).flatten()
        if mean.shape != self.mean.shape or std.shape != self.std.shape:
            raise ValueError(f"speech stats must have shape {tuple(self.mean.shape)}, got {tuple(mean.shape)}, {tuple(std.shape)}")
        if not (torch.isfinite(mean).all() and torch.isfinite(std).all()) or (std < 0).any():
            raise ValueError("speech stats must be finite with std >= 0")
        self.mean.copy_(mean)
        self.std.copy_(std.clamp_min(eps))  # a constant feature (std 0) must not divide by zero

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return zero_padding((x - self.mean) / self.std, mask)
