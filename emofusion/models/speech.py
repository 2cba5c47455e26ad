"""Speech encoders: (B, T, 34) acoustic frames + lengths -> one feature vector per utterance.

Each encoder is the body of one of the paper's speech models (S-DNN, S-CNN, S-CL, S-CBLA); the
unimodal classifier adds a softmax head, the fusion models use the same class as their S branch.
"""

from __future__ import annotations

import torch
from torch import nn

from emofusion.models.config import ModelConfig
from emofusion.models.layers import AdditiveAttention, MaskedConvStack, MaskedLSTM
from emofusion.models.masking import length_mask, masked_mean, zero_padding


def _dense_stack(input_dim: int, widths, dropout: float) -> tuple[nn.Sequential, int]:
    """Dropout -> Linear -> ReLU per width; returns the stack and its output width."""
    layers: list[nn.Module] = []
    for width in widths:
        layers += [nn.Dropout(dropout), nn.Linear(input_dim, width), nn.ReLU()]
        input_dim = width
    return nn.Sequential(*layers), input_dim


class SpeechEncoder(nn.Module):
    """Base: zeroes whatever lies beyond each length, then leaves the rest to ``encode``.

    Frames arrive standardised by the feature pipeline (fitted on the training split), so 0 is the
    average frame; zeroing here means padding content can never leak into a prediction.
    """

    def __init__(self, speech_dim: int) -> None:
        super().__init__()
        self.speech_dim = speech_dim

    def forward(self, speech: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        mask = length_mask(lengths, speech.shape[1])
        return self.encode(zero_padding(speech, mask), lengths, mask)

    def encode(self, x: torch.Tensor, lengths: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class SpeechDNNEncoder(SpeechEncoder):
    """S-DNN: the whole (max_frames, 34) matrix flattened into a 512-256-128-32 ReLU network.

    A DNN over the paper's (100, 34) matrix has one input per (frame, feature) cell, so its input is
    by definition the end-padded matrix: shorter utterances are zero-filled (the input is standardised,
    so 0 = the average frame) up to ``max_frames``. The padding is therefore part of the input, but it
    is the same padding whatever batch the utterance is in.
    """

    def __init__(self, speech_dim: int, max_frames: int, config: ModelConfig) -> None:
        super().__init__(speech_dim)
        self.max_frames = max_frames
        self.dense, self.output_dim = _dense_stack(max_frames * speech_dim, config.dnn_hidden, config.dropout)

    def encode(self, x, lengths, mask):
        if x.shape[1] > self.max_frames:
            raise ValueError(f"S-DNN takes at most {self.max_frames} frames, got {x.shape[1]}")
        x = nn.functional.pad(x, (0, 0, 0, self.max_frames - x.shape[1]))
        return self.dense(x.flatten(1))


class ConvChannel(nn.Module):
    """The CNN channel: four Conv1D + Leaky ReLU + max pooling, then average over real frames."""

    def __init__(self, speech_dim: int, config: ModelConfig) -> None:
        super().__init__()
        self.convs = MaskedConvStack(
            speech_dim, config.cnn_filters, config.cnn_kernels, config.cnn_pools, config.leaky_slope
        )
        self.output_dim = self.convs.output_dim

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        h, lengths = self.convs(x, lengths)
        return masked_mean(h, length_mask(lengths, h.shape[1]))


class SpeechCNNEncoder(SpeechEncoder):
    """S-CNN: the CNN channel alone, then one dense ReLU layer."""

    def __init__(self, speech_dim: int, max_frames: int, config: ModelConfig) -> None:
        super().__init__(speech_dim)
        self.channel = ConvChannel(speech_dim, config)
        self.dense, self.output_dim = _dense_stack(self.channel.output_dim, (config.cnn_dense,), config.dropout)

    def encode(self, x, lengths, mask):
        return self.dense(self.channel(x, lengths))


class SpeechCLEncoder(SpeechEncoder):
    """S-CL: one channel, CNN then Bi-LSTM over the pooled frames; the representation is the
    Bi-LSTM's final states (forward after the last real step, backward after the first)."""

    def __init__(self, speech_dim: int, max_frames: int, config: ModelConfig) -> None:
        super().__init__(speech_dim)
        self.convs = MaskedConvStack(
            speech_dim, config.cnn_filters, config.cnn_kernels, config.cnn_pools, config.leaky_slope
        )
        self.lstm = MaskedLSTM(self.convs.output_dim, config.speech_lstm_hidden, bidirectional=True)
        self.output_dim = self.lstm.output_dim

    def encode(self, x, lengths, mask):
        h, pooled = self.convs(x, lengths)
        _, final = self.lstm(h, pooled)
        return final


class SpeechCBLAEncoder(SpeechEncoder):
    """S-CBLA: (a) the CNN channel and (b) Bi-LSTM + attention over time, run in parallel on the
    same frames; concat(a, b) -> dense ReLU is the utterance representation."""

    def __init__(self, speech_dim: int, max_frames: int, config: ModelConfig) -> None:
        super().__init__(speech_dim)
        self.cnn = ConvChannel(speech_dim, config)
        self.lstm = MaskedLSTM(speech_dim, config.speech_lstm_hidden, bidirectional=True)
        self.attention = AdditiveAttention(self.lstm.output_dim, config.attention_dim)
        self.dense, self.output_dim = _dense_stack(
            self.cnn.output_dim + self.attention.output_dim, (config.cbla_dense,), config.dropout
        )

    def encode(self, x, lengths, mask):
        a = self.cnn(x, lengths)
        outputs, _ = self.lstm(x, lengths)
        b, _ = self.attention(outputs, mask)
        return self.dense(torch.cat([a, b.to(a.dtype)], dim=-1))


SPEECH_ENCODERS: dict[str, type[SpeechEncoder]] = {
    "dnn": SpeechDNNEncoder,
    "cnn": SpeechCNNEncoder,
    "cl": SpeechCLEncoder,
    "cbla": SpeechCBLAEncoder,
}
