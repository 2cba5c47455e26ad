"""The default models: fusion M-WTV-ST and speech S-WTV with the encoders extra, else the paper's
M-CBLA-BLR and S-CBLA (said once).

Which model each entry point loads (Python, `predict`, `serve`, Ray, the ONNX backends) with the
extra's probe forced either way, and the shipped M-WTV-ST and S-WTV themselves: small, with their
provenance, recipe, calibration and held-out checks per seed (held-out speakers, and corpora never
trained on). Tests that run them need the extra and skip without it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open

from emofusion.cli.main import main
from emofusion.errors import MissingExtraError
from emofusion.features.encoders import extra
from emofusion.inference import EmotionRecognizer
from emofusion.inference import shipped

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SENTENCE = "Kids are talking by the door."
ENCODER_MODEL = shipped.SHIPPED_MODELS["fusion-encoders"]
SPEECH_ENCODER_MODEL = shipped.SHIPPED_MODELS["speech-encoders"]
PAPER_MODEL = shipped.SHIPPED_MODELS["fusion-paper"]
PAPER_SPEECH_MODEL = shipped.SHIPPED_MODELS["speech-paper"]
INSTALL = 'pip install "emofusion[encoders]"'

needs_encoders = pytest.mark.skipif(not extra.available(), reason=f"needs the encoders extra: {INSTALL}")


@pytest.fixture
def probe(monkeypatch):
    """Force the encoders-extra probe's answer; each test starts with nothing said yet."""
    monkeypatch.setattr(shipped, "_said", set())

    def force(answer: bool):
        monkeypatch.setattr(extra, "available", lambda: answer)
        # What `require` checks before the encoder model is handed out, forced the same way.
        monkeypatch.setattr(extra, "missing_packages", lambda packages: [] if answer else ["ctranslate2"])

    return force


def said(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("emofusion")]


# ---------------------------------------------------------------- which model each entry point loads


def test_with_the_extra_the_default_is_the_encoder_model_and_nothing_is_said(probe, caplog):
    probe(True)
    with caplog.at_level(logging.INFO, logger="emofusion"):
        assert shipped.shipped_model_path(None) == ENCODER_MODEL
        assert shipped.shipped_model_path("fusion") == ENCODER_MODEL
    assert said(caplog) == []


def test_without_the_extra_the_default_falls_back_to_the_papers_model_saying_so_once(probe, caplog):
    probe(False)
    with caplog.at_level(logging.WARNING, logger="emofusion"):
        first = EmotionRecognizer.load()
        second = EmotionRecognizer.load("fusion")
        assert main(["predict", str(EXAMPLES / "sad.flac"), "--text", SENTENCE, "--json"]) == 0
    assert first.name == second.name == "M-CBLA-BLR"
    lines = said(caplog)
    assert len(lines) == 1, lines  # three loads, one line
    assert "encoders extra is not installed" in lines[0] and INSTALL in lines[0] and "M-CBLA-BLR" in lines[0]


def test_speech_is_s_wtv_with_the_extra_and_the_papers_s_cbla_without_saying_so_once(probe, caplog):
    probe(True)
    with caplog.at_level(logging.INFO, logger="emofusion"):
        assert shipped.shipped_model_path("speech") == SPEECH_ENCODER_MODEL
    assert said(caplog) == []
    probe(False)
    with caplog.at_level(logging.WARNING, logger="emofusion"):
        assert shipped.shipped_model_path("speech") == PAPER_SPEECH_MODEL
        assert EmotionRecognizer.load("speech").name == "S-CBLA"
    lines = said(caplog)
    assert len(lines) == 1 and "S-CBLA" in lines[0] and "S-WTV" in lines[0] and INSTALL in lines[0], lines
    # the folder every install can run, which other modules read as the speech model
    assert shipped.SHIPPED_MODELS["speech"] == PAPER_SPEECH_MODEL


def test_named_shipped_models_are_what_they_name_whatever_the_extra(probe, caplog):
    probe(False)
    with caplog.at_level(logging.WARNING, logger="emofusion"):
        assert shipped.shipped_model_path("fusion-paper") == PAPER_MODEL
        assert shipped.shipped_model_path("speech-paper") == PAPER_SPEECH_MODEL
        assert EmotionRecognizer.load("fusion-paper").name == "M-CBLA-BLR"
        assert EmotionRecognizer.load("speech-paper").name == "S-CBLA"
    assert said(caplog) == []  # nothing falls back: they were asked for by name
    assert shipped.shipped_model_path("runs/m1") == Path("runs/m1")  # anything else is a path


def test_asking_for_the_encoder_model_without_the_extra_names_the_install_command(probe, capsys):
    probe(False)
    with pytest.raises(MissingExtraError, match=r'pip install "emofusion\[encoders\]"'):
        EmotionRecognizer.load("fusion-encoders")
    assert main(["predict", str(EXAMPLES / "sad.flac"), "--text", SENTENCE, "--model", "fusion-encoders"]) == 2
    err = capsys.readouterr().err
    assert INSTALL in err and "M-WTV-ST" in err and "Traceback" not in err
    with pytest.raises(MissingExtraError, match=r'pip install "emofusion\[encoders\]"'):
        EmotionRecognizer.load("speech-encoders")


def test_the_onnx_backends_default_is_the_papers_model_whatever_the_extra(probe, caplog):
    probe(False)
    with caplog.at_level(logging.WARNING, logger="emofusion"):
        assert shipped.shipped_model_path(None, onnx=True) == PAPER_MODEL
    assert said(caplog) == []  # the answer the default gives anyway: nothing to say
    probe(True)
    with caplog.at_level(logging.WARNING, logger="emofusion"):
        assert shipped.shipped_model_path(None, onnx=True) == PAPER_MODEL
        assert shipped.shipped_model_path("fusion", onnx=True) == PAPER_MODEL
    lines = said(caplog)
    assert len(lines) == 1 and "ONNX backends run the paper's models only" in lines[0], lines


def test_ray_workers_load_the_model_the_default_resolves_to(probe):
    from emofusion.inference.ray_engine import _shared_model

    probe(False)
    assert _shared_model(None, "torch") == (PAPER_MODEL, "torch")
    assert _shared_model("speech", "torch") == (shipped.SHIPPED_MODELS["speech"], "torch")
    probe(True)
    assert _shared_model(None, "torch") == (ENCODER_MODEL, "torch")
    assert _shared_model("speech", "torch") == (SPEECH_ENCODER_MODEL, "torch")
    assert _shared_model("fusion-paper", None) == (PAPER_MODEL, None)


@pytest.fixture
def serve_captured(monkeypatch):
    """`emofusion serve` up to starting uvicorn: what it would serve, and what its workers would load."""
    from emofusion.service import server

    captured = {}

    def fake_run(settings, *, recognizer, **kwargs):
        captured.update(settings=settings, recognizer=recognizer)

    monkeypatch.setattr(server, "run", fake_run)
    return captured


def test_serve_resolves_the_default_once_and_hands_its_workers_that_folder(probe, serve_captured, capsys):
    probe(False)
    assert main(["serve"]) == 0
    assert serve_captured["recognizer"].name == "M-CBLA-BLR"
    assert serve_captured["settings"]["model_dir"] == str(PAPER_MODEL)  # not "fusion", resolved again per worker
    assert main(["serve", "--model", "speech"]) == 0
    assert serve_captured["recognizer"].name == "S-CBLA"
    assert serve_captured["settings"]["model_dir"] == str(shipped.SHIPPED_MODELS["speech"])
    assert main(["serve", "--model", "fusion-encoders"]) == 2
    assert INSTALL in capsys.readouterr().err


# ---------------------------------------------------------------- with the extra: M-WTV-ST and S-WTV run


@needs_encoders
def test_with_the_extra_predict_and_serve_use_m_wtv_st_unless_told_otherwise(probe, serve_captured, capsys):
    probe(True)
    args = ["predict", str(EXAMPLES / "angry.flac"), "--json"]
    for model, name in ((None, "M-WTV-ST"), ("fusion-encoders", "M-WTV-ST"), ("fusion-paper", "M-CBLA-BLR"),
                        ("speech", "S-WTV"), ("speech-paper", "S-CBLA")):
        text = ["--text", SENTENCE] if not (model or "").startswith("speech") else []
        assert main(args + text + (["--model", model] if model else [])) == 0
        assert json.loads(capsys.readouterr().out)["model"] == name
    assert main(["serve"]) == 0
    assert serve_captured["recognizer"].name == "M-WTV-ST"
    assert serve_captured["settings"]["model_dir"] == str(ENCODER_MODEL)
    assert main(["serve", "--model", "fusion-paper"]) == 0
    assert serve_captured["recognizer"].name == "M-CBLA-BLR"


@needs_encoders
@pytest.mark.parametrize("name, label", [("angry", "ang"), ("happy", "exc"), ("neutral", "neu"), ("sad", "sad")])
def test_the_default_encoder_model_predicts_the_bundled_examples(probe, name, label):
    probe(True)
    recognizer = EmotionRecognizer.load()
    assert recognizer.name == "M-WTV-ST"
    # Packaging and wiring, not accuracy: actor 01's clips are in the training data, actor 02's
    # (happy, sad) were held out to fit the calibration.
    p = recognizer.predict(EXAMPLES / f"{name}.flac", SENTENCE)
    assert p.label == label and p.transcript == SENTENCE and p.windows == 1  # Whisper: one window up to 30 s
    assert sum(p.probabilities.values()) == pytest.approx(1.0)
    speech = EmotionRecognizer.load("speech").predict(EXAMPLES / f"{name}.flac")
    assert speech.label == label and speech.transcript is None and speech.confident is not None  # calibrated


# ---------------------------------------------------------------- the shipped M-WTV-ST and S-WTV

CLIPS = 560 + 1600  # ravdess4 + tess4


@pytest.mark.parametrize("folder, name, speech_kind, text_kind", [
    (ENCODER_MODEL, "M-WTV-ST", "wtv", "st"), (SPEECH_ENCODER_MODEL, "S-WTV", "wtv", None)])
def test_shipped_encoder_models_are_stored_small_without_the_encoders(folder, name, speech_kind, text_kind):
    meta = json.loads((folder / "model.json").read_text())
    assert meta["name"] == name and meta["labels"] == ["ang", "exc", "neu", "sad"]
    assert meta["pipeline"]["speech_kind"] == speech_kind
    assert (meta["pipeline"]["text_kind"] if "text" in meta["pipeline"]["modalities"] else None) == text_kind
    assert meta["pipeline"]["speech_encoder"]["layer"] == 2 and meta["pipeline"]["speech_encoder"]["norm"] == "utt"
    assert meta["pipeline"]["speech_encoder"]["settings"]["frames"] == "voiced-20dB"
    assert {p.name for p in folder.iterdir()} == {"model.json", "model.safetensors"}
    weights = folder / "model.safetensors"
    with safe_open(str(weights), "pt") as f:
        assert {str(f.get_slice(k).get_dtype()) for k in f.keys()} <= {"F16", "I64"}
    # The heads only: Whisper tiny.en (~75 MB) and MiniLM (~90 MB) come from the extra's packages.
    assert weights.stat().st_size < 10_000_000


def assert_seeds_summarised(block: dict, n: int) -> None:
    """Each seed's figures recomputed from its own counts and probability bins, and the recorded
    mean and sample std those of the per-seed figures."""
    from emofusion.evaluation.metrics import ProbabilityScores

    per_seed = [block["per_seed"][str(s)] for s in block["seeds"]]
    for m in per_seed:
        counts = np.asarray(m["counts"], dtype=float)
        assert counts.sum() == m["n"] == n
        assert m["ua"] == pytest.approx(np.mean(np.diag(counts) / counts.sum(axis=1)))
        assert m["wa"] == pytest.approx(np.trace(counts) / counts.sum())
        scores = ProbabilityScores.from_json(m["probability"])
        assert scores.n == n and m["probability"]["ece"] == pytest.approx(scores.ece)
    for key in ("wa", "ua"):
        values = [m[key] for m in per_seed]
        assert block[key]["mean"] == pytest.approx(np.mean(values))
        assert block[key]["std"] == pytest.approx(np.std(values, ddof=1) if len(values) > 1 else 0.0)
    for key in ("ece", "nll", "brier"):
        values = [m["probability"][key] for m in per_seed]
        assert block[key]["mean"] == pytest.approx(np.mean(values))
    assert 0.25 < block["ua"]["mean"] <= 1.0


@pytest.mark.parametrize("folder, name, reads_text", [(ENCODER_MODEL, "M-WTV-ST", True), (SPEECH_ENCODER_MODEL, "S-WTV", False)])
def test_shipped_encoder_models_record_recipe_calibration_and_held_out_checks(folder, name, reads_text):
    from emofusion.models import MODEL_SPECS

    meta = json.loads((folder / "model.json").read_text())
    prov = meta["provenance"]
    assert prov["command"].startswith(f"python recipes/shipped/build.py --model {name}")
    assert "RAVDESS" in prov["data"]["speech"] and "TESS" in prov["data"]["speech"]
    assert prov["data"]["corpora"] == ["ravdess4", "tess4"]
    assert ("MELD train" in prov["data"].get("text", "")) == reads_text
    recipe = prov["recipe"]
    assert recipe["balance"]["choice"] == meta["train_config"]["balance"] == "auto"
    assert recipe["augmentation"]["choice"] == meta["train_config"]["augment"]
    assert "voiced.md: CHOSEN: encoder=whisper-tiny.en layer=2 norm=utt frames=voiced20" in recipe["speech_encoder"]["source"]
    # Calibrated on held-out RAVDESS actors; the model trained on every other row.
    calibration = meta["calibration"]
    held = calibration["fitted_on"]["speakers"]
    assert held and all(s.startswith("ravdess4/actor") for s in held) and calibration["temperature"] > 0
    per_clip = recipe.get("texts_per_clip", 1)
    assert meta["n_train"] + calibration["fitted_on"]["n"] == CLIPS * per_clip
    assert calibration["fitted_on"]["n"] == 28 * len(held) * per_clip  # 28 ravdess4 clips per actor
    # held-out speakers: RAVDESS session 5, 3 seeds
    held_out = prov["held_out_evaluation"]
    assert held_out["seeds"] == [0, 1, 2] and held_out["n"] == 112
    assert "whisper-tiny.en layer 2, norm utt frames of the recording's real length" in held_out["scoring"]
    assert_seeds_summarised(held_out, 112)
    # corpora never trained on: both directions, and per seed the mean of the two
    loco = prov["corpus_never_trained_on"]
    assert set(loco["directions"]) == {"ravdess4->tess4", "tess4->ravdess4"}
    assert_seeds_summarised(loco["directions"]["ravdess4->tess4"], 1600)
    assert_seeds_summarised(loco["directions"]["tess4->ravdess4"], 560)
    for seed, mean in loco["mean"]["per_seed"].items():
        directions = [d["per_seed"][seed] for d in loco["directions"].values()]
        assert mean["ua"] == pytest.approx(np.mean([d["ua"] for d in directions]))
        assert mean["ece"] == pytest.approx(np.mean([d["probability"]["ece"] for d in directions]))
    assert loco["mean"]["ua"]["mean"] == pytest.approx(np.mean([m["ua"] for m in loco["mean"]["per_seed"].values()]))
    assert "none (temperature 1)" in loco["directions"]["tess4->ravdess4"]["calibration"]  # two speakers: none held out
    assert meta["head_config"] == MODEL_SPECS[name].head.to_dict()  # trained with the registry's head
    assert len(meta["history"]) == meta["train_config"]["epochs"]
