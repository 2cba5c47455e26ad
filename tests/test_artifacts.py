"""Run folders are checked before they are trusted (issue 8.7): every tampering is one ConfigError
naming the file, raised before anything large is allocated, and nothing loads that would predict NaN."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from tiny_corpus import LABELS, small_model_config

from emofusion.artifacts import META_FILE, WEIGHTS_FILE, load_trained
from emofusion.cli.main import main
from emofusion.errors import ConfigError
from emofusion.training.config import TrainConfig
from emofusion.training.trainer import train


@pytest.fixture(scope="module")
def good_run(tiny, tmp_path_factory):
    """A fusion model (speech statistics and a word-vector table both present), trained once."""
    out = tmp_path_factory.mktemp("good") / "run"
    train("M-CL-BL", tiny["utterances"], labels=LABELS, out_dir=out, cache=tiny["cache"], acoustic=tiny["acoustic"],
          text_config=tiny["text"], model_config=small_model_config(),
          train_config=TrainConfig(epochs=1, batch_size=8, precision="fp32"), progress=False)
    return out


@pytest.fixture
def run(good_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(good_run, copy)
    return copy


def _edit_meta(run, edit):
    meta = json.loads((run / META_FILE).read_text())
    edit(meta)
    (run / META_FILE).write_text(json.dumps(meta))


def _edit_weights(run, edit):
    state = load_file(str(run / WEIGHTS_FILE))
    edit(state)
    save_file(state, str(run / WEIGHTS_FILE))


def test_the_untampered_folder_loads(run):
    assert load_trained(run).name == "M-CL-BL"


@pytest.mark.parametrize(
    "text, message",
    [("{not json", "not valid JSON"), ("[1, 2]", "expected a JSON object, got list"), ("\udcff", "not valid JSON")],
    ids=["broken", "a list", "not utf-8"],
)
def test_model_json_that_is_not_a_json_object(run, text, message):
    (run / META_FILE).write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(ConfigError, match=message) as info:
        load_trained(run)
    assert META_FILE in str(info.value)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda m: m.pop("labels"), "missing labels"),
        (lambda m: m.update(name="X-NET"), "unknown model 'X-NET'"),
        (lambda m: m.update(labels=["ang", "ang"]), "labels must be two or more distinct names"),
        (lambda m: m["model_config"].update(text_lstm_hidden="wide"), "text_lstm_hidden"),
        (lambda m: m["pipeline"].pop("modalities"), "pipeline state is damaged"),
    ],
    ids=["missing key", "unknown model", "duplicate labels", "bad config value", "damaged pipeline"],
)
def test_missing_or_malformed_entries_are_named(run, edit, message):
    _edit_meta(run, edit)
    with pytest.raises(ConfigError, match=message):
        load_trained(run)


def test_truncated_weights(run):
    data = (run / WEIGHTS_FILE).read_bytes()
    (run / WEIGHTS_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(ConfigError, match=r"model.safetensors: not a complete safetensors file"):
        load_trained(run)


def test_weights_missing_a_tensor(run):
    _edit_weights(run, lambda s: s.pop("classifier.3.weight" if "classifier.3.weight" in s else sorted(s)[-1]))
    with pytest.raises(ConfigError, match="does not fit the M-CL-BL that model.json describes: missing"):
        load_trained(run)


def test_weights_of_another_shape(run):
    # Five labels where the output layer has four rows.
    _edit_meta(run, lambda m: m.update(labels=[*LABELS, "hap"]))
    with pytest.raises(ConfigError, match=r"is \[4.*\], the model needs \[5"):
        load_trained(run)


@pytest.mark.parametrize(
    "edit",
    [lambda m: m.update(embedding_shape=[1_000_000_000, 300]),
     lambda m: m["model_config"].update(text_lstm_hidden=200_000)],
    ids=["embedding_shape of 1.2 TB", "LSTM width of 640 GB"],
)
def test_a_model_json_asking_for_gigabytes_is_refused_before_allocating(run, edit):
    # These used to be allocated (or fail to be) before any check: a raw RuntimeError at best.
    _edit_meta(run, edit)
    with pytest.raises(ConfigError, match="does not match the weights|does not fit"):
        load_trained(run)


def test_max_frames_asking_for_gigabytes_is_refused(run):
    _edit_meta(run, lambda m: m["pipeline"]["acoustic"].update(max_frames=100_000_000))
    with pytest.raises(ConfigError, match="max_frames 100,000,000 is above the limit"):
        load_trained(run)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda p: p.update(std=[0.0] * 34), "std must be positive"),
        (lambda p: p.update(std=[float("nan")] * 34), "std must be 34 finite numbers"),
        (lambda p: p.update(mean=[0.0] * 33), "mean must be 34 finite numbers"),
    ],
    ids=["zero std", "NaN std", "short mean"],
)
def test_feature_statistics_that_would_give_nan_are_refused(run, edit, message):
    _edit_meta(run, lambda m: edit(m["pipeline"]))
    with pytest.raises(ConfigError, match=message):
        load_trained(run)


def test_non_finite_weights_are_refused(run):
    def poison(state):
        name = next(k for k in sorted(state) if "lstm" in k and "weight" in k)
        state[name][0, 0] = float("nan")

    _edit_weights(run, poison)
    with pytest.raises(ConfigError, match="contain NaN or infinite values"):
        load_trained(run)


def test_predict_json_on_a_tampered_folder_is_one_error_line_never_nan(run, tiny, capsys):
    # A zero std used to be served as probabilities of NaN (`null`, or invalid JSON from --json).
    _edit_meta(run, lambda m: m["pipeline"].update(std=[0.0] * 34))
    utterance = tiny["utterances"][0]
    code = main(["predict", str(utterance.audio), "--text", utterance.text, "--model", str(run), "--json"])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert "model.json" in captured.err and "std must be positive" in captured.err


def test_weights_that_overflow_give_an_error_never_nan_probabilities(run, tiny, capsys):
    # Finite but absurd weights pass every load check, yet overflow the logits to inf: softmax is
    # then NaN, which used to be printed (and served) as probabilities.
    def overflow(state):
        for name, value in state.items():
            if name.startswith("head.") and value.dim() == 2:
                value.fill_(3e38)  # ReLU keeps them positive: the logits reach +inf, softmax computes inf - inf

    _edit_weights(run, overflow)
    load_trained(run)  # loads: every value is finite
    utterance = tiny["utterances"][0]
    code = main(["predict", str(utterance.audio), "--text", utterance.text, "--model", str(run), "--json"])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert "non-finite probabilities" in captured.err
