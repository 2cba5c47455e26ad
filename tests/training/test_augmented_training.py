"""Training with waveform augmentation: reproducible, off is as before, the model sees augmented input,
and a frozen-encoder model draws cached views that differ from the clean clip."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from tiny_corpus import LABELS, small_model_config

from emofusion.artifacts import WEIGHTS_FILE
from emofusion.errors import ConfigError
from emofusion.features import augment as augment_module
from emofusion.features.augment import AugmentConfig
from emofusion.features.augmented_views import AugmentedSpeech
from emofusion.training import trainer as trainer_module
from emofusion.training.config import TrainConfig
from emofusion.training.trainer import train

SMALL = small_model_config()
OFF = AugmentConfig(p_noise=0, p_reverb=0, p_telephone=0, p_gain=0, p_speed=0)


def _train(tiny, out, *, model="S-CBLA", epochs=3, seed=0, **config):
    return train(
        model, tiny["utterances"], labels=LABELS, out_dir=out, cache=tiny["cache"], acoustic=tiny["acoustic"],
        text_config=tiny["text"], model_config=SMALL,
        train_config=TrainConfig(epochs=epochs, batch_size=8, precision="fp32", **config),
        seed=seed, progress=False,
    )


def _weights(run_dir):
    return load_file(str(run_dir / WEIGHTS_FILE))


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_augmented_training_is_reproducible_and_differs_from_clean(tiny, tmp_path):
    a = _train(tiny, tmp_path / "a", augment="default")
    _train(tiny, tmp_path / "b", augment="default")
    _train(tiny, tmp_path / "c", augment="default", seed=1)
    _train(tiny, tmp_path / "clean")
    assert _same(_weights(tmp_path / "a"), _weights(tmp_path / "b"))
    assert not _same(_weights(tmp_path / "a"), _weights(tmp_path / "c"))
    assert not _same(_weights(tmp_path / "a"), _weights(tmp_path / "clean"))
    record = a.meta["augmentation"]
    assert record["name"] == "default" and record["config"] == AugmentConfig().to_dict()
    assert "afresh" in record["strategy"]
    assert a.meta["train_config"]["augment"] == "default"


def test_augmentation_off_trains_bit_identically_and_keeps_the_fingerprint(tiny, tmp_path, monkeypatch):
    plain = _train(tiny, tmp_path / "plain", model="M-CBLA-BLR")
    # Every transform at probability 0: the whole augmentation path runs (decode, augment,
    # re-extract features every epoch) and must hand the model exactly the clean inputs.
    monkeypatch.setitem(augment_module.AUGMENT_CONFIGS, "off", OFF)
    _train(tiny, tmp_path / "off", model="M-CBLA-BLR", augment="off")
    assert _same(_weights(tmp_path / "plain"), _weights(tmp_path / "off"))
    # augment=None leaves no trace in what decides a run's identity: runs trained before
    # augmentation existed are recognised as finished (same fingerprint) instead of refused.
    assert "augmentation" not in plain.meta
    again = _train(tiny, tmp_path / "plain", model="M-CBLA-BLR")  # same folder: returns the finished run
    assert again.meta["fingerprint"] == plain.meta["fingerprint"]


def test_the_model_sees_augmented_inputs_that_change_every_epoch(tiny, tmp_path, monkeypatch):
    seen: list[tuple[np.ndarray, torch.Tensor]] = []
    real_collate = trainer_module.collate

    def spy(data, index, device):
        batch = real_collate(data, index, device)
        seen.append((np.asarray(index).copy(), batch["speech"].clone()))
        return batch

    monkeypatch.setattr(trainer_module, "collate", spy)
    clean = _train(tiny, tmp_path / "clean", epochs=2)
    clean_rows = {}
    for index, speech in seen:
        for row, i in enumerate(index):
            clean_rows.setdefault(int(i), speech[row])
    seen.clear()
    _train(tiny, tmp_path / "aug", epochs=2, augment="default")
    n = len(tiny["utterances"])
    per_epoch = [seen[: len(seen) // 2], seen[len(seen) // 2 :]]
    changed, epoch_rows = 0, []
    for batches in per_epoch:
        rows = {}
        for index, speech in batches:
            for row, i in enumerate(index):
                rows[int(i)] = speech[row]
        assert len(rows) == n  # every clip, once per epoch
        epoch_rows.append(rows)
        for i, x in rows.items():
            c = clean_rows[i]
            changed += not (x.shape == c.shape and torch.equal(x, c))
    assert changed > n  # most rows of the two epochs differ from the clean inputs
    differs_between_epochs = sum(
        not (epoch_rows[0][i].shape == epoch_rows[1][i].shape and torch.equal(epoch_rows[0][i], epoch_rows[1][i]))
        for i in range(n)
    )
    assert differs_between_epochs > n // 2  # a fresh augmentation each epoch, not one fixed copy
    assert clean.meta.get("augmentation") is None


def test_unknown_augmentation_and_text_only_models_are_refused(tiny, tmp_path):
    with pytest.raises(ConfigError, match="unknown augmentation 'loud'"):
        TrainConfig(augment="loud")
    with pytest.raises(ConfigError, match="augment_views"):
        TrainConfig(augment="default", augment_views=0)
    with pytest.raises(ConfigError, match="reads none"):
        _train(tiny, tmp_path / "text", model="T-LSTM", augment="default")
    assert TrainConfig.from_dict(TrainConfig(augment="noise").to_dict()).augment == "noise"


# --- a frozen-encoder model: K cached views ------------------------------------------------------


class BandEnergyFrames:
    """A toy speech encoder: log energy in 8 frequency bands per 20-ms frame (counts its calls)."""

    dim = 8
    calls = 0

    def frames(self, samples):
        BandEnergyFrames.calls += 1
        x = np.asarray(samples, dtype=np.float64)
        n = len(x) // 320
        spectrum = np.abs(np.fft.rfft(x[: n * 320].reshape(n, 320), axis=1)) ** 2
        freqs = np.fft.rfftfreq(320, 1 / 16000)
        edges = np.geomspace(100.0, 4000.0, 9)
        bands = [spectrum[:, (freqs >= lo) & (freqs < hi)].sum(1) for lo, hi in zip(edges[:-1], edges[1:])]
        return np.log(np.stack(bands, axis=1) + 1e-6).astype(np.float32)


@pytest.fixture
def toy_encoder_model(monkeypatch):
    from emofusion.features.encoders.registry import ENCODERS, EncoderSpec
    from emofusion.models import MODEL_SPECS, encoder_model

    spec = EncoderSpec("toy", "toy-bands", "speech", "encoders", {}, 8, 0.02, None, BandEnergyFrames,
                       window_frames=1500, description="log band energies (tests)")
    monkeypatch.setitem(ENCODERS, "toy", spec)
    name, model_spec = encoder_model("toy", None)
    monkeypatch.setitem(MODEL_SPECS, name, model_spec)
    return name


def test_encoder_views_are_cached_differ_from_clean_and_are_drawn_per_epoch(tiny, tmp_path, toy_encoder_model):
    trained = _train(tiny, tmp_path / "run", model=toy_encoder_model, augment="default", augment_views=3)
    record = trained.meta["augmentation"]
    assert record["views"] == 3 and "views per clip" in record["strategy"]
    root = tiny["cache"].directory.parent
    view_dirs = list(root.glob("toy-bands-views-*"))
    assert len(view_dirs) == 1
    assert len(list(view_dirs[0].glob("*.npy"))) == 3 * len(tiny["utterances"])

    # The views themselves: built again from the cache (no encoder call), each differs from the clean frames.
    from emofusion.features.pipeline import FeaturePipeline
    from emofusion.training.encode import encode_utterances, load_frames

    utts = tiny["utterances"]
    frames = load_frames(utts, tiny["cache"], kind="toy", progress=False)
    pipeline = FeaturePipeline.fit(frozenset({"speech"}), train_frames=frames, speech_kind="toy")
    encoded = encode_utterances(pipeline, utts, labels=LABELS, cache=tiny["cache"], frames=frames, progress=False)
    calls = BandEnergyFrames.calls
    views = AugmentedSpeech.prepare([u.audio for u in utts], pipeline, encoded, config=AugmentConfig(), seed=0,
                                    views=3, clean_frames=frames, cache_root=root, progress=False)
    assert BandEnergyFrames.calls == calls  # every view came from the cache
    assert not views.per_epoch
    for clean, per_clip in zip(frames, views.views):
        assert np.array_equal(per_clip[0], clean.astype(np.float16))  # index 0 is the clean clip
        for v in per_clip[1:]:
            assert not (v.shape == per_clip[0].shape and np.array_equal(v, per_clip[0]))
    # An epoch draws, per clip, one of [clean, view 1..3], from (seed, epoch) alone.
    e0, e0_again, e1 = views.for_epoch(0), views.for_epoch(0), views.for_epoch(1)
    assert np.array_equal(e0.speech.frames, e0_again.speech.frames)
    assert not np.array_equal(e0.speech.frames, e1.speech.frames) or not np.array_equal(e0.speech.lengths, e1.speech.lengths)
    assert np.array_equal(e0.labels, encoded.labels)
    # Another seed is another set of views (a new cache folder).
    AugmentedSpeech.prepare([u.audio for u in utts], pipeline, encoded, config=AugmentConfig(), seed=1, views=1,
                            clean_frames=frames, cache_root=root, progress=False)
    assert len(list(root.glob("toy-bands-views-*"))) == 2


def test_views_need_matching_inputs(tiny):
    from emofusion.features.pipeline import FeaturePipeline
    from emofusion.training.encode import encode_utterances

    utts = tiny["utterances"]
    pipeline = FeaturePipeline.fit(frozenset({"text"}), train_texts=[u.text for u in utts], text_config=tiny["text"])
    encoded = encode_utterances(pipeline, utts, labels=LABELS, cache=None, progress=False)
    with pytest.raises(ConfigError, match="reads no speech"):
        AugmentedSpeech.prepare([u.audio for u in utts], pipeline, encoded, config=AugmentConfig(), seed=0)


def test_a_clip_paired_with_several_transcripts_is_decoded_and_augmented_once(tiny, tmp_path, toy_encoder_model,
                                                                              monkeypatch):
    """A fusion recipe repeats each clip with other texts: its rows share one clip, one set of views,
    and the clip never babbles over itself through its repeats."""
    from emofusion.features.pipeline import FeaturePipeline
    from emofusion.training.encode import encode_utterances, load_frames

    utts = tiny["utterances"]
    rows = utts + utts[:4]  # the first four clips twice
    frames = load_frames(rows, tiny["cache"], kind="toy", progress=False)
    pipeline = FeaturePipeline.fit(frozenset({"speech"}), train_frames=frames, speech_kind="toy")
    encoded = encode_utterances(pipeline, rows, labels=LABELS, cache=tiny["cache"], frames=frames, progress=False)
    before = BandEnergyFrames.calls
    views = AugmentedSpeech.prepare([u.audio for u in rows], pipeline, encoded, config=AugmentConfig(), seed=5, views=2,
                                    clean_frames=frames, cache_root=tmp_path, progress=False)
    assert len(views.clips) == len(utts) and views.row_clip[len(utts):] == [0, 1, 2, 3]
    assert BandEnergyFrames.calls - before == 2 * len(utts)  # views of distinct clips only
    for repeat, original in zip(range(len(utts), len(rows)), range(4)):
        assert all(a is b for a, b in zip(views.views[repeat][1:], views.views[original][1:]))
    # The acoustic path: rows of one clip are augmented independently, each excluding its clip from babble.
    acoustic_frames = load_frames(rows, tiny["cache"], progress=False)
    acoustic = FeaturePipeline.fit(frozenset({"speech"}), train_frames=acoustic_frames, acoustic=tiny["acoustic"])
    clean = encode_utterances(acoustic, rows, labels=LABELS, cache=tiny["cache"], frames=acoustic_frames, progress=False)
    seen_excludes = []
    import emofusion.features.augmented_views as views_module

    real_augment = views_module.augment

    def spy(x, rng, config, *, babble_pool=None, exclude=None):
        seen_excludes.append(exclude)
        assert len(babble_pool) == len(utts)
        return real_augment(x, rng, config, babble_pool=babble_pool, exclude=exclude)

    per_epoch = AugmentedSpeech.prepare([u.audio for u in rows], acoustic, clean, config=AugmentConfig(), seed=5,
                                        progress=False)
    monkeypatch.setattr(views_module, "augment", spy)
    per_epoch.for_epoch(0)
    assert seen_excludes == list(range(len(utts))) + [0, 1, 2, 3]
