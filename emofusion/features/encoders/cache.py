"""On-disk caches of the frozen encoders' outputs: a corpus is embedded once per encoder.

Layout mirrors the acoustic cache (:mod:`emofusion.features.cache`): ``<root>/<encoder>-<hash>/``
(the hash of the registry entry's name, layer and settings, so two layers of one model never share
a folder) holds ``config.json`` and one ``<key>.npy`` per audio file (a speech encoder's frames, keyed by the file's
absolute path, size and modification time, so an edited file is re-embedded) or per transcript
(a text encoder's vector, keyed by the text's SHA-256). Entries are stored as float16 (half the disk, and
|error| < 4e-3 against values of order 1) and a freshly computed entry is rounded the same way, so a
cache hit and a miss give identical inputs. Entries are written atomically (complete or absent).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
from tqdm import tqdm

from emofusion.errors import AudioError, ConfigError
from emofusion.features.cache import default_cache_root
from emofusion.features.encoders.registry import EncoderSpec, encoder, load_encoder
from emofusion.fileio import save_npy_atomic, write_bytes_atomic

# Bump when an encoder's output for the same input changes (model, mel settings, pooling).
CACHE_FORMAT = 1


def as_stored(value: np.ndarray) -> np.ndarray:
    """``value`` rounded as a cache entry stores it (float16), back in float32."""
    return np.asarray(value, dtype=np.float16).astype(np.float32)


class _EntryStore:
    """``<root>/<name>-<hash of the settings>/<key>.npy`` with validated loads and atomic writes."""

    def __init__(self, name: str, settings: dict, dim: int, ndim: int, root: str | Path | None) -> None:
        key = {"format": CACHE_FORMAT, "encoder": name, **settings}
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        self.directory = Path(root or default_cache_root()) / f"{name}-{digest}"
        self.directory.mkdir(parents=True, exist_ok=True)
        config_file = self.directory / "config.json"
        if not config_file.exists():
            write_bytes_atomic(config_file, json.dumps(key, indent=2, sort_keys=True).encode())
        self.dim, self.ndim = dim, ndim

    def load(self, key: str) -> np.ndarray | None:
        path = self.directory / f"{key}.npy"
        if not path.exists():
            return None
        try:
            value = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError):
            return None  # unreadable (e.g. a disk filled mid-write elsewhere): recompute it
        if value.ndim != self.ndim or value.shape[-1] != self.dim or not np.isfinite(value).all():
            return None
        return value.astype(np.float32)

    def store(self, key: str, value: np.ndarray) -> np.ndarray:
        stored = np.asarray(value, dtype=np.float16)
        save_npy_atomic(self.directory / f"{key}.npy", stored)
        return stored.astype(np.float32)


def _file_key(path: str | Path) -> str:
    resolved = Path(path).resolve()
    stat = resolved.stat()
    return hashlib.sha256(f"{resolved}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()).hexdigest()[:32]


def _text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


class FrameCache:
    """A speech encoder's frames per audio file, computed once (the encoder loads only on a miss).

    Arguments:
        spec: the encoder's registry entry; its name, layer and settings key the cache folder.
        root: the folder that holds every feature cache (default: the project's cache root).
        encoder_factory: returns the encoder (default: the entry's, through ``load_encoder``).
    """

    def __init__(self, spec: EncoderSpec, root: str | Path | None = None, *, encoder_factory: Callable | None = None) -> None:
        if spec.modality != "speech":
            raise ConfigError(f"encoder {spec.key} gives {spec.modality} vectors, not frames")
        self.spec = spec
        self._store = _EntryStore(spec.name, spec.cache_settings(), spec.dim, 2, root)
        self.directory = self._store.directory
        self._factory = encoder_factory or (lambda: load_encoder(spec))

    def get_many(self, audio_files: Iterable[str | Path], *, progress: bool = True) -> dict[str, np.ndarray]:
        """Frames for every file (keys are the paths as given).

        Raises:
            AudioError: listing every file that could not be decoded or embedded (the others are cached).
        """
        from emofusion.audio import load_audio

        files = list(dict.fromkeys(str(a) for a in audio_files))
        for f in files:
            if not Path(f).is_file():
                raise AudioError(f"{f}: no such audio file")
        out: dict[str, np.ndarray] = {}
        missing = []
        for f in files:
            cached = self._store.load(_file_key(f))
            if cached is None:
                missing.append(f)
            else:
                out[f] = cached
        failures = []
        if missing:
            encoder = self._factory()
            for f in tqdm(missing, desc=f"{self.spec.key} frames", unit="file", disable=not progress):
                try:
                    audio = load_audio(f, target_rate=self.spec.sample_rate)
                    out[f] = self._store.store(_file_key(f), _checked(self.spec, encoder.frames(audio.samples), 2))
                except AudioError as exc:
                    failures.append(str(exc))
        if failures:
            shown = "\n  ".join(failures[:20])
            raise AudioError(f"{len(failures)} of {len(files)} audio files failed:\n  {shown}")
        return {f: out[f] for f in files}


class VectorCache:
    """A text encoder's vectors per transcript, computed once (the encoder loads only on a miss).

    Arguments are those of :class:`FrameCache`, for a text encoder's entry.
    """

    def __init__(self, spec: EncoderSpec, root: str | Path | None = None, *, encoder_factory: Callable | None = None) -> None:
        if spec.modality != "text":
            raise ConfigError(f"encoder {spec.key} gives {spec.modality} frames, not text vectors")
        self.spec = spec
        self._store = _EntryStore(spec.name, spec.cache_settings(), spec.dim, 1, root)
        self.directory = self._store.directory
        self._factory = encoder_factory or (lambda: load_encoder(spec))

    def get_many(self, texts: Iterable[str], *, progress: bool = True) -> np.ndarray:
        """(n, dim) float32 vectors, one per text in order (repeats share one entry)."""
        texts = list(texts)
        unique = list(dict.fromkeys(texts))
        found: dict[str, np.ndarray] = {}
        missing = []
        for t in unique:
            cached = self._store.load(_text_key(t))
            if cached is None:
                missing.append(t)
            else:
                found[t] = cached
        if missing:
            encoder = self._factory()
            step = 1024  # entries are written per step: a killed run keeps what was done
            for start in tqdm(range(0, len(missing), step), desc=f"{self.spec.key} vectors", unit="batch", disable=not progress):
                chunk = missing[start : start + step]
                for t, v in zip(chunk, _checked(self.spec, encoder.embed(chunk), 2)):
                    found[t] = self._store.store(_text_key(t), v)
        if not texts:
            return np.zeros((0, self._store.dim), dtype=np.float32)
        return np.stack([found[t] for t in texts])


def encoder_cache(spec: EncoderSpec, root: str | Path | None = None, **kwargs) -> FrameCache | VectorCache:
    """The cache of ``spec``'s outputs: frames for a speech encoder, vectors for a text encoder."""
    return (FrameCache if spec.modality == "speech" else VectorCache)(spec, root, **kwargs)


def _checked(spec: EncoderSpec, value, ndim: int) -> np.ndarray:
    """An encoder's output, refused (not cached) when it is not (n, spec.dim) finite numbers."""
    array = np.asarray(value, dtype=np.float32)
    if array.ndim != ndim or array.shape[-1] != spec.dim or not np.isfinite(array).all():
        raise ConfigError(
            f"encoder {spec.key} ({spec.label}) gave an output of shape {array.shape}"
            f"{'' if np.isfinite(array).all() else ' with non-finite values'}; its entry says (n, {spec.dim})"
        )
    return array


class WhisperFrameCache(FrameCache):
    """Whisper tiny.en frames (entry ``wt``): ``FrameCache(ENCODERS["wt"], ...)``."""

    def __init__(self, root: str | Path | None = None, *, encoder_factory: Callable | None = None) -> None:
        super().__init__(encoder("wt"), root, encoder_factory=encoder_factory)


class SentenceVectorCache(VectorCache):
    """MiniLM sentence vectors (entry ``st``): ``VectorCache(ENCODERS["st"], ...)``."""

    def __init__(self, root: str | Path | None = None, *, encoder_factory: Callable | None = None) -> None:
        super().__init__(encoder("st"), root, encoder_factory=encoder_factory)
