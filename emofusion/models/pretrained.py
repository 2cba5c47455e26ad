"""Network branches for the frozen pretrained encoders' outputs (S-WT, T-ST, M-WT-ST, M-CBLA-ST).

The pretrained encoders themselves (Whisper tiny.en, all-MiniLM-L6-v2) run in the feature stage
(:mod:`emofusion.features.encoders`) and are never trained; these modules turn what they produce into the
fixed-size vector a head (softmax layer or the paper's fusion DNN) reads. Neither has trainable
weights: on ~450-8,000 training utterances, a linear or fusion head on a frozen representation
generalised as well as attention or recurrent heads and fine-tuned layers in our validation runs
(docs/results/encoders/), at a fraction of the cost.
"""

from __future__ import annotations

import torch
from torch import nn

from emofusion.models.masking import masked_mean
from emofusion.models.speech import SpeechEncoder

# Keeps the std's gradient finite on a constant feature (sqrt'(0) is infinite).
_VAR_FLOOR = 1e-6


class PooledFramesEncoder(SpeechEncoder):
    """Pretrained-encoder frames (B, T, D) -> [mean, std] over each clip's real frames (B, 2D).

    Mean and standard deviation over time: the usual utterance-level statistics pooling. Measured
    against attention pooling on RAVDESS (nested inner folds), it was as good or better.
    """

    def __init__(self, speech_dim: int) -> None:
        super().__init__(speech_dim)
        self.output_dim = 2 * speech_dim

    def encode(self, x, lengths, mask):
        mean = masked_mean(x, mask)
        var = masked_mean((x - mean.unsqueeze(1)).pow(2), mask)
        return torch.cat([mean, var.clamp_min(_VAR_FLOOR).sqrt()], dim=-1)


class SentenceVectorEncoder(nn.Module):
    """A transcript's sentence vector (B, D), already pooled and normalised by the text encoder.

    The identity, kept as a module so a model has a text branch with an ``output_dim`` like the
    Bi-LSTM's, and so the classifier knows this branch reads vectors rather than word ids.
    """

    input_kind = "vectors"

    def __init__(self, input_dim: int) -> None:
        super().__init__()
        if not isinstance(input_dim, int) or input_dim < 1:
            raise ValueError(f"input_dim must be a positive integer, got {input_dim!r}")
        self.input_dim = input_dim
        self.output_dim = input_dim

    def forward(self, vectors: torch.Tensor) -> torch.Tensor:
        return vectors
