"""record_noise.py writes bench_noise's figures into model.json's provenance and keeps the rest."""

from __future__ import annotations

import json

import pytest


def test_noise_figures_land_in_provenance_and_nothing_else_changes(record_noise, tmp_path):
    meta = {"name": "S-CBLA", "calibration": {"temperature": 2.0}, "provenance": {"command": "c", "data": {"speech": "x"}}}
    (tmp_path / "model.json").write_text(json.dumps(meta))
    results = {"clean": {"n": 112, "wa": 0.53571, "ua": 0.52344, "confidence": 0.61234, "seconds": 3.0},
               "white-10dB": {"n": 112, "wa": 0.4, "ua": 0.38281, "confidence": 0.7, "seconds": 3.1}}
    block = record_noise.noise_provenance(tmp_path / "heldout-seed0", results)
    record_noise.write_noise(tmp_path, block)
    saved = json.loads((tmp_path / "model.json").read_text())
    assert saved["calibration"] == meta["calibration"] and saved["name"] == "S-CBLA"
    assert saved["provenance"]["command"] == "c" and saved["provenance"]["data"] == {"speech": "x"}
    noise = saved["provenance"]["noise"]
    assert noise["conditions"] == {
        "clean": {"n": 112, "wa": 0.5357, "ua": 0.5234, "mean_confidence": 0.6123},
        "white-10dB": {"n": 112, "wa": 0.4, "ua": 0.3828, "mean_confidence": 0.7},
    }
    assert str(tmp_path / "heldout-seed0") in noise["command"]


def test_a_missing_model_is_a_clear_error(record_noise, tmp_path):
    with pytest.raises(SystemExit, match="no model.json"):
        record_noise.main(["--export", str(tmp_path), "--run", str(tmp_path)])
