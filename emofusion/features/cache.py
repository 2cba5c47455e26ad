"""On-disk cache of acoustic frames: a corpus is featurised once per feature configuration.

Layout: ``<root>/acoustic-<config hash>/`` holds ``config.json`` and one ``<key>.npy`` per audio
file with *all* its frames (float32, shape (frames, 34)); truncation to ``max_frames`` happens at
batch time, so changing the length policy never re-extracts. The key hashes the file's absolute
path, size and modification time, so an edited file is re-extracted. Entries are written to a
temporary name and renamed into place: a run killed mid-way leaves complete entries or none, and
the next run resumes with what is missing.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Iterable

import numpy as np
from tqdm import tqdm

from emofusion.errors import AudioError
from emofusion.fileio import save_npy_atomic, write_bytes_atomic
from emofusion.features.acoustic import AcousticConfig, extract_file

# Bump when the extraction code changes results, so stale caches are not reused.
CACHE_FORMAT = 2  # 2: features of int16-scale audio as the package's reader returns it (issue 7.2)


def default_cache_root() -> Path:
    """``$EMOFUSION_CACHE`` or ``$XDG_CACHE_HOME/emofusion`` (``~/.cache/emofusion``)."""
    if os.environ.get("EMOFUSION_CACHE"):
        return Path(os.environ["EMOFUSION_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "emofusion"


def _extraction_key(config: AcousticConfig) -> dict:
    # Only what changes the frames themselves; max_frames / length_policy act later.
    d = config.to_dict()
    d.pop("max_frames", None)
    d.pop("length_policy", None)
    return {"format": CACHE_FORMAT, **d}


def _extract_one(job: tuple[str, dict]) -> tuple[str, np.ndarray | None, str | None]:
    path, config_dict = job
    try:
        frames = extract_file(path, AcousticConfig.from_dict(config_dict))
        return path, frames.astype(np.float32), None
    except AudioError as exc:
        return path, None, str(exc)


class FeatureCache:
    """Acoustic frames for audio files, computed once and kept under ``root``."""

    def __init__(self, config: AcousticConfig, root: str | Path | None = None):
        self.config = config
        key = _extraction_key(config)
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        self.directory = Path(root or default_cache_root()) / f"acoustic-{digest}"
        self.directory.mkdir(parents=True, exist_ok=True)
        config_file = self.directory / "config.json"
        if not config_file.exists():
            write_bytes_atomic(config_file, json.dumps(key, indent=2, sort_keys=True).encode())

    def entry_path(self, audio: str | Path) -> Path:
        path = Path(audio).resolve()
        stat = path.stat()
        ident = f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}"
        return self.directory / (hashlib.sha256(ident.encode()).hexdigest()[:32] + ".npy")

    def get(self, audio: str | Path) -> np.ndarray:
        """Frames of one file, extracting and storing them on a miss."""
        return self.get_many([audio], progress=False)[str(audio)]

    def get_many(
        self, audio_files: Iterable[str | Path], *, workers: int | None = None, progress: bool = True
    ) -> dict[str, np.ndarray]:
        """Frames for every file (keys are the paths as given), extracting misses in parallel.

        Raises:
            AudioError: listing every file that could not be featurised (the others are cached).
        """
        files = list(dict.fromkeys(str(a) for a in audio_files))
        for f in files:
            if not Path(f).is_file():
                raise AudioError(f"{f}: no such audio file")
        result: dict[str, np.ndarray] = {}
        missing: list[str] = []
        for f in files:
            cached = self._load_entry(self.entry_path(f))
            if cached is None:
                missing.append(f)
            else:
                result[f] = cached
        if missing:
            result.update(self._extract(missing, workers=workers, progress=progress))
        return {f: result[f] for f in files}

    def _load_entry(self, entry: Path) -> np.ndarray | None:
        if not entry.exists():
            return None
        try:
            frames = np.load(entry, allow_pickle=False)
        except (ValueError, OSError, EOFError):
            return None  # unreadable entry (e.g. disk full mid-copy): recompute it
        if frames.ndim != 2 or frames.shape[1] != 34:
            return None
        return frames

    def _extract(self, files: list[str], *, workers: int | None, progress: bool) -> dict[str, np.ndarray]:
        workers = workers or min(len(files), os.cpu_count() or 1)
        config_dict = self.config.to_dict()
        jobs = [(f, config_dict) for f in files]
        out: dict[str, np.ndarray] = {}
        failures: list[str] = []
        bar = tqdm(total=len(files), desc="features", unit="file", disable=not progress)
        if workers <= 1 or len(files) < 8:
            results = map(_extract_one, jobs)
            executor = None
        else:
            executor = ProcessPoolExecutor(max_workers=workers)
            results = executor.map(_extract_one, jobs, chunksize=8)
        try:
            for path, frames, error in results:
                if frames is None:
                    failures.append(error)
                else:
                    save_npy_atomic(self.entry_path(path), frames)
                    out[path] = frames
                bar.update(1)
        finally:
            bar.close()
            if executor is not None:
                executor.shutdown(cancel_futures=True)
        if failures:
            shown = "\n  ".join(failures[:20])
            more = f"\n  ... and {len(failures) - 20} more" if len(failures) > 20 else ""
            raise AudioError(f"{len(failures)} of {len(files)} audio files failed:\n  {shown}{more}")
        return out
