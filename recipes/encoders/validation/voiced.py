"""Pool only the voiced frames? Which threshold, which layer: chosen on validation only (issue 17 item 2).

Run from the repository root with ../shared beside it (after ``layers.py extract``, whose labels,
speakers and sessions it reads):

    nice -n 5 python recipes/encoders/validation/voiced.py extract   # tiny.en blocks 2 and 3, ~2,160 clips
    nice -n 5 python recipes/encoders/validation/voiced.py probe     # -> docs/results/encoders/voiced.md

Same probe, folds and rule as ``layers.py`` (class-balanced logistic regression, C = 0.1; (a) leave
one session out within ravdess4 sessions 1-4, (b) RAVDESS sessions 1-4 <-> TESS; rule = mean of (a)
and (b) UA), with per-frame normalisation (``utt``), over the frames kept by each option:

  all        every frame (what wt2 pools);
  voicedX    frames whose 20-ms RMS energy is within X dB of the clip's loudest frame
             (emofusion.features.encoders.voiced.voiced_mask, what the wtv entry runs);
  trim40     from the first to the last frame within 40 dB (pauses inside kept).
"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO))
_spec = importlib.util.spec_from_file_location("layers", Path(__file__).with_name("layers.py"))
layers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(layers)

OPTIONS = ("all", "voiced15", "voiced20", "voiced25", "voiced30", "voiced35", "voiced40", "trim40")
BLOCKS = (2, 3)
HOP = 320  # one Whisper encoder frame: 20 ms at 16 kHz
REPORT = REPO / "docs" / "results" / "encoders" / "voiced.md"


def kept(samples: np.ndarray, n_frames: int, option: str) -> np.ndarray:
    from emofusion.features.encoders.voiced import voiced_mask

    if option == "all":
        return np.ones(n_frames, dtype=bool)
    mask = voiced_mask(samples, n_frames, HOP, float(option.removeprefix("voiced").removeprefix("trim")))
    if option.startswith("trim"):
        idx = np.flatnonzero(mask)
        mask = np.zeros(n_frames, dtype=bool)
        mask[idx[0] : idx[-1] + 1] = True
    return mask


def extract() -> None:
    import torch

    from emofusion.audio import load_audio
    from emofusion.features.encoders.whisper_torch import TorchWhisperEncoder

    torch.set_num_threads(1)
    encoder = TorchWhisperEncoder("tiny.en", threads=1)
    layers.OUT.mkdir(parents=True, exist_ok=True)
    for corpus in layers.CORPORA:
        path = layers.OUT / f"voiced-{corpus}.npz"
        if path.exists():
            continue
        pooled = {(b, o): [] for b in BLOCKS for o in OPTIONS}
        share = {o: [] for o in OPTIONS}
        started = time.time()
        table = layers.rows(corpus)
        for i, r in enumerate(table):
            samples = load_audio(layers.SHARED / "bench" / r["audio"]).samples.astype(np.float32)
            stack = encoder.all_layers(samples)
            for option in OPTIONS:
                mask = kept(samples, stack.shape[1], option)
                share[option].append(mask.mean())
                for b in BLOCKS:
                    pooled[(b, option)].append(layers.pool(layers.per_frame(stack[b][mask])))
            if i % 200 == 0:
                print(f"{corpus} {i}/{len(table)} {time.time() - started:.0f} s", flush=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, **{f"b{b}_{o}": np.stack(v) for (b, o), v in pooled.items()},
                 **{f"share_{o}": np.array(v) for o, v in share.items()})
        tmp.replace(path)


def probe() -> None:
    data = {c: np.load(layers.OUT / f"voiced-{c}.npz") for c in layers.CORPORA}
    meta = {c: layers.load("tiny.en", c) for c in layers.CORPORA}
    rav, tess = meta["ravdess4"], meta["tess4"]
    sel = np.isin(rav["session"], layers.SELECTION_SESSIONS)
    yr, sessions, yt = rav["y"][sel], rav["session"][sel], tess["y"]
    results = {}
    for b in BLOCKS:
        for option in OPTIONS:
            xr, xt = data["ravdess4"][f"b{b}_{option}"][sel], data["tess4"][f"b{b}_{option}"]
            pred = np.zeros_like(yr)
            for s in layers.SELECTION_SESSIONS:
                test = sessions == s
                pred[test] = layers.fit(xr[~test], yr[~test]).predict(xr[test])
            r2t = layers.ua(yt, layers.fit(xr, yr).predict(xt))
            t2r = layers.ua(yr, layers.fit(xt, yt).predict(xr))
            loso = layers.ua(yr, pred)
            results[(b, option)] = (loso, r2t, t2r, (r2t + t2r) / 2, (loso + (r2t + t2r) / 2) / 2)
            print(f"block {b} {option:9s} LOSO {loso:5.1f} R->T {r2t:5.1f} T->R {t2r:5.1f}", flush=True)
    write_report(results, {c: {o: float(data[c][f"share_{o}"].mean()) for o in OPTIONS} for c in layers.CORPORA})


def write_report(results: dict, share: dict) -> None:
    best = max(results, key=lambda k: results[k][4])
    lines = [
        f"CHOSEN: encoder=whisper-tiny.en layer={best[0]} norm=utt frames={best[1]}",
        "",
        "# Pool only the voiced frames? (issue 17 item 2: normalisation that needs only the input)",
        "",
        "Produced by `recipes/encoders/validation/voiced.py` (its docstring says how). Validation only: "
        "ravdess4 sessions 1-4 (leave one session out) and RAVDESS sessions 1-4 <-> TESS; session 5 and no "
        "other corpus were read. Probe, folds and rule are those of [layers.md](layers.md): class-balanced "
        "logistic regression on mean ‖ std of per-frame-normalised Whisper tiny.en frames, C = 0.1; "
        "rule = mean of (a) LOSO UA and (b) LOCO UA (the mean of the two directions).",
        "",
        "Why: mean ‖ std over every frame also measures how much silence surrounds the speech. Share of "
        "frames each option keeps, per corpus: "
        + "; ".join(f"{c}: " + ", ".join(f"{o} {100 * v:.0f}%" for o, v in share[c].items()) for c in share)
        + ". RAVDESS clips are about half silence, TESS clips almost none.",
        "",
        "| block | frames | (a) LOSO UA | (b) RAVDESS -> TESS | TESS -> RAVDESS | LOCO UA | rule |",
        "|---|---|---|---|---|---|---|",
    ]
    for (b, option), (loso, r2t, t2r, loco, rule) in results.items():
        mark = "**" if (b, option) == best else ""
        lines.append(f"| {b} | {option} | {loso:.1f} | {r2t:.1f} | {t2r:.1f} | {loco:.1f} | {mark}{rule:.1f}{mark} |")
    loso, _, _, loco, rule = results[best]
    base = results[(3, "all")]
    lines += [
        "",
        f"**Chosen by the rule: block {best[0]}, {best[1]}** (LOSO {loso:.1f}, LOCO {loco:.1f}, rule {rule:.1f}), "
        f"against what wt2 reads (block 3, all frames: LOSO {base[0]:.1f}, LOCO {base[3]:.1f}, rule {base[4]:.1f}). "
        "It is the `wtv` entry of `emofusion/features/encoders/registry.py` (S-WTV, M-WTV-ST).",
        "",
        "## What the tables say",
        "",
        "- Every voiced option from 20 to 35 dB beats pooling all frames on the held-out corpus, in both "
        "layers, at a cost of 0-2 LOSO points: the silence share was a corpus cue the probe had learned.",
        "- The top three by the rule (block 2 at 20 and 25 dB, block 3 at 25 dB) are within 0.4 of each "
        "other: noise at this size. Block 2 is the steadier choice: its TESS -> RAVDESS figure stays at "
        "42-53 over every threshold, block 3's swings from 31 to 49.",
        "- The option needs only the clip itself (its own loudest frame), so the caution about per-speaker "
        "statistics (layers.md) does not apply: a user's one recording is treated exactly as a training clip. "
        "Under steady noise fewer frames fall 20 dB below the loudest, so more are kept and pooling moves "
        "back toward 'all': the augmented training views (augmentation.md) teach the head that case.",
        "- Trained heads agree with the probes (augmentation.md section 2, seed 0, mean of the two directions): "
        "S-WTV 51.8 without augmentation and 60.6 with it, against S-WT2's 39.6 and 41.6.",
        "",
    ]
    REPORT.write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {REPORT}")


if __name__ == "__main__":
    {"extract": extract, "probe": probe}[sys.argv[1]]()
