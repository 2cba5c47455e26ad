"""The experiment runner: folds through training and scoring, speaker overlap reported, LOSO pooled."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tiny_corpus import small_model_config

from emofusion.evaluation.metrics import Metrics
from emofusion.evaluation.protocols import SpeakerOverlap
from emofusion.evaluation.results import RunResult
from emofusion.experiments.runner import (
    ExperimentConfig, pooled, run_experiment, run_folds, runnable_models, speaker_overlap_notes,
)
from emofusion.training.config import TrainConfig


def _config(tiny, epochs=1):
    return ExperimentConfig(acoustic=tiny["acoustic"], text=tiny["text"], model=small_model_config(),
                            train=TrainConfig(epochs=epochs, batch_size=8, precision="fp32"))


def _result(fold: str, counts) -> RunResult:
    return RunResult("S-DNN", "loso", 0, fold, Metrics.from_counts(counts, ("a", "b")))


def test_loso_score_pools_counts_instead_of_averaging_folds():
    # Fold 1: a 1/1, b 1/2 -> UA 0.75.  Fold 2: a 1/2, b 1/1 -> UA 0.75.  Mean of folds: 0.75.
    # Pooled: a 2/3, b 2/3 -> UA 0.667, WA 4/6: every utterance counted once.
    runs = [_result("1", [[1, 0], [1, 1]]), _result("2", [[1, 1], [0, 1]])]
    assert np.mean([r.metrics.ua for r in runs]) == pytest.approx(0.75)
    m = pooled(runs)
    assert m.ua == pytest.approx(2 / 3) and m.wa == pytest.approx(4 / 6) and m.n == 6
    assert m.counts.tolist() == [[2, 1], [1, 2]]


def test_runnable_models_skip_what_the_data_cannot_feed(tiny):
    speech_only = [dataclasses.replace(u, text=None) for u in tiny["utterances"]]
    chosen, skipped = runnable_models(["s_dnn", "T-BL", "M-CL-BLR"], speech_only)
    assert chosen == ["S-DNN"]
    assert skipped == {"T-BL": "the manifest has no text rows", "M-CL-BLR": "the manifest has no text rows"}


def test_folds_record_and_warn_about_test_speakers_seen_in_training(tiny, tmp_path, capsys):
    # The same two speakers in every session: nothing held out is speaker-independent.
    shared = [dataclasses.replace(u, speaker=f"spk{i % 2}") for i, u in enumerate(tiny["utterances"])]
    seen = []
    results = run_folds(
        "T-BL", shared, protocol="loso", seed=0, run_dir=lambda fold: tmp_path / fold.name,
        config=_config(tiny), cache=None, progress=False, on_fold=lambda f, d, r: seen.append((f.name, d, r)),
    )
    assert [r.fold for r in results] == ["1", "2", "3"]
    assert [(name, d) for name, d, _ in seen] == [(s, tmp_path / s) for s in "123"]
    assert all((tmp_path / s / "model.json").is_file() for s in "123")
    for r in results:
        assert r.overlap == SpeakerOverlap(speakers=2, test_speakers=2, utterances=8, test_utterances=8)
        assert r.metrics.n == 8
        assert r.to_dict()["speaker_overlap"]["shared_speaker_utterances"] == 8
        assert RunResult.from_dict(r.to_dict()).overlap == r.overlap
    err = capsys.readouterr().err
    assert err.count("warning: T-BL, protocol loso, test session") == 3  # printed though progress=False
    assert "2 of 2 test speakers also speak in training (8 of 8 test utterances)" in err
    assert speaker_overlap_notes(results) == [
        f"Not speaker-independent: protocol loso, test session {s}: 2 of 2 test speakers "
        "(8 of 8 test utterances) also speak in training." for s in "123"
    ]


def test_speaker_independent_experiment_says_so_and_warns_nothing(tiny, tmp_path, capsys):
    results, skipped = run_experiment(
        tiny["utterances"], models=["T-LSTM"], protocols=["paper"], seeds=[0], runs_dir=tmp_path,
        config=_config(tiny), progress=False,
    )
    assert skipped == {}
    (r,) = results
    assert r.fold == "3" and r.overlap.independent and r.overlap.test_speakers == 2
    assert (tmp_path / "paper" / "T-LSTM" / "seed0" / "test-3" / "model.json").is_file()
    assert "warning" not in capsys.readouterr().err
    assert speaker_overlap_notes(results)[0].startswith("Speaker-independent: no test speaker")
    # What the report's header needs: the word vectors a text model read, by file name and dimension.
    assert r.facts["word_vectors"] == tiny["vectors"].name and r.facts["vector_dim"] == 8
