"""Registry: names, canonicalisation, errors, modality bookkeeping and encoder reuse."""

from __future__ import annotations

import pytest
import torch

from emofusion.errors import ConfigError
from emofusion.features.acoustic import AcousticConfig
from emofusion.models import (
    MODEL_NAMES, MODEL_SPECS, ModelConfig, build_model, canonical_name, modalities_of, model_summary,
)
from emofusion.models.classifier import UnimodalClassifier
from emofusion.models.fusion import FusionClassifier
from emofusion.models.speech import SpeechCBLAEncoder, SpeechCLEncoder, SpeechCNNEncoder, SpeechDNNEncoder
from emofusion.models.text import TextBiLSTMEncoder, TextLSTMEncoder

EMB = torch.randn(30, 8)
PAPER_SHAPE = AcousticConfig().input_shape  # the pipeline's default input: (100, 34)
SMALL = ModelConfig(
    cnn_filters=(4, 6, 8, 8), speech_lstm_hidden=8, attention_dim=4, cbla_dense=8, cnn_dense=8,
    text_lstm_hidden=8, fusion_hidden=(16, 8), dnn_hidden=(16, 8, 8, 4),
)  # fmt: skip

EXPECTED = {
    # name: (modalities, uses_l2, speech encoder class, text encoder class)
    "S-DNN": ({"speech"}, False, SpeechDNNEncoder, None),
    "S-CNN": ({"speech"}, False, SpeechCNNEncoder, None),
    "S-CL": ({"speech"}, False, SpeechCLEncoder, None),
    "S-CBLA": ({"speech"}, False, SpeechCBLAEncoder, None),
    "T-LSTM": ({"text"}, False, None, TextLSTMEncoder),
    "T-BL": ({"text"}, False, None, TextBiLSTMEncoder),
    "M-D-BL": ({"speech", "text"}, False, SpeechDNNEncoder, TextBiLSTMEncoder),
    "M-CL-BL": ({"speech", "text"}, False, SpeechCLEncoder, TextBiLSTMEncoder),
    "M-CL-BLR": ({"speech", "text"}, True, SpeechCLEncoder, TextBiLSTMEncoder),
    "M-CBLA-BL": ({"speech", "text"}, False, SpeechCBLAEncoder, TextBiLSTMEncoder),
    "M-CBLA-BLR": ({"speech", "text"}, True, SpeechCBLAEncoder, TextBiLSTMEncoder),
}


def test_names_are_table1_rows_in_order():
    assert MODEL_NAMES == tuple(EXPECTED)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_model_builds_with_the_right_parts(name):
    modalities, uses_l2, speech_cls, text_cls = EXPECTED[name]
    model = build_model(name, n_classes=5, embeddings=EMB, speech_shape=(12, 34), config=SMALL)
    assert model.name == name
    assert model.modalities == frozenset(modalities)
    assert model.uses_l2 is uses_l2
    assert type(model.speech_encoder) is speech_cls if speech_cls else model.speech_encoder is None
    assert type(model.text_encoder) is text_cls if text_cls else model.text_encoder is None
    assert isinstance(model, FusionClassifier if len(modalities) == 2 else UnimodalClassifier)
    assert model.head(torch.zeros(2, model.head_input_dim)).shape == (2, 5)


def test_fusion_reuses_the_unimodal_encoders_and_concatenates_their_widths():
    fusion = build_model("M-CBLA-BLR", n_classes=4, embeddings=EMB, speech_shape=(12, 34), config=SMALL)
    speech = build_model("S-CBLA", n_classes=4, speech_shape=(12, 34), config=SMALL)
    text = build_model("T-BL", n_classes=4, embeddings=EMB, config=SMALL)
    assert type(fusion.speech_encoder) is type(speech.speech_encoder)
    assert type(fusion.text_encoder) is type(text.text_encoder)
    # Same encoder class => same parameter names and shapes: unimodal weights load into the fusion branch.
    fusion.speech_encoder.load_state_dict(speech.speech_encoder.state_dict())
    fusion.text_encoder.load_state_dict(text.text_encoder.state_dict())
    # V = [H, S]: H = 2 * 8 (Bi-LSTM final states), S = cbla_dense = 8.
    assert fusion.head_input_dim == 2 * SMALL.text_lstm_hidden + SMALL.cbla_dense
    assert fusion.head.net[1].in_features == 24 and fusion.head.net[1].out_features == 16


def test_paper_widths_by_default():
    assert PAPER_SHAPE == (100, 34)
    model = build_model("M-D-BL", n_classes=4, embeddings=EMB, speech_shape=PAPER_SHAPE)
    dense = [m for m in model.speech_encoder.modules() if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in dense] == [512, 256, 128, 32]
    assert dense[0].in_features == 100 * 34  # the flattened (100, 34) matrix
    head = [m for m in model.head.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in head] == [(512 + 32, 1024), (1024, 512), (512, 4)]
    tl = build_model("T-LSTM", n_classes=4, embeddings=EMB)
    assert tl.text_encoder.output_dim == 256 and tl.text_encoder.lstm.backward_lstm is None


@pytest.mark.parametrize(
    "raw, canonical",
    [
        ("s_cbla", "S-CBLA"), ("S_CBLA", "S-CBLA"), ("M-CBLA-BLR", "M-CBLA-BLR"), (" m_d_bl ", "M-D-BL"),
        ("t-bl", "T-BL"),
    ],  # fmt: skip
)
def test_canonical_name(raw, canonical):
    assert canonical_name(raw) == canonical


@pytest.mark.parametrize("bad", ["S-CBLAX", "CBLA", "", "M-CBLA-BLRR"])
def test_unknown_name_lists_valid_names(bad):
    with pytest.raises(ConfigError, match="valid models: S-DNN, S-CNN.*M-CBLA-BLR"):
        canonical_name(bad)


@pytest.mark.parametrize("name", ["T-LSTM", "T-BL", "M-D-BL", "M-CBLA-BLR"])
def test_text_models_need_embeddings(name):
    with pytest.raises(ConfigError, match="embeddings="):
        build_model(name, n_classes=4, speech_shape=(12, 34))


@pytest.mark.parametrize("name", ["S-DNN", "S-CBLA", "M-D-BL", "M-CL-BLR"])
def test_speech_models_need_the_pipelines_input_shape(name):
    # No default that could disagree with the frames the pipeline produces.
    with pytest.raises(ConfigError, match=r"speech_shape=\(max_frames, features per frame\)"):
        build_model(name, n_classes=4, embeddings=EMB)
    for bad in [(12,), (0, 34), (12, 34.0), "12x34", (True, 34)]:
        with pytest.raises(ConfigError, match="speech_shape must be"):
            build_model(name, n_classes=4, embeddings=EMB, speech_shape=bad)


@pytest.mark.parametrize("frames, features", [(40, 34), (120, 34), (100, 13)])
def test_speech_shape_sizes_sdnn_input_and_every_speech_encoders_frame_width(frames, features):
    dnn = build_model("S-DNN", n_classes=4, speech_shape=(frames, features), config=SMALL)
    assert dnn.speech_encoder.dense[1].in_features == frames * features
    out = dnn(speech=torch.randn(2, frames, features), speech_lengths=torch.tensor([frames, 3]))
    assert out.shape == (2, 4)
    cbla = build_model("S-CBLA", n_classes=4, speech_shape=(frames, features), config=SMALL)
    assert cbla.speech_encoder.speech_dim == features


def test_modalities_come_from_the_spec_and_match_the_built_model():
    for name in MODEL_NAMES:  # Table 1; the encoder models: tests/encoders/test_encoder_models.py
        spec = MODEL_SPECS[name]
        assert modalities_of(name.lower().replace("-", "_")) == spec.modalities
        built = build_model(name, n_classes=4, speech_shape=(12, 34), embeddings=EMB, config=SMALL)
        assert built.modalities == spec.modalities == frozenset(EXPECTED[name][0])
    with pytest.raises(ConfigError, match="unknown model"):
        modalities_of("X-FOO")


def test_bad_build_arguments():
    with pytest.raises(ConfigError, match="n_classes"):
        build_model("S-CNN", n_classes=1, speech_shape=(12, 34))
    with pytest.raises(ConfigError, match="embeddings must be"):
        build_model("T-BL", n_classes=4, embeddings=torch.zeros(5))
    with pytest.raises(ConfigError, match="finite floating-point"):
        build_model("T-BL", n_classes=4, embeddings=torch.full((5, 3), float("nan")))
    with pytest.raises(ConfigError, match="ModelConfig"):
        build_model("S-CNN", n_classes=4, speech_shape=(12, 34), config={"dropout": 0.1})


def test_shape_placeholder_then_state_dict_restores_a_self_contained_model():
    trained = build_model("M-CL-BLR", n_classes=3, embeddings=EMB, speech_shape=(12, 34), config=SMALL).eval()
    restored = build_model("m_cl_blr", n_classes=3, embeddings=tuple(EMB.shape), speech_shape=(12, 34), config=SMALL).eval()
    assert not torch.equal(restored.text_encoder.embedding.weight, EMB)
    restored.load_state_dict(trained.state_dict())
    assert torch.equal(restored.text_encoder.embedding.weight, EMB)  # the word vectors travel in the state_dict
    inputs = dict(
        speech=torch.randn(2, 12, 34), speech_lengths=torch.tensor([12, 5]),
        tokens=torch.randint(1, 30, (2, 4)), text_lengths=torch.tensor([4, 2]),
    )  # fmt: skip
    assert torch.equal(trained(**inputs), restored(**inputs))


def test_model_config_round_trip_and_validation():
    cfg = ModelConfig(cnn_filters=(8, 16), cnn_kernels=(3, 5), cnn_pools=(2, 1), dropout=0.1)
    data = cfg.to_dict()
    assert data["cnn_filters"] == [8, 16]  # JSON-friendly lists
    assert ModelConfig.from_dict(data) == cfg
    with pytest.raises(ConfigError, match="unknown ModelConfig field.*'dropuot'"):
        ModelConfig.from_dict({"dropuot": 0.1})
    with pytest.raises(ConfigError, match="equally long"):
        ModelConfig(cnn_filters=(8, 16), cnn_kernels=(3,), cnn_pools=(1, 1))
    with pytest.raises(ConfigError, match="odd"):
        ModelConfig(cnn_kernels=(5, 4, 3, 3))
    with pytest.raises(ConfigError, match="dropout"):
        ModelConfig(dropout=1.0)
    with pytest.raises(ConfigError, match="text_lstm_hidden"):
        ModelConfig(text_lstm_hidden=0)


def test_model_summary_counts_parameters():
    model = build_model("T-BL", n_classes=4, embeddings=EMB, config=SMALL)
    text = model_summary(model)
    lstm = 2 * (4 * 8 * (8 + 8) + 2 * 4 * 8)  # two directions: W_ih, W_hh, b_ih, b_hh
    head = 16 * 4 + 4
    frozen = 30 * 8
    total_line = [line for line in text.splitlines() if line.startswith("total")][0]
    assert total_line.split()[1:] == [f"{lstm + head:,}", f"{frozen:,}", f"{lstm - 2 * 64 + 16 * 4:,}"]


def test_model_keeps_a_private_copy_of_the_word_vectors():
    """Regression: from_pretrained aliased the caller's table, so editing one model's (or the
    caller's) vectors silently changed every model built from it."""
    table = torch.randn(30, 8)
    model = build_model("T-BL", n_classes=4, embeddings=table, config=SMALL)
    with torch.no_grad():
        model.text_encoder.embedding.weight.add_(1.0)
    assert torch.equal(table + 1.0, model.text_encoder.embedding.weight)
    assert not torch.equal(table, model.text_encoder.embedding.weight)


def test_a_branch_key_outside_the_papers_networks_is_a_frozen_encoder_sized_by_the_pipeline():
    from emofusion.models import ENCODER_MODEL_NAMES, encoder_model
    from emofusion.models.pretrained import PooledFramesEncoder, SentenceVectorEncoder

    # Any key not among the paper's networks: the speech branch pools its frames (mean, std), the
    # text branch reads its vector; the widths are the pipeline's, so a 512-wide encoder needs no code.
    name, spec = encoder_model("newenc", "newtext")
    assert name == "M-NEWENC-NEWTEXT" and spec.frozen_encoders == ("newenc", "newtext") and spec.balanced_loss
    for model_name in ENCODER_MODEL_NAMES:
        built = build_model(model_name, n_classes=4, speech_shape=(1500, 512), text_vector_dim=48)
        s, t = MODEL_SPECS[model_name].speech, MODEL_SPECS[model_name].text
        if s in MODEL_SPECS[model_name].frozen_encoders:
            assert type(built.speech_encoder) is PooledFramesEncoder and built.speech_encoder.output_dim == 1024
        if t in MODEL_SPECS[model_name].frozen_encoders:
            assert type(built.text_encoder) is SentenceVectorEncoder and built.text_encoder.output_dim == 48
    # The paper's networks keep their classes inside an encoder model (M-CBLA-ST's speech branch).
    assert type(build_model("M-CBLA-ST", n_classes=4, speech_shape=(12, 34), text_vector_dim=8, config=SMALL).speech_encoder) is SpeechCBLAEncoder
