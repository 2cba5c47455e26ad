"""Generated conversations with known speaker turns, from real RAVDESS and TESS clips.

A turn is 1-10 s of one speaker (RAVDESS: its neutral, happy, sad and angry clips): that speaker's clips (trimmed to their sound as in
conversation.py, every clip scaled to one peak) joined with 0.1-0.3 s of quiet, as one person's
sentences follow each other. Between turns the next speaker starts after a pause, right away
(back to back), or up to 0.5 s before the last one ends (overlap), as ``transitions`` says.
Quiet noise (-60 dBFS) runs under everything. The truth is each turn's [start, end) and speaker.
Used by tests/inference/test_diarization.py and benchmarks/bench_diarization.py.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from conversation import NOISE_RMS, PEAK, RATE, trim_to_speech

# Speaker ids: RAVDESS "ravdess:<actor>" (odd actors male, even female), TESS "tess:OAF" / "tess:YAF".
TRAIN_SPEAKERS = [f"ravdess:{a}" for a in range(1, 17)] + ["tess:OAF", "tess:YAF"]
TEST_SPEAKERS = [f"ravdess:{a}" for a in range(17, 21)]
# The four emotions emofusion tells apart (bench/ravdess4.csv's; TESS has only these). RAVDESS's
# fearful, surprised and disgusted clips are left out: the voice encoder places some of them
# as far from their own speaker as from another (cosine 0.57-0.68 vs 0.55-0.77 for Actor_01).
EMOTIONS = {"neutral", "happy", "sad", "angry"}


@dataclass(frozen=True)
class TrueTurn:
    start: float
    end: float
    speaker: str


def is_male(speaker: str) -> bool:
    corpus, name = speaker.split(":")
    return corpus == "ravdess" and int(name) % 2 == 1


def speaker_clips(shared_data: Path, speaker: str) -> list[Path]:
    corpus, name = speaker.split(":")
    if corpus == "tess":
        return sorted((shared_data / "tess" / name).glob("*.flac"))
    rows = csv.DictReader(open(shared_data / "ravdess" / "manifest.csv", encoding="utf-8"))
    return [shared_data / "ravdess" / r["path"] for r in rows if int(r["actor"]) == int(name) and r["emotion"] in EMOTIONS]


def make_dialogue(
    shared_data: Path, out: Path, speakers: list[str], *, turns: int = 8, seed: int = 0,
    transitions: tuple[str, ...] = ("pause", "back_to_back", "overlap"), turn_s: tuple[float, float] = (1.0, 10.0),
) -> list[TrueTurn]:
    """Write a 16-kHz WAV of ``turns`` turns to ``out``; returns the true turns in order.

    Speakers take turns in a shuffled round (every speaker speaks before anyone speaks twice), never
    the same speaker twice in a row; each transition is drawn from ``transitions``.
    """
    rng = np.random.default_rng(seed)
    clips = {s: speaker_clips(shared_data, s) for s in speakers}
    order: list[str] = []
    while len(order) < turns:
        round_ = list(rng.permutation(speakers))
        if order and round_[0] == order[-1]:
            round_ = round_[1:] + round_[:1]
        order += round_
    order = order[:turns]
    pieces: list[tuple[int, np.ndarray]] = []  # (start sample, samples)
    truth = []
    position = int(rng.uniform(0.5, 1.0) * RATE)
    for i, speaker in enumerate(order):
        if i:
            kind = transitions[int(rng.integers(len(transitions)))]
            if kind == "pause":
                position += int(rng.uniform(0.6, 1.5) * RATE)
            elif kind == "overlap":
                position -= int(rng.uniform(0.1, 0.5) * RATE)
        target = rng.uniform(*turn_s)
        parts: list[np.ndarray] = []
        length = 0
        while length / RATE < target:
            if parts:
                gap = int(rng.uniform(0.1, 0.3) * RATE)
                parts.append(rng.standard_normal(gap) * NOISE_RMS)
                length += gap
            samples, rate = sf.read(clips[speaker][int(rng.integers(len(clips[speaker])))], dtype="float64")
            assert rate == RATE
            speech = trim_to_speech(samples)
            parts.append(speech / np.abs(speech).max() * PEAK)
            length += len(parts[-1])
        turn = np.concatenate(parts)
        pieces.append((position, turn))
        truth.append(TrueTurn(position / RATE, (position + len(turn)) / RATE, speaker))
        position += len(turn)
    total = position + int(rng.uniform(0.5, 1.0) * RATE)
    signal = rng.standard_normal(total) * NOISE_RMS
    for start, samples in pieces:
        signal[start : start + len(samples)] += samples
    peak = np.abs(signal).max()
    if peak > 0.99:  # two voices at once can pass full scale
        signal *= 0.99 / peak
    sf.write(out, signal, RATE, subtype="PCM_16")
    return truth
