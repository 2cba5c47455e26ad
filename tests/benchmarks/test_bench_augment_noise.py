"""benchmarks/bench_augment.py and bench_noise.py run on the shared data and print their tables.

No speed or accuracy figure is asserted (those live in the benchmarks' output): only that each
prints what it promises, side by side, and that a model trained on the scored actors is flagged.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _run(script: str, *args: str) -> str:
    done = subprocess.run([sys.executable, str(BENCHMARKS / script), *args], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_bench_augment_prints_clean_and_augmented_epochs_side_by_side(shared_data):
    out = _run("bench_augment.py", "--shared", str(shared_data), "--clips", "8", "--models", "S-CBLA", "--threads", "1")
    header = next(line for line in out.splitlines() if line.startswith("model"))
    assert "clean epoch s" in header and "augmented epoch s" in header
    row = next(line for line in out.splitlines() if line.startswith("S-CBLA "))
    clean, augmented, augment, ratio = (float(v) for v in row.split()[1:])
    assert 0 < augment <= augmented and clean > 0 and ratio > 0
    assert "every epoch augments all 8 clips and recomputes their features" in out


def test_bench_noise_flags_a_model_that_heard_the_scored_actors(shared_data, tmp_path):
    # The shipped speech model was trained on actors 01-20: its session-5 figures are not held out.
    out = _run("bench_noise.py", "--shared", str(shared_data), "--model", "speech", "--conditions", "clean", "telephone",
               "--json", str(tmp_path / "noise.json"))
    assert "NOT held out" in out
    assert "target (speech-only model): UA >= 60 in each condition" in out
    report = json.loads((tmp_path / "noise.json").read_text())
    (entry,) = report.values()
    from emofusion.inference.recognizer import EmotionRecognizer

    speech_model = EmotionRecognizer.load("speech").name  # S-WTV with the encoders extra, else S-CBLA
    assert entry["held_out"] is False and entry["model"] == speech_model
    assert set(entry["conditions"]) == {"clean", "telephone"}
    assert all(r["n"] == 112 for r in entry["conditions"].values())  # RAVDESS session 5: actors 17-20
