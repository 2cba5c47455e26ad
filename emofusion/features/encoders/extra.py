"""Check that the ``encoders`` extra is installed, naming the install command when it is not.

Which packages each encoder needs is its entry's ``packages`` (:mod:`.registry`, their one home);
the names below are those of the two encoders the shipped default reads (Whisper tiny.en ``wt``,
MiniLM ``st``), kept for the callers that ask about the default.
"""

from __future__ import annotations

import importlib.util

from emofusion.errors import MissingExtraError
from emofusion.features.encoders.registry import ENCODERS

EXTRA = "encoders"
# import name -> PyPI distribution, for the error message.
SENTENCE_PACKAGES = dict(ENCODERS["st"].packages)
WHISPER_PACKAGES = dict(ENCODERS["wt"].packages)


def missing_packages(packages: dict[str, str]) -> list[str]:
    """Distributions among ``packages`` that cannot be imported (found without importing them)."""
    return [dist for module, dist in packages.items() if importlib.util.find_spec(module) is None]


def require(packages: dict[str, str], what: str) -> None:
    """Raise MissingExtraError naming ``pip install "emofusion[encoders]"`` if any package is absent."""
    missing = missing_packages(packages)
    if missing:
        raise MissingExtraError(EXTRA, what, ", ".join(missing))


def available() -> bool:
    """True when both encoders of the shipped default (Whisper tiny.en, MiniLM) can be loaded."""
    return not missing_packages({**SENTENCE_PACKAGES, **WHISPER_PACKAGES})
