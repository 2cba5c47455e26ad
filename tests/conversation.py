"""A generated multi-utterance recording with known utterance boundaries, from real RAVDESS clips.

Each clip is trimmed to its sound: from the first to the last run of at least ``MIN_RUN_S`` of
25-ms frames within ``TRIM_DB`` dB of its loudest frame (a lone click or lip smack in the clip's
silent lead-in is not the utterance; a laugh or sob that follows the words is), scaled to a common peak, and laid end to end with gaps of quiet noise between them (-60
dBFS white noise: a real room is never digitally silent). The true utterances are where the
trimmed clips were placed. Used by the timeline tests and by benchmarks/bench_timeline.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 16_000
TRIM_DB = 35.0  # frames this far below the clip's loudest frame are silence (RAVDESS rooms: -50 to -110 dB)
MIN_RUN_S = 0.1
PEAK = 0.5
NOISE_RMS = 1e-3  # -60 dBFS


@dataclass(frozen=True)
class Utterance:
    start: float
    end: float
    label: str
    text: str
    clip: str


def trim_to_speech(samples: np.ndarray, rate: int = RATE, frame_s: float = 0.025) -> np.ndarray:
    frame = int(frame_s * rate)
    n = len(samples) // frame
    rms = np.sqrt((samples[: n * frame].reshape(n, frame) ** 2).mean(axis=1) + 1e-20)
    db = 20 * np.log10(rms)
    loud = db > db.max() - TRIM_DB
    run = max(1, int(round(MIN_RUN_S / frame_s)))
    # a frame starts a sustained run when it and the run-1 frames after it are all loud
    sustained = np.flatnonzero(np.convolve(loud, np.ones(run), mode="valid") == run)
    first, last = sustained[0], sustained[-1] + run
    return samples[first * frame : last * frame]


def make_conversation(
    shared_data: Path, out: Path, *, seconds: float = 60.0, seed: int = 0, gap_s: tuple[float, float] = (1.0, 2.0)
) -> list[Utterance]:
    """Write a WAV of about ``seconds`` to ``out``; returns the true utterances, in order."""
    import csv

    rows = list(csv.DictReader(open(shared_data / "bench" / "ravdess4.csv", encoding="utf-8")))
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(rows))
    noise = lambda s: rng.standard_normal(int(round(s * RATE))) * NOISE_RMS
    parts = [noise(rng.uniform(*gap_s))]
    t = len(parts[0]) / RATE
    truth = []
    for i in order:
        row = rows[i]
        samples, rate = sf.read(shared_data / "bench" / row["audio"], dtype="float64")
        assert rate == RATE
        speech = trim_to_speech(samples)
        speech = speech / np.abs(speech).max() * PEAK
        truth.append(Utterance(t, t + len(speech) / RATE, row["label"], row["text"], Path(row["audio"]).name))
        gap = noise(rng.uniform(*gap_s))
        parts += [speech, gap]
        t += (len(speech) + len(gap)) / RATE
        if t >= seconds:
            break
    sf.write(out, np.concatenate(parts), RATE, subtype="PCM_16")
    return truth
