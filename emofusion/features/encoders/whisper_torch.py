"""Whisper's audio encoder in PyTorch, built from the CTranslate2 weights, any layer, on the real length.

CTranslate2 returns only the encoder's last layer, but the layer that carries emotion best is not
the last one (issue 16: linear probes on RAVDESS, leave one session out: tiny.en block 2 of 4 79.2 UA
against 76.4 for its last layer; base block 4 of 6 81.2; across corpora tiny.en block 2 transfers
far better than any last layer). So this module reads ``model.bin`` itself (:func:`read_model_bin`,
CTranslate2's binary format, version 6: float32/float16/bfloat16, and int8/int16 with their
``*_scale``), rebuilds the encoder in torch (two conv1d + GELU, sinusoidal positions, pre-LN
transformer blocks, final LayerNorm) and returns any block's frames from one forward pass.

Like :mod:`.whisper`, it feeds the log-mel spectrogram of the clip's real length (no padding to
30 s; positions truncated to it) with the same front end (faster-whisper's FeatureExtractor, 80 mel
bands for tiny.en and base), and cuts recordings over 30 s into 30-s pieces. Weights are upcast to
float32; the parity test (tests/encoders/test_whisper_torch.py) compares the last layer with
CTranslate2's float32 encode of the same mel.

Layers: ``layer=k`` (1..n_layers) is the output of transformer block ``k`` *without* the final
LayerNorm (the residual stream, what issue 16's probes measured); ``layer=0`` is the block input
(convolutions + positions); ``layer=None`` is the encoder's output, block ``n_layers`` followed by the
final LayerNorm, as CTranslate2 returns it.

Cost, measured side by side in one run (median of 20 calls after a warm-up, 1 thread,
float32, a 3.3-s RAVDESS clip, on the 2-core VM while it ran other jobs, load average ~10, so
absolute times are inflated ~8x against the idle machine where CTranslate2 takes ~18 ms): load
tiny.en 0.13 s, base 0.31 s (only the encoder's tensors are read); per clip CTranslate2 int8
tiny.en (what :mod:`.whisper` runs) 139-146 ms; here tiny.en all layers 219 ms, block 2 only 150 ms,
base all layers 423 ms, block 2 only 231 ms. ``frames(layer=k)`` stops after block k.

CTranslate2's int8 output is not this float32 one: its last layer differs by up to 2.6 (tiny.en,
outputs up to 10) and 12.6 (base, up to 18) on a RAVDESS clip, so features from the two are not
interchangeable; a model trained on one must be fed the same one.
"""

from __future__ import annotations

import math
import re
import struct
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from emofusion.bundled_whisper import whisper_model_folder
from emofusion.errors import AudioError, ConfigError
from emofusion.features.encoders.extra import WHISPER_PACKAGES, require
from emofusion.features.encoders.whisper import HOP, MAX_MEL_FRAMES, MIN_MEL_FRAMES, SAMPLE_RATE

# CTranslate2's DataType enum order (include/ctranslate2/types.h; specs/model_spec.py).
CT2_DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")
CT2_BINARY_VERSIONS = (6,)  # what CTranslate2 >= 3 writes (both shipped models); older layouts differ
LAYER_NORM_EPS = 1e-5  # Whisper's (torch.nn.LayerNorm default), as CTranslate2 applies it


def _read(f, fmt: str):
    size = struct.calcsize(fmt)
    data = f.read(size)
    if len(data) != size:
        raise ConfigError(f"{f.name}: truncated CTranslate2 model file")
    return struct.unpack(fmt, data)[0]


def _read_string(f) -> str:
    n = _read(f, "<H")
    raw = f.read(n)
    if len(raw) != n:
        raise ConfigError(f"{f.name}: truncated CTranslate2 model file")
    return raw[:-1].decode("utf-8")  # written with a trailing NUL


def _decode(raw: bytes, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    if dtype == "bfloat16":  # numpy has no bfloat16: its 16 bits are a float32's upper half
        return (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32).reshape(shape)
    return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape).copy()


def read_model_bin(path: str | Path, prefix: str = "") -> tuple[str, int, dict[str, np.ndarray]]:
    """Variables of a CTranslate2 ``model.bin``, as stored (dtype and shape), those under ``prefix`` only.

    Arguments:
        path: the ``model.bin`` file.
        prefix: keep only variables whose name starts with it (e.g. ``"encoder/"``); the others are
            skipped without being read.

    Returns:
        ``(spec name, spec revision, {name: array})``; bfloat16 arrays come back as float32.

    Raises:
        ConfigError: not a CTranslate2 model file of a known version, an unknown dtype, or truncated.
    """
    path = Path(path)
    variables: dict[str, np.ndarray] = {}
    with open(path, "rb") as f:
        version = _read(f, "<I")
        if version not in CT2_BINARY_VERSIONS:
            raise ConfigError(f"{path}: CTranslate2 binary version {version} is not supported "
                              f"(known: {', '.join(map(str, CT2_BINARY_VERSIONS))})")
        spec = _read_string(f)
        revision = _read(f, "<I")
        for _ in range(_read(f, "<I")):
            name = _read_string(f)
            shape = tuple(_read(f, "<I") for _ in range(_read(f, "<B")))
            type_id = _read(f, "<B")
            if type_id >= len(CT2_DTYPES):
                raise ConfigError(f"{path}: variable {name} has unknown CTranslate2 dtype id {type_id}")
            n_bytes = _read(f, "<I")
            if not name.startswith(prefix):
                f.seek(n_bytes, 1)
                continue
            raw = f.read(n_bytes)
            dtype = CT2_DTYPES[type_id]
            itemsize = 2 if dtype == "bfloat16" else np.dtype(dtype).itemsize
            if len(raw) != n_bytes or n_bytes != itemsize * math.prod(shape):
                raise ConfigError(f"{path}: variable {name} is truncated or its size does not match its shape {shape}")
            variables[name] = _decode(raw, dtype, shape)
    return spec, revision, variables


def dequantized(variables: dict[str, np.ndarray], name: str) -> np.ndarray:
    """``variables[name]`` as float32; int8/int16 weights divided by their ``<name>_scale``.

    CTranslate2 quantizes int8 per output row (scale = 127 / max|row|, conv weights flattened to rows)
    and int16 with one scale for the tensor; the stored integer is round(weight * scale).
    """
    value = variables[name]
    if value.dtype in (np.int8, np.int16) and f"{name}_scale" in variables:
        scale = variables[f"{name}_scale"].astype(np.float32)
        rows = value.reshape(value.shape[0], -1).astype(np.float32)
        scale = scale.reshape(-1, 1) if scale.ndim else scale
        return (rows / scale).reshape(value.shape)
    return value.astype(np.float32)


def _build(variables: dict[str, np.ndarray], device: str):
    """The torch encoder (an ``nn.Module``) from the ``encoder/`` variables of a Whisper ``model.bin``."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    def tensor(name: str) -> torch.Tensor:
        return torch.from_numpy(dequantized(variables, f"encoder/{name}")).to(device)

    class Block(nn.Module):
        def __init__(self, i: int, heads: int):
            super().__init__()
            p = f"layer_{i}/"
            self.heads = heads
            self.ln1 = (tensor(p + "self_attention/layer_norm/gamma"), tensor(p + "self_attention/layer_norm/beta"))
            # CTranslate2 fuses q, k, v into one projection (k's bias, absent in Whisper, stored as zeros).
            self.qkv = (tensor(p + "self_attention/linear_0/weight"), tensor(p + "self_attention/linear_0/bias"))
            self.out = (tensor(p + "self_attention/linear_1/weight"), tensor(p + "self_attention/linear_1/bias"))
            self.ln2 = (tensor(p + "ffn/layer_norm/gamma"), tensor(p + "ffn/layer_norm/beta"))
            self.fc1 = (tensor(p + "ffn/linear_0/weight"), tensor(p + "ffn/linear_0/bias"))
            self.fc2 = (tensor(p + "ffn/linear_1/weight"), tensor(p + "ffn/linear_1/bias"))

        def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, D)
            b, t, d = x.shape
            h = F.layer_norm(x, (d,), *self.ln1, eps=LAYER_NORM_EPS)
            q, k, v = F.linear(h, *self.qkv).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
            a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, t, d)
            x = x + F.linear(a, *self.out)
            h = F.layer_norm(x, (d,), *self.ln2, eps=LAYER_NORM_EPS)
            return x + F.linear(F.gelu(F.linear(h, *self.fc1)), *self.fc2)

    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = (tensor("conv1/weight"), tensor("conv1/bias"))
            self.conv2 = (tensor("conv2/weight"), tensor("conv2/bias"))
            self.positions = tensor("position_encodings/encodings")
            self.final_ln = (tensor("layer_norm/gamma"), tensor("layer_norm/beta"))
            heads = int(variables["encoder/num_heads"])
            n = len({k.split("/")[1] for k in variables if re.match(r"encoder/layer_\d+/", k)})
            self.blocks = [Block(i, heads) for i in range(n)]

        def forward(self, mel: torch.Tensor, upto: int | None = None) -> list[torch.Tensor]:
            """(B, n_mels, frames) -> [block input, block 1, ..., block ``upto``] each (B, frames/2, D)."""
            x = F.gelu(F.conv1d(mel, *self.conv1, padding=1))
            x = F.gelu(F.conv1d(x, *self.conv2, stride=2, padding=1)).transpose(1, 2)
            x = x + self.positions[: x.shape[1]]
            states = [x]
            for block in self.blocks[:upto]:
                x = block(x)
                states.append(x)
            return states

        def final(self, x: torch.Tensor) -> torch.Tensor:
            return F.layer_norm(x, (x.shape[-1],), *self.final_ln, eps=LAYER_NORM_EPS)

    return Encoder()


class TorchWhisperEncoder:
    """Frozen Whisper encoder (tiny.en or base) in PyTorch: any layer's frames, 20 ms apart. Thread-safe.

    Arguments:
        size: ``"tiny.en"`` or ``"base"`` (see :func:`emofusion.bundled_whisper.whisper_model_folder`).
        layers: the layers callers will ask for (validated here, so a bad model config fails at load);
            ``None`` allows any.
        threads: torch intra-op threads used while encoding (set around each call, then restored:
            torch's setting is per process). 1 by default because callers parallelise across clips.
        device: a torch device, e.g. ``"cpu"`` or ``"cuda"``.
    """

    def __init__(self, size: str = "tiny.en", layers: Sequence[int] | None = None, *, threads: int = 1,
                 device: str = "cpu") -> None:
        require(WHISPER_PACKAGES, "the Whisper speech encoder")
        import torch
        from faster_whisper.feature_extractor import FeatureExtractor

        self.size = size
        self.folder = whisper_model_folder(size, extra="encoders")
        spec, _, variables = read_model_bin(self.folder / "model.bin", prefix="encoder/")
        if spec != "WhisperSpec" or "encoder/conv1/weight" not in variables:
            raise ConfigError(f"{self.folder / 'model.bin'}: not a CTranslate2 Whisper model (spec {spec!r})")
        self._torch = torch
        self.device = torch.device(device)
        self.model = _build(variables, str(self.device))
        self.name = f"whisper-{size}"
        self.dim = int(variables["encoder/conv1/weight"].shape[0])
        self.n_layers = len(self.model.blocks)
        self.n_mels = int(variables["encoder/conv1/weight"].shape[1])
        self.max_positions = int(variables["encoder/position_encodings/encodings"].shape[0])
        for layer in layers or ():
            self._check_layer(layer)
        self.threads = threads
        self.mel = FeatureExtractor(feature_size=self.n_mels, sampling_rate=SAMPLE_RATE, hop_length=HOP)
        self._lock = threading.Lock()

    def _check_layer(self, layer: int | None) -> None:
        if layer is not None and not (isinstance(layer, (int, np.integer)) and 0 <= layer <= self.n_layers):
            raise ConfigError(f"{self.name} has layers 0..{self.n_layers} (0: block input; "
                              f"{self.n_layers}: last block); got {layer!r}")

    def log_mel(self, samples: np.ndarray) -> np.ndarray:
        """(n_mels, samples // 160) float32: Whisper's log-mel of the clip, exactly as :mod:`.whisper` feeds it."""
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        mel_frames = len(x) // HOP
        if mel_frames < MIN_MEL_FRAMES:
            raise AudioError(f"audio of {len(x)} samples is too short for Whisper (needs {MIN_MEL_FRAMES * HOP})")
        # padding=HOP: the STFT's last frame; log-mel normalisation (max - 8 dB floor) is per clip.
        return np.asarray(self.mel(x, padding=HOP)[:, :mel_frames], dtype=np.float32)

    def _encode(self, samples: np.ndarray, final: bool, upto: int | None = None, last_only: bool = False) -> np.ndarray:
        """(upto + 1 [+ 1 if final], T, dim): block input, blocks 1..upto (all), optionally the final LN.

        ``last_only`` keeps only the last of those per 30-s piece, so a long recording holds one layer.
        """
        torch = self._torch
        mel = self.log_mel(samples)
        pieces = []
        with self._lock:
            before = torch.get_num_threads()
            torch.set_num_threads(self.threads)
            try:
                with torch.inference_mode():
                    for start in range(0, mel.shape[1], MAX_MEL_FRAMES):
                        piece = mel[:, start : start + MAX_MEL_FRAMES]
                        real = (piece.shape[1] + 1) // 2
                        if piece.shape[1] % 2:  # as CTranslate2 is fed (.whisper): one repeated frame, dropped
                            piece = np.concatenate([piece, piece[:, -1:]], axis=1)
                        states = self.model(torch.from_numpy(np.ascontiguousarray(piece[None])).to(self.device), upto)
                        if final:
                            states.append(self.model.final(states[-1]))
                        kept = states[-1:] if last_only else states
                        pieces.append(torch.stack(kept)[:, 0, :real].float().cpu().numpy())
            finally:
                torch.set_num_threads(before)
        return np.concatenate(pieces, axis=1)

    def frames(self, samples: np.ndarray, layer: int | None = None) -> np.ndarray:
        """One layer's frames over the clip's real length.

        Arguments:
            samples: mono 16 kHz audio (float, [-1, 1]).
            layer: ``None`` for the encoder's output (last block + final LayerNorm, as CTranslate2);
                ``k`` in 1..n_layers for block ``k``'s output (no final LayerNorm); 0 for the block input.

        Returns:
            (T, dim) float32, one frame per 20 ms (T = ceil(mel frames / 2) per 30-s piece).

        Raises:
            AudioError: audio shorter than two mel frames (20 ms).
            ConfigError: a layer the model does not have.
        """
        self._check_layer(layer)
        # Blocks after the one asked for are not run: tiny.en block 2 costs about half the encoder.
        return self._encode(samples, final=layer is None, upto=layer, last_only=True)[0]

    def all_layers(self, samples: np.ndarray, *, final: bool = False) -> np.ndarray:
        """Every layer from one forward pass: (n_layers + 1, T, dim), index k = ``frames(layer=k)``.

        Arguments:
            samples: mono 16 kHz audio.
            final: also append the encoder's output (``frames(layer=None)``) as index n_layers + 1.
        """
        return self._encode(samples, final=final)


_shared: dict[str, TorchWhisperEncoder] = {}
_shared_lock = threading.Lock()


def shared_torch_encoder(size: str) -> TorchWhisperEncoder:
    """One CPU encoder per model size per process (loading parses ~30-80 MB of weights)."""
    with _shared_lock:
        if size not in _shared:
            _shared[size] = TorchWhisperEncoder(size)
        return _shared[size]

