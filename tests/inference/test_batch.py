"""Batch prediction (`items_from_manifest`, `items_from_folder`, `predict_to_csv`): every input row
gets exactly one output row, bad ones an ``error``; labels are never needed; ids stay unique; no
cell can run as a spreadsheet formula.
"""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest
import soundfile as sf

from tiny_corpus import LABELS, small_model_config

from emofusion.errors import ManifestError
from emofusion.inference.batch import BatchItem, items_from_folder, items_from_manifest, predict_to_csv
from emofusion.inference.recognizer import EmotionRecognizer
from emofusion.training.config import TrainConfig
from emofusion.training.trainer import train


@pytest.fixture(scope="module")
def fused(tiny, tmp_path_factory):
    out = tmp_path_factory.mktemp("fused-batch")
    train("M-CBLA-BLR", tiny["utterances"], labels=LABELS, out_dir=out, cache=tiny["cache"], acoustic=tiny["acoustic"],
          text_config=tiny["text"], model_config=small_model_config(),
          train_config=TrainConfig(epochs=2, batch_size=8, precision="fp32"), progress=False)
    return EmotionRecognizer.load(out)


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def write_rows(path, header, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


@pytest.fixture
def corpus(tiny, tmp_path):
    """A copy of the tiny corpus' recordings to build hostile manifests and folders from."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    for u in tiny["utterances"][:4]:
        shutil.copy(u.audio, folder / u.audio.name)
    return folder, tiny["utterances"][:4]


def test_an_unlabelled_manifest_is_predicted(fused, corpus, tmp_path):
    """Regression (issue 8.5): an empty label aborted the run; a manifest needs only id, audio, text."""
    folder, utts = corpus
    write_rows(folder / "new.csv", ["id", "audio", "text"], [[u.id, u.audio.name, u.text] for u in utts])
    write_rows(folder / "blank.csv", ["id", "audio", "text", "label", "speaker", "session"],
               [[u.id, u.audio.name, u.text, "", "", ""] for u in utts])
    for manifest in ("new.csv", "blank.csv"):
        out = tmp_path / f"{manifest}.preds.csv"
        assert predict_to_csv(fused, items_from_manifest(folder / manifest), out, progress=False) == (4, 0)
        rows = read_csv(out)
        assert [r["id"] for r in rows] == [u.id for u in utts]
        for r, u in zip(rows, utts):
            want = fused.predict(u.audio, u.text)
            assert r["predicted"] == want.label and r["error"] == ""
            assert [float(r[f"p_{c}"]) for c in LABELS] == pytest.approx([want.probabilities[c] for c in LABELS], abs=1e-6)


def test_every_bad_manifest_row_gets_its_own_error_row(fused, corpus, tmp_path):
    """Regression (issue 8.5): each of these aborted the whole run with no output."""
    folder, utts = corpus
    (folder / "x.wav").mkdir()  # a folder named like a recording
    (folder / "gone.wav").symlink_to(folder / "nowhere.wav")  # a dangling symlink
    a, b, c, d = utts
    rows = [
        [a.id, a.audio.name, a.text, "ang"],
        ["missing", "no_such.wav", "hello there", ""],
        ["folder", "x.wav", "hello there", ""],
        ["dangling", "gone.wav", "hello there", ""],
        [b.id, b.audio.name, b.text, ""],
        [a.id, c.audio.name, c.text, ""],  # duplicate id
        ["short", d.audio.name],  # a row with too few fields
        ["", d.audio.name, d.text, ""],  # no id
        ["nothing", "", "", ""],  # neither audio nor text
        [d.id, d.audio.name, "\u200b", ""],  # no words in the transcript
        [c.id, c.audio.name, c.text, "whatever-label"],
    ]
    write_rows(folder / "m.csv", ["id", "audio", "text", "label"], rows)
    out = tmp_path / "preds.csv"
    predicted, failed = predict_to_csv(fused, items_from_manifest(folder / "m.csv"), out, progress=False)
    got = read_csv(out)
    assert (predicted, failed) == (3, 8) and len(got) == len(rows)
    ids = [r["id"] for r in got]
    assert len(set(ids)) == len(ids)  # unique, even for the duplicate and the missing id
    errors = {r["id"]: r["error"] for r in got}
    assert errors[a.id] == "" and errors[b.id] == "" and errors[c.id] == ""
    assert "no such audio file" in errors["missing"]
    assert "not a regular file" in errors["folder"]
    assert "no such audio file" in errors["dangling"]
    assert "duplicate id" in errors[ids[5]] and a.id in ids[5] and "line 2" in errors[ids[5]]
    assert "2 fields, header has 4" in errors["short"]
    assert "empty id" in errors[ids[7]]
    assert "neither audio nor text" in errors["nothing"]
    assert "no transcript" in errors[d.id]
    for r in got:
        assert (r["predicted"] == "") == bool(r["error"])


def test_a_manifest_that_cannot_be_read_at_all_is_one_clear_error(tmp_path):
    (tmp_path / "latin1.csv").write_bytes("id,audio,text\nx,a.wav,caf\xe9\n".encode("latin-1"))
    write_rows(tmp_path / "noid.csv", ["audio", "text"], [["a.wav", "hi"]])
    write_rows(tmp_path / "nocolumns.csv", ["id", "label"], [["a", "ang"]])
    with pytest.raises(ManifestError, match="not UTF-8"):
        items_from_manifest(tmp_path / "latin1.csv")
    with pytest.raises(ManifestError, match="lacks the column id"):
        items_from_manifest(tmp_path / "noid.csv")
    with pytest.raises(ManifestError, match="needs an audio and/or a text column"):
        items_from_manifest(tmp_path / "nocolumns.csv")
    with pytest.raises(ManifestError, match="does not exist"):
        items_from_manifest(tmp_path / "absent.csv")


def test_folder_ids_stay_unique_and_a_bad_transcript_costs_only_its_row(fused, corpus, tmp_path):
    """Regression (issue 8.5): a.wav + a.flac both got id 'a'; a non-UTF-8 transcript crashed the run."""
    folder, utts = corpus
    u = utts[0]
    samples, rate = sf.read(u.audio)
    sf.write(folder / f"{u.audio.stem}.flac", samples, rate)  # same stem as the .wav
    (folder / f"{u.audio.stem}.txt").write_text(u.text, encoding="utf-8")
    (folder / f"{utts[1].audio.stem}.txt").write_bytes(b"caf\xe9 au lait")  # Latin-1, not UTF-8
    (folder / f"{utts[2].audio.stem}.txt").write_text("\ufeff" + utts[2].text, encoding="utf-8")  # with a BOM
    (folder / f"{utts[3].audio.stem}.txt").write_text(utts[3].text, encoding="utf-8")
    items = items_from_folder(folder)
    ids = [i.id for i in items]
    assert len(set(ids)) == len(ids) == 5
    assert {f"{u.audio.stem}.flac", f"{u.audio.stem}.wav"} <= set(ids)
    assert {i.id: i.text for i in items}[utts[2].audio.stem] == utts[2].text
    out = tmp_path / "preds.csv"
    assert predict_to_csv(fused, items, out, progress=False) == (4, 1)
    rows = {r["id"]: r for r in read_csv(out)}
    assert "not UTF-8" in rows[utts[1].audio.stem]["error"]
    assert rows[f"{u.audio.stem}.flac"]["predicted"] == rows[f"{u.audio.stem}.wav"]["predicted"] != ""


def test_cells_that_a_spreadsheet_would_run_are_defused(fused, corpus, tmp_path):
    """Regression (issue 8.11): ids like =HYPERLINK(...) were written as they came."""
    folder, utts = corpus
    hostile = ['=HYPERLINK("http://evil.example","x")', "+1+1", "-2+3", "@SUM(A1)", "plain"]
    write_rows(folder / "m.csv", ["id", "audio", "text"],
               [[h, utts[0].audio.name if k else "no_such.wav", utts[0].text] for k, h in enumerate(hostile)])
    out = tmp_path / "preds.csv"
    predict_to_csv(fused, items_from_manifest(folder / "m.csv"), out, progress=False)
    rows = read_csv(out)
    assert [r["id"] for r in rows] == ["'" + h for h in hostile[:-1]] + ["plain"]
    assert all(not r[key].startswith(("=", "+", "-", "@", "\t", "\r")) for r in rows for key in r)


def test_predict_to_csv_keeps_input_order_across_chunks(fused, tiny, tmp_path, monkeypatch):
    import emofusion.inference.parallel as parallel

    monkeypatch.setattr(parallel, "BATCH_ITEMS", 3)  # utterances per model pass
    utts = tiny["utterances"][:7]
    items = [BatchItem(u.id, u.audio, u.text) for u in utts]
    items.insert(4, BatchItem("broken", tmp_path / "no.wav", "hi"))
    out = tmp_path / "p.csv"
    assert predict_to_csv(fused, items, out, progress=False) == (7, 1)
    rows = read_csv(out)
    assert [r["id"] for r in rows] == [i.id for i in items]
    alone = fused.predict(utts[5].audio, utts[5].text)
    assert float(rows[6]["p_ang"]) == pytest.approx(alone.probabilities["ang"], abs=1e-6)
    assert np.isclose(sum(float(rows[0][f"p_{c}"]) for c in LABELS), 1.0, atol=1e-5)


def test_spreadsheet_safe_prefixes_only_what_would_run():
    from emofusion.fileio import spreadsheet_safe

    assert [spreadsheet_safe(c) for c in ["=1", "+1", "-1", "@x", "\tx", "\rx", "a=1", "", "0.25"]] == [
        "'=1", "'+1", "'-1", "'@x", "'\tx", "'\rx", "a=1", "", "0.25"]
