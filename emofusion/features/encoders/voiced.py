"""Keep only the voiced frames of a speech encoder's output, before the model pools them.

Why: a clip's mean ‖ std over *all* its frames also encodes how much silence surrounds the speech,
which is a property of the corpus, not of the emotion. RAVDESS clips are about half silence (a
second before and after the sentence), TESS clips almost none, so a model trained on one corpus
reads the other's clips through a silence share it never saw. Pooling only the frames whose
energy lies within ``below_db`` of the clip's loudest frame removes that: the choice and every
threshold tried are in docs/results/encoders/voiced.md (validation folds only).

The rule needs nothing but the input itself (no statistics of other clips, no labels), so a
user's single recording is treated exactly as a training clip. A clip always keeps its loudest
frame; digital silence keeps every frame (all are equally loud).
"""

from __future__ import annotations

import numpy as np


def voiced_mask(samples: np.ndarray, n_frames: int, hop: int, below_db: float) -> np.ndarray:
    """Which of ``n_frames`` frames (frame i covers ``samples[i*hop:(i+1)*hop]``) are voiced.

    A frame is voiced when its RMS energy is within ``below_db`` dB of the loudest frame's. Frames
    past the end of ``samples`` (an encoder may round up) count as silent.
    """
    if n_frames <= 0:
        return np.zeros(0, dtype=bool)
    x = np.zeros(n_frames * hop, dtype=np.float64)
    take = min(len(samples), len(x))
    x[:take] = samples[:take]
    power = (x.reshape(n_frames, hop) ** 2).mean(axis=1)
    db = 10.0 * np.log10(power + 1e-20)  # 1e-20: digital silence is -200 dB, not -inf
    return db >= db.max() - below_db


class VoicedFrames:
    """A frame encoder (``frames(samples) -> (T, dim)``) whose output keeps only the voiced frames."""

    def __init__(self, encoder, below_db: float, hop: int) -> None:
        self.encoder, self.below_db, self.hop = encoder, below_db, hop
        self.name = getattr(encoder, "name", None)
        self.dim = encoder.dim

    def frames(self, samples: np.ndarray) -> np.ndarray:
        frames = self.encoder.frames(samples)
        return frames[voiced_mask(samples, len(frames), self.hop, self.below_db)]
