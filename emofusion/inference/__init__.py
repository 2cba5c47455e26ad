"""Prediction for practitioners: `EmotionRecognizer` loads a model and predicts from audio + text."""

__all__ = ["EmotionRecognizer", "Prediction"]


def __getattr__(name: str):
    # Lazy, so light modules here (limits) can be imported without torch.
    if name in __all__:
        from emofusion.inference import recognizer

        return getattr(recognizer, name)
    raise AttributeError(f"module 'emofusion.inference' has no attribute {name!r}")
