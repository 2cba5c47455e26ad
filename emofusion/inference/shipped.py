"""The models that ship in the package, by the names `--model` and `EmotionRecognizer.load` accept.

All come from recipes/shipped/build.py (figures in each model.json and the README). All four
are trained on RAVDESS + TESS speech (+ MELD train text for the fusion models), balanced over
corpora and classes, with their calibration fitted on held-out RAVDESS actors; the encoder models
with waveform augmentation (chosen on leave-one-corpus-out validation; the paper's models without
it, for the same reason). Two names stand for the best model that can run here:

- ``"fusion"`` (the default): ``"fusion-encoders"`` when the ``encoders`` extra is installed, else
  ``"fusion-paper"``, said once per process;
- ``"speech"``: ``"speech-encoders"`` with the extra, else ``"speech-paper"`` (said once too).

The models by name:

- ``"fusion-encoders"``: M-WTV-ST, Whisper tiny.en block 2, per-frame normalisation, pooled over the
  voiced frames only (chosen by validation, docs/results/encoders/voiced.md) + all-MiniLM-L6-v2 text,
  the paper's fusion DNN on both; the best by held-out figures (needs
  ``pip install "emofusion[encoders]"``, whose encoders are not shipped here);
- ``"speech-encoders"``: S-WTV, the same speech branch alone (no transcript needed; same extra);
- ``"fusion-paper"``: M-CBLA-BLR, the paper's best fusion model (Table 1); what runs without the
  extra, and what the ONNX backends run by default, since ONNX export covers the Table-1 models only;
- ``"speech-paper"``: S-CBLA, the paper's best speech model. ``SHIPPED_MODELS["speech"]`` is this
  folder too: the speech model every install can run.
"""

from __future__ import annotations

import logging
from pathlib import Path

from emofusion.features.encoders import extra

SHIPPED_DIR = Path(__file__).resolve().parents[1] / "shipped"
# The encoder models' names (their folders are the lower-cased names).
FUSION_ENCODER_MODEL = "M-WTV-ST"
SPEECH_ENCODER_MODEL = "S-WTV"
_SPEECH_PAPER = SHIPPED_DIR / "s-cbla"
SHIPPED_MODELS = {
    "fusion-encoders": SHIPPED_DIR / FUSION_ENCODER_MODEL.lower(),
    "fusion-paper": SHIPPED_DIR / "m-cbla-blr",
    "speech-encoders": SHIPPED_DIR / SPEECH_ENCODER_MODEL.lower(),
    "speech-paper": _SPEECH_PAPER,
    "speech": _SPEECH_PAPER,  # the folder; the *name* "speech" resolves as `default_speech` says
}
DEFAULT = "fusion"
SPEECH = "speech"
SHIPPED_NAMES = (DEFAULT, *SHIPPED_MODELS)
# The paper's fusion model: the default without the extra, and ONNX export's default.
PAPER_FUSION_MODEL = SHIPPED_MODELS["fusion-paper"]
# name -> (with the extra, without it, the encoder model's name)
_CHOICES = {
    DEFAULT: ("fusion-encoders", "fusion-paper", FUSION_ENCODER_MODEL, "M-CBLA-BLR"),
    SPEECH: ("speech-encoders", "speech-paper", SPEECH_ENCODER_MODEL, "S-CBLA"),
}

log = logging.getLogger("emofusion.inference")
_said: set[str] = set()  # fallback reasons already logged by this process


def _packages(model_name: str) -> dict[str, str]:
    """The packages of every frozen encoder ``model_name`` reads (their registry entries)."""
    from emofusion.features.encoders.registry import ENCODERS
    from emofusion.models import MODEL_SPECS

    spec = MODEL_SPECS[model_name]
    return {m: d for key in (spec.speech, spec.text) if key in ENCODERS for m, d in ENCODERS[key].packages.items()}


def _encoders_runnable(model_name: str) -> bool:
    """Whether the extra provides every encoder ``model_name`` reads."""
    return extra.available() and not extra.missing_packages(_packages(model_name))


def _resolve(name: str, onnx: bool) -> str:
    with_extra, without, encoder_model, paper_model = _CHOICES[name]
    if onnx:
        if _encoders_runnable(encoder_model):  # said only where it changes the answer
            _say_once(f"onnx-{name}", f"the ONNX backends run the paper's models only: using the shipped {paper_model} "
                                      f"(the default {encoder_model} reads pretrained-encoder features)")
        return without
    if _encoders_runnable(encoder_model):
        return with_extra
    _say_once(f"extra-{name}", f'the encoders extra is not installed: using the shipped {paper_model}; '
                               f'pip install "emofusion[encoders]" for the default {encoder_model}')
    return without


def default_fusion(*, onnx: bool = False) -> str:
    """The shipped name ``"fusion"`` stands for: the encoder model when it can run, else the paper's.

    Arguments:
        onnx: the model will run in onnxruntime, which runs the Table-1 models only.

    Returns:
        ``"fusion-encoders"`` or ``"fusion-paper"``.
    """
    return _resolve(DEFAULT, onnx)


def default_speech(*, onnx: bool = False) -> str:
    """The shipped name ``"speech"`` stands for: ``"speech-encoders"`` when it can run, else
    ``"speech-paper"`` (arguments as `default_fusion`)."""
    return _resolve(SPEECH, onnx)


def shipped_model_path(model: str | Path | None, *, onnx: bool = False) -> Path:
    """The folder of a shipped model name (None is ``"fusion"``), or ``model`` itself as a path.

    Arguments:
        model: a name of `SHIPPED_NAMES`, None, or a folder.
        onnx: resolve ``"fusion"`` and ``"speech"`` for the ONNX backends (the paper's models).

    Returns:
        The model's folder.

    Raises:
        MissingExtraError: an encoder model named outright without the ``encoders`` extra.
    """
    if model is None:
        model = DEFAULT
    if isinstance(model, str) and model in _CHOICES:
        model = _resolve(model, onnx)
    if isinstance(model, str) and model in SHIPPED_MODELS:
        for with_extra, _, encoder_model, _ in _CHOICES.values():
            if model == with_extra:
                extra.require(_packages(encoder_model), f"the shipped {encoder_model}")
        return SHIPPED_MODELS[model]
    return Path(model)


def _say_once(reason: str, message: str) -> None:
    if reason not in _said:
        _said.add(reason)
        log.warning(message)
