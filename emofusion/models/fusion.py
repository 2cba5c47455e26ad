"""Feature-level fusion (SPEC §5): V = [H, S] -> DNN 1024 -> 512 -> n_classes.

H is the text encoder's representation (T-BL's final Bi-LSTM states), S the speech encoder's
(S-DNN's 32-d top, S-CL's final Bi-LSTM states or S-CBLA's dense layer). Both encoders are the very
classes the unimodal models use; the fusion model is trained end to end from scratch.
"""

from __future__ import annotations

import torch
from torch import nn

from emofusion.models.classifier import EmotionClassifier
from emofusion.models.speech import SpeechEncoder
from emofusion.models.text import TextEncoder


class FusionHead(nn.Module):
    """The fusion DNN: (dropout -> dense -> ReLU) per hidden width, then dropout -> output layer."""

    def __init__(self, input_dim: int, hidden, n_classes: int, dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for width in hidden:
            layers += [nn.Dropout(dropout), nn.Linear(input_dim, width), nn.ReLU()]
            input_dim = width
        layers += [nn.Dropout(dropout), nn.Linear(input_dim, n_classes)]
        self.net = nn.Sequential(*layers)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        return self.net(v)


class FusionClassifier(EmotionClassifier):
    """Text encoder + speech encoder + FusionHead on their concatenated features."""

    def __init__(
        self,
        name: str,
        speech_encoder: SpeechEncoder,
        text_encoder: TextEncoder,
        n_classes: int,
        hidden,
        dropout: float,
        *,
        uses_l2: bool,
    ) -> None:
        super().__init__(name, uses_l2=uses_l2)
        self.speech_encoder = speech_encoder
        self.text_encoder = text_encoder
        self.head_input_dim = text_encoder.output_dim + speech_encoder.output_dim  # |V| = |H| + |S|
        self.head = FusionHead(self.head_input_dim, hidden, n_classes, dropout)

    def classify(self, features):
        text, speech = features  # EmotionClassifier.forward encodes text first: V = [H, S]
        return self.head(torch.cat([text, speech.to(text.dtype)], dim=-1))
