"""The shipped-model recipe scores its held-out checks the way users get predictions (calibrated
probabilities, every window), pairs clips with MELD texts, and summarises seeds and corpora."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from emofusion.corpora.manifest import read_manifest
from emofusion.evaluation.metrics import Metrics, compute_metrics
from emofusion.features.encoders import extra
from emofusion.inference.recognizer import EmotionRecognizer
from emofusion.records import Utterance

def test_held_out_score_is_what_predict_gives_with_every_window(build, shared_data):
    rows = [u for u in read_manifest(shared_data / "bench" / "paired4.csv") if u.session == "5"][:12]
    recognizer = EmotionRecognizer.load("fusion-paper")
    predictions = [recognizer.predict(u.audio, u.text) for u in rows]
    assert max(p.windows for p in predictions) > 1  # the clips are longer than one 2.5-s window
    expected = compute_metrics([u.label for u in rows], [p.label for p in predictions], recognizer.labels)
    got = build.held_out_score(recognizer.trained, rows)
    assert (got.wa, got.ua, got.n) == (expected.wa, expected.ua, expected.n)
    np.testing.assert_array_equal(got.counts, expected.counts)
    # Probability scores of the calibrated probabilities predict printed, by hand: ECE over 10
    # bins of the top probability, NLL of the true class, Brier over all classes.
    probs = np.array([[p.probabilities[c] for c in recognizer.labels] for p in predictions])
    truth = np.array([recognizer.labels.index(u.label) for u in rows])
    top, hit = probs.max(1), probs.argmax(1) == truth
    bins = np.minimum((top * 10).astype(int), 9)
    ece = sum(abs(hit[bins == b].sum() - top[bins == b].sum()) for b in range(10)) / len(rows) * 100
    assert got.probability.ece == pytest.approx(ece)
    assert got.probability.nll == pytest.approx(-np.mean(np.log(probs[np.arange(len(rows)), truth])))
    assert got.probability.brier == pytest.approx(np.mean(((probs - np.eye(4)[truth]) ** 2).sum(1)))


def test_a_memo_of_prepared_inputs_gives_the_same_predictions_and_fills_once(build, shared_data):
    rows = [u for u in read_manifest(shared_data / "bench" / "paired4.csv") if u.session == "5"][:6]
    trained = EmotionRecognizer.load("fusion-paper").trained
    memo: dict = {}
    first = build.predict_as_recognizer(trained, rows, memo)
    assert len(memo) == len(rows)
    kept = dict(memo)
    again = build.predict_as_recognizer(trained, rows, memo)  # every input from the memo
    assert memo == kept and all(p.text_features is None for p in memo.values())  # the memo keeps no model output
    fresh = build.predict_as_recognizer(trained, rows)
    for a, b, c in zip(first, again, fresh):
        assert a.label == b.label == c.label
        assert a.probabilities == pytest.approx(b.probabilities) and a.probabilities == pytest.approx(c.probabilities)


@pytest.mark.skipif(not extra.available(), reason='needs the encoders extra: pip install "emofusion[encoders]"')
def test_encoder_models_held_out_score_is_what_predict_gives(build, shared_data):
    rows = [u for u in read_manifest(shared_data / "bench" / "paired4.csv") if u.session == "5"][:12]
    recognizer = EmotionRecognizer.load("fusion-encoders")  # Whisper frames + MiniLM vector, computed per call
    predictions = [recognizer.predict(u.audio, u.text) for u in rows]
    expected = compute_metrics([u.label for u in rows], [p.label for p in predictions], recognizer.labels)
    got = build.held_out_score(recognizer.trained, rows)
    assert (got.wa, got.ua, got.n) == (expected.wa, expected.ua, expected.n)
    np.testing.assert_array_equal(got.counts, expected.counts)
    assert "real length" in build._scoring(recognizer.trained.pipeline)
    assert "every 2.5-s window" in build._scoring(EmotionRecognizer.load("fusion-paper").trained.pipeline)


def test_seeds_are_summarised_as_mean_and_sample_std(build):
    labels = ("a", "b")
    per_seed = {
        0: Metrics.from_counts([[3, 1], [0, 4]], labels),  # WA 7/8, UA (0.75 + 1) / 2 = 0.875
        1: Metrics.from_counts([[2, 2], [1, 3]], labels),  # WA 5/8, UA (0.5 + 0.75) / 2 = 0.625
        2: Metrics.from_counts([[4, 0], [2, 2]], labels),  # WA 6/8, UA (1 + 0.5) / 2 = 0.75
    }
    summary = build.summarise(per_seed)
    assert summary["seeds"] == [0, 1, 2] and summary["n"] == 8
    # by hand: mean 0.75, sample std sqrt(((0.125)^2 + 0 + (0.125)^2) / 2) = 0.125
    assert summary["wa"] == pytest.approx({"mean": 0.75, "std": 0.125})
    assert summary["ua"] == pytest.approx({"mean": 0.75, "std": 0.125})
    assert summary["per_class"]["a"] == pytest.approx({"mean": 0.75, "std": 0.25})
    assert set(summary["per_seed"]) == {"0", "1", "2"} and summary["per_seed"]["1"]["wa"] == pytest.approx(0.625)


def _meld(counts: dict[str, int], split: str = "train") -> list[Utterance]:
    return [Utterance(f"{split}-{label}{i}", None, f"{label} text {i}", label, "x", split)
            for label, n in counts.items() for i in range(n)]


def _clips(labels: str, corpus: str) -> list[Utterance]:
    return [Utterance(f"{corpus}{i}", Path(f"{corpus}{i}.flac"), None, label, f"s{i % 3}", "1", corpus=corpus)
            for i, label in enumerate(labels.split())]


def test_pairing_uses_every_text_of_a_class_before_any_twice_and_keeps_the_corpus(build):
    clips = _clips("ang ang ang sad", "tess4")
    pairs = build.pair_with_meld(clips, _meld({"ang": 2, "sad": 5}) + _meld({"ang": 3}, "dev"), 2)
    assert [p.extras["speech_id"] for p in pairs] == ["tess40", "tess40", "tess41", "tess41", "tess42", "tess42", "tess43", "tess43"]
    ang = [p.extras["text_id"] for p in pairs if p.label == "ang"]
    assert all(t.startswith("train-ang") for t in ang)  # the train split only, of the clip's class
    assert len(set(ang[:2])) == 2 and len(set(ang[2:4])) == 2  # each of the 2 texts once, then again
    assert sorted(ang).count("train-ang0") == 3 and sorted(ang).count("train-ang1") == 3
    assert all(p.corpus == "tess4" and p.text and p.audio == Path(p.extras["speech_id"] + ".flac") for p in pairs)
    assert pairs == build.pair_with_meld(clips, _meld({"ang": 2, "sad": 5}) + _meld({"ang": 3}, "dev"), 2)  # seeded


def test_pairing_for_scoring_reads_the_dev_split_without_texts_seen_in_training(build):
    dev = _meld({"ang": 3}, "dev")
    pairs = build.pair_with_meld(_clips("ang ang ang", "ravdess4"), dev, 1, split="dev",
                                 exclude=frozenset({"ang text 0"}))
    assert sorted(p.extras["text_id"] for p in pairs)[:2] == ["dev-ang1", "dev-ang2"]
    assert "dev-ang0" not in {p.extras["text_id"] for p in pairs}
    with pytest.raises(SystemExit, match="class sad"):
        build.pair_with_meld(_clips("sad", "ravdess4"), dev, 1, split="dev")


def test_seeds_with_probabilities_summarise_ece_nll_brier_too(build, shared_data):
    from emofusion.evaluation.metrics import probability_scores

    labels = ("a", "b")
    sharp = probability_scores(np.array([[0.9, 0.1], [0.2, 0.8]]), [0, 1])  # ECE |2 - 1.7| / 2 = 15 points
    flat = probability_scores(np.array([[0.6, 0.4], [0.6, 0.4]]), [0, 1])  # ECE |1 - 1.2| / 2 = 10 points
    per_seed = {0: Metrics.from_counts([[1, 0], [0, 1]], labels).with_probability(sharp),
                1: Metrics.from_counts([[1, 0], [1, 0]], labels).with_probability(flat)}
    summary = build.summarise(per_seed)
    assert summary["ece"]["mean"] == pytest.approx(12.5) and summary["ece"]["std"] == pytest.approx(np.std([15, 10], ddof=1))
    assert summary["nll"]["mean"] == pytest.approx(np.mean([-np.log([0.9, 0.8]).mean(), -np.log([0.6, 0.4]).mean()]))
    assert summary["brier"]["mean"] == pytest.approx(np.mean([(0.02 + 0.08) / 2, (0.32 + 0.72) / 2]))
    assert "ece" not in build.summarise({0: Metrics.from_counts([[1, 0], [0, 1]], labels)})  # none without probabilities


def test_leave_one_corpus_out_mean_is_the_mean_over_directions_per_seed(build):
    from emofusion.evaluation.metrics import probability_scores

    labels = ("a", "b")

    def metrics(counts, probs):
        truth = [i for i, row in enumerate(counts) for _ in range(sum(row))]
        return Metrics.from_counts(counts, labels).with_probability(probability_scores(np.array(probs), truth))

    one = {0: metrics([[1, 0], [0, 1]], [[0.9, 0.1], [0.2, 0.8]]),  # UA 1, ECE 15
           1: metrics([[1, 0], [1, 0]], [[0.6, 0.4], [0.6, 0.4]])}  # UA 0.5, ECE 10
    two = {0: metrics([[0, 1], [0, 1]], [[0.4, 0.6], [0.4, 0.6]]),  # UA 0.5, ECE 10
           1: metrics([[1, 0], [0, 1]], [[0.9, 0.1], [0.2, 0.8]])}  # UA 1, ECE 15
    summary = build.summarise_directions({"x->y": one, "y->x": two})
    assert summary["mean"]["per_seed"]["0"] == pytest.approx({"ua": 0.75, "ece": 12.5})
    assert summary["mean"]["per_seed"]["1"] == pytest.approx({"ua": 0.75, "ece": 12.5})
    assert summary["mean"]["ua"] == pytest.approx({"mean": 0.75, "std": 0.0})
    assert summary["directions"]["x->y"]["ua"] == pytest.approx({"mean": 0.75, "std": np.std([1, 0.5], ddof=1)})


def test_calibration_needs_a_corpus_with_speakers_to_hold_out(build):
    tess_like = [Utterance(f"t{i}", None, None, "ang", f"tess_{i % 2}", "1", corpus="tess4") for i in range(8)]
    ravdess_like = [Utterance(f"r{i}", None, None, "ang", f"actor{i % 5}", "1", corpus="ravdess4") for i in range(10)]
    assert not build.can_calibrate(tess_like, 0, 0.2)  # two speakers: none held out (experiments.calibrate)
    assert build.can_calibrate(ravdess_like, 0, 0.2) and build.can_calibrate(tess_like + ravdess_like, 0, 0.2)
