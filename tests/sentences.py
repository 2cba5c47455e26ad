"""A long recording of known sentences, for counting how many of them a transcription heard.

TESS clips ("Say the word X.", 200 target words, two speakers, four emotions) laid end to end with
0.6-1.5 s of quiet noise (-60 dBFS) between them: every sentence is distinct, so a sentence is
heard when its target word appears in the transcript. RAVDESS's two fixed sentences could not tell
which of them was missed. Used by tests/asr/test_transcribe_long.py and
benchmarks/bench_long_transcription.py.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 16_000
NOISE_RMS = 1e-3


def make_sentences(shared_data: Path, seconds: float, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """(samples at 16 kHz, the target word of each sentence in order) for about ``seconds`` of audio."""
    rows = list(csv.DictReader(open(shared_data / "bench" / "tess4.csv", encoding="utf-8")))
    rng = np.random.default_rng(seed)
    used: set[str] = set()
    parts, words, total = [], [], 0
    for i in rng.permutation(len(rows)):
        word = rows[i]["text"].removeprefix("Say the word ").rstrip(".").lower()
        if word in used:  # each word once: a sentence heard twice cannot hide a missed one
            continue
        used.add(word)
        samples, rate = sf.read(shared_data / "bench" / rows[i]["audio"], dtype="float64")
        assert rate == RATE
        gap = rng.standard_normal(int(rng.uniform(0.6, 1.5) * RATE)) * NOISE_RMS
        speech = samples / max(np.abs(samples).max(), 1e-9) * 0.5
        parts += [gap, speech]
        words.append(word)
        total += len(gap) + len(speech)
        if total >= seconds * RATE:
            break
    parts.append(rng.standard_normal(RATE // 2) * NOISE_RMS)
    return np.concatenate(parts), words


def sentences_heard(transcript: str, words: list[str]) -> int:
    """How many sentences ``transcript`` holds: its "say the word" carriers, at most one per sentence.

    A sentence whose target word is misheard ("seize" as "see") was still heard; one that is
    missing leaves no carrier."""
    spoken = " ".join(re.findall(r"[a-z']+", transcript.lower()))
    return min(len(words), spoken.count("say the word"))


def words_heard(transcript: str, words: list[str]) -> int:
    """How many of the target ``words`` appear in ``transcript`` (as whole words, any case)."""
    said = set(re.findall(r"[a-z']+", transcript.lower()))
    return sum(word in said for word in words)
