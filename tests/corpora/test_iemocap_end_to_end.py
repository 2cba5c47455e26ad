"""From an IEMOCAP-shaped tree to trained, evaluated models through the CLI, all eleven of Table 1."""

import csv
import json

from emofusion.cli.main import main
from emofusion.models import MODEL_NAMES


def _vectors(path, words):
    import numpy as np

    rng = np.random.default_rng(0)
    path.write_text("".join(f"{w} " + " ".join(f"{v:.4f}" for v in rng.normal(size=6)) + "\n" for w in words))
    return path


def test_prepare_then_reproduce_all_models_then_evaluate(iemocap_root, tmp_path, capsys):
    data = tmp_path / "iemocap"
    assert main(["prepare", "iemocap", str(iemocap_root), "--out", str(data)]) == 0
    manifest = data / "manifest.csv"
    rows = list(csv.DictReader(open(manifest)))
    words = {w.strip(".,!?").lower() for r in rows for w in r["text"].split()}
    vectors = _vectors(tmp_path / "vectors.txt", sorted(words | {"the"}))
    common = ["--manifest", str(manifest), "--vectors", str(vectors), "--cache", str(tmp_path / "cache"),
              "--epochs", "1", "--quiet"]

    report = tmp_path / "report"
    assert main(["reproduce", "--out", str(report), "--seeds", "1", "--runs-dir", str(tmp_path / "runs"), *common]) == 0
    results = list(csv.DictReader(open(report / "results.csv")))
    assert sorted({r["model"] for r in results}) == sorted(MODEL_NAMES)
    assert {r["fold"] for r in results} == {"5"}  # the paper protocol: Session 5 held out

    run = tmp_path / "runs" / "paper" / "M-CBLA-BLR" / "seed0" / "test-5"
    capsys.readouterr()
    assert main(["evaluate", str(run), "--manifest", str(manifest), "--sessions", "5", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    session5 = [r for r in rows if r["session"] == "5"]
    assert metrics["n"] == len(session5)
    m_cbla = next(r for r in results if r["model"] == "M-CBLA-BLR")
    assert abs(metrics["wa"] * 100 - float(m_cbla["wa_pct"])) < 1e-4  # results.csv keeps 4 decimals
