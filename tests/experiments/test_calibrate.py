"""Calibration in training: held-out speakers chosen per corpus, disjoint from the training rows,
and a model trained to be over-confident comes out better calibrated on speakers it never met."""

from __future__ import annotations

import json

import numpy as np
import pytest

from emofusion.errors import ConfigError
from emofusion.evaluation.metrics import probability_scores
from emofusion.experiments.calibrate import fit_calibration, holdout_speakers, speaker_key, split_for_calibration
from emofusion.experiments.runner import ExperimentConfig, train_model
from emofusion.experiments.scoring import predict_utterances, score
from emofusion.features.vocabulary import TextConfig
from emofusion.models import ModelConfig
from emofusion.records import Utterance
from emofusion.training.config import TrainConfig

LABELS = ("ang", "exc", "neu", "sad")
CLASS_WORDS = {"ang": ["furious", "hate", "stop"], "exc": ["great", "wow", "yes"],
               "neu": ["table", "paper", "door"], "sad": ["cry", "alone", "lost"]}
FILLERS = [f"w{i:02d}" for i in range(60)]


def rows(corpus: str, speakers: int, per_speaker: int = 2) -> list[Utterance]:
    return [Utterance(f"{corpus}{s}_{k}", None, "x", LABELS[k % 4], f"spk{s}", "1", corpus=corpus)
            for s in range(speakers) for k in range(per_speaker)]


def test_speakers_are_held_out_per_corpus_and_small_corpora_keep_theirs():
    data = rows("ravdess", 10) + rows("tess", 2)
    held = holdout_speakers(data, 0.2, seed=0)
    assert len(held) == 2 and all(h.startswith("ravdess/") for h in held)
    assert holdout_speakers(data, 0.2, seed=0) == held  # seeded
    assert {tuple(holdout_speakers(data, 0.2, seed=s)) for s in range(6)} != {tuple(held)}  # the seed matters
    assert len(holdout_speakers(data, 0.5, seed=0)) == 5
    # "spk1" of one corpus is not "spk1" of another
    assert speaker_key(rows("a", 1)[0]) != speaker_key(rows("b", 1)[0])


def test_the_split_is_disjoint_by_speaker():
    data = rows("ravdess", 10)
    fit, validation, speakers = split_for_calibration(data, 0.3, seed=4)
    assert {speaker_key(u) for u in validation} == set(speakers)
    assert not {speaker_key(u) for u in fit} & set(speakers)
    assert len(fit) + len(validation) == len(data)


def test_too_few_speakers_is_a_clear_error():
    with pytest.raises(ConfigError, match="at least 3 speakers"):
        holdout_speakers(rows("tess", 2), 0.2, seed=0)
    with pytest.raises(ConfigError, match="between 0 and 1"):
        holdout_speakers(rows("ravdess", 10), 1.0, seed=0)


def test_fit_calibration_records_the_validation_figures():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(300, 4)) * 6  # far too sharp for labels drawn at temperature 3
    p = np.exp(logits / 3) / np.exp(logits / 3).sum(axis=1, keepdims=True)
    targets = np.array([rng.choice(4, p=row) for row in p])
    block = fit_calibration(logits, targets, speakers=["a/1"])
    v = block["validation"]
    assert block["temperature"] == pytest.approx(3, rel=0.2)
    assert v["ece_after"] < v["ece_before"] and v["nll_after"] < v["nll_before"]
    # the recorded figures are those of the probabilities the temperature gives
    z = logits / block["temperature"]
    after = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    assert v["ece_after"] == pytest.approx(probability_scores(after, targets).ece)
    top, right = after.max(1), after.argmax(1) == targets
    sure = top >= 0.99
    assert v["n_at_99"] == int(sure.sum())
    assert v["error_rate_at_99"] == (pytest.approx(1 - right[sure].mean()) if sure.any() else None)
    confident = top >= block["confidence_threshold"]
    assert right[confident].mean() >= 0.8
    json.dumps(block)  # plain JSON


def noisy_corpus(seed: int = 0, speakers: int = 20, per_speaker: int = 12) -> list[Utterance]:
    """Text rows whose words only partly say the class, and 30% of labels drawn at random: a model
    that memorises its training rows is sure of answers that are often wrong elsewhere."""
    rng = np.random.default_rng(seed)
    out = []
    for s in range(speakers):
        for k in range(per_speaker):
            label = LABELS[k % 4]
            cue = label if rng.random() < 0.6 else LABELS[rng.integers(4)]
            words = [rng.choice(CLASS_WORDS[cue])] + list(rng.choice(FILLERS, 4))
            if rng.random() < 0.3:
                label = LABELS[rng.integers(4)]
            out.append(Utterance(f"s{s}_{k}", None, " ".join(words), label, f"spk{s}", "1", corpus="noisy"))
    return out


@pytest.fixture(scope="module")
def vectors(tmp_path_factory):
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("vectors") / "vectors.txt"
    words = [w for ws in CLASS_WORDS.values() for w in ws] + FILLERS
    path.write_text("\n".join(w + " " + " ".join(f"{v:.4f}" for v in rng.normal(size=8)) for w in words) + "\n")
    return path


def test_an_over_confident_model_comes_out_better_calibrated_on_unseen_speakers(vectors, tmp_path):
    data = noisy_corpus()
    pool = [u for u in data if int(u.speaker[3:]) < 14]
    test = [u for u in data if int(u.speaker[3:]) >= 14]
    config = ExperimentConfig(
        text=TextConfig(vectors=str(vectors), extra_vocab=0),
        model=ModelConfig(text_lstm_hidden=32),
        train=TrainConfig(epochs=40, batch_size=8, learning_rate=3e-3, precision="fp32"),
        calibrate=True, calibration_holdout=0.3,
    )
    trained = train_model("T-LSTM", pool, labels=LABELS, out_dir=tmp_path / "run", config=config, cache=None,
                          seed=0, progress=False)
    block = json.loads((tmp_path / "run" / "model.json").read_text())["calibration"]
    held = set(block["fitted_on"]["speakers"])
    assert len(held) == 4 and block["fitted_on"]["n"] == 48
    assert trained.meta["n_train"] == len(pool) - 48  # trained on the other speakers only
    assert block["temperature"] > 1.5  # it was over-confident, so it is softened

    # On speakers neither training nor calibration saw: raw softmax vs the calibrated path.
    truth = [LABELS.index(u.label) for u in test]
    logits = predict_utterances(trained, test, progress=False, logits=True)
    raw = np.exp(logits - logits.max(1, keepdims=True))
    raw /= raw.sum(1, keepdims=True)
    before = probability_scores(raw, truth)
    metrics, _ = score(trained, test, progress=False)
    after = metrics.probability
    assert after.ece < before.ece - 5, (before.ece, after.ece)
    assert after.nll < before.nll
    # the same model, so the same answers: scaling changes confidence, never the predicted class
    assert (metrics.counts == _counts(raw.argmax(1), truth)).all()

    # A rerun finds the calibrated model and keeps its calibration (nothing is refitted).
    again = train_model("T-LSTM", pool, labels=LABELS, out_dir=tmp_path / "run", config=config, cache=None,
                        seed=0, progress=False)
    assert again.meta["calibration"] == block


def _counts(predicted, truth) -> np.ndarray:
    counts = np.zeros((4, 4), dtype=np.int64)
    np.add.at(counts, (np.asarray(truth), np.asarray(predicted)), 1)
    return counts


def test_cli_train_calibrate_then_evaluate_shows_calibration(tiny, tmp_path, capsys):
    from emofusion.cli.main import main

    run = tmp_path / "run"
    common = ["--manifest", str(tiny["manifest"]), "--vectors", str(tiny["vectors"]),
              "--cache", str(tiny["root"] / "cli-cache"), "--quiet", "--max-frames", "40"]
    assert main(["train", "--model", "T-BL", "--out", str(run), "--epochs", "3", "--calibrate", *common]) == 0
    meta = json.loads((run / "model.json").read_text())
    block = meta["calibration"]
    # Sessions 1-2 train (3 is the test session); one of their four speakers is held out for calibration.
    assert len(block["fitted_on"]["speakers"]) == 1 and block["fitted_on"]["n"] == 4
    assert meta["n_train"] == 12
    assert "ece_after" in block["validation"] and 0 < block["confidence_threshold"] <= 1
    saved = json.loads((run / "metrics.json").read_text())
    assert saved["probability"]["bin_count"] and sum(saved["probability"]["bin_count"]) == saved["n"] == 8
    assert f"ECE {saved['probability']['ece']:.1f}  NLL {saved['probability']['nll']:.3f}" in capsys.readouterr().out

    png = tmp_path / "reliability.png"
    assert main(["evaluate", str(run), "--manifest", str(tiny["manifest"]), "--sessions", "3",
                 "--reliability", str(png)]) == 0
    out = capsys.readouterr().out
    assert f"ECE {saved['probability']['ece']:.1f} points" in out  # the same scores train recorded
    assert f"temperature {block['temperature']:.3f} from model.json" in out
    assert png.stat().st_size > 1000
