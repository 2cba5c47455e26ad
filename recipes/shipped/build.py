"""Build the model that ships with emofusion: M-CBLA-BLR on RAVDESS speech + MELD train text.

Usage (from the repository root, with ../shared/data beside it):

    python recipes/shipped/build.py [--shared ../shared/data] [--texts-per-clip 4] [--epochs 20]

The two corpora share no utterances, so we pair them by class (the same construction as the
benchmark's ``paired4.csv``, but using more of MELD): every RAVDESS clip of ``ravdess4.csv``
(actors 01-20, 560 clips) is paired with ``--texts-per-clip`` different MELD *train* utterances of
its class, drawn without replacement with a fixed seed. Each recording is then seen with several
transcripts, so the text encoder learns from 2,240 MELD utterances instead of 560.

Steps:
1. held-out check: train on pairs of sessions 1-4 (actors 01-16), score on ``paired4.csv`` session 5
   (actors 17-20 with MELD *dev* text: neither speaker nor sentence seen in training);
2. the shipped model: the same recipe on all five sessions;
3. export to ``emofusion/shipped/m-cbla-blr`` in float16 with the held-out metrics, the data, the
   command and the commit recorded in ``model.json``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from emofusion.artifacts import load_trained, save_trained
from emofusion.corpora.manifest import read_manifest, write_manifest
from emofusion.experiments.scoring import score
from emofusion.features.acoustic import AcousticConfig
from emofusion.features.cache import FeatureCache
from emofusion.labels import PAPER_CLASSES
from emofusion.records import Utterance
from emofusion.training.config import TrainConfig
from emofusion.training.trainer import train

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "emofusion" / "shipped" / "m-cbla-blr"
MODEL = "M-CBLA-BLR"
PAIRING_SEED = 20260101


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--texts-per-clip", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=TrainConfig().epochs)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "shipped")
    args = parser.parse_args()

    speech = read_manifest(args.shared / "bench" / "ravdess4.csv")
    meld = read_manifest(args.shared / "bench" / "meld4.csv")
    pairs = pair_with_meld(speech, meld, args.texts_per_clip)
    args.work.mkdir(parents=True, exist_ok=True)
    write_manifest(pairs, args.work / "pairs.csv")
    print(f"{len(pairs)} training pairs ({len(speech)} clips x {args.texts_per_clip} MELD train texts)")

    labels = PAPER_CLASSES
    acoustic = AcousticConfig()
    cache = FeatureCache(acoustic)
    config = TrainConfig(epochs=args.epochs)
    common = dict(labels=labels, cache=cache, acoustic=acoustic, train_config=config, seed=args.seed)

    held_out_model = train(MODEL, [p for p in pairs if p.session != "5"], out_dir=args.work / "heldout", **common)
    test = [u for u in read_manifest(args.shared / "bench" / "paired4.csv") if u.session == "5"]
    metrics, _ = score(held_out_model, test, cache=cache, progress=False)
    print(f"held-out (paired4 session 5, n={metrics.n}): WA {metrics.wa:.3f} UA {metrics.ua:.3f}")

    command = "python recipes/shipped/build.py " + " ".join(sys.argv[1:])
    final = train(MODEL, pairs, out_dir=args.work / "final", **common)
    meta = final.meta
    provenance = {
        **meta["provenance"],
        "command": command.strip(),
        "data": {
            "speech": "RAVDESS actors 01-20, 4 classes (bench/ravdess4.csv, 560 clips), CC BY-NC-SA 4.0",
            "text": f"MELD train (bench/meld4.csv session 'train'), {len(pairs)} utterances, GPL-3.0",
            "pairing": f"each clip with {args.texts_per_clip} MELD train texts of its class, seed {PAIRING_SEED}",
        },
        "held_out_evaluation": {
            "protocol": "same recipe trained on sessions 1-4 (actors 01-16), "
                        "tested on paired4.csv session 5 (actors 17-20 + MELD dev text)",
            "metrics": metrics.to_json(),
        },
    }
    if SHIPPED.exists():
        shutil.rmtree(SHIPPED)
    save_trained(
        SHIPPED, name=final.name, labels=final.labels, model=final.model, pipeline=final.pipeline,
        model_config=_config(meta),
        extra={k: v for k, v in {**meta, "provenance": provenance}.items()
               if k not in {"format", "name", "labels", "model_config", "embedding_shape", "pipeline"}},
        dtype=torch.float16,
    )
    reloaded = load_trained(SHIPPED)
    check, _ = score(reloaded, test, cache=cache, progress=False)
    print(f"shipped to {SHIPPED} ({sum(f.stat().st_size for f in SHIPPED.iterdir()) / 1e6:.1f} MB); "
          f"float16 copy scores WA {check.wa:.3f} on session 5 (trained on it: not a held-out figure)")


def _config(meta):
    from emofusion.models import ModelConfig

    return ModelConfig.from_dict(meta["model_config"])


if __name__ == "__main__":
    main()
