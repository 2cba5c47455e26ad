"""Train and score models over a protocol's folds and several seeds.

Each (model, protocol, seed, fold) trains into its own run folder, so an interrupted experiment
resumes where it stopped: finished runs are recognised by their fingerprint and only scored again.
`emofusion train` and `emofusion reproduce` both run their folds through `run_folds`, so a fold,
its speaker-overlap check and its scoring mean the same thing in both.
"""

from __future__ import annotations


import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable

from emofusion.artifacts import TrainedModel
from emofusion.errors import ConfigError
from emofusion.evaluation.metrics import Metrics, pool
from emofusion.evaluation.protocols import Fold, make_folds
from emofusion.evaluation.results import RunResult
from emofusion.experiments.calibrate import (
    MIN_SPEAKERS_TO_HOLD_OUT, calibrate_run, can_hold_out, describe, split_for_calibration,
)
from emofusion.experiments.scoring import score
from emofusion.features.acoustic import AcousticConfig
from emofusion.features.cache import FeatureCache
from emofusion.features.vocabulary import TextConfig
from emofusion.features.word_vectors import DEFAULT_VECTORS
from emofusion.labels import ordered_classes
from emofusion.models import MODEL_NAMES, ModelConfig, canonical_name, modalities_of
from emofusion.records import Utterance
from emofusion.training.config import TrainConfig
from emofusion.training.encode import usable
from emofusion.training.trainer import train


@dataclass
class ExperimentConfig:
    acoustic: AcousticConfig = field(default_factory=AcousticConfig)
    text: TextConfig = field(default_factory=TextConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    # Calibration (`emofusion.experiments.calibrate`): hold out this share of each corpus's training
    # speakers, train on the rest, fit the temperature and confidence threshold on them. Off: the
    # model trains on every row and has temperature 1, as before.
    calibrate: bool = False
    calibration_holdout: float = 0.2


def runnable_models(
    model_names: Iterable[str], utterances: list[Utterance]
) -> tuple[list[str], dict[str, str]]:
    """Models whose modalities the data has, and a reason for each one skipped."""
    has_speech = any(u.has_audio for u in utterances)
    has_text = any(u.has_text for u in utterances)
    chosen, skipped = [], {}
    for raw in model_names:
        name = canonical_name(raw)
        needs = modalities_of(name)
        missing = [m for m, ok in (("speech", has_speech), ("text", has_text)) if m in needs and not ok]
        if missing:
            skipped[name] = f"the manifest has no {' or '.join(missing)} rows"
        else:
            chosen.append(name)
    return chosen, skipped


def train_model(
    name: str,
    utterances: list[Utterance],
    *,
    labels: tuple[str, ...],
    out_dir: str | Path,
    config: ExperimentConfig,
    cache: FeatureCache | None,
    seed: int,
    device: str | None = None,
    progress: bool = True,
    provenance: dict | None = None,
    overwrite: bool = False,
) -> TrainedModel:
    """One training run with an experiment's configs (`emofusion train --protocol all` is one).

    With ``config.calibrate`` the model trains on all but the held-out calibration speakers and
    comes back calibrated on them (`emofusion.experiments.calibrate`).
    """
    validation, speakers = None, None
    if config.calibrate:
        utterances, validation, speakers = split_for_calibration(
            usable(utterances, modalities_of(name)), config.calibration_holdout, seed
        )
    trained = train(
        name, utterances, labels=labels, out_dir=out_dir, cache=cache, acoustic=config.acoustic,
        text_config=config.text, model_config=config.model, train_config=config.train, seed=seed,
        device=device, progress=progress, provenance=provenance, overwrite=overwrite,
    )
    if validation is None:
        return trained
    trained = calibrate_run(trained, out_dir, validation, speakers, cache=cache)
    if progress:
        print(f"    {describe(trained.meta['calibration'])}", flush=True)
    return trained


def run_folds(
    name: str,
    utterances: list[Utterance],
    *,
    protocol: str,
    seed: int,
    run_dir: Callable[[Fold], Path],
    config: ExperimentConfig,
    cache: FeatureCache | None,
    labels: tuple[str, ...] | None = None,
    device: str | None = None,
    progress: bool = True,
    provenance: dict | None = None,
    on_fold: Callable[[Fold, Path, RunResult], None] | None = None,
    overwrite: bool = False,
) -> list[RunResult]:
    """Train ``name`` on each fold of ``protocol`` (into ``run_dir(fold)``) and score its test rows.

    Only the rows carrying the model's modalities take part. ``labels`` (the model's output
    classes) default to those of these rows. A fold whose test speakers also speak in its training
    rows gets a warning line on stderr, whatever ``progress`` says; its count is in the result.
    ``on_fold(fold, run folder, result)`` is called as each fold finishes.
    """
    rows = usable(utterances, modalities_of(name))
    labels = labels or ordered_classes(u.label for u in rows)
    results = []
    for fold in make_folds(rows, protocol):
        overlap = fold.overlap
        if progress:
            print(f"[{protocol}] {name} seed {seed} test {fold.name}: "
                  f"{len(fold.train)} train / {len(fold.test)} test", flush=True)
        warning = overlap.warning(f"{name}, protocol {protocol}, test session {fold.name}")
        if warning:
            print(warning, file=sys.stderr, flush=True)
        out_dir = run_dir(fold)
        fold_config = config
        if config.calibrate and not can_hold_out(fold.train):
            # A fold trained on one small corpus (leave-one-corpus-out with TESS's two speakers) has
            # no speakers to spare: holding one of two out would halve what the model learns. The
            # fold trains uncalibrated and says so; the other folds are still calibrated.
            print(f"warning: {name}, protocol {protocol}, test {fold.name}: no training corpus has "
                  f"{MIN_SPEAKERS_TO_HOLD_OUT} or more speakers to hold out, so this fold is not calibrated "
                  f"(raw softmax)", file=sys.stderr, flush=True)
            fold_config = replace(config, calibrate=False)
        trained = train_model(
            name, fold.train, labels=labels, out_dir=out_dir, config=fold_config, cache=cache, seed=seed,
            device=device, progress=progress, provenance=provenance, overwrite=overwrite,
        )
        metrics, _ = score(trained, fold.test, cache=cache, progress=False)
        if progress:
            print(f"    WA {metrics.wa:.3f}  UA {metrics.ua:.3f}{probability_line(metrics)}", flush=True)
        result = RunResult(model=name, protocol=protocol, seed=seed, fold=fold.name, metrics=metrics, overlap=overlap,
                           facts=run_facts(trained))
        if on_fold is not None:
            on_fold(fold, Path(out_dir), result)
        results.append(result)
    return results


def run_facts(trained: TrainedModel) -> dict:
    """What a report must say about how a model was computed: precision, hardware, word vectors."""
    hardware = trained.meta.get("hardware") or {}
    facts = {
        "precision": trained.meta.get("precision"),
        "device": hardware.get("device"),
        "cpu_capability": hardware.get("cpu_capability"),
        "gpu": hardware.get("gpu"),
    }
    vocabulary = trained.pipeline.vocabulary
    if vocabulary is not None:
        name = vocabulary.config.vectors
        facts["word_vectors"] = (
            f"GloVe 6B ({name}, the packaged offline default)" if name == DEFAULT_VECTORS else Path(name).name
        )
        facts["vector_dim"] = vocabulary.dim
    if trained.pipeline.pretrained_encoders:
        facts["pretrained_encoders"] = list(trained.pipeline.pretrained_encoders)
    return {k: v for k, v in facts.items() if v is not None}


def pooled(results: list[RunResult]) -> Metrics:
    """One seed's folds scored as one test set: confusion counts summed, every utterance counted once.

    This is the one leave-one-session-out number: `emofusion train --protocol loso` prints it and
    the report averages it over seeds.
    """
    return pool([r.metrics for r in results])


def pooled_line(name: str, results: list[RunResult]) -> str:
    m = pooled(results)
    protocol = results[0].protocol.upper() if results else "LOSO"
    return (f"{name} {protocol} over {len(results)} folds, pooled (confusion counts summed over folds, every "
            f"utterance counted once): WA {m.wa:.2%}  UA {m.ua:.2%}{probability_line(m)}  (n={m.n})")


def probability_line(metrics: Metrics) -> str:
    """"  ECE 4.1  NLL 0.812  Brier 0.401" for metrics that carry probability scores, else ""."""
    p = metrics.probability
    return "" if p is None else f"  ECE {p.ece:.1f}  NLL {p.nll:.3f}  Brier {p.brier:.3f}"


def run_experiment(
    utterances: list[Utterance],
    *,
    models: Iterable[str] = MODEL_NAMES,
    protocols: Iterable[str] = ("paper",),
    seeds: Iterable[int] = (0,),
    runs_dir: str | Path,
    config: ExperimentConfig | None = None,
    cache: FeatureCache | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> tuple[list[RunResult], dict[str, str]]:
    config = config or ExperimentConfig()
    labels = ordered_classes(u.label for u in utterances)
    chosen, skipped = runnable_models(models, utterances)
    if not chosen:
        raise ConfigError(f"none of the models can run on this data: {skipped}")
    if cache is None and any("speech" in modalities_of(m) for m in chosen):
        cache = FeatureCache(config.acoustic)
    results: list[RunResult] = []
    for protocol in protocols:
        for name in chosen:
            for seed in seeds:
                def run_dir(fold: Fold, protocol=protocol, name=name, seed=seed) -> Path:
                    return Path(runs_dir) / protocol / name / f"seed{seed}" / fold.folder

                runs = run_folds(name, utterances, protocol=protocol, seed=seed, run_dir=run_dir, config=config,
                                 cache=cache, labels=labels, progress=progress, overwrite=overwrite)
                if progress and protocol in ("loso", "loco"):
                    print(f"    {pooled_line(name, runs)}", flush=True)
                results += runs
    return results, skipped


def speaker_overlap_notes(results: list[RunResult]) -> list[str]:
    """One line per held-out session whose test speakers also speak in training, or one line saying
    every fold is speaker-independent (by the manifest's speaker column)."""
    shared: dict[tuple[str, str], set] = {}
    for r in results:
        if r.overlap is not None and not r.overlap.independent:
            shared.setdefault((r.protocol, r.fold), set()).add(r.overlap)
    if not shared:
        return ["Speaker-independent: no test speaker of any fold speaks in that fold's training rows "
                "(by the manifest's speaker column)."]
    lines = []
    for (protocol, fold), overlaps in shared.items():
        detail = "; ".join(f"{o.speakers} of {o.test_speakers} test speakers ({o.utterances} of "
                           f"{o.test_utterances} test utterances)" for o in sorted(overlaps, key=lambda o: o.utterances))
        lines.append(f"Not speaker-independent: protocol {protocol}, test session {fold}: {detail} "
                     "also speak in training.")
    return lines
