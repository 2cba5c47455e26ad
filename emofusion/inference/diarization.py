"""Who spoke when: speaker turns from a GE2E voice encoder and agglomerative clustering.

    >>> diarizer = Diarizer.load()                                  # doctest: +SKIP
    >>> for region, samples in cut_regions(blocks, regions):        # the timeline's VAD regions
    ...     diarizer.add(region, samples)
    >>> diarizer.turns()                                           # or turns(speakers=2)
    [Turn(start=0.8, end=4.1, speaker='S1'), Turn(start=4.1, end=6.9, speaker='S2'), ...]

How:
1. every stretch of speech (a VAD region) is cut into windows of ``window_s`` every ``hop_s``
   (a region shorter than a window is one window), and each window becomes a 256-d speaker
   embedding from Resemblyzer's VoiceEncoder: a 3-layer LSTM (256) + linear (256) + ReLU, L2-normed,
   over 40-band mel power frames of 25 ms every 10 ms (as Resemblyzer computes them with librosa),
   trained with the GE2E loss on thousands of speakers. The network is built here in PyTorch, so
   neither Resemblyzer's code nor its dependencies (librosa, webrtcvad) are imported: only its
   weights file is read, from the installed package, and checked against its size and sha256;
2. each embedding is averaged with its neighbours in the same region (``context``), and the
   windows are clustered (agglomerative, cosine distance, average linkage), cut at
   ``threshold`` when the number of speakers is not given, or into ``speakers`` clusters when it is;
3. each ``slot_s`` of speech goes to the speaker whose centroid the windows covering it resemble
   most, so a turn can change inside a region (back-to-back speech, no pause), not only at pauses;
   turns shorter than ``min_turn_s`` join their neighbours;
4. speakers are named S1, S2, ... in order of first appearance.

The weights come with ``pip install --no-deps resemblyzer==0.1.4`` (its wheel ships them, 17 MB,
Apache-2.0). ``--no-deps``: its ``webrtcvad`` dependency imports ``pkg_resources``, which current
setuptools no longer has, and emofusion needs none of its other dependencies.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from emofusion.audio import TARGET_SAMPLE_RATE
from emofusion.errors import ConfigError, MissingExtraError

INSTALL = "pip install --no-deps resemblyzer==0.1.4"
SKIPPED = f"speakers not told apart: the voice encoder is not installed ({INSTALL})"  # the timeline's speaker_note
# Resemblyzer 0.1.4's pretrained.pt: checked before torch reads it (a wrong file is not unpickled).
WEIGHTS_FILE = "pretrained.pt"
WEIGHTS_BYTES = 17_090_379
WEIGHTS_SHA256 = "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e"

# The encoder's input, as Resemblyzer's hparams.py and audio.py define it.
N_FFT = 400  # 25 ms at 16 kHz
HOP = 160  # 10 ms
N_MELS = 40
HIDDEN = 256
LAYERS = 3
NORM_DBFS = -30.0  # quieter windows are raised to this level (Resemblyzer's normalize_volume, increase only)


class MissingVoiceEncoderError(MissingExtraError):
    """Resemblyzer's weights are not installed; the message names the install command."""

    def __init__(self, what: str):
        self.extra = "resemblyzer"
        self.install = INSTALL
        Exception.__init__(self, f"{what} needs the voice encoder weights of Resemblyzer "
                                 f"(the resemblyzer package is not installed): {INSTALL}")


@dataclass(frozen=True)
class DiarizationConfig:
    """How windows are cut and clustered. ``threshold`` is chosen on conversations of training actors
    only (RAVDESS actors 1-16 and TESS; benchmarks/bench_diarization.py --tune)."""

    window_s: float = 1.5
    # 0.75 s: each second of speech is encoded twice. 0.5 s cost 1.5x as much and, with 2-s
    # windows too, did no better on the training conversations (pooled DER 25-27% at its best threshold).
    hop_s: float = 0.75
    # Cosine distance at which clusters stop merging, chosen on 18 conversations of training actors
    # (RAVDESS 1-16, TESS; 3 each of 2 mixed-gender, 2 same-gender, 3 and 4 speakers, and 6 of one
    # speaker): pooled DER 18.0% at 0.35 with every one-speaker recording one speaker; 0.30 gave 14.3%
    # but split one of the six single speakers in two; 0.40 gave 25.7% (speakers merged).
    threshold: float = 0.35
    # Each window is averaged with its neighbours in the same region before clustering: on the same
    # conversations, pooled DER 17% instead of 27% (a lone window of a shout or a sob no longer
    # forms a speaker of its own).
    context: int = 1
    slot_s: float = 0.1  # time resolution of a turn boundary
    min_turn_s: float = 0.5  # a shorter turn joins its neighbours
    # Windows per forward pass: CPU ms per 1.5-s window on 2 threads, measured at 16 / 32 / 64:
    # 22 / 29 / 46 (the LSTM's larger batches run slower per window on this CPU).
    batch: int = 16


@dataclass(frozen=True)
class Turn:
    """[start, end) seconds spoken by one speaker ("S1", "S2", ... in order of first appearance)."""

    start: float
    end: float
    speaker: str


def available() -> bool:
    """Whether the voice encoder's weights are installed (nothing is imported)."""
    return _weights_path() is not None


def weights_path() -> Path:
    """The checked weights file of the installed resemblyzer package.

    Raises:
        MissingVoiceEncoderError: resemblyzer is not installed.
        ConfigError: the file is not the one Resemblyzer 0.1.4 ships (size or sha256 differ).
    """
    path = _weights_path()
    if path is None:
        raise MissingVoiceEncoderError("speaker turns")
    _check_weights(str(path))
    return path


def _weights_path() -> Path | None:
    # find_spec does not run resemblyzer/__init__.py (which imports webrtcvad and librosa).
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / WEIGHTS_FILE
    return path if path.is_file() else None


@functools.lru_cache(maxsize=4)
def _check_weights(path: str) -> None:
    size = Path(path).stat().st_size
    if size != WEIGHTS_BYTES:
        raise ConfigError(f"{path}: {size} bytes, expected {WEIGHTS_BYTES} (Resemblyzer 0.1.4's weights): {INSTALL}")
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):  # 1 MB at a time, not 17 MB at once
            sha.update(chunk)
    digest = sha.hexdigest()
    if digest != WEIGHTS_SHA256:
        raise ConfigError(f"{path}: sha256 {digest}, expected {WEIGHTS_SHA256} (Resemblyzer 0.1.4's weights)")


def mel_filterbank(rate: int = TARGET_SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) Slaney-scale, Slaney-normalised triangles from 0 Hz to rate / 2
    (librosa.filters.mel's defaults, which Resemblyzer's frames were computed with)."""
    f_sp, min_log_hz, logstep = 200.0 / 3, 1000.0, math.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp

    def hz_to_mel(f):
        return f / f_sp if f < min_log_hz else min_log_mel + math.log(f / min_log_hz) / logstep

    mels = np.linspace(hz_to_mel(0.0), hz_to_mel(rate / 2), n_mels + 2)
    hz = np.where(mels < min_log_mel, mels * f_sp, min_log_hz * np.exp(logstep * (mels - min_log_mel)))
    freqs = np.linspace(0, rate / 2, n_fft // 2 + 1)
    ramps = hz[:, None] - freqs[None, :]
    gaps = np.diff(hz)
    lower = -ramps[:-2] / gaps[:-1, None]
    upper = ramps[2:] / gaps[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    return weights * (2.0 / (hz[2:] - hz[:-2]))[:, None]


class VoiceEncoder(nn.Module):
    """Resemblyzer's speaker encoder: mel frames (batch, frames, 40) -> L2-normed embeddings (batch, 256)."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(N_MELS, HIDDEN, LAYERS, batch_first=True)
        self.linear = nn.Linear(HIDDEN, HIDDEN)
        self.register_buffer("window", torch.hann_window(N_FFT, periodic=True), persistent=False)
        self.register_buffer("mel_basis", torch.from_numpy(mel_filterbank()).float(), persistent=False)

    @classmethod
    def load(cls, device: str | torch.device = "cpu") -> "VoiceEncoder":
        """The pretrained encoder (weights checked, see `weights_path`), in eval mode on ``device``."""
        return _load_encoder(str(weights_path()), str(device))  # found and checked on every call

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        _, (hidden, _) = self.lstm(mels)
        raw = torch.relu(self.linear(hidden[-1]))
        return raw / torch.linalg.vector_norm(raw, dim=1, keepdim=True).clamp_min(1e-12)

    def mel_frames(self, samples: torch.Tensor) -> torch.Tensor:
        """Mel power frames (…, frames, 40) of 16-kHz samples (…, n): librosa.feature.melspectrogram
        with Resemblyzer's settings (centred frames, zero padding, periodic Hann window)."""
        spec = torch.stft(samples, N_FFT, HOP, window=self.window, center=True, pad_mode="constant", return_complex=True)
        return (self.mel_basis @ spec.abs().square()).transpose(-1, -2)

    @torch.inference_mode()
    def embed(self, windows: list[np.ndarray]) -> np.ndarray:
        """(len(windows), 256) float32 embeddings; windows of equal length run as one batch."""
        device = self.window.device
        out = np.zeros((len(windows), HIDDEN), dtype=np.float32)
        by_length: dict[int, list[int]] = {}
        for i, w in enumerate(windows):
            by_length.setdefault(len(w), []).append(i)
        for indices in by_length.values():
            batch = torch.from_numpy(np.stack([_normalise(windows[i]) for i in indices])).float().to(device)
            out[indices] = self(self.mel_frames(batch)).cpu().numpy()
        return out


def _normalise(samples: np.ndarray) -> np.ndarray:
    # Resemblyzer raises quiet utterances to -30 dBFS before its frames (never lowers loud ones):
    # its encoder reads mel power, not log-mel, so level shifts every input.
    rms = math.sqrt(float(np.mean(np.square(samples, dtype=np.float64)))) if len(samples) else 0.0
    if rms <= 1e-10:
        return samples.astype(np.float32)
    change = NORM_DBFS - 20 * math.log10(rms)
    return (samples * 10 ** (change / 20) if change > 0 else samples).astype(np.float32)


@functools.lru_cache(maxsize=2)
def _load_encoder(path: str, device: str) -> VoiceEncoder:
    state = torch.load(path, map_location="cpu", weights_only=True)["model_state"]
    encoder = VoiceEncoder()
    # similarity_weight / similarity_bias are GE2E's training-loss scale, not part of the encoder.
    encoder.load_state_dict({k: v for k, v in state.items() if not k.startswith("similarity_")})
    return encoder.eval().to(device)


class Diarizer:
    """Collects the embeddings of every stretch of speech (``add``), then finds the turns (``turns``).

    Memory: one 256-float embedding per window (1 KB per ``hop_s`` of speech), never the audio.
    """

    def __init__(self, encoder: VoiceEncoder, config: DiarizationConfig | None = None):
        self.encoder = encoder
        self.config = config or DiarizationConfig()
        self.spans: list[tuple[float, float]] = []  # each window's [start, end) in seconds
        self.owner: list[int] = []  # each window's region (index into regions)
        self.regions: list[tuple[float, float]] = []
        self._pending: list[np.ndarray] = []
        self._embeddings: list[np.ndarray] = []

    @classmethod
    def load(cls, device: str | torch.device = "cpu", config: DiarizationConfig | None = None) -> "Diarizer":
        return cls(VoiceEncoder.load(device), config)

    def reset(self) -> None:
        """Forget the added speech (the next recording starts afresh; the encoder stays loaded)."""
        self.spans, self.owner, self.regions, self._pending, self._embeddings = [], [], [], [], []

    def add(self, start: float, end: float, samples: np.ndarray, rate: int = TARGET_SAMPLE_RATE) -> None:
        """One stretch of speech: [start, end) seconds of the recording and its 16-kHz samples."""
        if end <= start or not len(samples):
            return
        self.regions.append((start, end))
        size, hop = int(round(self.config.window_s * rate)), int(round(self.config.hop_s * rate))
        if len(samples) <= size:
            offsets = [0]
            size = len(samples)
        else:
            offsets = list(range(0, len(samples) - size + 1, hop))
            if offsets[-1] + size < len(samples):
                offsets.append(len(samples) - size)  # the region's end is covered too
        for offset in offsets:
            self._pending.append(samples[offset : offset + size])
            self.spans.append((start + offset / rate, start + (offset + size) / rate))
            self.owner.append(len(self.regions) - 1)
        if len(self._pending) >= self.config.batch:
            self._embed()

    def _embed(self) -> None:
        if self._pending:
            self._embeddings.append(self.encoder.embed(self._pending))
            self._pending = []

    @property
    def embeddings(self) -> np.ndarray:
        self._embed()
        return np.concatenate(self._embeddings) if self._embeddings else np.zeros((0, HIDDEN), np.float32)

    def turns(self, speakers: int | None = None) -> list[Turn]:
        """The speaker turns over the added speech, in time order.

        Arguments:
            speakers: how many speakers there are; None: found from ``config.threshold``.

        Returns:
            Turns covering every added region, split where the speaker changes.
        """
        if speakers is not None and speakers < 1:
            raise ConfigError(f"--speakers must be at least 1, got {speakers}")
        embeddings = in_context(self.embeddings, self.owner, self.config.context)
        if not len(embeddings):
            return []
        labels = cluster(embeddings, speakers=speakers, threshold=self.config.threshold)
        return assign_turns(self.regions, self.spans, embeddings, labels, self.config)


def in_context(embeddings: np.ndarray, owner: list[int], context: int) -> np.ndarray:
    """Each embedding averaged with up to ``context`` neighbours either side in the same region, L2-normed."""
    if context < 1 or len(embeddings) < 2:
        return embeddings
    owner_ = np.asarray(owner)
    out = np.empty_like(embeddings)
    for i in range(len(embeddings)):
        lo, hi = max(0, i - context), min(len(embeddings), i + context + 1)
        out[i] = embeddings[lo:hi][owner_[lo:hi] == owner_[i]].mean(axis=0)
    return out / np.linalg.norm(out, axis=1, keepdims=True).clip(1e-12)


def cluster(embeddings: np.ndarray, *, speakers: int | None = None, threshold: float = DiarizationConfig.threshold) -> np.ndarray:
    """Cluster index (0, 1, ...) of every embedding: average-linkage agglomerative over cosine distance."""
    from scipy.cluster.hierarchy import fcluster, linkage

    if len(embeddings) == 1 or speakers == 1:
        return np.zeros(len(embeddings), dtype=int)
    tree = linkage(embeddings.astype(np.float64), method="average", metric="cosine")
    if speakers is None:
        labels = fcluster(tree, t=threshold, criterion="distance")
    else:
        labels = fcluster(tree, t=min(speakers, len(embeddings)), criterion="maxclust")
    return labels - 1


def assign_turns(
    regions: list[tuple[float, float]], spans: list[tuple[float, float]], embeddings: np.ndarray, labels: np.ndarray,
    config: DiarizationConfig = DiarizationConfig(),
) -> list[Turn]:
    """Each ``slot_s`` of each region goes to the cluster whose centroid the windows over it resemble most."""
    ids = sorted(set(labels.tolist()))
    centroids = np.stack([embeddings[labels == k].mean(axis=0) for k in ids])
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True).clip(1e-12)
    similarity = embeddings @ centroids.T  # (windows, clusters)
    starts = np.array([s for s, _ in spans])
    ends = np.array([e for _, e in spans])
    pieces: list[tuple[float, float, int]] = []
    for r_start, r_end in regions:
        n = max(1, int(math.ceil((r_end - r_start) / config.slot_s - 1e-9)))
        edges = np.minimum(r_start + np.arange(n + 1) * config.slot_s, r_end)
        centres = (edges[:-1] + edges[1:]) / 2
        covering = (starts[None, :] <= centres[:, None]) & (ends[None, :] > centres[:, None])
        # a slot no window covers (rounding at a region's edge) takes the nearest window
        nearest = np.abs((starts + ends)[None, :] / 2 - centres[:, None]).argmin(axis=1)
        covering[np.arange(n), nearest] |= ~covering.any(axis=1)
        scores = (covering.astype(np.float64) @ similarity) / covering.sum(axis=1, keepdims=True)
        slots = _absorb_short(scores.argmax(axis=1), scores, max(1, int(round(config.min_turn_s / config.slot_s))))
        change = np.flatnonzero(np.diff(slots)) + 1
        for a, b in zip(np.r_[0, change], np.r_[change, n]):
            pieces.append((float(edges[a]), float(edges[b]), ids[int(slots[a])]))
    names: dict[int, str] = {}
    turns = []
    for start, end, k in sorted(pieces):
        names.setdefault(k, f"S{len(names) + 1}")
        turns.append(Turn(start, end, names[k]))
    return turns


def _absorb_short(slots: np.ndarray, scores: np.ndarray, min_slots: int) -> np.ndarray:
    """Runs shorter than ``min_slots`` take the better-scoring of their neighbouring runs' speakers."""
    slots = slots.copy()
    while True:
        change = np.flatnonzero(np.diff(slots)) + 1
        bounds = list(zip(np.r_[0, change], np.r_[change, len(slots)]))
        if len(bounds) < 2:
            return slots
        a, b = min(bounds, key=lambda ab: ab[1] - ab[0])
        if b - a >= min_slots:
            return slots
        options = {int(slots[a - 1])} if a > 0 else set()
        options |= {int(slots[b])} if b < len(slots) else set()
        slots[a:b] = max(options, key=lambda k: scores[a:b, k].sum())
