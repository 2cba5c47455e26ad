"""Text features in one import: tokenizer, pretrained word vectors and the id/embedding encoder.

Each lives in its own module (``tokenizer``, ``word_vectors``, ``text_encoder``); this one only
re-exports them so callers need not know the split.
"""

from emofusion.features.text_encoder import OOV_POLICIES, TextConfig, TextEncoder
from emofusion.features.tokenizer import normalize, tokenize
from emofusion.features.word_vectors import DEFAULT_VECTORS, WordVectors

__all__ = [
    "DEFAULT_VECTORS",
    "OOV_POLICIES",
    "TextConfig",
    "TextEncoder",
    "WordVectors",
    "normalize",
    "tokenize",
]
