"""What a fusion model should do with a transcript it cannot read: the fallback, measured.

    python benchmarks/bench_language.py [--per-class 25] [--model fusion]

Whisper tiny.en turns German or French speech into English-sounding nonsense ("begin the stealing
1,000 in captain"); reading it as English is what the language-aware fallback prevents. Scored on
TESS (tess4.csv: two speakers, four classes), a corpus no shipped model was trained on (they were
trained on all of RAVDESS, so RAVDESS has no held-out clips for them), ``--per-class`` clips a
class drawn with a fixed seed. The same clips, four ways:
- the true transcript (an English carrier, "Say the word back.", which carries no emotion);
- a wrong-language transcript: tiny.en's transcripts of espeak-ng German and French (in turn);
- the fallback without a speech model: the fusion model with the neutral text input (zero text
  features, `PreparedInput.text_used = False`);
- the fallback the recognizer uses: the shipped speech-only model S-CBLA.
Accuracy equals unweighted accuracy here (classes balanced). Needs ../shared/data beside the checkout.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
# What tiny.en wrote for espeak-ng German and French sentences (tests/foreign_speech.py).
NONSENSE = [
    "If you have any shampoo, that's not good. That's the best way.",
    "begin the stealing 1,000 in captain, to be long assigned.",
    "My room has to be used to lift under roofing if having an in",
    "Thank you, thank you very much for watching.",
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-class", type=int, default=25)
    ap.add_argument("--model", default="fusion", help="a shipped name or run folder (default: the shipped default)")
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    args = ap.parse_args(argv)
    from emofusion.inference.recognizer import EmotionRecognizer

    rows = list(csv.DictReader(open(args.shared / "bench" / "tess4.csv", encoding="utf-8")))
    rng = random.Random(0)
    by_class: dict[str, list] = {}
    for r in rows:
        by_class.setdefault(r["label"], []).append(r)
    picked = [r for label in sorted(by_class) for r in rng.sample(by_class[label], args.per_class)]
    fusion = EmotionRecognizer.load(args.model)
    speech = EmotionRecognizer.load("speech")
    ways = {"true transcript": [], "wrong-language transcript": [], "neutral text input": [], "S-CBLA (speech-only)": []}
    started = time.perf_counter()
    for i, r in enumerate(picked):
        path = args.shared / "bench" / r["audio"]
        ways["true transcript"].append(fusion.prepare(path, r["text"]))
        ways["wrong-language transcript"].append(fusion.prepare(path, NONSENSE[i % len(NONSENSE)]))
        neutral = fusion.prepare(path, NONSENSE[i % len(NONSENSE)])
        neutral.text_used = False
        ways["neutral text input"].append(neutral)
        ways["S-CBLA (speech-only)"].append(speech.prepare(path))
    truth = [r["label"] for r in picked]
    print(f"{fusion.name} on {len(picked)} TESS clips ({args.per_class} a class, seed 0); prepared in "
          f"{time.perf_counter() - started:.0f} s")
    print(f"{'way':<28} {'accuracy':>9}   per class")
    for way, prepared in ways.items():
        model = speech if way.startswith("S-CBLA") else fusion
        predicted = [p.label for p in model.predict_prepared(prepared)]
        hits = np.array([a == b for a, b in zip(truth, predicted)])
        per_class = {c: float(np.mean([h for h, t in zip(hits, truth) if t == c])) for c in sorted(by_class)}
        print(f"{way:<28} {hits.mean():>9.3f}   " + "  ".join(f"{c} {v:.2f}" for c, v in per_class.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
