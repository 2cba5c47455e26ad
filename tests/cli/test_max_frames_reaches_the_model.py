"""Regression: `--max-frames` reached the features but not the model.

`build_model` had its own `max_frames=100` default and `train`/`load_trained` never passed the
pipeline's value, so `train --model S-DNN --max-frames 120` died with a traceback on the first
utterance over 100 frames, and `--max-frames 40` silently zero-padded every input to 100 frames.
Now every model is built from the pipeline's (max_frames, feature_dim).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import soundfile as sf
from safetensors.torch import load_file

from tiny_corpus import make_corpus, write_vectors

from emofusion.cli.main import main
from emofusion.features.acoustic import AcousticConfig, count_frames


@pytest.fixture(scope="module")
def long_corpus(tmp_path_factory):
    """Two sessions of 3-4 s tones (120-160 frames: longer than the old 100-frame default) and a 6 s clip."""
    root = tmp_path_factory.mktemp("long")
    make_corpus(root / "corpus", per_class_per_session=1, sessions=("1", "2"), seconds=(3.2, 4.0))
    t = np.arange(6 * 16000) / 16000
    sf.write(root / "six_seconds.wav", 0.4 * np.sin(2 * np.pi * 440 * t), 16000)
    return {"manifest": root / "corpus" / "manifest.csv", "vectors": write_vectors(root / "vectors.txt"),
            "cache": root / "cache", "clip": root / "six_seconds.wav"}


@pytest.mark.parametrize("model", ["S-DNN", "S-CBLA"])
@pytest.mark.parametrize("max_frames", [120, 40])
def test_train_and_predict_with_max_frames(long_corpus, tmp_path, capsys, model, max_frames):
    run = tmp_path / "run"
    code = main(["train", "--model", model, "--out", str(run), "--epochs", "1", "--max-frames", str(max_frames),
                 "--manifest", str(long_corpus["manifest"]), "--vectors", str(long_corpus["vectors"]),
                 "--cache", str(long_corpus["cache"]), "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert json.loads((run / "model.json").read_text())["pipeline"]["acoustic"]["max_frames"] == max_frames
    if model == "S-DNN":
        # The input layer is exactly the pipeline's matrix: max_frames x 34 inputs, no hidden padding.
        first = load_file(str(run / "model.safetensors"))["speech_encoder.dense.1.weight"]
        assert tuple(first.shape) == (512, max_frames * 34)
    capsys.readouterr()

    assert main(["predict", str(long_corpus["clip"]), "--model", str(run), "--json"]) == 0
    prediction = json.loads(capsys.readouterr().out)
    frames = count_frames(6 * 16000, AcousticConfig())
    assert prediction["windows"] == math.ceil(frames / max_frames)  # cut into windows of the model's size
    assert sum(prediction["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
