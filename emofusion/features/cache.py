"""On-disk cache of acoustic frames: a corpus is featurised once per feature configuration.

Layout: ``<root>/acoustic-<config hash>/`` holds ``config.json`` and one ``<key>.npy`` per audio
file with *all* its frames (float32, shape (frames, 34)); truncation to ``max_frames`` happens at
batch time, so changing the length policy never re-extracts. The key hashes the file's absolute
path, size and modification time, so an edited file is re-extracted. Entries are written to a
temporary name and renamed into place: a run killed mid-way leaves complete entries or none, and
the next run resumes with what is missing.

An entry is trusted only if it looks like what extraction writes: float32 (frames, 34), every value
finite and within the features' range, and as many frames as the audio file's length gives. One
NaN, or one 1e30 (which swamps the standardisation statistics), would otherwise train a model that
answers one class for everything. Bad entries, and anything else found at an entry's path, are
recomputed; a cache that cannot be written costs speed, never the run.

Extraction workers die with the process that started them (SIGKILL included), so an interrupted
`emofusion train` leaves nothing running.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import json
import os
import shutil
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Iterable

import numpy as np
import soundfile as sf
from tqdm import tqdm

from emofusion.errors import AudioError
from emofusion.fileio import default_cache_root, save_npy_atomic, write_bytes_atomic  # noqa: F401 (re-exported)
from emofusion.features.acoustic import N_FEATURES, AcousticConfig, extract_file

# Bump when the extraction code changes results, so stale caches are not reused.
CACHE_FORMAT = 2  # 2: features of int16-scale audio as the package's reader returns it (issue 7.2)

# Largest |value| a real feature can take, with a 10x margin. Every feature is a ratio in [0, 1],
# an entropy (at most log2(10) = 3.3), a spectral flux (at most 2), or an MFCC: an orthonormal DCT
# of 40 log10 filterbank energies that are at least log10(eps) = -15.65, so |MFCC| <= sqrt(40) * 15.65
# = 99 (RAVDESS's extreme, MFCC 1 = -99.0, is a silent frame).
MAX_ABS_FEATURE = 1e3
# Frames the cached count may differ from the count the audio's header implies: resampling rounds
# the signal's length by a sample or two, which can move it across one frame boundary.
FRAME_COUNT_SLACK = 1
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _extraction_key(config: AcousticConfig) -> dict:
    # Only what changes the frames themselves; max_frames / length_policy act later.
    d = config.to_dict()
    d.pop("max_frames", None)
    d.pop("length_policy", None)
    return {"format": CACHE_FORMAT, **d}


def _extract_one(job: tuple[str, dict]) -> tuple[str, np.ndarray | None, str | None]:
    path, config_dict = job
    try:
        frames = extract_file(path, AcousticConfig.from_dict(config_dict)).astype(np.float32)
    except AudioError as exc:
        return path, None, str(exc)
    problem = entry_problem(frames)
    if problem:
        return path, None, f"{path}: its features are unusable ({problem})"
    return path, frames, None


def entry_problem(frames: np.ndarray, expected_frames: int | None = None) -> str | None:
    """Why ``frames`` is not a valid cache entry (None if it is)."""
    if frames.dtype != np.float32 or frames.ndim != 2 or frames.shape[1] != N_FEATURES:
        return f"expected float32 (frames, {N_FEATURES}), got {frames.dtype} {frames.shape}"
    if len(frames) == 0:
        return "no frames"
    if expected_frames is not None and abs(len(frames) - expected_frames) > FRAME_COUNT_SLACK:
        return f"{len(frames)} frames where the audio has {expected_frames}"
    if not np.isfinite(frames).all():
        return "NaN or infinite values"
    if np.abs(frames).max() > MAX_ABS_FEATURE:
        return f"values beyond +-{MAX_ABS_FEATURE:g}"
    return None


def expected_frames(audio: str | Path, config: AcousticConfig) -> int | None:
    """Frames that extraction gives for ``audio``, from its header alone (None if unreadable)."""
    try:
        info = sf.info(str(audio))
    except (RuntimeError, ValueError, TypeError, OSError):  # libsndfile errors subclass RuntimeError
        return None
    if info.samplerate <= 0:
        return None
    samples = int(info.frames * config.sample_rate / info.samplerate)
    return (samples - config.window_samples) // config.step_samples + 1


def _die_with_parent(parent_pid: int) -> None:
    """Worker initializer: end this worker when the process that started the pool dies.

    Without it a SIGKILLed (or SIGTERMed) `train` leaves its workers running their chunks for
    minutes. Linux delivers SIGKILL on the parent's death (prctl PR_SET_PDEATHSIG); elsewhere a
    thread notices the worker being re-parented.
    """
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
                if not _alive(parent_pid):  # it died before the request took effect
                    os._exit(1)
                return
        except (OSError, AttributeError):
            pass
    threading.Thread(target=_exit_when_orphaned, args=(os.getppid(),), daemon=True).start()


def _exit_when_orphaned(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
            cached = self._load_entry(f)
            if cached is None:
                missing.append(f)
            else:
                result[f] = cached
        if missing:
            result.update(self._extract(missing, workers=workers, progress=progress))
        return {f: result[f] for f in files}

    def _load_entry(self, audio: str) -> np.ndarray | None:
        """The cached frames of ``audio`` if present and valid; a bad entry is removed, to recompute."""
        entry = self.entry_path(audio)
        if not entry.exists() and not entry.is_symlink():
            return None
        frames = None
        if entry.is_file():
            try:
                frames = np.load(entry, allow_pickle=False)
            except (ValueError, OSError, EOFError):
                frames = None  # unreadable (e.g. disk full mid-copy)
        if isinstance(frames, np.ndarray) and entry_problem(frames, expected_frames(audio, self.config)) is None:
            return frames
        _discard(entry)
        return None

    def _store(self, audio: str, frames: np.ndarray) -> None:
        entry = self.entry_path(audio)
        try:
            save_npy_atomic(entry, frames)
        except OSError as exc:
            # The cache only saves time: a full disk or a read-only folder must not fail the run.
            print(f"emofusion: could not cache features of {audio} in {entry} ({exc})", file=sys.stderr)

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
            executor = ProcessPoolExecutor(max_workers=workers, initializer=_die_with_parent, initargs=(os.getpid(),))
            results = executor.map(_extract_one, jobs, chunksize=8)
        try:
            for path, frames, error in results:
                if frames is None:
                    failures.append(error)
                else:
                    self._store(path, frames)
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


def _discard(entry: Path) -> None:
    """Remove whatever occupies an entry's path (a bad file, a folder, a link), so it can be rewritten."""
    try:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink(missing_ok=True)
    except OSError:
        pass  # then storing fails too, and says so; the frames are still used
