"""The default fusion model: M-WT-ST with the encoders extra, else the paper's M-CBLA-BLR (said once).

Which model each entry point loads (Python, `predict`, `serve`, Ray, the ONNX backends) with the
extra's probe forced either way, and the shipped M-WT-ST itself: small, with its provenance and
its held-out check per seed. Tests that run M-WT-ST need the extra and skip without it.
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
PAPER_MODEL = shipped.SHIPPED_MODELS["fusion-paper"]
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


def test_named_shipped_models_are_what_they_name_whatever_the_extra(probe, caplog):
    probe(False)
    with caplog.at_level(logging.WARNING, logger="emofusion"):
        assert shipped.shipped_model_path("fusion-paper") == PAPER_MODEL
        assert shipped.shipped_model_path("speech") == shipped.SHIPPED_MODELS["speech"]
        assert EmotionRecognizer.load("fusion-paper").name == "M-CBLA-BLR"
        assert EmotionRecognizer.load("speech").name == "S-CBLA"
    assert said(caplog) == []  # nothing falls back: they were asked for by name
    assert shipped.shipped_model_path("runs/m1") == Path("runs/m1")  # anything else is a path


def test_asking_for_the_encoder_model_without_the_extra_names_the_install_command(probe, capsys):
    probe(False)
    with pytest.raises(MissingExtraError, match=r'pip install "emofusion\[encoders\]"'):
        EmotionRecognizer.load("fusion-encoders")
    assert main(["predict", str(EXAMPLES / "sad.flac"), "--text", SENTENCE, "--model", "fusion-encoders"]) == 2
    err = capsys.readouterr().err
    assert INSTALL in err and "M-WT-ST" in err and "Traceback" not in err


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


# ---------------------------------------------------------------- with the extra: M-WT-ST runs


@needs_encoders
def test_with_the_extra_predict_and_serve_use_m_wt_st_unless_told_otherwise(probe, serve_captured, capsys):
    probe(True)
    args = ["predict", str(EXAMPLES / "angry.flac"), "--json"]
    for model, name in ((None, "M-WT-ST"), ("fusion-encoders", "M-WT-ST"), ("fusion-paper", "M-CBLA-BLR"),
                        ("speech", "S-CBLA")):
        text = ["--text", SENTENCE] if model != "speech" else []
        assert main(args + text + (["--model", model] if model else [])) == 0
        assert json.loads(capsys.readouterr().out)["model"] == name
    assert main(["serve"]) == 0
    assert serve_captured["recognizer"].name == "M-WT-ST"
    assert serve_captured["settings"]["model_dir"] == str(ENCODER_MODEL)
    assert main(["serve", "--model", "fusion-paper"]) == 0
    assert serve_captured["recognizer"].name == "M-CBLA-BLR"


@needs_encoders
@pytest.mark.parametrize("name, label", [("angry", "ang"), ("happy", "exc"), ("neutral", "neu"), ("sad", "sad")])
def test_the_default_encoder_model_predicts_the_bundled_examples(probe, name, label):
    probe(True)
    recognizer = EmotionRecognizer.load()
    assert recognizer.name == "M-WT-ST"
    # In its training data too: packaging and wiring, not accuracy.
    p = recognizer.predict(EXAMPLES / f"{name}.flac", SENTENCE)
    assert p.label == label and p.transcript == SENTENCE and p.windows == 1  # Whisper: one window up to 30 s
    assert sum(p.probabilities.values()) == pytest.approx(1.0)


# ---------------------------------------------------------------- the shipped M-WT-ST


def test_shipped_encoder_model_is_m_wt_st_stored_small_without_the_encoders():
    meta = json.loads((ENCODER_MODEL / "model.json").read_text())
    assert meta["name"] == "M-WT-ST" and meta["labels"] == ["ang", "exc", "neu", "sad"]
    assert meta["pipeline"]["speech_kind"] == "whisper" and meta["pipeline"]["text_kind"] == "sentence"
    assert {p.name for p in ENCODER_MODEL.iterdir()} == {"model.json", "model.safetensors"}
    weights = ENCODER_MODEL / "model.safetensors"
    with safe_open(str(weights), "pt") as f:
        assert {str(f.get_slice(k).get_dtype()) for k in f.keys()} <= {"F16", "I64"}
    # The fusion DNN only: Whisper tiny (~75 MB) and MiniLM (~90 MB) come from the extra's packages.
    assert weights.stat().st_size < 10_000_000


def test_shipped_encoder_model_records_its_provenance_and_a_held_out_check_per_seed():
    from emofusion.models import MODEL_SPECS

    meta = json.loads((ENCODER_MODEL / "model.json").read_text())
    prov = meta["provenance"]
    assert prov["command"].startswith("python recipes/shipped/build.py --model M-WT-ST")
    assert "RAVDESS" in prov["data"]["speech"] and "MELD train" in prov["data"]["text"]
    assert meta["n_train"] == 2240  # all 560 clips x 4 MELD train texts: the shipped model, not a fold's
    held_out = prov["held_out_evaluation"]
    assert held_out["seeds"] == [0, 1, 2] and held_out["n"] == 112  # paired4 session 5: actors 17-20
    assert "Whisper tiny.en frames of the recording's real length" in held_out["scoring"]
    per_seed = [held_out["per_seed"][str(s)] for s in held_out["seeds"]]
    assert all(m["n"] == 112 for m in per_seed)
    for key in ("wa", "ua"):
        values = [m[key] for m in per_seed]
        assert held_out[key]["mean"] == pytest.approx(np.mean(values))
        assert held_out[key]["std"] == pytest.approx(np.std(values, ddof=1))
    assert 0.25 < held_out["ua"]["mean"] <= 1.0
    assert meta["head_config"] == MODEL_SPECS["M-WT-ST"].head.to_dict()  # trained with the registry's head
    assert len(meta["history"]) == meta["train_config"]["epochs"]
