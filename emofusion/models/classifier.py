"""The model wrapper the trainer sees: encoder(s) + head, one calling convention for all eleven.

``model(speech=, speech_lengths=, tokens=, text_lengths=) -> logits (B, n_classes)``; a model reads
only the modalities it has (``model.modalities``) and requires those. A model whose text branch
reads sentence vectors (T-ST, M-*-ST) takes ``text_vectors=`` (B, D) instead of tokens.
"""

from __future__ import annotations

import torch
from torch import nn

from emofusion.models.masking import check_lengths, recording_graph
from emofusion.models.pretrained import SentenceVectorEncoder
from emofusion.models.speech import SpeechEncoder
from emofusion.models.text import TextEncoder


class EmotionClassifier(nn.Module):
    """Base of every Table-1 model: input checks, the L2 term R(w) and the modality bookkeeping.

    Subclasses set ``speech_encoder`` / ``text_encoder`` (or None) and implement ``classify``.
    """

    name: str
    uses_l2: bool

    def __init__(self, name: str, *, uses_l2: bool) -> None:
        super().__init__()
        self.name = name
        self.uses_l2 = uses_l2

    @property
    def modalities(self) -> frozenset[str]:
        present = {"speech": getattr(self, "speech_encoder", None), "text": getattr(self, "text_encoder", None)}
        return frozenset(k for k, v in present.items() if v is not None)

    def forward(
        self,
        speech: torch.Tensor | None = None,
        speech_lengths: torch.Tensor | None = None,
        tokens: torch.Tensor | None = None,
        text_lengths: torch.Tensor | None = None,
        text_vectors: torch.Tensor | None = None,
        *,
        text_features: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits (B, n_classes). ``text_features``: rows of `encode_text` to use instead of ``tokens``."""
        features = []
        if "text" in self.modalities:
            if text_features is None:
                text_features = self.encode_text(tokens, text_lengths, text_vectors=text_vectors)
            elif text_features.dim() != 2 or text_features.shape[1] != self.text_encoder.output_dim:
                raise ValueError(
                    f"{self.name}: text_features must have shape (B, {self.text_encoder.output_dim}), "
                    f"got {tuple(text_features.shape)}"
                )
            features.append(text_features)
        if "speech" in self.modalities:
            features.append(self.speech_encoder(*self._check_speech(speech, speech_lengths)))
        if not recording_graph() and len({f.shape[0] for f in features}) > 1:
            raise ValueError(f"speech and text batches differ in size: {[f.shape[0] for f in features]}")
        return self.classify(features)

    def encode_text(
        self,
        tokens: torch.Tensor | None = None,
        text_lengths: torch.Tensor | None = None,
        *,
        text_vectors: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The text encoder's features H, one row per transcript.

        The windows of one long recording share one transcript: encoding it once and passing its row
        to `forward` (``text_features``) for every window gives the same logits at the cost of one
        text pass instead of one per window.
        """
        if self.reads_text_vectors:
            return self.text_encoder(self._check_text_vectors(text_vectors))
        return self.text_encoder(*self._check_text(tokens, text_lengths))

    @property
    def reads_text_vectors(self) -> bool:
        """True when the text branch reads sentence vectors (``text_vectors``) instead of word ids."""
        return getattr(getattr(self, "text_encoder", None), "input_kind", None) == "vectors"

    def _check_text_vectors(self, vectors):
        dim = self.text_encoder.input_dim
        if vectors is None:
            raise ValueError(f"{self.name} needs text_vectors (B, {dim}) of sentence vectors")
        if vectors.dim() != 2 or vectors.shape[1] != dim or not vectors.dtype.is_floating_point:
            raise ValueError(
                f"{self.name}: text_vectors must be a float tensor (B, {dim}), got {vectors.dtype} {tuple(vectors.shape)}"
            )
        return vectors

    def classify(self, features: list[torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def _check_speech(self, speech, lengths):
        if speech is None:
            raise ValueError(f"{self.name} needs speech (B, T, {self.speech_encoder.speech_dim})")
        dim = self.speech_encoder.speech_dim
        if speech.dim() != 3 or speech.shape[2] != dim or speech.shape[1] < 1:
            raise ValueError(f"{self.name}: speech must have shape (B, T>=1, {dim}), got {tuple(speech.shape)}")
        # Lengths may arrive on another device than the data (e.g. CPU); masks are built beside the data.
        return speech, check_lengths(lengths, speech.shape[0], speech.shape[1], "speech").to(speech.device)

    def _check_text(self, tokens, lengths):
        if tokens is None:
            raise ValueError(f"{self.name} needs tokens (B, L) of word ids")
        integer = not tokens.dtype.is_floating_point and tokens.dtype != torch.bool
        if tokens.dim() != 2 or tokens.shape[1] < 1 or not integer:
            raise ValueError(
                f"{self.name}: tokens must be an integer tensor (B, L>=1), got {tokens.dtype} {tuple(tokens.shape)}"
            )
        return tokens, check_lengths(lengths, tokens.shape[0], tokens.shape[1], "text").to(tokens.device)

    # --- L2 regularisation R(w) = sum w^2 (the *R models) ---

    def l2_parameters(self) -> list[tuple[str, nn.Parameter]]:
        """Parameters R(w) covers: every trainable weight matrix/kernel, no biases.

        Biases are left out as is usual for L2 (they do not scale the input, so shrinking them buys
        no smoothness); the frozen word vectors are not trained and so not regularised.
        """
        return [(n, p) for n, p in self.named_parameters() if p.requires_grad and "bias" not in n.rsplit(".", 1)[-1]]

    def l2_penalty(self) -> torch.Tensor:
        """R(w) = sum of squared weights (the trainer multiplies by ``l2_lambda`` for uses_l2 models)."""
        params = [p for _, p in self.l2_parameters()]
        return torch.stack([p.float().pow(2).sum() for p in params]).sum()


class UnimodalClassifier(EmotionClassifier):
    """One encoder + softmax classifier (dropout -> linear; softmax lives in the loss)."""

    def __init__(
        self, name: str, encoder: SpeechEncoder | TextEncoder | SentenceVectorEncoder, n_classes: int, dropout: float
    ) -> None:
        super().__init__(name, uses_l2=False)
        if isinstance(encoder, SpeechEncoder):
            self.speech_encoder, self.text_encoder = encoder, None
        elif isinstance(encoder, (TextEncoder, SentenceVectorEncoder)):
            self.speech_encoder, self.text_encoder = None, encoder
        else:
            raise TypeError(f"not a speech or text encoder: {type(encoder).__name__}")
        self.head_input_dim = encoder.output_dim
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(encoder.output_dim, n_classes))

    def classify(self, features):
        return self.head(features[0])
