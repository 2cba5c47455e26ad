"""Score a trained model on utterance records it may never have seen."""

from __future__ import annotations

from collections import Counter

import numpy as np

from emofusion.artifacts import TrainedModel
from emofusion.errors import ConfigError
from emofusion.evaluation.metrics import Metrics, compute_metrics, probability_scores
from emofusion.features.cache import FeatureCache
from emofusion.inference.predict import pick_device, predict_logits, predict_probabilities
from emofusion.records import Utterance, session_sort_key
from emofusion.training.encode import encode_utterances, usable


def predict_utterances(
    trained: TrainedModel, utterances: list[Utterance], *, cache: FeatureCache | None = None, progress: bool = True,
    logits: bool = False,
) -> np.ndarray:
    """Calibrated class probabilities (n, n_classes) for utterances carrying the model's
    modalities; with ``logits``, the raw logits before calibration instead."""
    if trained.pipeline.uses_speech and cache is None and trained.pipeline.acoustic is not None:
        cache = FeatureCache(trained.pipeline.acoustic)  # (Whisper frames find their cache without one)
    encoded = encode_utterances(trained.pipeline, utterances, labels=None, cache=cache, progress=progress)
    device = pick_device(next(trained.model.parameters()).device)
    if logits:
        return predict_logits(trained.model, encoded, device=device)
    return predict_probabilities(trained.model, encoded, device=device, calibration=trained.calibration)


def score(
    trained: TrainedModel, utterances: list[Utterance], *, cache: FeatureCache | None = None, progress: bool = True
) -> tuple[Metrics, np.ndarray]:
    """Metrics on the rows that carry the model's modalities (with their ECE, NLL and Brier score:
    `Metrics.probability`), and the predicted class indices."""
    rows = usable(utterances, trained.modalities)
    if not rows:
        raise ConfigError(
            f"no rows carry what {trained.name} needs ({' and '.join(sorted(trained.modalities))})"
        )
    unknown = sorted({u.label for u in rows} - set(trained.labels))
    if unknown:
        raise ConfigError(f"labels {unknown} are not among the model's classes {list(trained.labels)}")
    probabilities = predict_utterances(trained, rows, cache=cache, progress=progress)
    predicted = probabilities.argmax(axis=1)
    metrics = compute_metrics([u.label for u in rows], [trained.labels[i] for i in predicted], trained.labels)
    truth = [trained.labels.index(u.label) for u in rows]
    return metrics.with_probability(probability_scores(probabilities, truth)), predicted


def rows_from_training_sessions(trained: TrainedModel, utterances: list[Utterance]) -> dict[str, int] | None:
    """Session -> number of the rows `score` would use that come from a session the model was
    trained on (empty when all are held out); None when the model does not record its training
    sessions (models trained before it was recorded)."""
    sessions = trained.meta.get("train_sessions")
    if sessions is None:
        return None
    seen = set(sessions)
    # A session name means something within its corpus: where the model records its corpora, a row
    # counts only if its own corpus trained with that session (session "1" of another corpus is held
    # out). The corpus is the manifest's name for it: the same clips under another corpus name (one
    # manifest copied to another file name) are not recognised. Models from before corpora were
    # recorded are checked by session alone.
    corpora = trained.meta.get("train_corpora")
    by_corpus = {c: set(s) for c, s in corpora.items()} if corpora else None
    counts = Counter(u.session for u in usable(utterances, trained.modalities)
                     if u.session in (seen if by_corpus is None else by_corpus.get(u.corpus, ())))
    return {s: counts[s] for s in sorted(counts, key=session_sort_key)}
