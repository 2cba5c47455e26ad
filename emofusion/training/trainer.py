"""The training loop: fixed epochs, seeded, resumable, with a progress bar per epoch.

Model selection never looks at held-out data: every run trains for exactly ``epochs`` epochs and
the final weights are the model. A checkpoint is written atomically after each epoch; running the
same command again resumes from it and gives the same weights as an uninterrupted run, because
the shuffling generator and the global RNG state (dropout) are saved with the weights.

A run folder belongs to one configuration (model, data, seed, configs, the precision actually
used): training into a folder that holds a different run, finished or not, is refused unless
``overwrite`` is set, so a finished model is never replaced by accident.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import pickle
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from emofusion.artifacts import META_FILE, WEIGHTS_FILE, TrainedModel, build_for_pipeline, load_trained, save_trained
from emofusion.errors import ConfigError, TrainingError
from emofusion.fileio import atomic_path
from emofusion.features.acoustic import AcousticConfig
from emofusion.features.augment import augment_config
from emofusion.features.augmented_views import AugmentedSpeech
from emofusion.features.batching import EncodedSet, batch_indices, collate
from emofusion.features.cache import FeatureCache
from emofusion.features.pipeline import FeaturePipeline, check_max_frames
from emofusion.features.vocabulary import TextConfig
from emofusion.features.word_vectors import WordVectors
from emofusion.inference.predict import autocast, pick_device
from emofusion.models import MODEL_SPECS, HeadConfig, ModelConfig, canonical_name, modalities_of, speech_feature, text_feature
from emofusion.precision import hardware_summary, resolve_precision
from emofusion.records import Utterance, session_sort_key
from emofusion.runtime import tune_allocator
from emofusion.training import distributed
from emofusion.training.balance import BalancedSampler, balances
from emofusion.training.config import TrainConfig
from emofusion.training.encode import cache_root, encode_utterances, load_frames, usable

CHECKPOINT_FILE = "checkpoint.pt"


def train(
    model_name: str,
    train_utterances: list[Utterance],
    *,
    labels: tuple[str, ...],
    out_dir: str | Path,
    cache: FeatureCache | None = None,
    acoustic: AcousticConfig | None = None,
    text_config: TextConfig | None = None,
    vectors: WordVectors | None = None,
    model_config: ModelConfig | None = None,
    train_config: TrainConfig | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    progress: bool = True,
    provenance: dict | None = None,
    on_epoch_end: Callable[[int, dict], None] | None = None,
    overwrite: bool = False,
    head_config: HeadConfig | None = None,
) -> TrainedModel:
    """Train ``model_name`` on ``train_utterances`` and save it to ``out_dir``.

    Re-running with the same arguments resumes an interrupted run, or returns the finished model.
    Under torchrun every process calls this alike and trains one data-parallel model
    (`emofusion.training.distributed`); rank 0 writes the run folder.

    ``head_config`` replaces the registry's `HeadConfig` of an encoder model (validation scripts
    compare heads with it); the Table-1 models have none.

    Raises:
        ConfigError: ``out_dir`` holds a different run and ``overwrite`` is not set, or the
            requested precision does not run on ``device``.
        TrainingError: the loss became NaN or infinite (nothing is saved for that epoch).
    """
    tune_allocator()
    name = canonical_name(model_name)
    modalities = modalities_of(name)
    head = _head_config(name, head_config)
    model_config, train_config = _with_head(head, model_config or ModelConfig(), train_config or TrainConfig())
    acoustic = acoustic or AcousticConfig()
    text_config = text_config or TextConfig()
    device = distributed.process_device(pick_device(device))
    group = distributed.setup(device)
    main = group is None or group.is_main
    progress = progress and main
    distributed.per_process_batch(train_config.batch_size, group)  # refuse an uneven split early
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: the run folder is a file; choose another folder")

    data = usable(train_utterances, modalities)
    if not data:
        raise ConfigError(f"{name} needs {' and '.join(sorted(modalities))}; no training utterance has it")
    if "speech" in modalities:
        check_max_frames(acoustic, "acoustic config")
    precision = resolve_precision(train_config.precision, device)
    identity = _identity(name, data, labels, seed, precision, acoustic, text_config, model_config, train_config, head)
    # What decides the weights is whether the epoch is balanced, and over which corpora; left out of
    # a plain shuffle's identity so one-corpus runs keep the fingerprints they had before balancing.
    corpora = [u.corpus for u in data]
    balancing = balances(identity.pop("train_config.balance", "auto"), corpora)
    if balancing:
        identity["sampling.corpora"] = {c: corpora.count(c) for c in sorted(set(corpora))}
    # Augmentation decides the weights only when on: left out of the identity when off, so runs
    # without it keep the fingerprints they had before it existed; when on, its whole config counts.
    augment_name, augment_views = identity.pop("train_config.augment", None), identity.pop("train_config.augment_views", None)
    if augment_name is not None:
        if "speech" not in modalities:
            raise ConfigError(f"augmentation changes speech, and {name} reads none: train it without augment")
        identity["augment"] = {"name": augment_name, "views": augment_views, **augment_config(augment_name).to_dict()}
    fingerprint = _fingerprint(identity, data)
    finished = _finished_model(out, fingerprint, identity, device, overwrite, main)
    if finished is not None:
        return finished
    checkpoint = _read_checkpoint(out / CHECKPOINT_FILE, fingerprint, identity, overwrite)
    out.mkdir(parents=True, exist_ok=True)

    speech_kind, text_kind = speech_feature(name) or "acoustic", text_feature(name) or "words"
    if cache is None and "speech" in modalities:
        cache = FeatureCache(acoustic)
    with distributed.main_first(group):  # rank 0 fills the feature cache, the others read it
        frames = load_frames(data, cache, kind=speech_kind, progress=progress) if "speech" in modalities else None
    pipeline = FeaturePipeline.fit(
        modalities,
        train_frames=frames,
        train_texts=[u.text for u in data] if "text" in modalities else None,
        acoustic=acoustic,
        text_config=text_config,
        vectors=vectors,
        speech_kind=speech_kind,
        text_kind=text_kind,
    )
    encoded = encode_utterances(pipeline, data, labels=labels, cache=cache, frames=frames, progress=progress)
    augmented = None
    if augment_name is not None:
        with distributed.main_first(group):  # rank 0 fills the augmented views' cache, the others read it
            augmented = AugmentedSpeech.prepare(
                [u.audio for u in data], pipeline, encoded, config=augment_config(augment_name), seed=seed,
                views=train_config.augment_views, clean_frames=frames, cache_root=cache_root(cache), progress=progress,
            )

    model, optimizer, generator = _fresh_start(name, labels, pipeline, model_config, train_config, seed, device, group, head)
    sampler = BalancedSampler.build(corpora, encoded.labels) if balancing else None
    # A balanced-loss model weighs classes by what an epoch shows it: the sampler's draws when balancing.
    seen_labels = encoded.labels if sampler is None else np.repeat(np.arange(len(labels)), sampler.class_counts(len(labels)))
    class_weights = _class_weights(seen_labels, len(labels)) if MODEL_SPECS[name].balanced_loss else None
    start_epoch, history = 0, []
    if checkpoint is not None:
        resumed = _resume(out / CHECKPOINT_FILE, checkpoint, model, optimizer, generator, group)
        if resumed is None:  # a damaged checkpoint may have half-loaded: start clean, as a fresh run would
            model, optimizer, generator = _fresh_start(
                name, labels, pipeline, model_config, train_config, seed, device, group, head
            )
        else:
            start_epoch, history = resumed
    # DDP all-reduces the gradients in backward; `model` stays the plain module (weights, R(w)).
    stepper = torch.nn.parallel.DistributedDataParallel(model) if group is not None else model
    started = time.time()
    for epoch in range(start_epoch, train_config.epochs):
        epoch_set = augmented.for_epoch(epoch) if augmented is not None else encoded
        stats = _train_epoch(
            stepper, model, epoch_set, optimizer, generator, train_config, precision, device, epoch, progress, group,
            class_weights, sampler,
        )
        history.append(stats)
        _save_checkpoint(
            out / CHECKPOINT_FILE, fingerprint, identity, epoch + 1, model, optimizer, generator, history, group
        )
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, stats)

    extra = {
        "fingerprint": fingerprint,
        "seed": seed,
        "train_config": train_config.to_dict(),
        # What the weights were computed in ("auto" above resolves to one of these) and on what.
        "precision": precision,
        "hardware": hardware_summary(device),
        **({"head_config": head.to_dict()} if head is not None else {}),
        "history": history,
        "train_seconds": round(time.time() - started, 2),
        "n_train": len(data),
        # What `emofusion evaluate` checks scored rows against, so it can say when they are not held out.
        "train_sessions": sorted({u.session for u in data}, key=session_sort_key),
        # The same per corpus (a session name means something only within its corpus).
        **({"train_corpora": {c: sorted({u.session for u in data if u.corpus == c}, key=session_sort_key)
                              for c in sorted(set(corpora))}} if any(corpora) else {}),
        **({"sampling": sampler.to_json(labels)} if sampler is not None else {}),
        **({"augmentation": _augmentation_record(augmented, augment_name, augment_views)} if augmented is not None else {}),
        "provenance": {**_provenance(), **(provenance or {})},
    }
    if group is not None:
        extra["processes"] = group.world
    if main:
        save_trained(out, name=name, labels=labels, model=model, pipeline=pipeline, model_config=model_config, extra=extra)
        (out / CHECKPOINT_FILE).unlink(missing_ok=True)
    distributed.barrier(group)  # the others return the model rank 0 has written
    model.eval()
    return load_trained(out, device)


def _augmentation_record(augmented: AugmentedSpeech, name: str, views: int) -> dict:
    """What model.json says of the augmentation a model trained with."""
    record = {"name": name, "config": augmented.config.to_dict()}
    if augmented.per_epoch:
        record["strategy"] = "every clip augmented afresh each epoch, features recomputed"
    else:
        record["strategy"] = f"{views} augmented views per clip encoded once (cached); each epoch draws one or the clean clip"
        record["views"] = views
    return record


def _fresh_start(name, labels, pipeline, model_config, train_config, seed, device, group, head=None):
    """Seeded model, optimiser and shuffling generator of epoch 0."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    model = build_for_pipeline(name, pipeline, n_classes=len(labels), config=model_config).to(device)
    optimizer = _optimizer(model, train_config, head)
    generator = torch.Generator().manual_seed(seed)  # batch order: the same stream in every process
    if group is not None and group.rank > 0:
        torch.manual_seed(seed + 1_000_003 * group.rank)  # dropout: each process its own stream
    return model, optimizer, generator


def _head_config(name: str, override: HeadConfig | None) -> HeadConfig | None:
    """The head an encoder model trains with: ``override``, else the registry's; None for Table 1."""
    registered = MODEL_SPECS[name].head
    if override is None:
        return registered
    if registered is None:
        raise ConfigError(f"{name} is a Table-1 model: it trains as ModelConfig and TrainConfig say, without a head_config")
    if not isinstance(override, HeadConfig):
        raise ConfigError(f"head_config must be a HeadConfig, got {type(override).__name__}")
    return override


def _with_head(head: HeadConfig | None, model_config: ModelConfig, train_config: TrainConfig):
    """The model and training configs the run really uses: the head's dropout and epochs where it
    sets them (so model.json records what was trained, and a rebuilt model matches it)."""
    if head is None:
        return model_config, train_config
    if head.dropout is not None:
        model_config = dataclasses.replace(model_config, dropout=head.dropout)
    if head.epochs is not None:
        train_config = dataclasses.replace(train_config, epochs=head.epochs)
    return model_config, train_config


def _optimizer(model, train_config: TrainConfig, head: HeadConfig | None) -> torch.optim.Optimizer:
    """Adam over the trainable weights; a head's weight_decay on its weight matrices only."""
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if head is None or not head.weight_decay:
        return torch.optim.Adam([p for _, p in params], lr=train_config.learning_rate)
    decayed = {id(p) for _, p in model.l2_parameters()}  # weights, not biases (as R(w))
    groups = [
        {"params": [p for _, p in params if id(p) in decayed], "weight_decay": head.weight_decay},
        {"params": [p for _, p in params if id(p) not in decayed], "weight_decay": 0.0},
    ]
    return torch.optim.Adam([g for g in groups if g["params"]], lr=train_config.learning_rate)


def _class_weights(labels: np.ndarray, n_classes: int) -> torch.Tensor:
    """n / (k * n_c) per class c (sklearn's "balanced"); a class absent from training weighs 0."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(n_classes)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return torch.tensor(weights, dtype=torch.float32)


def _train_epoch(
    stepper, model, encoded: EncodedSet, optimizer, generator, cfg: TrainConfig, precision, device, epoch, progress,
    group=None, class_weights=None, sampler: BalancedSampler | None = None,
) -> dict:
    """One epoch. ``stepper`` is ``model`` itself, or its DistributedDataParallel wrapper; ``sampler``
    (None: a plain shuffle of every row) chooses the rows of a balanced epoch."""
    stepper.train()
    total_loss, correct, seen = 0.0, 0, 0
    world = group.world if group is not None else 1
    # Global batches, the same in every process (same generator); each process takes its share.
    # A last batch with fewer rows than processes is left out (< N rows an epoch), since a process
    # with no rows cannot take part in the gradient all-reduce.
    if sampler is None:
        epoch_batches = batch_indices(encoded, cfg.batch_size, shuffle=True, bucket=cfg.bucket_by_length, generator=generator)
    else:
        epoch_batches = sampler.batches(encoded.sort_lengths(), cfg.batch_size, bucket=cfg.bucket_by_length,
                                        generator=generator)
    batches = [b for b in epoch_batches if len(b) >= world]
    bar = tqdm(batches, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch", leave=False, disable=not progress)
    for number, index in enumerate(bar, start=1):
        mine = distributed.share(index, group)
        inputs, targets = collate(encoded, mine, device), torch.from_numpy(encoded.labels[mine]).to(device)
        with autocast(device, precision == "bf16"):
            logits = stepper(**inputs)
        weight = class_weights.to(device) if class_weights is not None else None
        loss = F.cross_entropy(logits.float(), targets, weight=weight)
        # DDP averages the processes' gradients; weighting each by its share of the batch's rows
        # makes that average the gradient of the whole batch's mean loss (for a class-weighted loss,
        # up to each share's own weight sum).
        penalty = cfg.l2_lambda * model.l2_penalty() if getattr(model, "uses_l2", False) else torch.zeros((), device=device)
        objective = loss * (len(mine) * world / len(index)) + penalty
        value = loss.item() + penalty.item()
        # Every process decides together: one leaving alone would leave the others in all-reduce.
        diverged = distributed.sum_over_processes([0.0 if math.isfinite(value) else 1.0], group)[0] > 0
        if diverged:
            # Stop before the step spreads it into every weight: a NaN model predicts one class
            # for everything and would otherwise be saved as a "successful" run.
            bar.close()
            raise TrainingError(
                f"training {getattr(model, 'name', 'the model')} diverged: the loss is {value} at epoch "
                f"{epoch + 1}, batch {number} of {len(batches)}. Nothing was saved for this epoch. Non-finite "
                "input features (a damaged feature cache: delete it to recompute) or too high a learning "
                "rate cause this."
            )
        optimizer.zero_grad(set_to_none=True)
        objective.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        n = len(targets)
        total_loss += value * n
        correct += int((logits.argmax(1) == targets).sum())
        seen += n
        bar.set_postfix(loss=f"{total_loss / seen:.3f}", acc=f"{correct / seen:.3f}")
    bar.close()
    total_loss, correct, seen = distributed.sum_over_processes([total_loss, correct, seen], group)
    stats = {"epoch": epoch + 1, "loss": total_loss / seen, "train_accuracy": correct / seen}
    if progress:
        tqdm.write(f"epoch {epoch + 1}/{cfg.epochs}  loss {stats['loss']:.4f}  train acc {stats['train_accuracy']:.3f}")
    return stats


def _identity(name, data, labels, seed, precision, acoustic, text_config, model_config, train_config, head=None) -> dict:
    """Everything that decides a run's weights, flat, so two runs' differences can be named."""
    identity = {"model": name, "labels": list(labels), "seed": seed, "precision": precision, "n_train": len(data)}
    for prefix, config in (("acoustic", acoustic), ("text", text_config), ("model_config", model_config),
                           ("train_config", train_config)):
        identity.update({f"{prefix}.{k}": v for k, v in config.to_dict().items()})
    # A head's dropout and epochs are in the configs above; its weight decay only here (left out
    # when 0, as for every Table-1 model).
    if head is not None and head.weight_decay:
        identity["head.weight_decay"] = head.weight_decay
    return identity


def _fingerprint(identity: dict, data) -> str:
    ids = hashlib.sha256("\n".join(u.id for u in data).encode()).hexdigest()
    blob = json.dumps([identity, ids], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _identity_of_run(meta: dict) -> dict:
    """The `_identity` of a finished run, read back from its model.json (keys it lacks are absent)."""
    identity = {"model": meta.get("name"), "labels": meta.get("labels"), "seed": meta.get("seed"),
                "precision": meta.get("precision"), "n_train": meta.get("n_train")}
    pipeline = meta.get("pipeline") if isinstance(meta.get("pipeline"), dict) else {}
    text = pipeline.get("text") if isinstance(pipeline.get("text"), dict) else {}
    for prefix, config in (("acoustic", pipeline.get("acoustic")), ("text", text.get("config")),
                           ("model_config", meta.get("model_config")), ("train_config", meta.get("train_config"))):
        if isinstance(config, dict):
            identity.update({f"{prefix}.{k}": v for k, v in config.items()})
    return identity


def _refuse_other_run(out: Path, what: str, theirs: dict | None, ours: dict) -> None:
    if theirs is None:
        differences = "unknown configuration"
    elif theirs.get("precision") is None:
        differences = "made by an earlier emofusion, before runs recorded their precision"
    else:
        changed = [k for k in ours if k in theirs and theirs[k] != ours[k]]
        shown = [f"{k} {theirs[k]!r} -> {ours[k]!r}" for k in changed[:6]]
        if len(changed) > 6:
            shown.append(f"{len(changed) - 6} more")
        differences = ", ".join(shown) if shown else "the training utterances differ"
    raise ConfigError(
        f"{out} holds {what} of a different configuration ({differences}). Refusing to replace it: "
        "pass --overwrite (overwrite=True) to train over it, or choose another output folder."
    )


def _finished_model(out: Path, fingerprint: str, identity: dict, device, overwrite: bool, main: bool) -> TrainedModel | None:
    meta_path = out / META_FILE
    if not meta_path.exists():
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, OSError, UnicodeDecodeError):
        meta = None
    if isinstance(meta, dict) and meta.get("fingerprint") == fingerprint:
        try:
            return load_trained(out, device)
        except ConfigError as exc:
            if not overwrite:
                raise ConfigError(f"{exc}. Pass --overwrite (overwrite=True) to train this run again.") from None
    elif not overwrite:
        _refuse_other_run(out, "a trained model", _identity_of_run(meta) if isinstance(meta, dict) else None, identity)
    # Overwriting: the old model goes now, so an interrupted new run resumes instead of meeting it.
    if main:
        for name in (META_FILE, WEIGHTS_FILE):
            (out / name).unlink(missing_ok=True)
    return None


def _save_checkpoint(path: Path, fingerprint, identity, epoch, model, optimizer, generator, history, group=None) -> None:
    # Every process's dropout stream is saved (by rank 0, the only writer), so a resumed
    # data-parallel run continues exactly as an uninterrupted one.
    rng_by_rank = distributed.gather(torch.get_rng_state(), group)
    if group is not None and not group.is_main:
        return
    state = {
        "fingerprint": fingerprint,
        "identity": json.dumps(identity),
        "epoch": epoch,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "generator": generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "history": json.dumps(history),
    }
    if group is not None:
        state["torch_rng_by_rank"] = rng_by_rank
    if torch.cuda.is_available():
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def _read_checkpoint(path: Path, fingerprint, identity, overwrite) -> dict | None:
    """This run's checkpoint state, or None (none there, unreadable, or another run's when overwriting)."""
    if not path.exists():
        return None
    if path.is_dir():
        raise ConfigError(f"{path} is a folder where the checkpoint file belongs; remove it")
    try:
        # weights_only: a checkpoint is tensors and plain containers, never arbitrary objects. One
        # that needs more (or is damaged) is ignored, never loaded unsafely.
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or not isinstance(state.get("fingerprint"), str):
            raise ValueError("not an emofusion checkpoint")
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError, zipfile errors...
        _ignore_checkpoint(path, exc)
        return None
    if state["fingerprint"] == fingerprint:
        return state
    if not overwrite:
        try:
            theirs = json.loads(state.get("identity", "null"))
        except (TypeError, json.JSONDecodeError):
            theirs = None
        _refuse_other_run(path.parent, "an unfinished run", theirs if isinstance(theirs, dict) else None, identity)
    return None  # overwriting: start over (the checkpoint is replaced after epoch 1)


def _resume(path: Path, state: dict, model, optimizer, generator, group=None) -> tuple[int, list[dict]] | None:
    """Load ``state`` into the run; None if it does not fit (the objects may be half-loaded then)."""
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        by_rank = state.get("torch_rng_by_rank")
        if group is not None and by_rank is not None and len(by_rank) == group.world:
            torch.set_rng_state(by_rank[group.rank])
        elif group is None or group.is_main:
            torch.set_rng_state(state["torch_rng"])
        if "cuda_rng" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        return int(state["epoch"]), json.loads(state["history"])
    except Exception as exc:  # missing keys, wrong shapes or types: a damaged checkpoint
        _ignore_checkpoint(path, exc)
        return None


def _ignore_checkpoint(path: Path, exc: Exception) -> None:
    if isinstance(exc, pickle.UnpicklingError):
        # torch's own message offers unsafe loading; a checkpoint we cannot trust is never loaded.
        reason = "it holds objects other than tensors and plain containers"
    else:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
    print(
        f"emofusion: ignoring {path}: not a readable emofusion checkpoint ({reason}). Training starts from "
        "epoch 1 and replaces it after the first epoch (delete it to silence this).",
        file=sys.stderr,
    )


def _provenance() -> dict:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {"commit": commit or "unknown", "torch": torch.__version__, "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
