"""The models' input checks guard eager calls and stay out of recorded graphs (ONNX, tracing)."""

import numpy as np
import pytest
import torch

from tiny_corpus import small_model_config

from emofusion.models import build_model
from emofusion.models.masking import recording_graph


def fusion_model():
    torch.manual_seed(0)
    table = torch.randn(30, 8)
    table[:2] = 0
    return build_model("M-CL-BLR", n_classes=4, embeddings=table, speech_shape=(40, 34), config=small_model_config()).eval()


def inputs(frames, words):
    rng = np.random.default_rng(len(frames) * 100 + len(words))
    speech = torch.from_numpy(rng.standard_normal((len(frames), max(frames), 34)).astype(np.float32))
    tokens = torch.from_numpy(rng.integers(2, 30, (len(words), max(words))))
    return speech, torch.tensor(frames), tokens, torch.tensor(words)


def test_eager_calls_still_check_their_inputs():
    model = fusion_model()
    speech, frames, tokens, words = inputs([5, 3], [4, 2])
    assert not recording_graph()
    with pytest.raises(ValueError, match="speech_lengths must lie in"):
        model(speech, torch.tensor([5, 0]), tokens, words)
    with pytest.raises(ValueError, match="token ids must lie in"):
        model(speech, frames, tokens.masked_fill(tokens > 0, 99), words)
    with pytest.raises(ValueError, match="batches differ in size"):
        model(speech[:1], frames[:1], tokens, words)


def test_a_traced_model_has_no_checks_and_generalises_to_other_lengths():
    model = fusion_model()
    seen = []

    class Probe(torch.nn.Module):  # records what recording_graph says inside a trace
        def forward(self, x):
            seen.append(recording_graph())
            return x

    torch.jit.trace(Probe(), torch.zeros(1), check_trace=False)
    assert seen == [True]
    with torch.no_grad():
        traced = torch.jit.trace(model, inputs([40, 17], [6, 4]), check_trace=False)
        for frames, words in (([1], [1]), ([3, 40, 2], [9, 1, 5])):
            args = inputs(frames, words)
            assert torch.allclose(traced(*args), model(*args), atol=1e-5)
