"""A tiny generated corpus every training-side test can learn: class = pitch and = words.

Four classes, each utterance a noisy tone whose pitch depends on the class (so speech models can
learn it) with a transcript drawn from the class's words (so text models can). Sessions 1-3.
Word vectors are a small GloVe-format file, so nothing needs the real 80 MB table.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from emofusion.corpora.manifest import write_manifest
from emofusion.records import Utterance

LABELS = ("ang", "exc", "neu", "sad")
PITCH = {"ang": 220.0, "exc": 440.0, "neu": 880.0, "sad": 1760.0}
WORDS = {
    "ang": ["furious", "hate", "stop"],
    "exc": ["great", "wow", "yes"],
    "neu": ["table", "paper", "door"],
    "sad": ["cry", "alone", "lost"],
}
FILLER = ["the", "a", "is", "it"]


def write_vectors(path: Path, dim: int = 8, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    vocab = FILLER + [w for ws in WORDS.values() for w in ws]
    lines = [w + " " + " ".join(f"{v:.5f}" for v in rng.normal(size=dim)) for w in vocab]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def make_corpus(
    root: Path, per_class_per_session: int = 2, sessions=("1", "2", "3"), seed: int = 0, seconds=(0.6, 1.4)
) -> list[Utterance]:
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    utts = []
    for session in sessions:
        for label in LABELS:
            for k in range(per_class_per_session):
                uid = f"s{session}_{label}_{k}"
                duration = rng.uniform(*seconds)
                t = np.arange(int(16000 * duration)) / 16000
                x = 0.4 * np.sin(2 * np.pi * PITCH[label] * (1 + 0.02 * rng.normal()) * t)
                x += 0.02 * rng.normal(size=t.size)
                path = root / f"{uid}.wav"
                sf.write(path, x, 16000)
                n_words = int(rng.integers(2, 7))
                words = [rng.choice(WORDS[label]) if rng.random() < 0.6 else rng.choice(FILLER) for _ in range(n_words)]
                words[0] = rng.choice(WORDS[label])
                utts.append(Utterance(uid, path, " ".join(words), label, f"spk{session}{k % 2}", session))
    write_manifest(utts, root / "manifest.csv")
    return utts


def small_model_config():
    """The paper's layer kinds and wiring at a fraction of the widths: the same code path in seconds."""
    from emofusion.models import ModelConfig

    return ModelConfig(
        dnn_hidden=(64, 32, 16, 8), cnn_filters=(16, 16, 32, 32), speech_lstm_hidden=32, attention_dim=16,
        cbla_dense=32, cnn_dense=32, text_lstm_hidden=32, fusion_hidden=(64, 32),
    )
