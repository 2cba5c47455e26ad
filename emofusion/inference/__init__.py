"""Prediction for practitioners: `EmotionRecognizer` loads a model and predicts from audio + text."""

from emofusion.inference.recognizer import EmotionRecognizer, Prediction

__all__ = ["EmotionRecognizer", "Prediction"]
