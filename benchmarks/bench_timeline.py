"""Real-time factor of `emofusion predict --timeline`: one minute of several utterances, end to end.

    python benchmarks/bench_timeline.py [--seconds 60] [--repeats 3] [--threads 2]

The recording is generated from real RAVDESS clips with quiet gaps between them
(tests/conversation.py; ../shared/data must be beside the checkout). Each run does everything a
user's call does: decode, Silero VAD, Whisper tiny.en per utterance (int8, CTranslate2), acoustic
speaker turns (when the voice encoder is installed; ``--no-diarize`` leaves them out), acoustic
features and the shipped M-CBLA-BLR per utterance, and the same without transcription for the
shipped speech-only S-CBLA. Model loading happens once, before the timed runs, and is shown apart.
Target: RTF <= 0.15 on 2 cores (9 s per minute of audio), transcription and emotion shown apart.
RTF = processing seconds / audio seconds; the figures are medians over ``--repeats`` runs, and the
stages are measured inside the same runs, so their ratios hold even on a busy machine. The CPU
columns (process CPU seconds, all threads) measure the work itself: on a busy shared machine wall
time mostly measures the neighbours; on an idle 2-core machine wall ~ CPU / threads used.
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

from conversation import make_conversation  # noqa: E402

from emofusion.asr.transcriber import AsrConfig, Transcriber  # noqa: E402
from emofusion.asr.vad import SpeechDetector  # noqa: E402
from emofusion.inference.recognizer import SHIPPED_MODELS, EmotionRecognizer  # noqa: E402
from emofusion.inference.timeline import build_timeline  # noqa: E402
from emofusion.runtime import tune_allocator  # noqa: E402

STAGES = ("vad", "speakers", "transcription", "emotion")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-diarize", action="store_true",
                        help="without speaker turns (default: with them when the voice encoder is installed)")
    parser.add_argument("--threads", type=int, default=2, help="torch and CTranslate2 threads (default 2: the target's cores)")
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    args = parser.parse_args()
    tune_allocator()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "long_call.wav"
        truth = make_conversation(args.shared, path, seconds=args.seconds, seed=0)
        t0 = time.perf_counter()
        asr = AsrConfig(cpu_threads=args.threads)
        fusion = EmotionRecognizer.load("fusion", asr=asr)
        Transcriber.load(asr)
        SpeechDetector.load()
        # The default fusion model: M-WT-ST with the encoders extra, else M-CBLA-BLR (named as loaded).
        models = [(f"{fusion.name} + Whisper tiny.en", fusion)]
        if (SHIPPED_MODELS["speech"] / "model.json").is_file():
            models.append(("S-CBLA (speech only, no transcription)", EmotionRecognizer.load("speech")))
        load_s = time.perf_counter() - t0

        print(f"recording: {len(truth)} utterances, {_duration(path):.1f} s; threads {args.threads}; "
              f"models loaded in {load_s:.1f} s (once, not timed below)\n")
        print("| pipeline | stage | wall s | RTF | share | CPU s | CPU s per audio s |")
        print("|---|---|---|---|---|---|---|")
        for title, recognizer in models:
            diarize = False if args.no_diarize else None
            build_timeline(recognizer, path, diarize=diarize)  # warm-up: first-call allocations and kernels
            runs = [build_timeline(recognizer, path, diarize=diarize) for _ in range(args.repeats)]
            duration = runs[0].duration
            total = statistics.median(r.timings_s["total"] for r in runs)
            stage = {s: statistics.median(r.timings_s.get(s, 0.0) for r in runs) for s in STAGES}
            stage["decode (second pass) + rest"] = max(0.0, total - sum(stage.values()))
            cpu_total = statistics.median(r.cpu_s["total"] for r in runs)
            cpu = {s: statistics.median(r.cpu_s.get(s, 0.0) for r in runs) for s in STAGES}
            cpu["decode (second pass) + rest"] = max(0.0, cpu_total - sum(cpu.values()))
            names = {"vad": "decode + voice activity", "speakers": "speaker turns (decode + voice encoder + clustering)",
                     "transcription": "transcription (Whisper)",
                     "emotion": "emotion (features + model)"}
            for key, seconds in stage.items():
                if key in ("transcription", "speakers") and seconds == 0:
                    continue
                print(f"| {title} | {names.get(key, key)} | {seconds:.2f} | {seconds / duration:.3f} | {seconds / total:.0%} "
                      f"| {cpu[key]:.2f} | {cpu[key] / duration:.3f} |")
            print(f"| {title} | **total** | **{total:.2f}** | **{total / duration:.3f}** | 100% | {cpu_total:.2f} "
                  f"| {cpu_total / duration:.3f} |")
            print(f"|  | speakers found: {len(runs[0].speakers)} ({runs[0].speaker_note or 'diarized'}) | | | | | |")
            errors = _boundary_errors(runs[0], truth)
            if errors is not None:
                print(f"|  | segments {len(runs[0].segments)} of {len(truth)} utterances; boundary error mean "
                      f"{errors.mean():.2f} s, max {errors.max():.2f} s | | | | | |")
        print("\ntarget: total RTF <= 0.15 (9 s per minute of audio) on 2 cores")


def _duration(path: Path) -> float:
    import soundfile as sf

    return sf.info(str(path)).duration


def _boundary_errors(timeline, truth) -> np.ndarray | None:
    if len(timeline.segments) != len(truth):
        return None
    return np.array([[abs(s.start - u.start), abs(s.end - u.end)] for s, u in zip(timeline.segments, truth)])


if __name__ == "__main__":
    main()
