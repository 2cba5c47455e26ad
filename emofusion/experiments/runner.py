"""Train and score models over a protocol's folds and several seeds.

Each (model, protocol, seed, fold) trains into its own run folder, so an interrupted experiment
resumes where it stopped: finished runs are recognised by their fingerprint and only scored again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from emofusion.errors import ConfigError
from emofusion.evaluation.protocols import make_folds
from emofusion.evaluation.results import RunResult
from emofusion.experiments.scoring import score
from emofusion.features.acoustic import AcousticConfig
from emofusion.features.cache import FeatureCache
from emofusion.features.vocabulary import TextConfig
from emofusion.labels import PAPER_CLASSES
from emofusion.models import MODEL_NAMES, ModelConfig, canonical_name
from emofusion.records import Utterance
from emofusion.training.config import TrainConfig
from emofusion.training.encode import modalities_of, usable
from emofusion.training.trainer import train


@dataclass
class ExperimentConfig:
    acoustic: AcousticConfig = field(default_factory=AcousticConfig)
    text: TextConfig = field(default_factory=TextConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def labels_of(utterances: Iterable[Utterance]) -> tuple[str, ...]:
    """Classes present, the paper's four first (in Table-1 order), then alphabetical."""
    present = {u.label for u in utterances}
    return tuple([c for c in PAPER_CLASSES if c in present] + sorted(present - set(PAPER_CLASSES)))


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
) -> tuple[list[RunResult], dict[str, str]]:
    config = config or ExperimentConfig()
    labels = labels_of(utterances)
    chosen, skipped = runnable_models(models, utterances)
    if not chosen:
        raise ConfigError(f"none of the models can run on this data: {skipped}")
    if cache is None and any("speech" in modalities_of(m) for m in chosen):
        cache = FeatureCache(config.acoustic)
    results: list[RunResult] = []
    for protocol in protocols:
        for name in chosen:
            rows = usable(utterances, modalities_of(name))
            for seed in seeds:
                for fold in make_folds(rows, protocol):
                    run_dir = Path(runs_dir) / protocol / name / f"seed{seed}" / f"test-{fold.name}"
                    if progress:
                        print(f"[{protocol}] {name} seed {seed} test {fold.name}: "
                              f"{len(fold.train)} train / {len(fold.test)} test", flush=True)
                    trained = train(
                        name, fold.train, labels=labels, out_dir=run_dir, cache=cache,
                        acoustic=config.acoustic, text_config=config.text, model_config=config.model,
                        train_config=config.train, seed=seed, progress=progress,
                    )
                    metrics, _ = score(trained, fold.test, cache=cache, progress=False)
                    if progress:
                        print(f"    WA {metrics.wa:.3f}  UA {metrics.ua:.3f}", flush=True)
                    results.append(RunResult(model=name, protocol=protocol, seed=seed, fold=fold.name, metrics=metrics))
    return results, skipped
