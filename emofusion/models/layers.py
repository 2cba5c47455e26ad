"""Building blocks shared by the speech and text encoders: a padding-proof LSTM, a padding-aware
Conv1D stack and additive attention."""

from __future__ import annotations

import torch
from torch import nn

from emofusion.models.masking import length_mask, masked_softmax, pooled_lengths, zero_padding


def reverse_within_lengths(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence's real steps in place of (B, T, D) ``x``; padding stays at the end.

    Applying it twice gives ``x`` back.
    """
    steps = torch.arange(x.shape[1], device=x.device).unsqueeze(0)
    last = (lengths.to(x.device) - 1).unsqueeze(1)
    index = torch.where(steps <= last, last - steps, steps)
    return x.gather(1, index.unsqueeze(-1).expand_as(x))


class MaskedLSTM(nn.Module):
    """One-layer (Bi-)LSTM over end-padded input whose outputs never depend on the padding.

    Same result as ``pack_padded_sequence`` but 3-4x faster on CPU: with ragged lengths a packed
    LSTM leaves PyTorch's fused oneDNN kernel (measured 0.74 s vs 0.20 s, batch 64 x 100 frames,
    Bi-LSTM 256). Instead the forward direction runs on the padded batch as is (it is causal and
    the padding comes last, so real steps never see it), and the backward direction runs forward
    over each sequence reversed within its own length. Final states are read at each sequence's
    last real step; outputs on padding are set to 0.
    """

    def __init__(self, input_dim: int, hidden: int, *, bidirectional: bool) -> None:
        super().__init__()
        self.forward_lstm = nn.LSTM(input_dim, hidden, batch_first=True)
        self.backward_lstm = nn.LSTM(input_dim, hidden, batch_first=True) if bidirectional else None
        self.output_dim = hidden * (2 if bidirectional else 1)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, T, D), lengths (B,) -> (outputs (B, T, output_dim) zero on padding, final (B, output_dim)).

        ``final`` concatenates the forward state after the last real step and the backward state
        after the first step, as the ``h_n`` of a packed ``nn.LSTM`` would.
        """
        mask = length_mask(lengths, x.shape[1])
        last = (lengths.to(x.device) - 1).view(-1, 1, 1)
        outputs, _ = self.forward_lstm(x)
        finals = [outputs.gather(1, last.expand(-1, 1, outputs.shape[-1])).squeeze(1)]
        if self.backward_lstm is not None:
            backward, _ = self.backward_lstm(reverse_within_lengths(x, lengths))
            finals.append(backward.gather(1, last.expand(-1, 1, backward.shape[-1])).squeeze(1))
            outputs = torch.cat([outputs, reverse_within_lengths(backward, lengths)], dim=-1)
        return zero_padding(outputs, mask), torch.cat(finals, dim=-1)


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
        """x (B, T, D), lengths (B,) -> (features (B, T', C) zero on padding, lengths (B,))."""
        h = zero_padding(x, length_mask(lengths, x.shape[1])).transpose(1, 2)  # Conv1d wants (B, D, T)
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
