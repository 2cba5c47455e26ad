"""emofusion: emotion recognition from speech and its transcript.

Pipeline stages, one sub-package each, data flowing one way:
corpora (utterance records) -> features (acoustic + text tensors, cached, batched) -> models ->
inference (Python API) -> training, evaluation (protocols, metrics, reports) -> experiments ->
service / cli (thin shells). Lower layers never import higher ones: docs/architecture.md.
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    # Lazy, so `import emofusion` (and the CLI's start-up) does not import torch until needed.
    if name in {"EmotionRecognizer", "Prediction"}:
        from emofusion import inference

        return getattr(inference, name)
    raise AttributeError(f"module 'emofusion' has no attribute {name!r}")
