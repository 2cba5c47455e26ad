"""emofusion: emotion recognition from speech and its transcript.

Pipeline stages, one sub-package each, data flowing one way:
corpora (utterance records) -> features (acoustic + text tensors, cached) -> models ->
training -> evaluation (metrics, reports) -> inference (Python API) -> service / cli (thin shells).
"""

__version__ = "0.1.0"
