"""A calibrated model predicts calibrated probabilities on every path: the Python API, the CLI
(table, --json, batch CSV), ONNX (the temperature inside the graph) and Ray; a temperature of 1
changes nothing, bit for bit.

The shipped speech model, copied without its own calibration block and with one written in.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from emofusion.cli.main import main
from emofusion.corpora.manifest import write_manifest
from emofusion.errors import ConfigError
from emofusion.inference.recognizer import EmotionRecognizer
from emofusion.inference.shipped import SHIPPED_MODELS
from emofusion.records import Utterance

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "examples").glob("*.flac"))
TEMPERATURE = 2.5


def with_calibration(folder: Path, block: dict | None) -> Path:
    shutil.copytree(SHIPPED_MODELS["speech"], folder)
    meta = json.loads((folder / "model.json").read_text())
    meta.pop("calibration", None)  # the shipped model's own (it is calibrated): every copy starts without
    if block is not None:
        meta["calibration"] = block
    (folder / "model.json").write_text(json.dumps(meta))
    return folder


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("calibrated")
    block = {"method": "temperature", "temperature": TEMPERATURE, "confidence_threshold": 0.5,
             "fitted_on": {"n": 10, "speakers": ["x/1"]}}
    return {
        "plain": with_calibration(root / "plain", None),
        "unit": with_calibration(root / "unit", {**block, "temperature": 1.0}),
        "calibrated": with_calibration(root / "calibrated", block),
    }


def window_probabilities(model: Path, backend: str | None = None) -> list[np.ndarray]:
    rec = EmotionRecognizer.load(model, backend=backend)
    prepared = [rec.prepare(path) for path in EXAMPLES]
    return rec.window_probabilities([(p, 0, len(p.windows)) for p in prepared])


def test_temperature_one_changes_nothing_bit_for_bit(models):
    plain = EmotionRecognizer.load(models["plain"])
    unit = EmotionRecognizer.load(models["unit"])
    for path in EXAMPLES:
        a, b = plain.predict(path), unit.predict(path)
        assert a.probabilities == b.probabilities  # exact float equality
        assert a.confident is None and b.confident is not None  # only the threshold is new


def test_the_api_divides_the_logits_by_the_temperature(models):
    plain = window_probabilities(models["plain"])
    calibrated = window_probabilities(models["calibrated"])
    for p, q in zip(plain, calibrated):
        # softmax(z / T) from the uncalibrated probabilities alone: log p = z - const per row
        z = np.log(p) / TEMPERATURE
        expected = np.exp(z - z.max(1, keepdims=True))
        expected /= expected.sum(1, keepdims=True)
        np.testing.assert_allclose(q, expected, atol=1e-6)
        assert (q.argmax(1) == p.argmax(1)).all()
        assert q.max() < p.max()  # T > 1 softens
    rec = EmotionRecognizer.load(models["calibrated"])
    for path in EXAMPLES:
        prediction = rec.predict(path)
        assert prediction.confident == (max(prediction.probabilities.values()) >= 0.5)
        assert prediction.to_json()["confident"] is prediction.confident


def test_a_damaged_calibration_block_is_refused_at_load(tmp_path):
    folder = with_calibration(tmp_path / "bad", {"method": "temperature", "temperature": -1})
    with pytest.raises(ConfigError, match="model.json: calibration temperature"):
        EmotionRecognizer.load(folder)


def test_onnx_graph_carries_the_temperature(models, tmp_path):
    pytest.importorskip("onnxruntime", reason='needs the onnx extra: pip install "emofusion[onnx]"')
    pytest.importorskip("onnx", reason='needs the onnx extra: pip install "emofusion[onnx]"')
    out = tmp_path / "calibrated.onnx"
    assert main(["export", str(models["calibrated"]), "--out", str(out)]) == 0
    torch_probs = window_probabilities(models["calibrated"])
    onnx_probs = window_probabilities(out)  # the .onnx file alone
    for a, b in zip(torch_probs, onnx_probs):
        np.testing.assert_allclose(b, a, atol=1e-4)
    plain = window_probabilities(models["plain"])
    assert max(np.abs(p - b).max() for p, b in zip(plain, onnx_probs)) > 1e-2  # it is not the plain softmax
    torch_rec, onnx_rec = EmotionRecognizer.load(models["calibrated"]), EmotionRecognizer.load(out)
    for path in EXAMPLES:
        assert onnx_rec.predict(path).confident == torch_rec.predict(path).confident


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("manifest")
    rows = [Utterance(p.stem, p, None, "neu", "spk", "1") for p in EXAMPLES]
    write_manifest(rows, folder / "manifest.csv")
    return folder / "manifest.csv"


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_cli_json_table_and_batch_csv_say_whether_confident(models, manifest, tmp_path, capsys):
    rec = EmotionRecognizer.load(models["calibrated"])
    expected = {p.stem: rec.predict(p) for p in EXAMPLES}
    out = tmp_path / "preds.csv"
    assert main(["predict", str(manifest), "--model", str(models["calibrated"]), "--out", str(out), "--quiet",
                 "--workers", "1"]) == 0
    rows = read_csv(out)
    assert [r["confident"] for r in rows] == [str(expected[r["id"]].confident).lower() for r in rows]
    for r in rows:
        assert float(r[f"p_{expected[r['id']].label}"]) == pytest.approx(max(expected[r["id"]].probabilities.values()), abs=1e-6)
    capsys.readouterr()
    assert main(["predict", str(EXAMPLES[0]), "--model", str(models["calibrated"]), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["confident"] is expected[EXAMPLES[0].stem].confident
    # The table names an uncertain result on its first line
    strict = with_calibration(tmp_path / "strict", {"method": "temperature", "temperature": TEMPERATURE,
                                                     "confidence_threshold": 1.0})
    assert main(["predict", str(EXAMPLES[0]), "--model", str(strict)]) == 0
    assert "uncertain" in capsys.readouterr().out.splitlines()[0]
    assert main(["predict", str(manifest), "--model", str(models["plain"]), "--out", str(out), "--quiet"]) == 0
    assert {r["confident"] for r in read_csv(out)} == {""}  # no calibration: unknown, not false


def test_ray_engine_agrees_with_pytorch_on_a_calibrated_model(models, manifest, tmp_path):
    ray = pytest.importorskip("ray", reason='needs the ray extra: pip install "emofusion[ray]"')
    pytest.importorskip("ray.data", reason='needs the ray extra: pip install "emofusion[ray]"')
    single, distributed = tmp_path / "single.csv", tmp_path / "ray.csv"
    common = ["--model", str(models["calibrated"]), "--quiet"]
    assert main(["predict", str(manifest), "--out", str(single), "--workers", "1", *common]) == 0
    assert main(["predict", str(manifest), "--out", str(distributed), "--engine", "ray", "--workers", "2", *common]) == 0
    assert distributed.read_text(encoding="utf-8") == single.read_text(encoding="utf-8")
    assert {r["confident"] for r in read_csv(distributed)} <= {"true", "false"}
    assert not ray.is_initialized()
