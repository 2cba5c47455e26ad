"""One tiny-data run per model family: the whole path (features -> batches -> model -> loss ->
optimiser -> saved model -> scoring) must learn a small corpus it can separate perfectly."""

import pytest

from tiny_corpus import LABELS

from emofusion.artifacts import load_trained
from emofusion.experiments.scoring import score
from emofusion.models import MODEL_NAMES, ModelConfig
from emofusion.training.config import TrainConfig
from emofusion.training.trainer import train


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_model_overfits_tiny_corpus(tiny, tmp_path, model):
    epochs = 25
    utts = tiny["utterances"]
    config = TrainConfig(epochs=epochs, batch_size=8, learning_rate=3e-3, precision="fp32")
    # The paper's layer kinds and wiring at a quarter of the widths: same code path, seconds not minutes.
    small = ModelConfig(
        dnn_hidden=(128, 64, 32, 16), cnn_filters=(16, 16, 32, 32), speech_lstm_hidden=32, attention_dim=16,
        cbla_dense=32, cnn_dense=32, text_lstm_hidden=32, fusion_hidden=(64, 32),
    )
    trained = train(
        model, utts, labels=LABELS, out_dir=tmp_path / model, cache=tiny["cache"],
        acoustic=tiny["acoustic"], text_config=tiny["text"], model_config=small, train_config=config, seed=0, progress=False,
    )
    history = trained.meta["history"]
    assert len(history) == epochs
    assert history[-1]["loss"] < history[0]["loss"] / 3
    metrics, _ = score(trained, utts, cache=tiny["cache"], progress=False)
    assert metrics.wa == 1.0, metrics.to_json()
    # The saved folder reloads to the same predictions.
    again, _ = score(load_trained(tmp_path / model), utts, cache=tiny["cache"], progress=False)
    assert (again.counts == metrics.counts).all()
