"""`emofusion predict`: one recording, a manifest, a folder; JSON output; bad rows; wrong modality."""

import csv
import json
import shutil

import numpy as np
import pytest
import soundfile as sf

from tiny_corpus import LABELS, small_model_config

from emofusion.cli.main import main
from emofusion.training.config import TrainConfig
from emofusion.training.trainer import train

SMALL = small_model_config()


@pytest.fixture(scope="module")
def models(tiny, tmp_path_factory):
    out = {}
    for name in ("M-CBLA-BLR", "T-BL", "S-CNN"):
        run = tmp_path_factory.mktemp(name)
        train(name, tiny["utterances"], labels=LABELS, out_dir=run, cache=tiny["cache"], acoustic=tiny["acoustic"],
              text_config=tiny["text"], model_config=SMALL,
              train_config=TrainConfig(epochs=25, batch_size=8, learning_rate=3e-3, precision="fp32"), progress=False)
        out[name] = run
    return out


def test_single_recording_json(models, tiny, capsys):
    u = tiny["utterances"][5]
    assert main(["predict", str(u.audio), "--text", u.text, "--model", str(models["M-CBLA-BLR"]), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["label"] == u.label
    assert set(out["probabilities"]) == set(LABELS)
    assert sum(out["probabilities"].values()) == pytest.approx(1.0)
    assert out["modalities"] == ["speech", "text"]


def test_text_only_and_speech_only_models_say_what_they_use(models, tiny, capsys):
    u = tiny["utterances"][3]
    assert main(["predict", "--text", u.text, "--model", str(models["T-BL"])]) == 0
    out = capsys.readouterr().out
    assert out.split()[0] == u.label and "text" in out and "speech" not in out
    assert main(["predict", str(u.audio), "--text", u.text, "--model", str(models["S-CNN"])]) == 0
    out = capsys.readouterr().out
    assert "speech-only model; the transcript is not used" in out
    assert main(["predict", str(u.audio), "--text", u.text, "--model", str(models["T-BL"])]) == 2
    assert "text-only model" in capsys.readouterr().err


def test_manifest_batch_writes_every_row_and_keeps_going_past_a_bad_file(models, tiny, tmp_path, capsys):
    corpus = tmp_path / "corpus"
    shutil.copytree(tiny["manifest"].parent, corpus)
    (corpus / "s1_ang_0.wav").write_bytes(b"corrupted")
    preds = tmp_path / "preds.csv"
    code = main(["predict", str(corpus / "manifest.csv"), "--out", str(preds), "--model", str(models["M-CBLA-BLR"]), "--quiet"])
    assert code == 0
    rows = list(csv.DictReader(open(preds)))
    assert len(rows) == len(tiny["utterances"])
    assert list(rows[0]) == ["id", "predicted", *[f"p_{c}" for c in LABELS], "confident", "transcript", "language",
                             "language_probability", "text_used", "error"]
    bad = [r for r in rows if r["error"]]
    assert [r["id"] for r in bad] == ["s1_ang_0"] and "cannot decode" in bad[0]["error"]
    good = [r for r in rows if not r["error"]]
    truth = {u.id: u.label for u in tiny["utterances"]}
    assert sum(r["predicted"] == truth[r["id"]] for r in good) >= len(good) - 1
    assert all(abs(sum(float(r[f"p_{c}"]) for c in LABELS) - 1) < 1e-4 for r in good)
    # Transcripts given: read, nothing detected.
    assert all(r["text_used"] == "true" and r["language"] == "" for r in good)
    assert "23 predicted, 1 failed" in capsys.readouterr().out


def test_folder_batch_reads_sidecar_transcripts(models, tiny, tmp_path):
    folder = tmp_path / "clips"
    folder.mkdir()
    for u in tiny["utterances"][:4]:
        shutil.copy(u.audio, folder / u.audio.name)
        (folder / u.audio.name).with_suffix(".txt").write_text(u.text)
    preds = tmp_path / "p.csv"
    assert main(["predict", str(folder), "--out", str(preds), "--model", str(models["M-CBLA-BLR"]), "--quiet"]) == 0
    rows = {r["id"]: r for r in csv.DictReader(open(preds))}
    assert set(rows) == {u.audio.stem for u in tiny["utterances"][:4]}
    assert all(rows[u.audio.stem]["predicted"] == u.label for u in tiny["utterances"][:4])


def test_batch_needs_out_and_folder_needs_audio(models, tmp_path, capsys):
    assert main(["predict", str(tmp_path), "--model", str(models["S-CNN"])]) == 2
    assert "needs --out" in capsys.readouterr().err
    assert main(["predict", str(tmp_path), "--out", str(tmp_path / "x.csv"), "--model", str(models["S-CNN"])]) == 2
    assert "no audio files" in capsys.readouterr().err


def test_out_is_checked_before_anything_is_loaded_or_predicted(tiny, tmp_path, capsys):
    """Regression (issue 8.9): --out equal to the manifest overwrote it; --out naming a folder failed
    only after every prediction had been computed. Both now fail first: here before the (absent)
    model is even looked for."""
    corpus = tmp_path / "corpus"
    shutil.copytree(tiny["manifest"].parent, corpus)
    manifest = corpus / "manifest.csv"
    before = manifest.read_bytes()
    nowhere = str(tmp_path / "no-model")
    assert main(["predict", str(manifest), "--out", str(manifest), "--model", nowhere, "--quiet"]) == 2
    assert "would overwrite the input manifest" in capsys.readouterr().err
    assert main(["predict", str(manifest), "--out", str(corpus / "." / "manifest.csv"), "--model", nowhere]) == 2
    assert "would overwrite the input manifest" in capsys.readouterr().err
    assert manifest.read_bytes() == before
    assert main(["predict", str(manifest), "--out", str(corpus), "--model", nowhere]) == 2
    assert "is a folder" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert main(["predict", str(manifest), "--out", str(tmp_path / "file" / "p.csv"), "--model", nowhere]) == 2
    assert "cannot create" in capsys.readouterr().err
