"""An encoder model's HeadConfig (dropout, weight decay, epochs) reaches its training; Table 1 has none."""

from __future__ import annotations

import json

import pytest
import torch

from tiny_corpus import LABELS, small_model_config

from emofusion.errors import ConfigError
from emofusion.models import ENCODER_MODEL_NAMES, MODEL_NAMES, MODEL_SPECS, HeadConfig, ModelConfig, build_model
from emofusion.training.config import TrainConfig
from emofusion.training.trainer import _fingerprint, _head_config, _identity, _optimizer, _with_head


def test_table_1_models_have_no_head_config_and_refuse_one():
    assert all(MODEL_SPECS[n].head is None for n in MODEL_NAMES)
    assert all(isinstance(MODEL_SPECS[n].head, HeadConfig) for n in ENCODER_MODEL_NAMES)
    with pytest.raises(ConfigError, match="M-CBLA-BLR is a Table-1 model"):
        _head_config("M-CBLA-BLR", HeadConfig(dropout=0.5))
    assert _head_config("M-CBLA-BLR", None) is None
    assert _head_config("S-WT", None) is MODEL_SPECS["S-WT"].head
    override = HeadConfig(epochs=3)
    assert _head_config("S-WT", override) is override


@pytest.mark.parametrize("kwargs, message", [
    ({"dropout": 1.0}, "head dropout must be in"),
    ({"weight_decay": -0.1}, "head weight_decay must be a number >= 0"),
    ({"weight_decay": True}, "head weight_decay must be a number >= 0"),
    ({"epochs": 0}, "head epochs must be a positive integer"),
    ({"epochs": 2.5}, "head epochs must be a positive integer"),
])
def test_bad_head_values_are_refused_by_name(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        HeadConfig(**kwargs)


def test_head_config_round_trips_through_a_dict():
    head = HeadConfig(dropout=0.5, weight_decay=0.1, epochs=40)
    assert HeadConfig.from_dict(json.loads(json.dumps(head.to_dict()))) == head
    with pytest.raises(ConfigError, match="unknown HeadConfig field"):
        HeadConfig.from_dict({"learning_rate": 1.0})


def test_the_head_sets_dropout_and_epochs_of_the_configs_the_run_uses():
    model_config, train_config = ModelConfig(), TrainConfig()
    same = _with_head(HeadConfig(), model_config, train_config)
    assert same == (model_config, train_config)  # None keeps the run's values
    m, t = _with_head(HeadConfig(dropout=0.5, epochs=60), model_config, train_config)
    assert (m.dropout, t.epochs) == (0.5, 60)
    assert m.fusion_hidden == model_config.fusion_hidden and t.learning_rate == train_config.learning_rate
    assert _with_head(None, model_config, train_config) == (model_config, train_config)


def test_weight_decay_shrinks_the_heads_weight_matrices_and_leaves_biases_alone():
    torch.manual_seed(0)
    model = build_model("S-WT", n_classes=4, speech_shape=(1500, 384))
    lr = TrainConfig().learning_rate
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = _optimizer(model, TrainConfig(), HeadConfig(weight_decay=0.5))
    for p in model.parameters():
        p.grad = torch.zeros_like(p)  # the loss's gradient is zero: only the decay acts
    optimizer.step()
    # Adam's first step moves each parameter by lr * g / (|g| + eps), g = 0.5 * w: ~lr towards zero.
    weight, bias = model.head[1].weight, model.head[1].bias
    w0 = before["head.1.weight"]
    g = 0.5 * w0
    torch.testing.assert_close(weight.detach(), w0 - lr * g / (g.abs() + 1e-8), atol=1e-7, rtol=0)
    large = w0.abs() > lr  # (smaller ones step past zero)
    assert (weight.detach().abs()[large] < w0.abs()[large]).all()
    torch.testing.assert_close(bias.detach(), before["head.1.bias"])
    # Without decay, the same zero gradient moves nothing.
    plain = _optimizer(model, TrainConfig(), HeadConfig())
    after = weight.detach().clone()
    plain.step()
    torch.testing.assert_close(weight.detach(), after)


def test_a_default_head_keeps_the_runs_fingerprint_and_weight_decay_changes_it(tiny):
    data = tiny["utterances"]
    args = ("S-WT", data, LABELS, 0, "fp32", tiny["acoustic"], tiny["text"], ModelConfig(), TrainConfig())
    plain = _fingerprint(_identity(*args), data)
    assert _fingerprint(_identity(*args, HeadConfig()), data) == plain  # as without a head: Table-1 runs unchanged
    decayed = _identity(*args, HeadConfig(weight_decay=0.1))
    assert decayed["head.weight_decay"] == 0.1 and _fingerprint(decayed, data) != plain


@pytest.mark.slow
def test_training_uses_and_records_the_head(encoders_extra, offline, tiny, tmp_path):
    from emofusion.artifacts import load_trained
    from emofusion.training.trainer import train

    head = HeadConfig(dropout=0.5, weight_decay=0.1, epochs=3)
    trained = train(
        "S-WT", tiny["utterances"], labels=LABELS, out_dir=tmp_path / "s-wt", cache=tiny["cache"],
        acoustic=tiny["acoustic"], model_config=small_model_config(),
        train_config=TrainConfig(epochs=25, batch_size=8, precision="fp32"), seed=0, progress=False, head_config=head,
    )
    meta = json.loads((tmp_path / "s-wt" / "model.json").read_text())
    assert len(meta["history"]) == meta["train_config"]["epochs"] == 3  # the head's epochs, not the run's 25
    assert meta["model_config"]["dropout"] == 0.5 and trained.model.head[0].p == 0.5
    assert meta["head_config"] == head.to_dict()
    assert load_trained(tmp_path / "s-wt").model.head[0].p == 0.5  # rebuilt as trained
