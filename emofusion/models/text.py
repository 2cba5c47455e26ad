"""Text encoders: word ids + lengths -> one feature vector per transcript (T-LSTM, T-BL).

The word vectors are a frozen pretrained table (GloVe) kept inside the model, so a saved model
carries its own vocabulary vectors. The LSTM never reads past a transcript's length
(`MaskedLSTM`), so padding to the batch's longest transcript and the paper's padding to 500 give the same result.
"""

from __future__ import annotations

import torch
from torch import nn

from emofusion.models.layers import MaskedLSTM
from emofusion.models.masking import recording_graph


class TextEncoder(nn.Module):
    """Frozen embedding -> length-aware (Bi-)LSTM -> final hidden states.

    Final states, not pooling: for the forward direction that is the state after the last real
    word, for the backward one the state after the first word, which is what Keras' LSTM (the
    paper's likely toolkit) returns and needs no extra masking.
    """

    def __init__(self, embeddings: torch.Tensor, hidden: int, *, bidirectional: bool) -> None:
        super().__init__()
        if embeddings.dim() != 2 or embeddings.shape[0] < 2 or embeddings.shape[1] < 1:
            raise ValueError(f"embeddings must be a (vocab >= 2, dim) matrix, got shape {tuple(embeddings.shape)}")
        # A private copy: from_pretrained would otherwise alias the caller's tensor, and anything
        # done to one model's table (or the caller's) would silently change the others.
        table = embeddings.detach().to(torch.float32, copy=True)
        self.embedding = nn.Embedding.from_pretrained(table, freeze=True, padding_idx=0)
        self.lstm = MaskedLSTM(embeddings.shape[1], hidden, bidirectional=bidirectional)
        self.output_dim = self.lstm.output_dim

    @property
    def vocab_size(self) -> int:
        return self.embedding.num_embeddings

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        # Ids in the padding beyond each length are never read, so only real ids are checked.
        mask = torch.arange(tokens.shape[1], device=tokens.device).unsqueeze(0) < lengths.unsqueeze(1)
        if not recording_graph():  # a value check: eager calls only (see recording_graph)
            self._check_ids(tokens[mask])
        _, final = self.lstm(self.embedding(tokens.masked_fill(~mask, 0)), lengths)
        return final

    def _check_ids(self, real: torch.Tensor) -> None:
        if real.numel() and (int(real.min()) < 0 or int(real.max()) >= self.vocab_size):
            raise ValueError(
                f"token ids must lie in [0, {self.vocab_size}) (the embedding table), "
                f"got min {int(real.min())}, max {int(real.max())}"
            )


class TextLSTMEncoder(TextEncoder):
    """T-LSTM's encoder: unidirectional LSTM; the representation is its last state."""

    def __init__(self, embeddings: torch.Tensor, hidden: int) -> None:
        super().__init__(embeddings, hidden, bidirectional=False)


class TextBiLSTMEncoder(TextEncoder):
    """T-BL's encoder, and H in every fusion model: Bi-LSTM, both directions' final states."""

    def __init__(self, embeddings: torch.Tensor, hidden: int) -> None:
        super().__init__(embeddings, hidden, bidirectional=True)


TEXT_ENCODERS: dict[str, type[TextEncoder]] = {"lstm": TextLSTMEncoder, "bl": TextBiLSTMEncoder}
