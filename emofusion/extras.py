"""Optional dependencies: import them on first use, or say exactly which extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from emofusion.errors import MissingExtraError

__all__ = ["MissingExtraError", "require"]


def require(module: str, extra: str, what: str) -> ModuleType:
    """Import ``module`` or raise MissingExtraError naming the install command for ``extra``.

    Example: ``ort = require("onnxruntime", "onnx", "the ONNX Runtime backend")``.
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(extra, what, module.split(".")[0]) from None
