"""The one registry of frozen encoders: entries, names derived from them, caches keyed by them,
the normalisation they carry, and an encoder added as one entry, trained and served end to end.

Nothing here needs the encoders extra: the toy encoders below are small deterministic functions of
the input, registered exactly as a real entry is (``ENCODERS[key] = EncoderSpec(...)``), and the
new Whisper entries are exercised with stand-in loaders of their widths.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import pytest

from tiny_corpus import LABELS, small_model_config

from emofusion.errors import ConfigError, MissingExtraError
from emofusion.features.encoders import registry
from emofusion.features.encoders.cache import FrameCache, VectorCache, WhisperFrameCache, SentenceVectorCache
from emofusion.features.encoders.registry import ENCODERS, EncoderSpec, TorchWhisperLayer
from emofusion.features.pipeline import FeaturePipeline
from emofusion.models import ENCODER_MODEL_NAMES, MODEL_NAMES, MODEL_SPECS, encoder_model, encoder_model_name
from emofusion.models.speech import SPEECH_ENCODERS
from emofusion.models.text import TEXT_ENCODERS

# Log-spaced bands (100 Hz - 4 kHz): the tiny corpus's four pitches (220-1760 Hz) fall in four different ones.
BAND_EDGES = np.geomspace(100.0, 4000.0, 9)


class BandEnergyFrames:
    """A toy speech encoder: log energy in 8 frequency bands per 20-ms frame."""

    dim = 8

    def __init__(self, dim: int = 8):
        self.dim = dim
        self.calls = 0

    def frames(self, samples):
        self.calls += 1
        x = np.asarray(samples, dtype=np.float64)
        n = len(x) // 320
        spectrum = np.abs(np.fft.rfft(x[: n * 320].reshape(n, 320), axis=1)) ** 2
        freqs = np.fft.rfftfreq(320, 1 / 16000)
        bands = [spectrum[:, (freqs >= lo) & (freqs < hi)].sum(1) for lo, hi in zip(BAND_EDGES[:-1], BAND_EDGES[1:])]
        energy = np.log(np.stack(bands, axis=1) + 1e-6).astype(np.float32)
        return np.tile(energy, (1, self.dim // 8))  # a wider stand-in repeats the 8 bands


class HashedWords:
    """A toy text encoder: a unit-length bag of hashed words."""

    def __init__(self, dim: int = 32):
        self.dim = dim

    def embed(self, texts):
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                out[i, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def toy_speech(**changes) -> EncoderSpec:
    spec = EncoderSpec(
        "toy", "toy-bands", "speech", "encoders", {}, 8, 0.02, None, BandEnergyFrames,
        window_frames=1500, description="log band energies (tests)",
    )
    return dataclasses.replace(spec, **changes)


def toy_text(**changes) -> EncoderSpec:
    spec = EncoderSpec("tox", "toy-words", "text", "encoders", {}, 32, None, None, HashedWords, description="hashed words (tests)")
    return dataclasses.replace(spec, **changes)


# --- the registry and the names derived from it ----------------------------------------------------


def test_every_model_on_a_frozen_encoder_is_named_from_entries_of_the_right_modality():
    assert len(MODEL_NAMES) == 11 and not set(MODEL_NAMES) & set(ENCODER_MODEL_NAMES)
    for name in ENCODER_MODEL_NAMES:
        spec = MODEL_SPECS[name]
        assert name == encoder_model_name(spec.speech, spec.text)
        assert spec.frozen_encoders, name  # every model beside Table 1 reads at least one frozen encoder
        for key, modality in ((spec.speech, "speech"), (spec.text, "text")):
            if key is not None and key not in SPEECH_ENCODERS and key not in TEXT_ENCODERS:
                assert ENCODERS[key].modality == modality, (name, key)
    assert {"S-WT2", "M-WT2-ST", "S-WB", "M-WB-ST"} <= set(ENCODER_MODEL_NAMES)
    # The Table-1 networks are never mistaken for frozen encoders.
    assert all(not MODEL_SPECS[n].frozen_encoders for n in MODEL_NAMES)
    assert MODEL_SPECS["M-CBLA-ST"].frozen_encoders == ("st",)


def test_names_come_from_the_keys():
    assert encoder_model_name("wb", None) == "S-WB"
    assert encoder_model_name(None, "st") == "T-ST"
    assert encoder_model_name("wt2", "st") == "M-WT2-ST"
    with pytest.raises(ConfigError, match="at least one branch"):
        encoder_model_name(None, None)


def test_the_new_whisper_entries_read_the_layers_the_registry_names():
    assert (ENCODERS["wt"].layer, ENCODERS["wt2"].layer, ENCODERS["wb"].layer) == (None, registry.WT2_LAYER, registry.WB_LAYER)
    assert ENCODERS["wt"].name == ENCODERS["wt2"].name  # one model, two layers: the caches must still differ
    assert ENCODERS["wb"].label == f"whisper-base layer {registry.WB_LAYER}"


def test_a_bad_entry_is_refused_when_it_is_written():
    with pytest.raises(ConfigError, match="lower-case"):
        toy_speech(key="Toy")
    with pytest.raises(ConfigError, match="norm must be one of"):
        toy_speech(norm="speaker")  # needs statistics of other clips of the user: not a per-input property
    with pytest.raises(ConfigError, match="a speech encoder needs frame_seconds"):
        toy_speech(frame_seconds=None)
    with pytest.raises(ConfigError, match="a text encoder gives one vector"):
        toy_text(frame_seconds=0.02)


def test_unknown_or_wrong_modality_keys_are_clear_errors():
    with pytest.raises(ConfigError, match=r"unknown pretrained encoder 'nope'; registered: wt, st"):
        registry.encoder("nope")
    with pytest.raises(ConfigError, match="unknown speech feature kind 'st'"):
        FeaturePipeline(frozenset({"speech"}), speech_kind="st")
    assert registry.encoder("whisper") is ENCODERS["wt"] and registry.encoder("sentence") is ENCODERS["st"]


def test_a_missing_package_names_the_install_command(monkeypatch):
    spec = toy_speech(packages={"no_such_module_for_emofusion_tests": "no-such-dist"})
    with pytest.raises(MissingExtraError, match=r'no-such-dist is not installed\): pip install "emofusion\[encoders\]"'):
        registry.load_encoder(spec)


# --- caches: keyed by the entry's name, layer and settings ---------------------------------------------


def test_caches_written_before_the_registry_stay_valid(tmp_path):
    # The folder names the pre-registry code computed (by hand here from its key dicts), so corpora
    # embedded then are not embedded again.
    def old_folder(name, settings):
        key = {"format": 1, "encoder": name, **settings}
        return f"{name}-{hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]}"

    assert WhisperFrameCache(tmp_path).directory.name == old_folder("whisper-tiny.en", {"unpadded": True, "hop": 160})
    assert SentenceVectorCache(tmp_path).directory.name == old_folder("all-MiniLM-L6-v2", {"pooling": "mean", "normalised": True})


def test_two_layers_of_one_model_never_share_a_cache(tmp_path):
    folders = {
        FrameCache(ENCODERS["wt"], tmp_path).directory,
        FrameCache(ENCODERS["wt2"], tmp_path).directory,
        FrameCache(dataclasses.replace(ENCODERS["wt2"], layer=registry.WT2_LAYER % 4 + 1), tmp_path).directory,
        FrameCache(ENCODERS["wb"], tmp_path).directory,
    }
    assert len(folders) == 4
    assert FrameCache(ENCODERS["wt2"], tmp_path).directory == FrameCache(ENCODERS["wt2"], tmp_path).directory
    config = json.loads((FrameCache(ENCODERS["wt2"], tmp_path).directory / "config.json").read_text())
    assert (config["encoder"], config["layer"]) == ("whisper-tiny.en", registry.WT2_LAYER)


def test_a_cache_refuses_an_encoder_of_the_wrong_kind_or_width(tmp_path):
    with pytest.raises(ConfigError, match="gives text vectors, not frames"):
        FrameCache(toy_text(), tmp_path)
    with pytest.raises(ConfigError, match="gives speech frames, not text vectors"):
        VectorCache(toy_speech(), tmp_path)
    cache = VectorCache(toy_text(dim=16), tmp_path, encoder_factory=lambda: HashedWords(32))
    with pytest.raises(ConfigError, match=r"encoder tox \(toy-words\) gave an output of shape \(1, 32\); its entry says \(n, 16\)"):
        cache.get_many(["hello there"], progress=False)
    assert not list(cache.directory.glob("*.npy"))  # nothing wrong was stored


# --- the PyTorch Whisper layer adapter ----------------------------------------------------------------


class RecordingTorchEncoder:
    """Stands in for TorchWhisperEncoder: one frame per 20 ms, valued by the layer asked for."""

    name, dim, n_layers = "whisper-fake", 3, 4

    def __init__(self):
        self.calls = []

    def frames(self, samples, layer=None):
        self.calls.append((len(samples), layer))
        return np.full(((len(samples) + 319) // 320, self.dim), float(layer or 0), dtype=np.float64)

    def all_layers(self, samples):  # (n_layers + 1, T, dim): layer k is k everywhere, plus the frame index
        t = np.arange((len(samples) + 319) // 320, dtype=np.float64)[None, :, None]
        return np.arange(self.n_layers + 1, dtype=np.float64)[:, None, None] + t + np.zeros((1, 1, self.dim))


def test_the_torch_layer_adapter_asks_for_its_layer_and_gives_float32():
    fake = RecordingTorchEncoder()
    out = TorchWhisperLayer(fake, layer=2).frames(np.zeros(16000, dtype=np.float32))
    assert fake.calls == [(16000, 2)] and out.dtype == np.float32 and out.shape == (50, 3) and (out == 2.0).all()
    TorchWhisperLayer(fake, layer=None).frames(np.zeros(640, dtype=np.float32))
    assert fake.calls[-1] == (640, None)
    # Blocks 1..4 averaged (not the block input 0): (1 + 2 + 3 + 4) / 4 = 2.5, plus the frame index.
    avg = TorchWhisperLayer(fake, layer="avg").frames(np.zeros(640, dtype=np.float32))
    np.testing.assert_array_equal(avg, np.array([[2.5] * 3, [3.5] * 3], np.float32))
    concat = TorchWhisperLayer(fake, layer="concat")
    assert concat.dim == 12
    np.testing.assert_array_equal(concat.frames(np.zeros(320, dtype=np.float32)), [[1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]])
    with pytest.raises(ConfigError, match="layer must be None, an int >= 0 or one of"):
        toy_speech(layer="last")


# --- the pipeline: identity recorded and checked, normalisation per entry ------------------------------


def _frames(rng, lengths, dim=8):
    return [rng.normal(2.0, 3.0, size=(n, dim)).astype(np.float32) * rng.uniform(0.5, 4.0, size=dim).astype(np.float32)
            for n in lengths]


def test_a_model_records_its_encoder_and_refuses_to_load_when_the_entry_changed(monkeypatch):
    monkeypatch.setitem(ENCODERS, "toy", toy_speech())
    rng = np.random.default_rng(0)
    fitted = FeaturePipeline.fit(frozenset({"speech"}), train_frames=_frames(rng, (20, 30)), speech_kind="toy")
    state = json.loads(json.dumps(fitted.state()))  # as model.json holds it
    assert state["speech_kind"] == "toy" and state["speech_encoder"]["name"] == "toy-bands"
    assert FeaturePipeline.from_state(state).speech_encoder == ENCODERS["toy"]
    monkeypatch.setitem(ENCODERS, "toy", toy_speech(layer=2))  # the one-line layer switch
    with pytest.raises(ConfigError, match=r"trained on encoder .*'layer': None.* entry 'toy' is .*'layer': 2"):
        FeaturePipeline.from_state(state)


def test_utt_mvn_standardises_each_clip_over_time_then_by_the_training_statistics(monkeypatch):
    monkeypatch.setitem(ENCODERS, "toy", toy_speech(norm="utt-mvn"))
    rng = np.random.default_rng(1)
    train = _frames(rng, (12, 30, 7))
    fitted = FeaturePipeline.fit(frozenset({"speech"}), train_frames=train, speech_kind="toy")

    def by_hand(x):  # each dimension over the clip's own frames: mean 0, population std 1
        x = x.astype(np.float64)
        return (x - x.mean(0)) / x.std(0)

    normalised = np.concatenate([by_hand(f) for f in train])
    np.testing.assert_allclose(fitted.mean, normalised.mean(0), atol=1e-6)
    np.testing.assert_allclose(fitted.std, normalised.std(0), rtol=1e-5)
    clip = train[0] * 10.0 + 5.0  # the same clip louder and shifted: per-utterance norm removes both
    got = fitted.speech_inputs([clip, train[0]]).frames
    np.testing.assert_allclose(got[0, :12], (by_hand(train[0]) - fitted.mean) / fitted.std, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got[0, :12], got[1, :12], atol=1e-4)
    # A saved and reloaded pipeline normalises the same way (the entry is the one home of the choice).
    reloaded = FeaturePipeline.from_state(json.loads(json.dumps(fitted.state())))
    np.testing.assert_array_equal(reloaded.speech_inputs([clip]).frames, fitted.speech_inputs([clip]).frames)


@pytest.mark.parametrize("norm", ["utt", "utt-cmn"])
def test_the_other_per_input_normalisations_match_a_hand_computation(monkeypatch, norm):
    monkeypatch.setitem(ENCODERS, "toy", toy_speech(norm=norm))
    x = np.array([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 9.0], [0.0, 0.0, 0.0, 0.0, 8.0, 8.0, 8.0, 8.0]], np.float32)
    if norm == "utt":  # row 1: mean 4.625, population std 2.3419; row 2: mean 4, std 4
        row1 = (x[0] - 4.625) / (np.sqrt(np.mean((x[0] - 4.625) ** 2)) + 1e-5)
        expected = np.stack([row1, (x[1] - 4.0) / (4.0 + 1e-5)])
    else:  # the mean over the two frames removed per dimension
        expected = x - (x[0] + x[1]) / 2
    pipeline = FeaturePipeline(frozenset({"speech"}), mean=np.zeros(8), std=np.ones(8), speech_kind="toy")
    np.testing.assert_allclose(pipeline.speech_inputs([x]).frames[0], expected, rtol=1e-5, atol=1e-6)


def test_global_normalisation_keeps_a_clips_offset():
    rng = np.random.default_rng(2)
    train = _frames(rng, (12, 30), dim=384)
    fitted = FeaturePipeline.fit(frozenset({"speech"}), train_frames=train, speech_kind="wt")
    shifted = fitted.speech_inputs([train[0] + 5.0, train[0]]).frames
    np.testing.assert_allclose(shifted[0, :12] - shifted[1, :12], np.broadcast_to(5.0 / fitted.std, (12, 384)), rtol=1e-4)


def test_one_frame_per_utterance_normalises_to_zeros_not_nan(monkeypatch):
    monkeypatch.setitem(ENCODERS, "toy", toy_speech(norm="utt-mvn"))
    fitted = FeaturePipeline.fit(
        frozenset({"speech"}), train_frames=_frames(np.random.default_rng(3), (5, 9)), speech_kind="toy"
    )
    got = fitted.speech_inputs([np.ones((1, 8), np.float32)]).frames
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got[0, 0], -fitted.mean / fitted.std, rtol=1e-6)


# --- an encoder added as one entry: trained, saved, loaded, predicted and served -----------------------


def _train(name, tiny, out, epochs=25):
    from emofusion.training.config import TrainConfig
    from emofusion.training.trainer import train

    return train(
        name, tiny["utterances"], labels=LABELS, out_dir=out, cache=tiny["cache"], acoustic=tiny["acoustic"],
        text_config=tiny["text"], model_config=small_model_config(),
        train_config=TrainConfig(epochs=epochs, batch_size=8, learning_rate=1e-2, precision="fp32"), seed=0, progress=False,
    )


def _check_overfits_saves_loads_predicts_and_serves(name, tiny, out):
    from fastapi.testclient import TestClient

    from emofusion.artifacts import load_trained
    from emofusion.experiments.scoring import score
    from emofusion.inference.recognizer import EmotionRecognizer
    from emofusion.service import create_app

    utts = tiny["utterances"]
    trained = _train(name, tiny, out)
    history = trained.meta["history"]
    assert history[-1]["loss"] < history[0]["loss"] / 2
    metrics, predicted = score(trained, utts, cache=tiny["cache"], progress=False)
    assert metrics.wa == 1.0, metrics.to_json()
    loaded = load_trained(out)
    _, again = score(loaded, utts, cache=tiny["cache"], progress=False)
    assert (again == predicted).all()
    recognizer = EmotionRecognizer.load(out)
    for u in utts[::5]:  # the recogniser computes the features itself, not from the cache
        p = recognizer.predict(u.audio if "speech" in recognizer.modalities else None, text=u.text)
        assert p.label == u.label
    u = utts[3]
    with TestClient(create_app(recognizer)) as client:
        files = {"audio": (u.audio.name, u.audio.read_bytes(), "audio/wav")} if "speech" in recognizer.modalities else None
        r = client.post("/v1/predict", files=files, data={"text": u.text})
    assert r.status_code == 200, r.text
    assert r.json()["label"] == u.label
    return trained


@pytest.mark.slow
def test_an_encoder_added_as_one_entry_trains_predicts_and_serves(tiny, tmp_path, monkeypatch):
    monkeypatch.setitem(ENCODERS, "toy", toy_speech())
    monkeypatch.setitem(ENCODERS, "tox", toy_text())
    for speech, text in (("toy", None), ("toy", "tox")):
        name, spec = encoder_model(speech, text)
        monkeypatch.setitem(MODEL_SPECS, name, spec)
        trained = _check_overfits_saves_loads_predicts_and_serves(name, tiny, tmp_path / name)
        assert trained.pipeline.pretrained_encoders == tuple(e.label for e in trained.pipeline.encoders)
    assert (tmp_path / "S-TOY").is_dir() and (tmp_path / "M-TOY-TOX").is_dir()
    # Its outputs were cached under the common root, in a folder of its own.
    assert len(list(tiny["cache"].directory.parent.glob("toy-bands-*/*.npy"))) == len(tiny["utterances"])

    # The entry switched to another layer: the saved model refuses to load instead of reading other features.
    from emofusion.artifacts import load_trained

    monkeypatch.setitem(ENCODERS, "toy", toy_speech(layer=3))
    with pytest.raises(ConfigError, match="trained on encoder"):
        load_trained(tmp_path / "S-TOY")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["S-WT2", "M-WT2-ST", "S-WB", "M-WB-ST"])
def test_the_new_whisper_models_train_predict_and_serve_with_stand_in_encoders(tiny, tmp_path, monkeypatch, name):
    """Their plumbing, with loaders of the entries' widths standing in for the weights (the real
    encoders are run by test_encoder_models.py's test when the extra and the PyTorch encoder are there)."""
    for key in MODEL_SPECS[name].frozen_encoders:
        spec = ENCODERS[key]
        loader = (lambda d=spec.dim: BandEnergyFrames(d)) if spec.modality == "speech" else (lambda d=spec.dim: HashedWords(d))
        monkeypatch.setitem(ENCODERS, key, dataclasses.replace(spec, loader=loader, packages={}, name=f"stand-in-{spec.name}"))
    trained = _check_overfits_saves_loads_predicts_and_serves(name, tiny, tmp_path / name)
    speech = ENCODERS[MODEL_SPECS[name].speech]
    assert trained.pipeline.speech_shape == (1500, speech.dim)
    assert trained.meta["pipeline"]["speech_encoder"]["layer"] == speech.layer


@pytest.mark.parametrize("key", ["wt2", "wb"])
def test_the_pytorch_whisper_entries_give_their_layers_frames_at_their_width(key):
    import importlib.util

    spec = ENCODERS[key]
    missing = spec.missing_packages()
    if missing:
        pytest.skip(f"needs {', '.join(missing)}: pip install \"emofusion[{spec.extra}]\"")
    if importlib.util.find_spec("emofusion.features.encoders.whisper_torch") is None:
        pytest.skip("the PyTorch Whisper encoder (emofusion/features/encoders/whisper_torch.py) is not in this tree")
    from emofusion.features.encoders.whisper_torch import shared_torch_encoder

    t = np.arange(16000 * 13 // 10) / 16000  # 1.3 s: 65 frames of 20 ms
    samples = (0.3 * np.sin(2 * np.pi * 300 * t) * np.sin(2 * np.pi * 3 * t)).astype(np.float32)
    frames = registry.load_encoder(spec).frames(samples)
    assert frames.shape == (65, spec.dim) and frames.dtype == np.float32 and np.isfinite(frames).all()
    direct = shared_torch_encoder("tiny.en" if key == "wt2" else "base")
    assert direct.dim == spec.dim and direct.n_layers >= spec.layer
    np.testing.assert_array_equal(frames, direct.frames(samples, layer=spec.layer))
    # Another layer is another feature: the entry's layer is what reaches the model.
    assert np.abs(frames - direct.frames(samples, layer=spec.layer - 1)).max() > 1e-2


def test_the_entry_of_the_chosen_encoder_reads_the_layer_and_normalisation_validation_chose():
    """docs/results/encoders/layers.md records the choice as ``CHOSEN: encoder=... layer=... norm=...``;
    the registry entry of that encoder must read exactly that (switching is the entry's one line)."""
    import re
    from pathlib import Path

    report = Path(__file__).resolve().parents[2] / "docs" / "results" / "encoders" / "layers.md"
    lines = [m for m in re.finditer(r"^CHOSEN:\s*(.*)$", report.read_text(encoding="utf-8"), re.M)] if report.is_file() else []
    if not lines:
        pytest.skip("docs/results/encoders/layers.md has no CHOSEN line yet (the layer validation writes it)")
    fields = dict(re.findall(r"(\w+)=(\S+)", lines[-1].group(1)))
    layer = None if fields["layer"] in ("final", "None") else fields["layer"] if fields["layer"] in registry.LAYER_COMBINATIONS else int(fields["layer"])
    name = fields["encoder"] if fields["encoder"].startswith("whisper-") else f"whisper-{fields['encoder']}"
    chosen = [s for s in ENCODERS.values() if s.name == name and s.settings.get("runtime") == "torch"]
    assert chosen, f"no PyTorch entry for {name} in the registry"
    assert (chosen[0].layer, chosen[0].norm) == (layer, fields["norm"]), chosen[0]
