"""Speaker turns measured with the field's metric: DER and JER (pyannote.metrics, collar 0.25 s).

    python benchmarks/bench_diarization.py [--conversations 6] [--threads 2]
    python benchmarks/bench_diarization.py --tune      # choose the clustering threshold on TRAINING actors

Conversations are generated with known turns (tests/dialogue.py): 2-4 speakers, turns of 1-10 s,
transitions after a pause, back to back or overlapping by up to 0.5 s. The scored conversations use
RAVDESS actors 17-20 only (two male, two female); ``--tune`` picks `DiarizationConfig.threshold` on
conversations of RAVDESS actors 1-16 and TESS, so the threshold never saw a scored voice.
Per condition it prints DER and JER (pooled over the conversations, as pyannote's metric
accumulates them), the mean segment-boundary error (every true turn start and end to the nearest
hypothesised one of the same kind) and the cost: wall and CPU seconds of VAD + embeddings +
clustering per second of audio (RTF). Needs ``pip install "emofusion[bench]"`` (pyannote.metrics),
the asr extra (VAD) and ``pip install --no-deps resemblyzer==0.1.4`` (the voice encoder).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from dialogue import TEST_SPEAKERS, TRAIN_SPEAKERS, TrueTurn, is_male, make_dialogue  # noqa: E402

from emofusion.asr.vad import SpeechDetector, VadConfig, speech_regions  # noqa: E402
from emofusion.audio_stream import AudioStream  # noqa: E402
from emofusion.inference.diarization import DiarizationConfig, Diarizer, Turn  # noqa: E402
from emofusion.inference.timeline import cut_regions  # noqa: E402

COLLAR = 0.25
SHARED = REPO.parent / "shared" / "data"


def diarize_file(path: Path, diarizer: Diarizer, speakers: int | None = None) -> list[Turn]:
    """VAD, then the timeline's diarization stage, on one file (what `build_timeline` runs before emotion)."""
    stream = AudioStream.open(path)
    regions = speech_regions(SpeechDetector.load().scan(stream.blocks()), stream.duration_s, VadConfig())
    diarizer.reset()
    for region, samples in cut_regions(stream.blocks(), regions, stream.target_rate):
        diarizer.add(region.start, region.end, samples)
    return diarizer.turns(speakers)


def der_jer(truth: list[TrueTurn], turns: list[Turn], collar: float = COLLAR):
    """pyannote.metrics' DER and JER objects, each fed this one conversation."""
    from pyannote.core import Annotation, Segment
    from pyannote.metrics.diarization import DiarizationErrorRate, JaccardErrorRate

    reference, hypothesis = Annotation(), Annotation()
    for i, t in enumerate(truth):
        reference[Segment(t.start, t.end), i] = t.speaker
    for i, t in enumerate(turns):
        hypothesis[Segment(t.start, t.end), i] = t.speaker
    der, jer = DiarizationErrorRate(collar=collar), JaccardErrorRate(collar=collar)
    der(reference, hypothesis)
    jer(reference, hypothesis)
    return der, jer


def boundary_errors(truth: list[TrueTurn], turns: list[Turn]) -> list[float]:
    """Every true turn start (end) to the nearest hypothesised turn start (end), seconds."""
    if not turns:
        return []
    starts = np.array([t.start for t in turns])
    ends = np.array([t.end for t in turns])
    return [float(np.abs(starts - t.start).min()) for t in truth] + [float(np.abs(ends - t.end).min()) for t in truth]


def conditions(pool: list[str], count: int, seed: int) -> dict[str, list[list[str]]]:
    """Speaker sets per condition, drawn from ``pool``."""
    rng = np.random.default_rng(seed)
    males = [s for s in pool if is_male(s)]
    females = [s for s in pool if not is_male(s)]
    pick = lambda group, k: [str(s) for s in rng.choice(group, k, replace=False)]  # noqa: E731
    out = {
        "2 speakers, male + female": [pick(males, 1) + pick(females, 1) for _ in range(count)],
        "2 speakers, same gender": [pick(males if i % 2 else females, 2) for i in range(count)],
        "3 speakers": [pick(pool, 3) for _ in range(count)],
        "4 speakers": [pick(pool, 4) for _ in range(count)],
    }
    return out


def score(diarizer: Diarizer, sets: dict[str, list[list[str]]], seed: int, folder: Path, given: bool = False):
    """Per condition: pooled DER and JER, boundary errors, audio seconds, wall and CPU seconds."""
    from pyannote.metrics.diarization import DiarizationErrorRate, JaccardErrorRate

    results = {}
    for c, (name, groups) in enumerate(sets.items()):
        der, jer = DiarizationErrorRate(collar=COLLAR), JaccardErrorRate(collar=COLLAR)
        errors, audio_s, wall, cpu, found = [], 0.0, 0.0, 0.0, []
        for i, speakers in enumerate(groups):
            path = folder / f"c{c}_{i}.wav"
            truth = make_dialogue(SHARED, path, speakers, turns=10, seed=seed * 1000 + c * 100 + i)
            t0, c0 = time.perf_counter(), time.process_time()
            turns = diarize_file(path, diarizer, len(speakers) if given else None)
            wall += time.perf_counter() - t0
            cpu += time.process_time() - c0
            audio_s += AudioStream.open(path).duration_s
            one_der, one_jer = der_jer(truth, turns)
            der.accumulated_ = _add(der.accumulated_, one_der.accumulated_)
            jer.accumulated_ = _add(jer.accumulated_, one_jer.accumulated_)
            errors += boundary_errors(truth, turns)
            found.append(len({t.speaker for t in turns}))
        results[name] = dict(der=_der(der), jer=_jer_mean(jer, groups), boundary=errors, audio_s=audio_s,
                             wall=wall, cpu=cpu, found=found, speakers=[len(g) for g in groups])
    return results


def _add(a: dict, b: dict) -> dict:
    return {k: a.get(k, 0.0) + b.get(k, 0.0) for k in set(a) | set(b)}


def _der(metric) -> float:
    return metric.compute_metric(metric.accumulated_)


def _jer_mean(metric, groups) -> float:
    # JER is a mean over speakers; pooled components give pyannote's own accumulated value.
    return metric.compute_metric(metric.accumulated_)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=6, help="per condition")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tune", action="store_true", help="choose the threshold on training actors")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        if args.tune:
            return tune(args, Path(tmp))
        diarizer = Diarizer.load()
        print(f"threshold {diarizer.config.threshold}; window {diarizer.config.window_s} s every "
              f"{diarizer.config.hop_s} s; {args.conversations} conversations of 10 turns per condition; "
              f"test actors {', '.join(TEST_SPEAKERS)}; collar {COLLAR} s; {args.threads} threads\n")
        sets = conditions(TEST_SPEAKERS, args.conversations, args.seed)
        diarize_file(SHARED / "ravdess" / "Actor_17" / "03-01-01-01-01-01-17.flac", diarizer)  # warm-up
        print("| condition | speakers found (true) | DER | JER | boundary error mean (max) s | audio s | RTF wall | RTF CPU |")
        print("|---|---|---|---|---|---|---|---|")
        for given in (False, True):
            for name, r in score(diarizer, sets, args.seed, Path(tmp), given).items():
                label = name + (", N given" if given else "")
                found = ", ".join(f"{f}" for f in r["found"])
                print(f"| {label} | {found} ({r['speakers'][0]}) | {r['der']:.1%} | {r['jer']:.1%} | "
                      f"{statistics.mean(r['boundary']):.2f} ({max(r['boundary']):.2f}) | {r['audio_s']:.0f} | "
                      f"{r['wall'] / r['audio_s']:.3f} | {r['cpu'] / r['audio_s']:.3f} |")
    return 0


def tune(args, folder: Path) -> int:
    """DER on training actors for a range of thresholds (embeddings computed once per conversation)."""
    from emofusion.inference.diarization import assign_turns, cluster, in_context

    diarizer = Diarizer.load()
    sets = conditions(TRAIN_SPEAKERS, args.conversations, args.seed + 1)
    cases = []
    for c, (name, groups) in enumerate(sets.items()):
        for i, speakers in enumerate(groups):
            path = folder / f"t{c}_{i}.wav"
            truth = make_dialogue(SHARED, path, speakers, turns=10, seed=10_000 + c * 100 + i)
            diarize_file(path, diarizer)
            cases.append((name, truth, list(diarizer.regions), list(diarizer.spans),
                          in_context(diarizer.embeddings, diarizer.owner, diarizer.config.context)))
    print("| threshold | " + " | ".join(sets) + " | all |")
    print("|---" * (len(sets) + 2) + "|")
    for threshold in np.arange(0.20, 0.50, 0.05):
        config = DiarizationConfig(threshold=float(threshold))
        per = {name: [] for name in sets}
        for name, truth, regions, spans, embeddings in cases:
            labels = cluster(embeddings, threshold=config.threshold)
            der, _ = der_jer(truth, assign_turns(regions, spans, embeddings, labels, config))
            per[name].append(der.accumulated_)
        ders = {n: _pooled(v) for n, v in per.items()}
        everything = _pooled([a for v in per.values() for a in v])
        print(f"| {threshold:.2f} | " + " | ".join(f"{d:.1%}" for d in ders.values()) + f" | {everything:.1%} |")
    return 0


def _pooled(accumulated: list[dict]) -> float:
    total = {}
    for a in accumulated:
        total = _add(total, a)
    wrong = total.get("confusion", 0) + total.get("missed detection", 0) + total.get("false alarm", 0)
    return wrong / max(total.get("total", 0), 1e-9)


if __name__ == "__main__":
    raise SystemExit(main())
