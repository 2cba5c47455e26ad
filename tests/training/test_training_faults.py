"""Training under the faults users met: no bf16 on the CPU, a damaged feature cache or checkpoint,
a diverging loss, an output folder that holds another run, bad arguments."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from tiny_corpus import LABELS, small_model_config

from emofusion import precision
from emofusion.artifacts import META_FILE, WEIGHTS_FILE
from emofusion.errors import ConfigError, TrainingError
from emofusion.features.cache import FeatureCache
from emofusion.training.config import TrainConfig
from emofusion.training.trainer import CHECKPOINT_FILE, train

SMALL = small_model_config()


@pytest.fixture(autouse=True)
def fresh_precision_state(monkeypatch):
    monkeypatch.delenv(precision.FORCE_ENV, raising=False)
    monkeypatch.setattr(precision, "_announced", set())


def _train(tiny, out, *, model="S-CNN", epochs=2, cache=None, **config):
    kwargs = {k: config.pop(k) for k in ("on_epoch_end", "overwrite") if k in config}
    config.setdefault("precision", "fp32")
    return train(
        model, tiny["utterances"], labels=LABELS, out_dir=out, cache=cache or tiny["cache"],
        acoustic=tiny["acoustic"], text_config=tiny["text"], model_config=SMALL,
        train_config=TrainConfig(epochs=epochs, batch_size=8, **config), seed=0, progress=False, **kwargs,
    )


def _weights(run_dir):
    return load_file(str(run_dir / WEIGHTS_FILE))


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# --- precision (issue 7.1) ---------------------------------------------------------------------


def test_default_precision_trains_in_fp32_where_bf16_does_not_run_and_records_it(tiny, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(precision.FORCE_ENV, "unsupported")
    trained = _train(tiny, tmp_path / "r", model="M-CL-BL", epochs=1, precision="auto")
    meta = json.loads((tmp_path / "r" / META_FILE).read_text())
    assert meta["precision"] == "fp32" and meta["train_config"]["precision"] == "auto"
    assert meta["hardware"]["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert meta["hardware"]["bf16"] == "unsupported"
    assert trained.meta["precision"] == "fp32"
    assert "training in fp32" in capsys.readouterr().err


def test_auto_trains_in_bf16_where_it_is_native_and_records_it(tiny, tmp_path, monkeypatch):
    # S-CNN has no LSTM, so its bf16 autocast runs on every CPU, AVX2-only ones included.
    monkeypatch.setenv(precision.FORCE_ENV, "native")
    _train(tiny, tmp_path / "bf16", epochs=1, precision="auto")
    _train(tiny, tmp_path / "fp32", epochs=1, precision="fp32")
    meta = json.loads((tmp_path / "bf16" / META_FILE).read_text())
    assert meta["precision"] == "bf16" and meta["hardware"]["bf16"] == "native"
    # Same seed, same data: only the arithmetic differs, so the weights must too.
    assert not _same(_weights(tmp_path / "bf16"), _weights(tmp_path / "fp32"))


def test_explicit_bf16_where_it_does_not_run_fails_before_any_work(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv(precision.FORCE_ENV, "unsupported")
    with pytest.raises(ConfigError, match="precision bf16 is not available"):
        _train(tiny, tmp_path / "r", precision="bf16")
    assert not (tmp_path / "r").exists()


def test_the_precision_used_is_part_of_a_runs_identity(tiny, tmp_path, monkeypatch):
    # A folder trained in fp32 is not "the same run" as auto resolving to bf16 on another machine.
    monkeypatch.setenv(precision.FORCE_ENV, "unsupported")
    _train(tiny, tmp_path / "r", epochs=1, precision="auto")
    monkeypatch.setenv(precision.FORCE_ENV, "native")
    with pytest.raises(ConfigError, match="precision 'fp32' -> 'bf16'"):
        _train(tiny, tmp_path / "r", epochs=1, precision="auto")


# --- a damaged feature cache (issue 8.4) --------------------------------------------------------


@pytest.fixture(scope="module")
def clean_run(tiny, tmp_path_factory):
    out = tmp_path_factory.mktemp("clean") / "run"
    _train(tiny, out, epochs=1)
    return _weights(out)


@pytest.mark.parametrize("bad", [np.nan, np.inf, 1e30], ids=["nan", "inf", "1e30"])
def test_a_corrupt_cache_entry_is_recomputed_not_trained_on(tiny, tmp_path, clean_run, bad):
    # One bad value in one cached file used to give a "successful" run answering one class.
    cache = FeatureCache(tiny["acoustic"], root=tmp_path / "cache")
    victim = tiny["utterances"][5].audio
    frames = cache.get(victim)
    frames[3, 7] = bad
    np.save(cache.entry_path(victim), frames)
    _train(tiny, tmp_path / "run", epochs=1, cache=cache)
    assert _same(_weights(tmp_path / "run"), clean_run)
    assert np.isfinite(np.load(cache.entry_path(victim))).all()  # and the entry is repaired


def test_a_diverging_loss_stops_training_loudly_and_saves_no_model(tiny, tmp_path):
    # lr 1e20 blows the weights up in one step; R(w) = sum(w^2) then overflows to inf.
    with pytest.raises(TrainingError, match=r"the loss is (inf|nan) at epoch 1, batch \d+"):
        _train(tiny, tmp_path / "r", model="M-CL-BLR", epochs=1, learning_rate=1e20)
    assert not (tmp_path / "r" / META_FILE).exists()


# --- checkpoints (issue 8.8) and other runs in the folder (issue 8.9) ---------------------------


class RunsCodeWhenUnpickled:
    """A checkpoint entry that only a full (unsafe) unpickle would execute."""

    marker = None

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.fixture(scope="module")
def uninterrupted(tiny, tmp_path_factory):
    out = tmp_path_factory.mktemp("full") / "run"
    _train(tiny, out, epochs=2)
    return _weights(out)


def test_a_checkpoint_that_is_not_weights_only_is_ignored_and_never_unpickled(tiny, tmp_path, capsys, uninterrupted):
    out = tmp_path / "r"
    out.mkdir()
    RunsCodeWhenUnpickled.marker = tmp_path / "code-ran"
    with open(out / CHECKPOINT_FILE, "wb") as f:
        torch.save({"fingerprint": "x", "model": RunsCodeWhenUnpickled()}, f)
    _train(tiny, out, epochs=2)
    err = capsys.readouterr().err
    assert f"ignoring {out / CHECKPOINT_FILE}: not a readable emofusion checkpoint" in err
    assert "weights_only" not in err and "trust" not in err  # never suggests unsafe loading
    assert not RunsCodeWhenUnpickled.marker.exists()
    assert _same(_weights(out), uninterrupted)  # trained from scratch, as a fresh run


@pytest.mark.parametrize("damage", ["garbage", "truncated", "missing optimizer"])
def test_a_damaged_checkpoint_is_ignored_and_training_starts_clean(tiny, tmp_path, capsys, uninterrupted, damage):
    out = tmp_path / "r"

    class Stop(Exception):
        pass

    def stop(epoch, stats):
        raise Stop

    with pytest.raises(Stop):
        _train(tiny, out, epochs=2, on_epoch_end=stop)
    path = out / CHECKPOINT_FILE
    if damage == "garbage":
        path.write_bytes(b"not a checkpoint")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:-200])
    else:  # this run's fingerprint, but a part missing: must not half-load the model
        state = torch.load(path, weights_only=True)
        del state["optimizer"]
        torch.save(state, path)
    _train(tiny, out, epochs=2)
    assert "not a readable emofusion checkpoint" in capsys.readouterr().err
    assert _same(_weights(out), uninterrupted)


def test_a_checkpoint_of_another_configuration_is_refused_unless_overwrite(tiny, tmp_path):
    out = tmp_path / "r"

    class Stop(Exception):
        pass

    def stop(epoch, stats):
        raise Stop

    with pytest.raises(Stop):
        _train(tiny, out, epochs=3, on_epoch_end=stop)
    with pytest.raises(ConfigError, match=r"holds an unfinished run of a different configuration \(train_config.batch_size"):
        train("S-CNN", tiny["utterances"], labels=LABELS, out_dir=out, cache=tiny["cache"], acoustic=tiny["acoustic"],
              text_config=tiny["text"], model_config=SMALL,
              train_config=TrainConfig(epochs=3, batch_size=4, precision="fp32"), progress=False)
    assert (out / CHECKPOINT_FILE).exists()  # the unfinished run is still there to resume
    trained = _train(tiny, out, epochs=1, overwrite=True)
    assert len(trained.meta["history"]) == 1


def test_an_output_path_that_is_a_file_is_refused(tiny, tmp_path):
    (tmp_path / "f").write_text("mine")
    with pytest.raises(ConfigError, match="the run folder is a file"):
        _train(tiny, tmp_path / "f")
    assert (tmp_path / "f").read_text() == "mine"


@pytest.mark.parametrize(
    "field, value, message",
    [("epochs", 0, "epochs must be a positive integer"), ("epochs", -3, "epochs must be a positive integer"),
     ("batch_size", 0, "batch_size must be a positive integer"), ("learning_rate", 0.0, "learning_rate must be"),
     ("learning_rate", float("nan"), "learning_rate must be"), ("precision", "fp16", "precision must be one of")],
)
def test_bad_training_options_are_refused_when_the_config_is_made(field, value, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**{field: value})


def test_run_folders_from_before_precision_read_their_bf16_switch():
    assert TrainConfig.from_dict({"bf16": True}).precision == "bf16"
    assert TrainConfig.from_dict({"bf16": False}).precision == "fp32"
