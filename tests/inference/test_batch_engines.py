"""Batch prediction on several processes and on a Ray cluster gives the single-process CSV.

The shipped model on the bundled recordings (each listed several times, plus a corrupt file), so
more than one model batch of 64 is predicted and a bad row sits among good ones.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from emofusion.cli.main import main
from emofusion.corpora.manifest import write_manifest
from emofusion.inference.parallel import BATCH_ITEMS
from emofusion.records import Utterance

REPO = Path(__file__).resolve().parents[2]
TEXTS = {"angry": "Kids are talking by the door.", "happy": "Dogs are sitting by the door.",
         "neutral": "Kids are talking by the door.", "sad": "Dogs are sitting by the door."}


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("batch")
    for name in TEXTS:
        shutil.copy(REPO / "examples" / f"{name}.flac", folder / f"{name}.flac")
    (folder / "broken.wav").write_bytes(b"RIFF not really a wav")
    rows = []
    for k in range(BATCH_ITEMS + 6):
        name = list(TEXTS)[k % len(TEXTS)]
        audio = "broken.wav" if k == 40 else f"{name}.flac"
        rows.append(Utterance(f"clip{k:03d}", folder / audio, TEXTS[name], "neu", "spk", "1"))
    write_manifest(rows, folder / "manifest.csv")
    return folder / "manifest.csv"


@pytest.fixture(scope="module")
def single_process_csv(manifest, tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("single") / "preds.csv"
    assert main(["predict", str(manifest), "--out", str(out), "--workers", "1", "--quiet"]) == 0
    return out.read_text(encoding="utf-8")


def test_single_process_csv_has_every_row_in_order_and_the_bad_one_explained(single_process_csv):
    rows = list(csv.DictReader(single_process_csv.splitlines()))
    assert [r["id"] for r in rows] == [f"clip{k:03d}" for k in range(BATCH_ITEMS + 6)]
    assert rows[40]["predicted"] == "" and "broken.wav" in rows[40]["error"]
    good = [r for r in rows if not r["error"]]
    assert len(good) == BATCH_ITEMS + 5
    # The same recording gives the same row wherever it sits (in either model batch).
    by_clip = {}
    for k, r in enumerate(rows):
        if not r["error"]:
            by_clip.setdefault(k % 4, set()).add(tuple(v for key, v in r.items() if key != "id"))
    assert all(len(v) == 1 for v in by_clip.values())


def test_worker_processes_write_the_single_process_csv(manifest, single_process_csv, tmp_path):
    out = tmp_path / "preds.csv"
    assert main(["predict", str(manifest), "--out", str(out), "--workers", "2", "--quiet"]) == 0
    assert out.read_text(encoding="utf-8") == single_process_csv


def test_ray_engine_on_a_local_two_worker_cluster_writes_the_single_process_csv(manifest, single_process_csv, tmp_path):
    ray = pytest.importorskip("ray", reason='needs the ray extra: pip install "emofusion[ray]"')
    pytest.importorskip("ray.data", reason='needs the ray extra: pip install "emofusion[ray]"')
    out = tmp_path / "preds.csv"
    assert main(["predict", str(manifest), "--out", str(out), "--engine", "ray", "--workers", "2", "--quiet"]) == 0
    assert out.read_text(encoding="utf-8") == single_process_csv
    assert not ray.is_initialized()  # the local cluster it started is shut down


def test_engine_options_are_checked(manifest, tmp_path, capsys):
    assert main(["predict", str(manifest), "--out", str(tmp_path / "p.csv"), "--workers", "0"]) == 2
    assert "--workers must be at least 1" in capsys.readouterr().err
    assert main(["predict", str(manifest), "--out", str(tmp_path / "p.csv"), "--address", "ray://x:1"]) == 2
    assert "use it with --engine ray" in capsys.readouterr().err
