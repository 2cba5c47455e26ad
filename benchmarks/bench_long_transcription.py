"""Sentences heard in a long recording without a transcript: Whisper in one go vs utterance by utterance.

    python benchmarks/bench_long_transcription.py [--seconds 180] [--seed 0]

The recording: TESS sentences ("Say the word X.", a different X each) with 0.6-1.5 s of quiet
between them (tests/sentences.py; ../shared/data must be beside the checkout). Each way runs in a
fresh process, so its peak resident memory (ru_maxrss) is its own:
- one go: the whole recording given to Whisper at once, as `predict` did before issue 18.6;
- utterance by utterance: `Transcriber.transcribe_long` (VAD regions, each transcribed alone),
  what `predict` does now for recordings over 30 s.
Reports sentences heard (a "say the word" carrier per sentence), target words heard, CPU seconds and
peak memory. Target: >= 95% of the sentences heard.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))


def run_one(way: str, seconds: float, seed: int, shared: Path) -> dict:
    """In this process: build the recording, transcribe it one way, measure."""
    from sentences import make_sentences, sentences_heard, words_heard

    from emofusion.asr.transcriber import Transcriber

    samples, words = make_sentences(shared, seconds, seed)
    transcriber = Transcriber.load()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    c0, t0 = time.process_time(), time.perf_counter()
    heard = transcriber.hear(samples) if way == "one go" else transcriber.transcribe_long(samples)
    return {
        "way": way, "seconds": len(samples) / 16_000, "sentences": len(words),
        "sentences_heard": sentences_heard(heard.text, words), "words_heard": words_heard(heard.text, words),
        "cpu_s": time.process_time() - c0, "wall_s": time.perf_counter() - t0,
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "before_mib": before / 1024,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=180.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--way", choices=["one go", "utterances"], help=argparse.SUPPRESS)  # the child process
    args = ap.parse_args(argv)
    if args.way:
        print(json.dumps(run_one(args.way, args.seconds, args.seed, args.shared)))
        return 0
    rows = []
    for way in ("one go", "utterances"):
        out = subprocess.run([sys.executable, __file__, "--way", way, "--seconds", str(args.seconds), "--seed",
                              str(args.seed), "--shared", str(args.shared)], capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"recording: {rows[0]['seconds']:.0f} s, {rows[0]['sentences']} TESS sentences; Whisper tiny.en (bundled), int8")
    print(f"{'way':<12} {'sentences heard':>16} {'target words':>13} {'CPU s':>7} {'wall s':>7} {'peak MiB':>9}")
    for r in rows:
        print(f"{r['way']:<12} {r['sentences_heard']:>9}/{r['sentences']:<3} ({100 * r['sentences_heard'] / r['sentences']:3.0f}%)"
              f" {r['words_heard']:>8}/{r['sentences']:<3} {r['cpu_s']:>7.1f} {r['wall_s']:>7.1f} {r['peak_mib']:>9.0f}")
    met = rows[1]["sentences_heard"] >= 0.95 * rows[1]["sentences"]
    print(f"target (utterance by utterance hears >= 95% of the sentences): {'met' if met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
