"""The paper's 34 short-term acoustic features per frame, as pyAudioAnalysis computes them.

pyAudioAnalysis (``ShortTermFeatures.feature_extraction``) loops over frames in Python; here every
feature is an array operation over a block of frames: one batched real FFT, sub-block energies by
reshaping, the MFCC filterbank and the chroma mapping as fixed sparse sums (see
:mod:`emofusion.features.acoustic_tables`).

What "exact" means. The paper ran the package on what the package's own reader
(``audioBasicIO.read_audio_file``) returns: for 16-bit audio, the int16 values (full scale
``PACKAGE_FULL_SCALE`` = 2^15). The package divides by 2^15, removes the mean and divides by
``max|x| + 1e-10``; that ``1e-10`` is why the scale matters (fed samples in [-1, 1] it weighs 2^15
times more: MFCC 1 moved by 9e-6 at full scale and by 0.1 at a peak of 1e-4). So in the default
``"pyaudioanalysis"`` mode, ``extract_frames(x, fs)`` of a signal ``x`` with full scale 1.0 (what
:func:`emofusion.audio.load_audio` returns) equals the package's
``feature_extraction(x * 2**15, fs, W, S, deltas=False).T`` to ~1e-14 (only summation order
differs; the tests demand 1e-9). For a 16-bit file, ``x * 2**15`` *is* the reader's int16 array
(libsndfile decodes value v as v / 2^15 exactly), so a file, its bytes and an int16 array all give
the package's features of what its reader returns. For input the reader cannot produce (a float
array, a 24-bit file, audio resampled to 16 kHz) it is the package's features of the same signal at
that int16 scale. The scaling lives here, not in ``load_audio``, so every other consumer of decoded
audio keeps the usual [-1, 1] convention; callers holding int16-scale values pass ``full_scale=2**15``.

The package's quirks are reproduced:

* the signal is divided by 2^15, its mean is removed and it is scaled to peak 1 (``+1e-10`` in the
  divisor), so the features hardly depend on the input's scale and not at all on its DC offset;
* rectangular frames of ``W`` samples every ``S`` samples, no padding: ``(N - W) // S + 1`` frames;
* magnitude spectrum = ``|FFT|`` of the first ``W // 2`` bins divided by ``W // 2``;
* spectral flux of the first frame is 0 (it is compared with itself);
* the frequency-axis quirks (centroid, MFCC filterbank, chroma) listed in ``acoustic_tables``.

``"corrected"`` mode keeps everything else but fixes those frequency-axis quirks.

Example:
    >>> import numpy as np
    >>> t = np.arange(16000) / 16000
    >>> frames = extract_frames(np.sin(2 * np.pi * 440 * t), 16000)
    >>> frames.shape
    (39, 34)
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Mapping, Union

import numpy as np
import scipy.fft

from emofusion.audio import SILENCE_DBFS, SILENCE_PEAK, load_audio
from emofusion.errors import AudioError, ConfigError
from emofusion.features.acoustic_tables import MODES, SpectralTables, spectral_tables

FEATURE_NAMES: tuple[str, ...] = (
    "zcr",
    "energy",
    "energy_entropy",
    "spectral_centroid",
    "spectral_spread",
    "spectral_entropy",
    "spectral_flux",
    "spectral_rolloff",
    *(f"mfcc_{i}" for i in range(1, 14)),
    *(f"chroma_{i}" for i in range(1, 13)),  # pitch classes A, A#, B, C, ..., G#
    "chroma_std",
)
N_FEATURES = len(FEATURE_NAMES)
LENGTH_POLICIES = ("head", "center", "uniform")
# Full scale of what pyAudioAnalysis's reader returns for 16-bit audio (int16 values); the package
# divides by exactly this before normalising.
PACKAGE_FULL_SCALE = 2**15

_EPS = sys.float_info.epsilon  # the package's guard against log(0) and 0/0
_N_SUB_BLOCKS = 10  # entropy of energy / spectral entropy use 10 equal sub-blocks
_ROLLOFF = 0.90
_N_MFCC = 13
# Frames per block: bounds memory (a 10-minute file is 24k frames) while keeping the FFT batched.
_BLOCK_FRAMES = 2048


@dataclass(frozen=True)
class AcousticConfig:
    """How frames are cut and featurised, and how many the models see.

    Arguments:
        window_s, step_s: frame length and hop (pyAudioAnalysis's usual 50 / 25 ms; the paper does
            not say).
        sample_rate: rate the audio is resampled to before extraction.
        max_frames: frames per utterance the models see (the paper: 100).
        length_policy: which ``max_frames`` frames :func:`fit_frames` keeps from a longer utterance:
            ``"head"`` the first ones (our reading of the paper), ``"center"`` the middle ones,
            ``"uniform"`` one from the centre of each of ``max_frames`` equal stretches.
        mode: ``"pyaudioanalysis"`` (exact, quirks included) or ``"corrected"``.
    """

    window_s: float = 0.050
    step_s: float = 0.025
    sample_rate: int = 16000
    max_frames: int = 100
    length_policy: str = "head"
    mode: str = "pyaudioanalysis"

    def __post_init__(self) -> None:
        for name in ("window_s", "step_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ConfigError(f"acoustic {name} must be a positive number of seconds, got {value!r}")
        for name in ("sample_rate", "max_frames"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"acoustic {name} must be a positive integer, got {value!r}")
        if self.length_policy not in LENGTH_POLICIES:
            raise ConfigError(
                f"unknown length_policy {self.length_policy!r}; expected one of {', '.join(LENGTH_POLICIES)}"
            )
        if self.mode not in MODES:
            raise ConfigError(f"unknown acoustic feature mode {self.mode!r}; expected one of {', '.join(MODES)}")
        if self.step_samples < 1:
            raise ConfigError(f"step of {self.step_s} s is under one sample at {self.sample_rate} Hz")
        spectral_tables(self.sample_rate, self.window_samples, self.mode)  # raises for unusable windows

    @property
    def window_samples(self) -> int:
        return int(round(self.window_s * self.sample_rate))

    @property
    def step_samples(self) -> int:
        return int(round(self.step_s * self.sample_rate))

    @property
    def frame_shift(self) -> float:
        """Seconds between consecutive frames."""
        return self.step_samples / self.sample_rate

    @property
    def feature_dim(self) -> int:
        return N_FEATURES

    @property
    def input_shape(self) -> tuple[int, int]:
        """(frames, features) of one utterance's model input: every model is built from this."""
        return (self.max_frames, self.feature_dim)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> "AcousticConfig":
        if not isinstance(d, Mapping):
            raise ConfigError(f"acoustic config must be a mapping, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(
                f"unknown acoustic config key(s) {', '.join(map(repr, unknown))}; known: {', '.join(sorted(known))}"
            )
        return cls(**d)


def count_frames(n_samples: int, config: AcousticConfig) -> int:
    """Frames the package yields: a frame starts every step while a whole window still fits."""
    window, step = config.window_samples, config.step_samples
    return 0 if n_samples < window else (n_samples - window) // step + 1


def extract_frames(
    samples: np.ndarray,
    sample_rate: int,
    config: AcousticConfig = AcousticConfig(),
    *,
    full_scale: float = 1.0,
) -> np.ndarray:
    """All frames' features, shape ``(frames, 34)``, float64.

    Arguments:
        samples: mono signal (it is normalised first, as the package does).
        sample_rate: its rate; must equal ``config.sample_rate``. We refuse rather than resample
            silently: :func:`emofusion.audio.load_audio` resamples, and :func:`extract_file` asks it to.
        full_scale: the value of full scale in ``samples``: 1.0 for :func:`~emofusion.audio.load_audio`'s
            output, ``PACKAGE_FULL_SCALE`` (2^15) for int16 values. The features are the package's
            of ``samples * (2**15 / full_scale)``, bit for bit in the normalisation when
            ``full_scale`` is a power of two (see the module docstring).

    Raises:
        AudioError: not a 1-D finite signal, empty, shorter than one window, or silent/constant
            (its deviation from its mean below ``emofusion.audio.SILENCE_PEAK`` of full scale).
        ConfigError: ``sample_rate`` differs from the configuration's, or a bad ``full_scale``.
    """
    if (isinstance(full_scale, bool) or not isinstance(full_scale, (int, float, np.floating, np.integer))
            or not 0 < full_scale < np.inf):
        raise ConfigError(f"full_scale must be a positive number, got {full_scale!r}")
    x = np.asarray(samples)
    if x.ndim != 1:
        raise AudioError(f"expected a mono signal of shape (samples,), got shape {x.shape}")
    if x.size == 0:
        raise AudioError("the audio is empty (0 samples)")
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise AudioError(f"expected real-valued samples, got dtype {x.dtype}")
    if sample_rate != config.sample_rate:
        raise ConfigError(
            f"audio at {sample_rate} Hz but the acoustic config expects {config.sample_rate} Hz; "
            "resample first (load_audio(..., target_rate=config.sample_rate) does)"
        )
    x = x.astype(np.float64, copy=False)
    if not np.isfinite(x.sum()) and not np.all(np.isfinite(x)):  # the sum is the cheap test
        raise AudioError("the audio contains NaN or infinite samples")
    window = config.window_samples
    if x.size < window:
        raise AudioError(
            f"the audio is {1000 * x.size / sample_rate:.1f} ms long, shorter than one "
            f"{1000 * config.window_s:g} ms window ({window} samples at {sample_rate} Hz)"
        )
    x = _normalise(x, full_scale)
    tables = spectral_tables(config.sample_rate, window, config.mode)
    n_frames = count_frames(x.size, config)
    out = np.empty((n_frames, N_FEATURES))
    previous = None  # the previous block's last (sum-normalised) spectrum, for spectral flux
    for first in range(0, n_frames, _BLOCK_FRAMES):
        last = min(first + _BLOCK_FRAMES, n_frames)
        out[first:last], previous = _block_features(x, first, last, config, tables, previous)
    return out


def extract_file(
    source: Union[str, Path, bytes, bytearray],
    config: AcousticConfig = AcousticConfig(),
    *,
    max_seconds: float | None = None,
) -> np.ndarray:
    """Decode ``source`` (path or encoded bytes) at ``config.sample_rate`` and featurise all frames.

    Raises:
        AudioError: undecodable, empty, silent, too short (named after the file).
    """
    audio = load_audio(source, target_rate=config.sample_rate, max_seconds=max_seconds)
    try:
        return extract_frames(audio.samples, audio.sample_rate, config)
    except AudioError as exc:
        label = str(source) if isinstance(source, (str, Path)) else "audio bytes"
        raise AudioError(f"{label}: {exc}") from exc


def fit_frames(frames: np.ndarray, config: AcousticConfig) -> tuple[np.ndarray, int]:
    """Exactly ``config.max_frames`` frames for a model: (float32 ``(max_frames, 34)``, real count).

    Shorter utterances are zero-padded at the end; longer ones are cut by ``config.length_policy``.
    The count (``<= max_frames``) lets models mask the padding.
    """
    frames = np.asarray(frames)
    if frames.ndim != 2 or frames.shape[1] != N_FEATURES:
        raise ValueError(f"expected frames of shape (n, {N_FEATURES}), got {frames.shape}")
    limit, n = config.max_frames, len(frames)
    if n > limit:
        if config.length_policy == "head":
            frames = frames[:limit]
        elif config.length_policy == "center":
            start = (n - limit) // 2
            frames = frames[start : start + limit]
        else:  # uniform: the middle frame of each of `limit` equal stretches (integer maths: exact)
            frames = frames[((2 * np.arange(limit) + 1) * n) // (2 * limit)]
    out = np.zeros((limit, N_FEATURES), dtype=np.float32)
    kept = min(n, limit)
    out[:kept] = frames[:kept]
    return out, kept


def _normalise(x: np.ndarray, full_scale: float) -> np.ndarray:
    """The package's normalisation of the int16-scale signal ``x * (2**15 / full_scale)``.

    Its first step divides that by 2^15, which leaves ``x / full_scale``: for a power of two the
    same numbers as the package's, bit for bit. Then its operations in its order (max(|y|) taken
    as max(max, -min), the same number without an |y| temporary).
    """
    y = x / full_scale
    y -= y.mean()
    peak = max(y.max(), -y.min())
    if peak < SILENCE_PEAK:
        # What the division below would blow up to full scale: rounding residue, not sound.
        raise AudioError(
            f"the audio is silent or constant (below {SILENCE_DBFS} dBFS once its DC offset is removed)"
        )
    y /= peak + 1e-10
    return y


# Why so few temporaries below: every fresh array of a few hundred kB costs page faults, and on
# virtual machines those dominate (twice the run time measured here); in-place updates avoid them.


def _block_features(
    x: np.ndarray,
    first: int,
    last: int,
    config: AcousticConfig,
    tables: SpectralTables,
    previous: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Features of frames ``first..last-1`` of the normalised signal ``x``.

    ``previous`` is the sum-normalised magnitude spectrum of the frame before ``first`` (None at the
    start of the file); the block's last one is returned for the next block's spectral flux.
    """
    window, step, n = config.window_samples, config.step_samples, tables.n_bins
    n_frames = last - first
    segment = x[first * step : (last - 1) * step + window]
    frames = np.lib.stride_tricks.sliding_window_view(segment, window)[::step]
    out = np.empty((n_frames, N_FEATURES))

    out[:, 0] = _zero_crossing_rate(segment, n_frames, window, step)
    frame_energy, out[:, 2] = _energy_and_entropy(segment * segment, n_frames, window, step)
    out[:, 1] = frame_energy / float(window)

    magnitude = np.abs(scipy.fft.rfft(frames, axis=1)[:, :n])
    magnitude /= n
    power = magnitude * magnitude
    total_power = power.sum(axis=1)
    out[:, 3], out[:, 4] = _centroid_spread(magnitude, tables.centroid_hz, config.sample_rate)
    out[:, 5] = _sub_block_entropy(power, total_power)
    out[:, 6], last_spectrum = _flux(magnitude, previous)
    out[:, 7] = _rolloff(power, total_power)
    filtered = tables.filterbank(magnitude)
    filtered += _EPS
    out[:, 8:21] = scipy.fft.dct(np.log10(filtered), type=2, norm="ortho", axis=1)[:, :_N_MFCC]
    chroma = tables.chroma(power, divide=True)
    chroma /= np.where(total_power == 0, _EPS, total_power)[:, None]
    out[:, 21:33] = chroma
    out[:, 33] = chroma.std(axis=1)
    return out, last_spectrum


def _zero_crossing_rate(segment: np.ndarray, n_frames: int, window: int, step: int) -> np.ndarray:
    """Sign changes per sample (a change through 0 counts half), from one running count over the
    segment instead of per frame; small integers, so exact."""
    sign = (segment > 0).view(np.int8) - (segment < 0).view(np.int8)
    changes = np.zeros(len(segment), dtype=np.int64)
    np.cumsum(np.abs(np.diff(sign)), out=changes[1:])
    starts = np.arange(n_frames) * step
    return (changes[starts + window - 1] - changes[starts]) / 2 / (window - 1.0)


def _energy_and_entropy(squares: np.ndarray, n_frames: int, window: int, step: int) -> tuple[np.ndarray, np.ndarray]:
    """Each frame's energy and the entropy of its split over 10 equal sub-blocks (a tail of
    ``window % 10`` samples counts in the energy but in no sub-block, as in the package)."""
    width = window // _N_SUB_BLOCKS
    item = squares.itemsize
    # A (frames, 10, width) view straight into the squared signal: no per-frame copy.
    blocks = np.lib.stride_tricks.as_strided(
        squares, (n_frames, _N_SUB_BLOCKS, width), (step * item, width * item, item), writeable=False
    ).sum(axis=2)
    energy = blocks.sum(axis=1)
    tail = window - width * _N_SUB_BLOCKS
    if tail:
        offset = width * _N_SUB_BLOCKS
        energy += np.lib.stride_tricks.as_strided(
            squares[offset:], (n_frames, tail), (step * item, item), writeable=False
        ).sum(axis=1)
    return energy, _entropy(blocks, energy)


def _sub_block_entropy(values: np.ndarray, total: np.ndarray) -> np.ndarray:
    """Entropy of each row's ``values`` summed over 10 equal sub-blocks (the tail is dropped from
    the blocks but kept in ``total``, as in the package)."""
    width = values.shape[1] // _N_SUB_BLOCKS
    blocks = values[:, : width * _N_SUB_BLOCKS].reshape(len(values), _N_SUB_BLOCKS, width).sum(axis=2)
    return _entropy(blocks, total)


def _entropy(blocks: np.ndarray, total: np.ndarray) -> np.ndarray:
    share = blocks / (total[:, None] + _EPS)
    return -np.sum(share * np.log2(share + _EPS), axis=1)


def _centroid_spread(magnitude: np.ndarray, hz: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Spectral centre of mass and spread around it, as fractions of the Nyquist frequency."""
    peak = magnitude.max(axis=1, keepdims=True)
    weights = magnitude / np.where(peak == 0, _EPS, peak)
    den = weights.sum(axis=1) + _EPS
    centroid = np.einsum("fk,k->f", weights, hz) / den
    deviation = hz - centroid[:, None]
    deviation *= deviation
    spread = np.sqrt(np.einsum("fk,fk->f", deviation, weights) / den)
    nyquist = sample_rate / 2.0
    return centroid / nyquist, spread / nyquist


def _flux(magnitude: np.ndarray, previous: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Squared distance between consecutive sum-normalised spectra; also returns the last one.

    The very first frame of a file is compared with itself, so its flux is exactly 0.
    """
    share = magnitude / (magnitude + _EPS).sum(axis=1, keepdims=True)
    change = np.empty_like(share)
    change[0] = 0.0 if previous is None else share[0] - previous
    np.subtract(share[1:], share[:-1], out=change[1:])
    return np.einsum("fk,fk->f", change, change), share[-1].copy()


def _rolloff(power: np.ndarray, total: np.ndarray) -> np.ndarray:
    """Fraction of bins below which 90 % of the power lies (0 if never reached)."""
    cumulative = np.cumsum(power, axis=1)
    cumulative += _EPS
    above = cumulative > _ROLLOFF * total[:, None]
    first = np.argmax(above, axis=1)
    return np.where(above.any(axis=1), first / float(power.shape[1]), 0.0)
