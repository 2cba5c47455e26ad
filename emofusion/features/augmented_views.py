"""Augmented speech inputs for training: fresh per epoch (acoustic), or K cached views (encoders).

Two costs decide the design (measured by ``benchmarks/bench_augment.py``):

* the paper's 34 acoustic features are cheap (a few ms per clip), so every epoch augments every
  training clip anew (:func:`augment`) and recomputes its features: the model never sees one
  augmented clip twice;
* a frozen encoder is not (Whisper tiny.en ~18 ms per 3-s clip on one core, a larger encoder more),
  so each clip gets ``views`` augmented versions encoded once and cached on disk like clean frames,
  and every epoch draws, per clip, one of its views or the clean clip.

Either way an epoch's inputs depend only on (seed, epoch): a resumed run sees what an uninterrupted
one would. Feature statistics (the pipeline's mean/std) stay those of the clean training frames.

Babble for a clip is mixed from the other training clips (never the clip itself), so the views'
cache key includes the training clips' identities, besides the view index, the augmentation
config, the seed and the encoder's own cache key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import soxr
from tqdm import tqdm

from emofusion.audio import load_audio
from emofusion.errors import AudioError, ConfigError
from emofusion.features.acoustic import extract_frames
from emofusion.features.augment import SAMPLE_RATE, AugmentConfig, augment
from emofusion.features.batching import EncodedSet
from emofusion.features.cache import default_cache_root
from emofusion.features.pipeline import FeaturePipeline
from emofusion.fileio import save_npy_atomic, write_bytes_atomic

# Bump when a view's content for the same key changes (the augmentation code, the encoder call).
VIEWS_FORMAT = 1
# Separate random streams: an epoch's acoustic augmentation, its choice of views, a view's making.
_EPOCH_STREAM, _CHOICE_STREAM, _VIEW_STREAM = 1, 2, 3
# Draws before a config that never changes a clip is called out (at p = 0.07 per draw, the
# default's no-op rate, 50 in a row happen with probability 1e-58).
_MAX_REDRAWS = 50


class AugmentedSpeech:
    """The training set's speech inputs for each epoch, augmented.

    Build it with :meth:`prepare`; :meth:`for_epoch` gives the `EncodedSet` of one epoch (the same
    labels and text as the clean set, other speech).
    """

    def __init__(self, clean: EncodedSet, pipeline: FeaturePipeline, config: AugmentConfig, seed: int) -> None:
        self.clean, self.pipeline, self.config, self.seed = clean, pipeline, config, seed
        # The decoded 16-kHz clips, once per distinct file (a fusion recipe pairs one clip with several
        # transcripts), and each row's clip. float32 holds 16-bit audio at 16 kHz exactly.
        self.clips: list[np.ndarray] = []
        self.row_clip: list[int] = []
        self.views: list[list[np.ndarray]] = []  # encoder: per clip, [clean frames, view 1, ..., view K]
        self.progress = False
        self.views_seconds = 0.0  # time spent computing views that were not cached

    @classmethod
    def prepare(
        cls,
        audio_files: Sequence[str | Path],
        pipeline: FeaturePipeline,
        clean: EncodedSet,
        *,
        config: AugmentConfig,
        seed: int,
        views: int = 4,
        clean_frames: Sequence[np.ndarray] | None = None,
        cache_root: str | Path | None = None,
        encoder_factory: Callable[[], object] | None = None,
        progress: bool = True,
    ) -> "AugmentedSpeech":
        """Decode the training clips (acoustic) or compute and cache their views (encoder).

        Arguments:
            audio_files: the training clips, in the order of ``clean``'s rows.
            pipeline: the fitted pipeline (its speech kind decides the strategy).
            clean: the clean training set, as the trainer encoded it.
            config: the augmentation.
            seed: the run's seed; views and epochs derive their random streams from it.
            views: augmented views per clip for an encoder pipeline (K).
            clean_frames: the clean encoder frames per clip (what a view is drawn against).
            cache_root: the folder holding every feature cache (default: the project's).
            encoder_factory: returns the speech encoder (default: the pipeline's registry entry).
            progress: show progress bars.

        Raises:
            ConfigError: no speech in the pipeline, a bad ``views``, or files and rows that differ in number.
            AudioError: a clip that cannot be decoded.
        """
        if not pipeline.uses_speech or clean.speech is None:
            raise ConfigError("augmentation changes speech: this model reads no speech")
        if len(audio_files) != len(clean):
            raise ConfigError(f"{len(audio_files)} audio files for {len(clean)} training rows")
        if isinstance(views, bool) or not isinstance(views, int) or views < 1:
            raise ConfigError(f"augment_views must be a positive whole number, got {views!r}")
        self = cls(clean, pipeline, config, seed)
        self.progress = progress
        spec = _speech_encoder(pipeline)
        files = list(dict.fromkeys(str(f) for f in audio_files))
        position = {f: k for k, f in enumerate(files)}
        self.row_clip = [position[str(f)] for f in audio_files]
        self.clips = clips = [
            load_audio(f, target_rate=SAMPLE_RATE).samples.astype(np.float32)
            for f in tqdm(files, desc="decode for augmentation", unit="file", disable=not progress)
        ]
        if spec is None:
            return self
        if clean_frames is None or len(clean_frames) != len(audio_files):
            raise ConfigError("an encoder model's augmented views need the clean frames of every training clip")
        if spec.sample_rate != SAMPLE_RATE:
            raise ConfigError(f"augmentation runs at {SAMPLE_RATE} Hz; encoder {spec.key} listens at {spec.sample_rate} Hz")
        store = ViewStore(spec, config, seed, files, cache_root)
        factory = encoder_factory or _loader(spec)
        started = time.perf_counter()
        encoder = None
        bar = tqdm(total=len(clips) * views, desc=f"augmented views ({views} per clip)", unit="view", disable=not progress)
        by_clip = []
        for k, (path, clip) in enumerate(zip(files, clips)):
            per_clip = []
            for v in range(1, views + 1):
                cached = store.load(path, v)
                if cached is None:
                    encoder = encoder or factory()
                    rng = np.random.default_rng([seed, _VIEW_STREAM, v, store.clip_number(path)])
                    samples = _changed(clip, rng, config, clips, k)
                    cached = store.store(path, v, encoder.frames(samples.astype(np.float32)))
                per_clip.append(cached)
                bar.update(1)
            by_clip.append(per_clip)
        bar.close()
        # Per row: its clean frames, then its clip's views (rows of one clip share them).
        self.views = [[np.asarray(clean_frames[i], dtype=np.float16), *by_clip[k]] for i, k in enumerate(self.row_clip)]
        self.views_seconds = time.perf_counter() - started if encoder is not None else 0.0
        return self

    @property
    def per_epoch(self) -> bool:
        """True when every epoch augments afresh (acoustic); False when it draws cached views."""
        return not self.views

    def for_epoch(self, epoch: int) -> EncodedSet:
        """The training set of ``epoch`` (0-based): the clean set's labels and text, augmented speech."""
        if self.per_epoch:
            frames = []
            acoustic = self.pipeline.acoustic
            for i, k in enumerate(tqdm(self.row_clip, desc=f"augment epoch {epoch + 1}", unit="clip", leave=False,
                                       disable=not self.progress)):
                rng = np.random.default_rng([self.seed, _EPOCH_STREAM, epoch, i])
                samples = augment(self.clips[k].astype(np.float64), rng, self.config, babble_pool=self.clips, exclude=k)
                if acoustic.sample_rate != SAMPLE_RATE:
                    samples = soxr.resample(samples, SAMPLE_RATE, acoustic.sample_rate, quality="HQ")
                try:
                    frames.append(extract_frames(samples, acoustic.sample_rate, acoustic))
                except AudioError as exc:  # e.g. a clip sped up below one window: say which
                    raise AudioError(f"training clip {i + 1} after augmentation: {exc}") from exc
        else:
            rng = np.random.default_rng([self.seed, _CHOICE_STREAM, epoch])
            choice = rng.integers(0, len(self.views[0]), size=len(self.views))
            frames = [views[c].astype(np.float32) for views, c in zip(self.views, choice)]
        return dataclasses.replace(self.clean, speech=self.pipeline.speech_inputs(frames))


class ViewStore:
    """``<root>/<encoder>-views-<hash>/<key>.npy``: one augmented view's frames per (clip, view).

    The folder's hash covers the encoder's cache key, the augmentation config, the seed and the
    training clips (babble comes from them); an entry's key, the clip's path, size, modification
    time and the view index. Entries are float16, as clean frames are cached.
    """

    def __init__(self, spec, config: AugmentConfig, seed: int, audio_files: Sequence[str | Path], root=None) -> None:
        identities = [_file_identity(f) for f in audio_files]
        pool = hashlib.sha256("\n".join(identities).encode()).hexdigest()[:16]
        key = {"format": VIEWS_FORMAT, "encoder": spec.name, **spec.cache_settings(),
               "augment": config.to_dict(), "seed": seed, "training_clips": pool}
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        self.directory = Path(root or default_cache_root()) / f"{spec.name}-views-{digest}"
        self.directory.mkdir(parents=True, exist_ok=True)
        config_file = self.directory / "config.json"
        if not config_file.exists():
            write_bytes_atomic(config_file, json.dumps(key, indent=2, sort_keys=True).encode())
        self.dim = spec.dim
        self._identity = dict(zip((str(f) for f in audio_files), identities))

    def clip_number(self, path: str | Path) -> int:
        """A number of the clip's identity alone, so its views do not depend on the training order."""
        return int(self._identity[str(path)][:15], 16)

    def _path(self, path: str | Path, view: int) -> Path:
        return self.directory / (hashlib.sha256(f"{self._identity[str(path)]}\0{view}".encode()).hexdigest()[:32] + ".npy")

    def load(self, path: str | Path, view: int) -> np.ndarray | None:
        entry = self._path(path, view)
        if not entry.is_file():
            return None
        try:
            value = np.load(entry, allow_pickle=False)
        except (ValueError, OSError, EOFError):
            return None  # unreadable: recompute
        if value.dtype != np.float16 or value.ndim != 2 or value.shape[1] != self.dim or not np.isfinite(value).all():
            return None
        return value

    def store(self, path: str | Path, view: int, frames: np.ndarray) -> np.ndarray:
        value = np.asarray(frames, dtype=np.float32)
        if value.ndim != 2 or value.shape[1] != self.dim or not np.isfinite(value).all():
            raise ConfigError(f"the speech encoder gave frames of shape {value.shape} for an augmented view; expected (n, {self.dim})")
        stored = value.astype(np.float16)
        try:
            save_npy_atomic(self._path(path, view), stored)
        except OSError:
            pass  # the cache only saves time: an unwritable folder costs a recomputation next run
        return stored


def _changed(clip: np.ndarray, rng: np.random.Generator, config: AugmentConfig, pool, index: int) -> np.ndarray:
    """An augmentation of ``clip`` that is not the clip itself: the clean clip is already one of the
    choices every epoch, and with the default config about 7% of draws apply no transform at all."""
    x = clip.astype(np.float64)
    for _ in range(_MAX_REDRAWS):
        samples = augment(x, rng, config, babble_pool=pool, exclude=index)
        if len(samples) != len(x) or not np.array_equal(samples, x):
            return samples
    raise ConfigError("the augmentation config leaves clips unchanged: a view needs at least one transform with p > 0")


def _speech_encoder(pipeline: FeaturePipeline):
    """The pipeline's speech encoder entry, or None for the acoustic features."""
    return getattr(pipeline, "speech_encoder", None)


def _loader(spec) -> Callable[[], object]:
    from emofusion.features.encoders.registry import load_encoder

    return lambda: load_encoder(spec)


def _file_identity(path: str | Path) -> str:
    resolved = Path(path).resolve()
    stat = resolved.stat()
    return hashlib.sha256(f"{resolved}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()).hexdigest()
