import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from tiny_corpus import LABELS, small_model_config

from emofusion.artifacts import WEIGHTS_FILE
from emofusion.errors import ConfigError
from emofusion.features.acoustic import fit_frames
from emofusion.training.config import TrainConfig
from emofusion.training.trainer import CHECKPOINT_FILE, train

SMALL = small_model_config()


def _train(tiny, out, *, model="M-CBLA-BLR", epochs=4, seed=0, utts=None, **kwargs):
    return train(
        model, utts or tiny["utterances"], labels=LABELS, out_dir=out, cache=tiny["cache"],
        acoustic=tiny["acoustic"], text_config=tiny["text"], model_config=SMALL,
        train_config=kwargs.pop("train_config", TrainConfig(epochs=epochs, batch_size=8, precision="fp32")),
        seed=seed, progress=False, **kwargs,
    )


def _weights(run_dir):
    return load_file(str(run_dir / WEIGHTS_FILE))


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_same_seed_same_weights_and_other_seed_differs(tiny, tmp_path):
    _train(tiny, tmp_path / "a", seed=3)
    _train(tiny, tmp_path / "b", seed=3)
    _train(tiny, tmp_path / "c", seed=4)
    assert _same(_weights(tmp_path / "a"), _weights(tmp_path / "b"))
    assert not _same(_weights(tmp_path / "a"), _weights(tmp_path / "c"))


def test_interrupted_run_resumes_to_the_uninterrupted_result(tiny, tmp_path):
    _train(tiny, tmp_path / "full", epochs=4)

    class Interrupt(Exception):
        pass

    def stop_after_two(epoch, stats):
        if epoch == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        _train(tiny, tmp_path / "resumed", epochs=4, on_epoch_end=stop_after_two)
    assert (tmp_path / "resumed" / CHECKPOINT_FILE).is_file()
    assert not (tmp_path / "resumed" / WEIGHTS_FILE).exists()
    seen = []
    trained = _train(tiny, tmp_path / "resumed", epochs=4, on_epoch_end=lambda e, s: seen.append(e))
    assert seen == [3, 4]  # only the missing epochs ran
    assert [h["epoch"] for h in trained.meta["history"]] == [1, 2, 3, 4]
    assert _same(_weights(tmp_path / "full"), _weights(tmp_path / "resumed"))
    assert not (tmp_path / "resumed" / CHECKPOINT_FILE).exists()


def test_finished_run_is_reused_and_changed_config_is_refused_unless_overwrite(tiny, tmp_path):
    _train(tiny, tmp_path / "r", epochs=2)
    before = _weights(tmp_path / "r")
    epochs_run = []
    _train(tiny, tmp_path / "r", epochs=2, on_epoch_end=lambda e, s: epochs_run.append(e))
    assert epochs_run == []
    # Re-training into the folder with another configuration used to replace the model silently.
    with pytest.raises(ConfigError, match=r"holds a trained model of a different configuration "
                                          r"\(train_config.epochs 2 -> 3\).*--overwrite"):
        _train(tiny, tmp_path / "r", epochs=3, on_epoch_end=lambda e, s: epochs_run.append(e))
    assert epochs_run == [] and _same(before, _weights(tmp_path / "r"))
    trained = _train(tiny, tmp_path / "r", epochs=3, overwrite=True, on_epoch_end=lambda e, s: epochs_run.append(e))
    assert epochs_run == [1, 2, 3] and len(trained.meta["history"]) == 3


def test_l2_models_add_the_sum_of_squared_weights_to_the_loss(tiny, tmp_path):
    # Same seed, same data: M-CBLA-BL and M-CBLA-BLR differ only by the L2 term, so with a strong
    # lambda the R model's loss includes a large penalty and its weights end up smaller.
    strong = TrainConfig(epochs=3, batch_size=8, precision="fp32", l2_lambda=1e-2)
    plain = _train(tiny, tmp_path / "bl", model="M-CBLA-BL", train_config=strong)
    reg = _train(tiny, tmp_path / "blr", model="M-CBLA-BLR", train_config=strong)
    assert not plain.model.uses_l2 and reg.model.uses_l2
    assert reg.meta["history"][0]["loss"] > plain.meta["history"][0]["loss"] + 1e-2 * 1.0
    assert reg.model.l2_penalty().item() < plain.model.l2_penalty().item()


def test_feature_normalisation_is_fitted_on_training_rows_only(tiny, tmp_path):
    train_rows = [u for u in tiny["utterances"] if u.session != "3"]
    trained = _train(tiny, tmp_path / "s", model="S-CNN", epochs=1, utts=train_rows)
    frames = tiny["cache"].get_many([u.audio for u in train_rows], progress=False)
    kept = []
    for u in train_rows:
        fitted, n = fit_frames(frames[str(u.audio)], tiny["acoustic"])
        kept.append(fitted[:n])
    expected = np.concatenate(kept).astype(np.float64)
    np.testing.assert_allclose(trained.pipeline.mean, expected.mean(0), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(trained.pipeline.std, expected.std(0), rtol=1e-5)


def test_model_without_its_modality_is_refused(tiny, tmp_path):
    speech_only = [u.__class__(u.id, u.audio, None, u.label, u.speaker, u.session) for u in tiny["utterances"]]
    with pytest.raises(ConfigError, match="T-BL needs text"):
        _train(tiny, tmp_path / "t", model="T-BL", utts=speech_only)
