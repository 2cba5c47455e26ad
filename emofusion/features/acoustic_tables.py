"""Per-(sample rate, window) constants of the acoustic features: computed once, reused for every frame.

pyAudioAnalysis rebuilds its MFCC filterbank once per file and its chroma mapping once per *frame*;
here both become fixed sparse "gather, weight, sum per group" maps (:class:`GroupedSum`). They are
applied with ``np.add.reduceat`` rather than a dense matrix product: each bin feeds at most two
filters, and a BLAS call for these small products spends more time spinning up threads than
computing (on a busy 2-core machine, 10x slower than the whole rest of the features). Two flavours
exist:

* ``"pyaudioanalysis"`` reproduces the package bit for bit, quirks included:
  - the magnitude spectrum has ``n = W // 2`` bins spaced ``fs / W`` apart, but the MFCC filterbank
    is built as if they were spaced ``fs / n`` apart, so every filter sits at *half* its nominal
    frequency (the 133 Hz filter lands on 67 Hz, the top one near 3.4 kHz instead of 6.9 kHz);
  - the centroid/spread frequency of bin ``k`` is ``(k + 1) * fs / (2 n)`` instead of ``k * fs / W``
    (for even ``W`` a shift of one bin: the centroid reads ``fs / W`` too high, the spread is unaffected);
  - chroma: bin ``k`` gets the pitch number ``round(12 log2(f_k / 27.5))`` (with the same shifted
    ``f_k``); the spectrum is *assigned* (``C[pitch] = power``), so of all bins sharing a pitch number
    only the last one survives; the DC-side bins get negative pitch numbers that wrap to the end of
    the array (numpy indexing); each survivor is divided by a bin count looked up at the wrong index
    (``counts[pitch[u]]`` instead of ``counts[u]``). Windows shorter than about 12 ms at 16 kHz make
    the package crash (its "bug with large windows" branch); we refuse them up front.
* ``"corrected"`` does what the package meant: filters at their nominal frequencies (bin ``k`` at
  ``k * fs / W``), centroid frequencies ``k * fs / W``, and chroma = the spectral power of all bins
  (DC excluded) of each pitch class, summed, divided by the frame's total power.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from emofusion.errors import ConfigError

MODES = ("pyaudioanalysis", "corrected")

# The talkbox/pyAudioAnalysis MFCC filterbank: 13 linear filters from 133.33 Hz in 66.67 Hz steps,
# then 27 log-spaced ones (ratio 1.0711703); 40 filters, 13 cepstra kept.
_LOW_HZ, _LIN_STEP_HZ, _LOG_RATIO = 133.33, 200 / 3, 1.0711703
_N_LIN, _N_LOG = 13, 27
_A0_HZ = 27.50  # chroma reference: pitch number 0 is A0, so pitch class 0 is A


@dataclass(frozen=True)
class GroupedSum:
    """``out[:, g] = sum(x[:, columns[j]] * weights[j] for the entries j of group g)``, per row.

    Entries are stored grouped (``starts`` marks where each non-empty group begins); groups
    without entries stay 0. ``divide=True`` divides by ``weights`` instead (the chroma divisors:
    the package divides, and dividing keeps its rounding).
    """

    columns: np.ndarray  # (E,) input column of each entry
    weights: np.ndarray  # (E,)
    starts: np.ndarray  # (G',) first entry of each non-empty group
    groups: np.ndarray  # (G',) output column of each non-empty group
    n_groups: int

    @classmethod
    def from_entries(cls, columns, weights, groups, n_groups: int) -> "GroupedSum":
        order = np.argsort(groups, kind="stable")
        columns, weights, groups = columns[order], weights[order], groups[order]
        present, starts = np.unique(groups, return_index=True)
        for a in (columns, weights, starts, present):
            a.flags.writeable = False  # shared through the cache
        return cls(columns, weights, starts, present, n_groups)

    def __call__(self, x: np.ndarray, divide: bool = False) -> np.ndarray:
        values = x[:, self.columns]
        values = values / self.weights if divide else values * self.weights
        out = np.zeros((len(x), self.n_groups))
        if len(self.starts):
            out[:, self.groups] = np.add.reduceat(values, self.starts, axis=1)
        return out


@dataclass(frozen=True)
class SpectralTables:
    """Everything frequency-dependent that the per-frame features need."""

    n_bins: int  # magnitude bins kept per frame: W // 2
    centroid_hz: np.ndarray  # (n_bins,) frequency assigned to each bin for centroid/spread
    filterbank: GroupedSum  # magnitude (F, n_bins) -> 40 MFCC filter outputs
    chroma: GroupedSum  # power (F, n_bins) -> 12 pitch classes (divide=True), before normalising


@lru_cache(maxsize=32)
def spectral_tables(sample_rate: int, window: int, mode: str) -> SpectralTables:
    """Tables for ``window``-sample frames at ``sample_rate`` Hz (cached: a corpus shares one).

    Raises:
        ConfigError: unknown mode, a window too short for 10 spectral sub-blocks, or (in
            pyaudioanalysis mode) one too short for the package's chroma code.
    """
    if mode not in MODES:
        raise ConfigError(f"unknown acoustic feature mode {mode!r}; expected one of {', '.join(MODES)}")
    n = window // 2
    if n < 10:
        raise ConfigError(
            f"window of {window} samples is too short: spectral entropy needs at least 20 samples"
        )
    if mode == "pyaudioanalysis":
        centroid_hz = np.arange(1, n + 1) * (sample_rate / (2.0 * n))
        filterbank = _mfcc_filterbank(sample_rate, n, span=n)
        bins, divisor, pitch_class = _quirky_chroma(sample_rate, n, window)
    else:
        centroid_hz = np.arange(n) * (sample_rate / window)
        filterbank = _mfcc_filterbank(sample_rate, n, span=window)
        bins = np.arange(1, n)  # DC has no pitch
        hz = bins * (sample_rate / window)
        pitch_class = np.round(12.0 * np.log2(hz / _A0_HZ)).astype(int) % 12
        divisor = np.ones(len(bins))
    filter_of, bin_of = np.nonzero(filterbank)
    centroid_hz.flags.writeable = False  # shared through the cache
    return SpectralTables(
        n_bins=n,
        centroid_hz=centroid_hz,
        filterbank=GroupedSum.from_entries(bin_of, filterbank[filter_of, bin_of], filter_of, len(filterbank)),
        chroma=GroupedSum.from_entries(bins, divisor, pitch_class, 12),
    )


def _mfcc_filterbank(sample_rate: int, n_bins: int, span: int) -> np.ndarray:
    """(40, n_bins) triangular filters; bin k is taken to lie at ``k * sample_rate / span`` Hz.

    ``span = n_bins`` is the package's arithmetic (every filter at half its frequency);
    ``span = window`` puts bins where the FFT really has them. Triangle edges and heights follow
    the package expression by expression so that the pyaudioanalysis mode matches it exactly.
    Bins past the last kept one are dropped (the package would raise IndexError there; that only
    happens below about 7 kHz sampling in its mode).
    """
    edges = np.zeros(_N_LIN + _N_LOG + 2)
    edges[:_N_LIN] = _LOW_HZ + np.arange(_N_LIN) * _LIN_STEP_HZ
    edges[_N_LIN:] = edges[_N_LIN - 1] * _LOG_RATIO ** np.arange(1, _N_LOG + 3)
    heights = 2.0 / (edges[2:] - edges[:-2])
    low, centre, high = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    bin_hz = np.arange(n_bins) / (1.0 * span) * sample_rate
    k = np.arange(n_bins)
    # First bin strictly above each edge, as the package's floor(f * span / fs) + 1.
    first_low = np.floor(low * span / sample_rate) + 1
    first_centre = np.floor(centre * span / sample_rate) + 1
    first_high = np.floor(high * span / sample_rate) + 1
    rising = (k >= first_low) & (k < first_centre)
    falling = (k >= first_centre) & (k < first_high)
    left = heights[:, None] / (centre - low) * (bin_hz - low)
    right = heights[:, None] / (high - centre) * (high - bin_hz)
    return np.where(rising, left, np.where(falling, right, 0.0))


def _quirky_chroma(sample_rate: int, n: int, window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The package's chroma as a fixed gather: for each surviving array slot u, which bin feeds it,
    what it is divided by, and which pitch class (u mod 12) it is summed into."""
    hz = (np.arange(1, n + 1) * sample_rate) / (2 * n)
    pitch = np.round(12.0 * np.log2(hz / _A0_HZ)).astype(int)
    if pitch.max() >= n:
        raise ConfigError(
            f"window of {window} samples at {sample_rate} Hz is too short for pyAudioAnalysis's chroma "
            f"(it needs more than {pitch.max()} spectrum bins; the package itself fails here); "
            "use a longer window or mode='corrected'"
        )
    _, inverse, counts = np.unique(pitch, return_inverse=True, return_counts=True)
    bins_sharing = counts[inverse].astype(float)  # per bin: how many bins share its pitch number
    # The package's `C[pitch] = spec`: apply the very same fancy assignment to bin indices, so
    # repeated pitch numbers (last write wins) and negative ones (wrap to the end) behave alike.
    source = np.full(n, -1)
    source[pitch] = np.arange(n)
    divisor = bins_sharing[pitch]  # the package's `C /= counts[pitch]`, slot by slot
    slots = np.nonzero(source >= 0)[0]
    return source[slots], divisor[slots], slots % 12
