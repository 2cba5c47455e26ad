"""Build a model that ships with emofusion: RAVDESS + TESS speech (+ MELD train text for a text model),
balanced over corpora and classes, calibrated on held-out training speakers.

Usage (from the repository root, with ../shared/data beside it; one build at a time, niced, on a
shared machine ``--threads 1``):

    python recipes/shipped/build.py --model M-WTV-ST --augment default    # the default with the encoders extra (--model fusion)
    python recipes/shipped/build.py --model S-WTV --augment default       # speech only with the extra (--model speech)
    python recipes/shipped/build.py --model M-CBLA-BLR --seeds 0   # the paper's fusion model (no extra)
    python recipes/shipped/build.py --model S-CBLA       # the paper's speech model (no extra)
    python recipes/shipped/build.py --model M-WTV-ST --out runs/shipped-new/m-wtv-st   # build beside, compare, then install

The data (issue 17 item 4):

- speech: every clip of ``bench/ravdess4.csv`` (actors 01-20, 560 clips) and ``bench/tess4.csv``
  (two speakers, 1,600 clips), each with its manifest's corpus name;
- text, for a model that reads it: RAVDESS and TESS say fixed sentences, so every clip is paired by
  class with ``--texts-per-clip`` MELD *train* utterances (`pair_with_meld`, the construction of
  ``paired4.csv`` using more of MELD). MELD train has 683 ``sad`` and 1,109 ``ang`` utterances and
  the two corpora 560 clips of each, so a class's texts are drawn without replacement until its pool
  is used up and then again in a fresh order (each text at most once more than any other);
- every epoch samples corpora, and classes within a corpus, in balance (``TrainConfig.balance``
  "auto", `emofusion.training.balance`): TESS's 1,600 clips would otherwise outweigh RAVDESS 3:1;
- calibration as ``--calibrate`` does it (`emofusion.experiments.runner.train_model` with
  `emofusion.experiments.calibrate`): a fifth of the RAVDESS actors of the training rows are held
  out (TESS's two speakers are too few to hold one out), the model trains on the rest, and the
  temperature and confidence threshold are fitted on the held-out actors;
- augmentation only with ``--augment NAME`` (`TrainConfig.augment`), i.e. only where the augmentation
  validation (docs/results/augmentation.md) shows that it helps transfer; the model.json says which.

Steps, every figure scored as `EmotionRecognizer.predict` predicts (calibrated probabilities, every
window of each recording, averaged by frame count; a training-style score sees only the first 2.5 s):

1. held-out speakers, once per ``--seeds`` seed: the recipe trained on RAVDESS sessions 1-4 (+ TESS)
   and scored on session 5 (actors 17-20; a text model reads ``paired4.csv``'s MELD *dev* text):
   WA, UA, ECE, NLL, Brier;
2. corpus never trained on (leave one corpus out), per seed: trained on RAVDESS only and scored on
   all of TESS, and trained on TESS only and scored on all of RAVDESS (a text model reads MELD dev
   text paired one per clip, `pair_with_meld` on the dev split, leaving out texts that also occur in
   MELD train); UA/ECE per direction and their mean. The TESS-only model cannot be calibrated (two
   speakers, none to hold out): it is scored with temperature 1, and the file says so;
3. the shipped model: the recipe on all of the data, with the first seed;
4. export in float16 with the recipe, its sources and the figures (per seed, mean and sample std)
   in ``model.json``. An encoder model ships only its head: the encoders come from the extra.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import shutil
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from emofusion.artifacts import TrainedModel, load_trained, save_trained
from emofusion.corpora.manifest import read_manifest, write_manifest
from emofusion.errors import ConfigError
from emofusion.evaluation.metrics import Metrics, compute_metrics, probability_scores
from emofusion.experiments.calibrate import holdout_speakers
from emofusion.experiments.runner import ExperimentConfig, train_model
from emofusion.features.acoustic import AcousticConfig
from emofusion.features.cache import FeatureCache
from emofusion.inference.recognizer import EmotionRecognizer
from emofusion.labels import PAPER_CLASSES
from emofusion.models.registry import modalities_of
from emofusion.records import Utterance
from emofusion.training.config import TrainConfig

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "emofusion" / "shipped"
PAIRING_SEED = 20260101
# The corpora the shipped models learn from, as their manifests name them, and what to say of each.
CORPORA = {
    "ravdess4": "RAVDESS actors 01-20, 4 classes (bench/ravdess4.csv, 560 clips), CC BY-NC-SA 4.0",
    "tess4": "TESS speakers OAF and YAF, 4 classes (bench/tess4.csv, 1,600 clips), CC BY-NC-ND 4.0",
}
HELD_OUT_CORPUS, HELD_OUT_SESSION = "ravdess4", "5"
# Leave one corpus out, both ways: (train on, score on).
DIRECTIONS = (("ravdess4", "tess4"), ("tess4", "ravdess4"))
# Utterances per forward pass when scoring: bounded memory, few passes.
SCORE_CHUNK = 64
AUGMENTATION_REPORT = "docs/results/augmentation.md"
LAYER_REPORT = "docs/results/encoders/layers.md"
# The validation reports whose CHOSEN line picks a speech entry's layer / norm / frames; the one that
# matches the model's entry is its source (wtv: voiced.md; wt2: layers.md).
CHOICE_REPORTS = ("docs/results/encoders/voiced.md", LAYER_REPORT)


def pair_with_meld(speech: list[Utterance], meld: list[Utterance], per_clip: int, *, split: str = "train",
                   exclude: frozenset[str] = frozenset()) -> list[Utterance]:
    """Each clip with ``per_clip`` MELD utterances of its class from ``split`` (texts in ``exclude``
    left out), drawn without replacement with a fixed seed; a class whose pool is used up is drawn
    again in a fresh order, so a text is used at most once more than any other of its class."""
    rng = np.random.default_rng(PAIRING_SEED)
    pools: dict[str, list[Utterance]] = defaultdict(list)
    for u in meld:
        if u.session == split and u.text not in exclude:
            pools[u.label].append(u)
    order: dict[str, list[int]] = {}
    pairs = []
    for clip in speech:
        pool = pools.get(clip.label)
        if not pool:
            raise SystemExit(f"no MELD {split} utterance of class {clip.label} to pair clip {clip.id} with")
        for _ in range(per_clip):
            if not order.get(clip.label):
                order[clip.label] = list(rng.permutation(len(pool)))
            text = pool[order[clip.label].pop(0)]
            pairs.append(Utterance(
                id=f"{clip.id}+{text.id}", audio=clip.audio, text=text.text, label=clip.label,
                speaker=clip.speaker, session=clip.session, corpus=clip.corpus,
                extras={"speech_id": clip.id, "text_id": text.id},
            ))
    return pairs


def _input_key(trained: TrainedModel) -> str:
    """What a prepared input depends on: the pipeline without its (per-run) standardisation."""
    state = {k: v for k, v in trained.pipeline.state().items() if k not in ("mean", "std")}
    return hashlib.sha256(json.dumps(state, sort_keys=True, default=str).encode()).hexdigest()


def predict_as_recognizer(trained: TrainedModel, rows: list[Utterance], memo: dict | None = None) -> list:
    """`Prediction`s exactly as `EmotionRecognizer.predict` gives them: all windows, averaged, calibrated.

    ``memo`` keeps each row's decoded and featurised input (`EmotionRecognizer.prepare`) for the next
    model with the same pipeline (the seeds of one recipe): the encoder frames and acoustic windows
    do not depend on the trained weights (standardisation comes after), and each use gets a fresh
    copy without the model's own text features.
    """
    recognizer = EmotionRecognizer(trained, device=next(trained.model.parameters()).device)
    key = _input_key(trained)
    predictions = []
    for start in range(0, len(rows), SCORE_CHUNK):
        prepared = []
        for u in rows[start : start + SCORE_CHUNK]:
            found = memo.get((key, u.id)) if memo is not None else None
            if found is None:
                found = recognizer.prepare(u.audio, u.text if recognizer.trained.pipeline.uses_text else None)
                if memo is not None:
                    memo[(key, u.id)] = found
            prepared.append(dataclasses.replace(found, text_features=None))
        predictions += recognizer.predict_prepared(prepared)
    return predictions


def held_out_score(trained: TrainedModel, rows: list[Utterance], memo: dict | None = None) -> Metrics:
    """WA/UA and ECE/NLL/Brier of ``rows`` as `EmotionRecognizer.predict` predicts them."""
    predictions = predict_as_recognizer(trained, rows, memo)
    labels = list(trained.labels)
    metrics = compute_metrics([u.label for u in rows], [p.label for p in predictions], trained.labels)
    probabilities = np.array([[p.probabilities[c] for c in labels] for p in predictions])
    return metrics.with_probability(probability_scores(probabilities, [labels.index(u.label) for u in rows]))


def _stats(values) -> dict:
    values = np.asarray(values, dtype=np.float64)
    return {"mean": float(values.mean()), "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0}


def summarise(per_seed: dict[int, Metrics]) -> dict:
    """Per-seed metrics and their mean and sample std (ddof 1, as the reports use); ECE (points),
    NLL and Brier too where every seed has probabilities."""
    first = next(iter(per_seed.values()))
    summary = {
        "seeds": sorted(per_seed),
        "n": first.n,
        "wa": _stats([m.wa for m in per_seed.values()]),
        "ua": _stats([m.ua for m in per_seed.values()]),
        "per_class": {c: _stats([m.per_class[c] for m in per_seed.values()]) for c in first.labels},
    }
    if all(m.probability is not None for m in per_seed.values()):
        # ece_floor: what a perfectly calibrated model would score on this many clips (metrics.py)
        for key in ("ece", "ece_floor", "nll", "brier"):
            summary[key] = _stats([getattr(m.probability, key) for m in per_seed.values()])
    summary["per_seed"] = {str(seed): m.to_json() for seed, m in sorted(per_seed.items())}
    return summary


def summarise_directions(per_direction: dict[str, dict[int, Metrics]]) -> dict:
    """Leave-one-corpus-out: each direction summarised, and per seed the mean over the directions
    of UA and ECE, summarised over seeds."""
    seeds = sorted(set.intersection(*(set(d) for d in per_direction.values())))
    mean_per_seed = {
        str(s): {key: float(np.mean([getattr(d[s], key) if key == "ua" else d[s].probability.ece
                                     for d in per_direction.values()])) for key in ("ua", "ece")}
        for s in seeds
    }
    return {
        "directions": {name: summarise(d) for name, d in per_direction.items()},
        "mean": {
            "ua": _stats([m["ua"] for m in mean_per_seed.values()]),
            "ece": _stats([m["ece"] for m in mean_per_seed.values()]),
            "per_seed": mean_per_seed,
        },
    }


def can_calibrate(rows: list[Utterance], seed: int, fraction: float) -> bool:
    """Whether `emofusion.experiments.calibrate` finds speakers to hold out in these rows."""
    try:
        holdout_speakers(rows, fraction, seed)
    except ConfigError:
        return False
    return True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="M-CBLA-BLR", help="a Table-1 or encoder model name (default M-CBLA-BLR)")
    parser.add_argument("--out", type=Path, default=None, help="export folder (default emofusion/shipped/<model>)")
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--texts-per-clip", type=int, default=2,
                        help="MELD train texts per clip for a text model (2: nearly every MELD ang and sad text once)")
    parser.add_argument("--epochs", type=int, default=TrainConfig().epochs)
    parser.add_argument("--augment", default=None, help="TrainConfig.augment (default none; see the docstring)")
    parser.add_argument("--augment-source", default=None, help="why --augment was (not) chosen, for model.json")
    parser.add_argument("--calibration-holdout", type=float, default=ExperimentConfig().calibration_holdout)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="held-out check seeds; the first trains the shipped model")
    parser.add_argument("--no-loco", action="store_true", help="skip the leave-one-corpus-out check")
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
    bench = args.shared / "bench"
    speech = [u for corpus in CORPORA for u in read_manifest(bench / f"{corpus}.csv")]
    in_corpus = {corpus: [u for u in speech if u.corpus == corpus] for corpus in CORPORA}
    if reads_text:
        meld = read_manifest(bench / "meld4.csv")
        train_texts = frozenset(u.text for u in meld if u.session == "train")
        data = pair_with_meld(speech, meld, args.texts_per_clip)
        held_out_test = [u for u in read_manifest(bench / "paired4.csv") if u.session == HELD_OUT_SESSION]
        # Scoring a corpus never trained on: one unseen MELD dev text per clip.
        corpus_test = {c: pair_with_meld(rows, meld, 1, split="dev", exclude=train_texts) for c, rows in in_corpus.items()}
        print(f"{len(data)} training pairs ({len(speech)} clips x {args.texts_per_clip} MELD train texts)")
    else:
        data = speech
        held_out_test = [u for u in in_corpus[HELD_OUT_CORPUS] if u.session == HELD_OUT_SESSION]
        corpus_test = in_corpus
        print(f"{len(data)} training clips (speech only)")
    work.mkdir(parents=True, exist_ok=True)
    write_manifest(data, work / "train.csv")

    acoustic = AcousticConfig()
    cache = FeatureCache(acoustic)
    config = ExperimentConfig(acoustic=acoustic, train=TrainConfig(epochs=args.epochs, augment=args.augment),
                              calibrate=True, calibration_holdout=args.calibration_holdout)
    uncalibrated = dataclasses.replace(config, calibrate=False)
    memo: dict = {}

    def fit(rows: list[Utterance], folder: str, seed: int) -> TrainedModel:
        calibrated = can_calibrate(rows, seed, config.calibration_holdout)
        return train_model(model, rows, labels=PAPER_CLASSES, out_dir=work / folder,
                           config=config if calibrated else uncalibrated, cache=cache, seed=seed)

    held_out: dict[int, Metrics] = {}
    loco: dict[str, dict[int, Metrics]] = {f"{a}->{b}": {} for a, b in DIRECTIONS}
    loco_calibration: dict[str, str] = {}
    for seed in args.seeds:
        trained = fit([u for u in data if not (u.corpus == HELD_OUT_CORPUS and u.session == HELD_OUT_SESSION)],
                      f"heldout-seed{seed}", seed)
        held_out[seed] = m = held_out_score(trained, held_out_test, memo)
        print(f"held-out seed {seed} ({HELD_OUT_CORPUS} session {HELD_OUT_SESSION}, n={m.n}): WA {m.wa:.3f} "
              f"UA {m.ua:.3f} ECE {m.probability.ece:.1f} NLL {m.probability.nll:.3f} Brier {m.probability.brier:.3f}",
              flush=True)
        if args.no_loco:
            continue
        for source, target in DIRECTIONS:
            name = f"{source}->{target}"
            trained = fit([u for u in data if u.corpus == source], f"loco-{source}-seed{seed}", seed)
            loco_calibration[name] = _calibration_said(trained)
            loco[name][seed] = m = held_out_score(trained, corpus_test[target], memo)
            print(f"  corpus never trained on, seed {seed}, {name} (n={m.n}): WA {m.wa:.3f} UA {m.ua:.3f} "
                  f"ECE {m.probability.ece:.1f}", flush=True)
    summary = summarise(held_out)
    print(f"held-out over seeds {args.seeds}: UA {summary['ua']['mean']:.3f} ± {summary['ua']['std']:.3f}, "
          f"ECE {summary['ece']['mean']:.1f} ± {summary['ece']['std']:.1f} "
          f"(a calibrated model's floor at this n: {summary['ece_floor']['mean']:.1f})")
    loco_summary = None
    if not args.no_loco:
        loco_summary = summarise_directions(loco)
        for name, d in loco_summary["directions"].items():
            d["calibration"] = loco_calibration[name]
        print(f"corpus never trained on, mean of both directions: UA {loco_summary['mean']['ua']['mean']:.3f} ± "
              f"{loco_summary['mean']['ua']['std']:.3f}, ECE {loco_summary['mean']['ece']['mean']:.1f}")

    command = "python recipes/shipped/build.py " + " ".join(sys.argv[1:] if argv is None else argv)
    final = fit(data, "final", args.seeds[0])
    meta = final.meta
    text_eval = ", paired4.csv: MELD dev text" if reads_text else ", ravdess4.csv"
    provenance = {
        **meta["provenance"],
        "command": command.strip(),
        "data": {
            "speech": "; ".join(CORPORA.values()),
            "corpora": list(CORPORA),
            **({
                "text": f"MELD train (bench/meld4.csv session 'train'), {len(data)} pairs, GPL-3.0",
                "pairing": f"each clip with {args.texts_per_clip} MELD train texts of its class, seed {PAIRING_SEED}, "
                           "drawn without replacement and again in a fresh order once a class's texts are used up",
            } if reads_text else {}),
        },
        "recipe": _recipe(final, args, reads_text),
        "held_out_evaluation": {
            "protocol": f"same recipe trained on RAVDESS sessions 1-4 (actors 01-16) + TESS, tested on RAVDESS "
                        f"session 5 (actors 17-20{text_eval})",
            "scoring": _scoring(final.pipeline),
            **summary,
        },
        **({"corpus_never_trained_on": {
            "protocol": "leave one corpus out: the recipe trained on one corpus only (all its speakers but those held out for calibration) and scored on "
                        "every clip of the other" + (" (text: one MELD dev text per clip, none also in MELD train)"
                                                    if reads_text else ""),
            "scoring": _scoring(final.pipeline),
            **loco_summary,
        }} if loco_summary else {}),
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
    check = held_out_score(reloaded, held_out_test, memo)
    print(f"shipped to {out} ({sum(f.stat().st_size for f in out.iterdir()) / 1e6:.1f} MB); float16 copy scores "
          f"WA {check.wa:.3f} on {HELD_OUT_CORPUS} session {HELD_OUT_SESSION} (trained on it: not a held-out figure)")


def _calibration_said(trained: TrainedModel) -> str:
    block = trained.meta.get("calibration")
    if not block:
        return "none (temperature 1): no corpus of the training rows has speakers to hold out for calibration"
    return (f"temperature {block['temperature']:.3f} fitted on held-out speakers "
            f"{', '.join(block['fitted_on']['speakers'])}")


def _recipe(final: TrainedModel, args, reads_text: bool) -> dict:
    """Every choice of the recipe and where it comes from."""
    pipeline = final.pipeline
    spec = pipeline.speech_encoder if pipeline.uses_speech else None
    chosen = _chosen_line(spec) if spec is not None else None
    return {
        "corpora": {"choice": list(CORPORA), "source": "issue 17 item 4: RAVDESS + TESS speech (+ MELD train text)"},
        "balance": {"choice": final.meta["train_config"]["balance"],
                    "source": "TrainConfig.balance: every corpus, and every class within it, an equal share of each epoch"},
        "calibration": {"choice": _calibration_said(final),
                        "source": "emofusion.experiments.calibrate (--calibrate): held-out training speakers, never a test fold"},
        "augmentation": {"choice": final.meta["train_config"].get("augment"),
                         "source": args.augment_source or (
                             f"{AUGMENTATION_REPORT} " + ("exists" if (REPO / AUGMENTATION_REPORT).is_file() else
                                                          "was not written when this was built")
                             + ": no validation evidence that augmentation helps transfer, so none")},
        **({"speech_encoder": {"choice": spec.identity(), "source": chosen or f"none of {', '.join(CHOICE_REPORTS)} chose this entry"}}
           if spec is not None else {}),
        **({"texts_per_clip": args.texts_per_clip} if reads_text else {}),
        "epochs": args.epochs,
    }


def _chosen_line(spec) -> str | None:
    """``<report>: CHOSEN: ...`` of the validation report that chose ``spec`` (its encoder, layer,
    norm and frames), or None when no report's choice is this entry."""
    import re

    frames = str(spec.settings.get("frames", "all")).replace("-", "").removesuffix("dB")  # voiced-20dB -> voiced20
    for report in CHOICE_REPORTS:
        path = REPO / report
        lines = [line.strip() for line in path.read_text().splitlines() if line.startswith("CHOSEN:")] if path.is_file() else []
        if not lines:
            continue
        fields = dict(re.findall(r"(\w+)=(\S+)", lines[-1]))
        if (fields.get("encoder"), fields.get("layer"), fields.get("norm"), fields.get("frames", "all")) == (
                spec.name, str(spec.layer), spec.norm, frames):
            return f"{report}: {lines[-1]}"
    return None


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
    return f"as EmotionRecognizer.predict, calibrated probabilities: {window}{text}"


def _config(meta):
    from emofusion.models import ModelConfig

    return ModelConfig.from_dict(meta["model_config"])


if __name__ == "__main__":
    main()
