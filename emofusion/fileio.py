"""Atomic file writes: a reader (or a resumed run) sees the old file or the new one, never half.

Everything is written to a temporary file in the destination folder and renamed into place;
``os.replace`` is atomic on POSIX and Windows within one file system.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Callable, Iterator

import numpy as np


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[str]:
    """Yield a temporary path beside ``path``; on success it is renamed to ``path``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield tmp
        # mkstemp creates 0600; give the file the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def default_cache_root() -> Path:
    """``$EMOFUSION_CACHE`` or ``$XDG_CACHE_HOME/emofusion`` (``~/.cache/emofusion``): every cache's parent."""
    if os.environ.get("EMOFUSION_CACHE"):
        return Path(os.environ["EMOFUSION_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "emofusion"


# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection): an id like
# =HYPERLINK("http://…") in a predictions file would become a live link or worse when opened.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(cell: str) -> str:
    """``cell`` prefixed with ``'`` if a spreadsheet would run it as a formula (OWASP's advice)."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def write_atomic(path: str | Path, write: Callable[[IO], None], mode: str = "wb", **open_kwargs) -> None:
    with atomic_path(path) as tmp, open(tmp, mode, **open_kwargs) as f:
        write(f)


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    write_atomic(path, lambda f: f.write(data))


def save_npy_atomic(path: str | Path, array: np.ndarray) -> None:
    write_atomic(path, lambda f: np.save(f, array, allow_pickle=False))


def write_json_atomic(path: str | Path, obj) -> None:
    """JSON with NaN/inf written as null (strict JSON readers reject NaN)."""
    clean = _strict(obj)
    write_atomic(
        path,
        lambda f: json.dump(clean, f, indent=2, ensure_ascii=False, default=_json_default, allow_nan=False),
        mode="w",
        encoding="utf-8",
    )


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value)}")


def _strict(value):
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    return value
