"""Build a model that ships with emofusion: RAVDESS speech (+ MELD train text for a text model).

Usage (from the repository root, with ../shared/data beside it):

    python recipes/shipped/build.py                      # M-CBLA-BLR -> emofusion/shipped/m-cbla-blr (--model fusion)
    python recipes/shipped/build.py --model S-CBLA       # speech only -> emofusion/shipped/s-cbla (--model speech)
    python recipes/shipped/build.py --model M-CBLA-BLR --out emofusion/shipped/m-cbla-blr --seeds 0 1 2
    python recipes/shipped/build.py --model M-WT-ST      # the default with the encoders extra -> emofusion/shipped/m-wt-st

The speech is every RAVDESS clip of ``ravdess4.csv`` (actors 01-20, 560 clips, four classes).
A model that reads text needs a transcript per clip, and RAVDESS has two fixed sentences, so the
clips are paired by class with MELD *train* utterances (the construction of the benchmark's
``paired4.csv``, using more of MELD): each clip with ``--texts-per-clip`` different texts of its
class, drawn without replacement with a fixed seed, so the text encoder learns from 2,240 MELD
utterances instead of 560. A speech-only model trains on the 560 clips themselves.

Steps:
1. held-out check, once per ``--seeds`` seed: the same recipe trained on sessions 1-4 (actors
   01-16) and scored on session 5 (actors 17-20; for a text model ``paired4.csv``'s MELD *dev*
   text: neither speaker nor sentence seen in training). Scored exactly as
   `EmotionRecognizer.predict` predicts: every 2.5-s window of each recording, probabilities
   averaged by frame count (a training-style score would see only the first 2.5 s);
2. the shipped model: the same recipe on all five sessions, with the first seed;
3. export in float16 with the held-out metrics (per seed, mean and std), the data, the command and
   the commit recorded in ``model.json``.

Another model (e.g. one with other encoders) is ``--model NAME``; every other choice stays. An
encoder model (M-WT-ST) ships only its head's weights: Whisper tiny.en and MiniLM come from the
``encoders`` extra's packages, and its held-out check computes their features as prediction does.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from emofusion.artifacts import TrainedModel, load_trained, save_trained
from emofusion.corpora.manifest import read_manifest, write_manifest
from emofusion.evaluation.metrics import Metrics, compute_metrics
from emofusion.features.acoustic import AcousticConfig
from emofusion.features.cache import FeatureCache
from emofusion.inference.recognizer import EmotionRecognizer
from emofusion.labels import PAPER_CLASSES
from emofusion.records import Utterance
from emofusion.training.config import TrainConfig
from emofusion.models.registry import modalities_of
from emofusion.training.trainer import train

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "emofusion" / "shipped"
PAIRING_SEED = 20260101
HELD_OUT_SESSION = "5"
# Utterances per forward pass when scoring: bounded memory, few passes.
SCORE_CHUNK = 64


def pair_with_meld(speech: list[Utterance], meld: list[Utterance], per_clip: int) -> list[Utterance]:
    rng = np.random.default_rng(PAIRING_SEED)
    pools: dict[str, list[Utterance]] = defaultdict(list)
    for u in meld:
        if u.session == "train":
            pools[u.label].append(u)
    for label, pool in pools.items():
        order = rng.permutation(len(pool))
        pools[label] = [pool[i] for i in order]
    taken: dict[str, int] = defaultdict(int)
    pairs = []
    for clip in speech:
        for _ in range(per_clip):
            pool = pools[clip.label]
            if taken[clip.label] >= len(pool):
                raise SystemExit(f"not enough MELD train utterances of class {clip.label} for {per_clip} per clip")
            text = pool[taken[clip.label]]
            taken[clip.label] += 1
            pairs.append(Utterance(
                id=f"{clip.id}+{text.id}", audio=clip.audio, text=text.text, label=clip.label,
                speaker=clip.speaker, session=clip.session, extras={"speech_id": clip.id, "text_id": text.id},
            ))
    return pairs


def predict_as_recognizer(trained: TrainedModel, rows: list[Utterance]) -> list[str]:
    """Labels exactly as `EmotionRecognizer.predict` gives them: all windows, averaged."""
    recognizer = EmotionRecognizer(trained, device=next(trained.model.parameters()).device)
    labels: list[str] = []
    for start in range(0, len(rows), SCORE_CHUNK):
        chunk = rows[start : start + SCORE_CHUNK]
        items = [(u.audio, u.text if recognizer.trained.pipeline.uses_text else None) for u in chunk]
        labels += [p.label for p in recognizer.predict_batch(items)]
    return labels


def held_out_score(trained: TrainedModel, rows: list[Utterance]) -> Metrics:
    return compute_metrics([u.label for u in rows], predict_as_recognizer(trained, rows), trained.labels)


def summarise(per_seed: dict[int, Metrics]) -> dict:
    """Per-seed metrics and their mean and sample std (ddof 1, as the reports use)."""
    def stats(values):
        values = np.asarray(values, dtype=np.float64)
        return {"mean": float(values.mean()), "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0}

    first = next(iter(per_seed.values()))
    return {
        "seeds": sorted(per_seed),
        "n": first.n,
        "wa": stats([m.wa for m in per_seed.values()]),
        "ua": stats([m.ua for m in per_seed.values()]),
        "per_class": {c: stats([m.per_class[c] for m in per_seed.values()]) for c in first.labels},
        "per_seed": {str(seed): m.to_json() for seed, m in sorted(per_seed.items())},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="M-CBLA-BLR", help="a Table-1 or encoder model name (default M-CBLA-BLR)")
    parser.add_argument("--out", type=Path, default=None, help="export folder (default emofusion/shipped/<model>)")
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--texts-per-clip", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=TrainConfig().epochs)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="held-out check seeds; the first trains the shipped model")
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "shipped")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (on a busy shared machine 1 is far faster than 2: no barrier stalls)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    model = args.model.upper()
    reads_text = "text" in modalities_of(model)
    out = args.out or SHIPPED / model.lower()
    work = args.work / model.lower()
    speech = read_manifest(args.shared / "bench" / "ravdess4.csv")
    if reads_text:
        data = pair_with_meld(speech, read_manifest(args.shared / "bench" / "meld4.csv"), args.texts_per_clip)
        test = [u for u in read_manifest(args.shared / "bench" / "paired4.csv") if u.session == HELD_OUT_SESSION]
        print(f"{len(data)} training pairs ({len(speech)} clips x {args.texts_per_clip} MELD train texts)")
    else:
        data = speech
        test = [u for u in speech if u.session == HELD_OUT_SESSION]
        print(f"{len(data)} training clips (speech only)")
    work.mkdir(parents=True, exist_ok=True)
    write_manifest(data, work / "train.csv")

    acoustic = AcousticConfig()
    cache = FeatureCache(acoustic)
    config = TrainConfig(epochs=args.epochs)
    common = dict(labels=PAPER_CLASSES, cache=cache, acoustic=acoustic, train_config=config)

    per_seed: dict[int, Metrics] = {}
    for seed in args.seeds:
        held_out_model = train(model, [u for u in data if u.session != HELD_OUT_SESSION],
                               out_dir=work / f"heldout-seed{seed}", seed=seed, **common)
        per_seed[seed] = held_out_score(held_out_model, test)
        print(f"held-out seed {seed} (session {HELD_OUT_SESSION}, n={per_seed[seed].n}): "
              f"WA {per_seed[seed].wa:.3f} UA {per_seed[seed].ua:.3f}")
    summary = summarise(per_seed)
    print(f"held-out over seeds {args.seeds}: WA {summary['wa']['mean']:.3f} ± {summary['wa']['std']:.3f}, "
          f"UA {summary['ua']['mean']:.3f} ± {summary['ua']['std']:.3f}")

    command = "python recipes/shipped/build.py " + " ".join(sys.argv[1:] if argv is None else argv)
    final = train(model, data, out_dir=work / "final", seed=args.seeds[0], **common)
    meta = final.meta
    provenance = {
        **meta["provenance"],
        "command": command.strip(),
        "data": {
            "speech": "RAVDESS actors 01-20, 4 classes (bench/ravdess4.csv, 560 clips), CC BY-NC-SA 4.0",
            **({
                "text": f"MELD train (bench/meld4.csv session 'train'), {len(data)} utterances, GPL-3.0",
                "pairing": f"each clip with {args.texts_per_clip} MELD train texts of its class, seed {PAIRING_SEED}",
            } if reads_text else {}),
        },
        "held_out_evaluation": {
            "protocol": "same recipe trained on sessions 1-4 (actors 01-16), tested on session 5 (actors 17-20"
                        + (", paired4.csv: MELD dev text)" if reads_text else ", ravdess4.csv)"),
            "scoring": _scoring(final.pipeline),
            **summary,
        },
    }
    if out.exists():
        shutil.rmtree(out)
    save_trained(
        out, name=final.name, labels=final.labels, model=final.model, pipeline=final.pipeline,
        model_config=_config(meta),
        extra={k: v for k, v in {**meta, "provenance": provenance}.items()
               if k not in {"format", "name", "labels", "model_config", "embedding_shape", "pipeline"}},
        dtype=torch.float16,
    )
    reloaded = load_trained(out)
    check = held_out_score(reloaded, test)
    print(f"shipped to {out} ({sum(f.stat().st_size for f in out.iterdir()) / 1e6:.1f} MB); "
          f"float16 copy scores WA {check.wa:.3f} on session {HELD_OUT_SESSION} (trained on it: not a held-out figure)")


def _scoring(pipeline) -> str:
    """How the held-out check scored, in words: as `EmotionRecognizer.predict` does for this pipeline."""
    if pipeline.uses_speech and pipeline.speech_encoder is not None:
        spec = pipeline.speech_encoder  # its registry entry: a window is its 30-s input
        window = f"{spec.label} frames of the recording's real length (windows of {pipeline.max_frames * spec.frame_seconds:g} s)"
    elif pipeline.uses_speech:
        seconds = pipeline.max_frames * pipeline.acoustic.step_s
        window = f"every {seconds:g}-s window of each recording, probabilities averaged weighted by frame count"
    else:
        window = "the transcript alone"
    text = f"; the transcript as its {pipeline.text_encoder.label} sentence vector" if pipeline.uses_text and pipeline.text_encoder is not None else ""
    return f"as EmotionRecognizer.predict: {window}{text}"


def _config(meta):
    from emofusion.models import ModelConfig

    return ModelConfig.from_dict(meta["model_config"])


if __name__ == "__main__":
    main()
