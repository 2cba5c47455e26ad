"""The package's layers import downwards only (docs/architecture.md draws them).

Every `emofusion` import in every module counts, including imports inside functions: a lazy import
is still a dependency. `ALLOWED` below is the rule; a new sub-package must be placed in it.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "emofusion"

# Top-level modules every layer may use: records, errors and small helpers with no upward reach.
BASE_MODULES = {"errors", "records", "labels", "fileio", "runtime", "precision", "audio", "audio_stream", "extras", "bundled_whisper"}
_BELOW_TRAINING = {"base", "corpora", "features", "models", "artifacts", "export", "inference", "asr"}
# layer -> the other layers it may import (every layer may import itself).
ALLOWED: dict[str, set[str]] = {
    "base": set(),
    "corpora": {"base"},
    "features": {"base"},
    "models": {"base"},
    "asr": {"base"},
    "artifacts": {"base", "corpora", "features", "models"},
    "export": {"base", "features", "models", "artifacts"},  # a trained model -> ONNX
    "inference": {"base", "corpora", "features", "models", "artifacts", "export", "asr"},
    "evaluation": {"base", "corpora", "models"},
    "training": _BELOW_TRAINING,
    "experiments": _BELOW_TRAINING | {"training", "evaluation"},
    "service": _BELOW_TRAINING,
    "cli": _BELOW_TRAINING | {"training", "evaluation", "experiments", "service"},
    "__main__": {"cli"},  # python -m emofusion
}


def layer_of(module: str) -> str:
    """'emofusion.inference.recognizer' -> 'inference'; top-level helper modules -> 'base'."""
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in BASE_MODULES:
        return "base"  # `from emofusion import __version__` reads the root's version string only
    return parts[1]


def emofusion_imports(source: str, module: str) -> list[str]:
    """Absolute names of the emofusion modules ``source`` (the text of ``module``) imports, anywhere."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the importing module's package
                base = module.split(".")[: -node.level]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.append(name)
        elif isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
    return [name for name in found if name == "emofusion" or name.startswith("emofusion.")]


def violations(source: str, module: str) -> list[str]:
    importer = layer_of(module)
    if importer not in ALLOWED:
        return [f"{module}: layer {importer!r} is not in ALLOWED (tests/test_layers.py); place it there"]
    bad = []
    for target in emofusion_imports(source, module):
        imported = layer_of(target)
        if imported != importer and imported not in ALLOWED[importer]:
            bad.append(f"{module} imports {target} ({importer} may not import {imported})")
    return bad


def package_modules() -> list[tuple[str, Path]]:
    modules = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if len(parts) > 1:  # the root __init__ only re-exports the public API, lazily
            modules.append((".".join(parts), path))
    return modules


def test_no_module_imports_a_layer_above_its_own():
    problems = [v for module, path in package_modules() for v in violations(path.read_text(encoding="utf-8"), module)]
    assert problems == []


def test_the_check_sees_imports_inside_functions_and_relative_ones():
    # The checker itself must be able to fail, or the test above proves nothing.
    lazy = "def f():\n    from emofusion.training.trainer import train\n"
    assert violations(lazy, "emofusion.inference.recognizer") == [
        "emofusion.inference.recognizer imports emofusion.training.trainer (inference may not import training)"
    ]
    relative = "from ..service import app\n"
    assert violations(relative, "emofusion.models.speech") == [
        "emofusion.models.speech imports emofusion.service (models may not import service)"
    ]
    assert violations("import emofusion.training.config\n", "emofusion.features.cache") != []
    assert violations("from emofusion.inference.predict import pick_device\n", "emofusion.training.trainer") == []
    assert "emofusion.inference.predict" in emofusion_imports(
        (PACKAGE / "training" / "trainer.py").read_text(encoding="utf-8"), "emofusion.training.trainer"
    )


@pytest.mark.parametrize("module", ["emofusion.inference.recognizer", "emofusion.inference.batch", "emofusion.inference.predict"])
def test_importing_inference_loads_no_training_or_service_module(module):
    code = (
        f"import sys, {module}\n"
        "print(sorted(m for m in sys.modules if m.startswith(('emofusion.training', 'emofusion.service'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_running_experiments_loads_no_plotting():
    code = "import sys, emofusion.experiments.runner\nprint('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize("module", ["emofusion.inference.timeline", "emofusion.inference.diarization", "emofusion.inference.timeline_batch"])
def test_the_recognizer_knows_nothing_of_timelines(module):
    # The timeline is a client of the recognizer (issue 18): the dependency runs one way only.
    source = (PACKAGE / "inference" / "recognizer.py").read_text(encoding="utf-8")
    assert module not in emofusion_imports(source, "emofusion.inference.recognizer")
    assert module.rsplit(".", 1)[1] not in {
        alias.name for node in ast.walk(ast.parse(source)) if isinstance(node, ast.ImportFrom) and node.level
        for alias in node.names
    }
    code = f"import sys, emofusion.inference.recognizer\nprint({module!r} in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
