"""emofusion: emotion recognition from speech and its transcript.

Pipeline stages, one sub-package each, data flowing one way:
corpora (utterance records) -> features (acoustic + text tensors, cached) -> models ->
training -> evaluation (metrics, reports) -> inference (Python API) -> service / cli (thin shells).
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    # Lazy, so `import emofusion` (and the CLI's start-up) does not import torch until needed.
    if name in {"EmotionRecognizer", "Prediction"}:
        from emofusion import inference

        return getattr(inference, name)
    raise AttributeError(f"module 'emofusion' has no attribute {name!r}")
