"""Shapes, R(w), bf16 autocast, and that each model family can actually learn."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from emofusion.models import MODEL_NAMES, ModelConfig, build_model
from emofusion.precision import bf16_support

TINY = ModelConfig(
    cnn_filters=(8, 12, 16, 16), speech_lstm_hidden=16, attention_dim=8, cbla_dense=16, cnn_dense=16,
    text_lstm_hidden=16, fusion_hidden=(32, 16), dnn_hidden=(32, 16, 16, 8), dropout=0.0,
)  # fmt: skip
FRAMES = 20
torch.manual_seed(0)
EMB = torch.randn(60, 10)


def _model(name, config=TINY, seed=0):
    torch.manual_seed(seed)
    return build_model(name, n_classes=4, embeddings=EMB, speech_shape=(FRAMES, 34), config=config)


def _batch(n: int, seed: int = 0):
    """Random inputs with lengths from 1 to the maximum, padded at the end (zeros), plus labels."""
    g = torch.Generator().manual_seed(seed)
    speech_lengths = torch.randint(1, FRAMES + 1, (n,), generator=g)
    speech_lengths[0] = FRAMES
    text_lengths = torch.randint(1, 13, (n,), generator=g)
    speech = torch.randn(n, FRAMES, 34, generator=g)
    speech[torch.arange(FRAMES) >= speech_lengths.unsqueeze(1)] = 0
    tokens = torch.randint(1, 60, (n, int(text_lengths.max())), generator=g)
    tokens[torch.arange(tokens.shape[1]) >= text_lengths.unsqueeze(1)] = 0
    labels = torch.randint(0, 4, (n,), generator=g)
    inputs = dict(speech=speech, speech_lengths=speech_lengths, tokens=tokens, text_lengths=text_lengths)
    return inputs, labels


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_shapes_and_every_weight_gets_a_gradient(name):
    model = _model(name)
    inputs, _ = _batch(6)
    logits = model(**inputs)
    assert logits.shape == (6, 4) and logits.dtype == torch.float32
    logits.logsumexp(1).sum().backward()
    _assert_every_trainable_weight_has_a_gradient(model)


# bf16 autocast has no LSTM kernel on AVX2-only CPUs; there training runs in fp32 (emofusion.precision).
@pytest.mark.skipif(not bf16_support("cpu").runs, reason="bf16 autocast does not run on this CPU")
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_bf16_autocast_agrees_with_fp32_and_reaches_every_weight(name):
    model = _model(name).eval()
    inputs, _ = _batch(6)
    with torch.no_grad():
        fp32 = model(**inputs)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16 = model(**inputs)
    assert torch.isfinite(bf16).all()
    assert (bf16.float() - fp32).abs().max() < 0.1  # bf16 keeps ~3 significant digits
    model.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(**inputs).float().logsumexp(1).sum()
    loss.backward()
    _assert_every_trainable_weight_has_a_gradient(model)


def _assert_every_trainable_weight_has_a_gradient(model) -> None:
    for pname, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and p.grad.abs().sum() > 0, f"{pname} got no gradient"
        else:
            assert p.grad is None and pname.endswith("embedding.weight")


def _hand_l2(model) -> torch.Tensor:
    """R(w) written out per layer type: Linear/Conv1d kernels and LSTM input/recurrent matrices."""
    total = torch.zeros(())
    for module in model.modules():
        if isinstance(module, (torch.nn.Linear, torch.nn.Conv1d)):
            total = total + (module.weight**2).sum()
        elif isinstance(module, torch.nn.LSTM):
            total = total + (module.weight_ih_l0**2).sum() + (module.weight_hh_l0**2).sum()
    return total


@pytest.mark.parametrize("name", ["M-CBLA-BLR", "M-CL-BLR", "M-D-BL", "S-CNN", "T-LSTM"])
def test_l2_penalty_is_sum_of_squared_weights_without_biases_or_embeddings(name):
    model = _model(name)
    torch.testing.assert_close(model.l2_penalty(), _hand_l2(model))
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if pname.endswith("bias") or "bias_" in pname or "embedding" in pname:
                p.add_(5.0)  # biases and frozen word vectors are outside R(w)
    torch.testing.assert_close(model.l2_penalty(), _hand_l2(model))
    names = [n for n, _ in model.l2_parameters()]
    assert names and not any("bias" in n or "embedding" in n for n in names)
    # dR/dw = 2w
    model.zero_grad()
    model.l2_penalty().backward()
    w = dict(model.named_parameters())[names[0]]
    torch.testing.assert_close(w.grad, 2 * w.detach())


def test_l2_hand_value_on_a_tiny_case():
    model = _model("S-CNN")
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(0.5)
    n_weights = sum(p.numel() for n, p in model.named_parameters() if not n.endswith("bias"))
    torch.testing.assert_close(model.l2_penalty(), torch.tensor(0.25 * n_weights))


def _loss(model, inputs, labels):
    loss = F.cross_entropy(model(**inputs), labels)
    return loss + 1e-3 * model.l2_penalty() if model.uses_l2 else loss


@pytest.mark.parametrize("name", ["S-DNN", "S-CNN", "S-CL", "S-CBLA", "T-LSTM", "T-BL", "M-D-BL", "M-CBLA-BLR"])
def test_one_gradient_step_lowers_the_loss(name):
    model = _model(name).train()  # dropout is 0 in TINY, so train mode is deterministic
    inputs, labels = _batch(8, seed=1)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.05)
    before = _loss(model, inputs, labels)
    optimizer.zero_grad()
    before.backward()
    optimizer.step()
    with torch.no_grad():
        after = _loss(model, inputs, labels)
    assert after < before - 1e-4


@pytest.mark.parametrize("name", ["S-DNN", "S-CNN", "S-CL", "S-CBLA", "T-LSTM", "T-BL", "M-CL-BLR", "M-CBLA-BLR"])
def test_overfits_16_random_examples(name):
    model = _model(name, seed=2).train()
    inputs, labels = _batch(16, seed=3)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(100):
        optimizer.zero_grad()
        loss = _loss(model, inputs, labels)
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        predicted = model(**inputs).argmax(1)
    assert (predicted == labels).all(), f"{name}: {int((predicted == labels).sum())}/16 after 100 steps"
