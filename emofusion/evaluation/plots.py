"""The report's figures: confusion matrices (paper Figs 7-8), WA/UA bars (Figs 5-6), feature plots,
reliability diagrams (how often predictions at each confidence are right).

Figures are built with `matplotlib.figure.Figure` directly rather than `pyplot`: no global state, no
display needed, and importing this module does not switch the caller's matplotlib backend.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.figure import Figure

from emofusion.errors import ConfigError

DPI = 100


def plot_confusion(path: Path, confusion: np.ndarray, labels: Sequence[str], title: str) -> Path:
    """Row-normalised confusion (rows true, columns predicted) as a heat map with percentages."""
    confusion = np.asarray(confusion, dtype=np.float64)
    k = len(labels)
    if confusion.shape != (k, k):
        raise ConfigError(f"confusion has shape {confusion.shape}, expected ({k}, {k}) for {list(labels)}")
    size = 1.2 + 0.75 * k
    fig = Figure(figsize=(size + 0.8, size), dpi=DPI)
    ax = fig.add_subplot()
    image = ax.imshow(confusion, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    for i in range(k):
        for j in range(k):
            value = confusion[i, j]
            ax.text(j, i, f"{100 * value:.1f}%", ha="center", va="center", fontsize=8,
                    color="white" if value > 0.5 else "black")
    ax.set_xticks(range(k), labels)
    ax.set_yticks(range(k), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    return path


def plot_reliability(path: Path, reliability: Sequence[Mapping], title: str, *, ece: float | None = None,
                     bins: int = 10) -> Path:
    """A reliability diagram: per top-probability bin, the accuracy (bars) against the mean top
    probability (dots); the diagonal is perfect calibration. Bar width shows the bin, the count
    is written above each bar.

    Arguments:
        reliability: `ProbabilityScores.reliability()` rows: low, high, count, confidence, accuracy.
        ece: printed in the title when given (points).
    """
    fig = Figure(figsize=(4.2, 4.2), dpi=DPI)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect calibration")
    if reliability:
        lows = np.array([r["low"] for r in reliability], dtype=np.float64)
        widths = np.array([r["high"] - r["low"] for r in reliability], dtype=np.float64)
        accuracy = np.array([r["accuracy"] for r in reliability], dtype=np.float64)
        confidence = np.array([r["confidence"] for r in reliability], dtype=np.float64)
        ax.bar(lows, accuracy, widths, align="edge", color="tab:blue", alpha=0.7, edgecolor="white", label="accuracy")
        ax.plot(confidence, confidence, "o", color="tab:red", markersize=3, label="mean top probability")
        for low, width, acc, r in zip(lows, widths, accuracy, reliability):
            ax.text(low + width / 2, min(acc + 0.02, 0.97), str(r["count"]), ha="center", fontsize=6)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xticks(np.linspace(0, 1, bins + 1) if bins <= 10 else np.linspace(0, 1, 6))
    ax.set_xlabel("top probability")
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title(title + ("" if ece is None else f"\nECE {ece:.1f} points"), fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    return path


def plot_wa_ua(path: Path, models: Sequence[str], ours: Mapping[str, dict], paper: Mapping[str, dict], title: str) -> Path:
    """Grouped bars per model: our WA and UA (mean, sample-std error bars) beside the paper's.

    Arguments:
        ours: model -> {"wa": {"mean", "std"}, "ua": {...}} in percent (missing model = no bars).
        paper: model -> {"wa": float, "ua": float} in percent (missing model = no paper bars).
    """
    x = np.arange(len(models))
    width = 0.2
    fig = Figure(figsize=(max(5.0, 1.0 + 0.9 * len(models)), 3.8), dpi=DPI)
    ax = fig.add_subplot()
    series = [
        ("ours WA", "wa", ours, -1.5, "tab:blue", None),
        ("ours UA", "ua", ours, -0.5, "tab:orange", None),
        ("paper WA", "wa", paper, 0.5, "lightsteelblue", "//"),
        ("paper UA", "ua", paper, 1.5, "navajowhite", "//"),
    ]
    for name, key, source, offset, color, hatch in series:
        heights, errors = [], []
        for model in models:
            entry = source.get(model)
            value = entry.get(key) if entry else None
            if isinstance(value, dict):
                heights.append(value["mean"])
                errors.append(0.0 if math.isnan(value["std"]) else value["std"])
            else:
                heights.append(math.nan if value is None else value)
                errors.append(0.0)
        ax.bar(x + offset * width, np.nan_to_num(heights), width, yerr=errors if source is ours else None,
               label=name, color=color, hatch=hatch, edgecolor="grey", linewidth=0.5, capsize=2)
    ax.set_xticks(x, models, rotation=40, ha="right", fontsize=8)
    ax.set_ylabel("%")
    ax.set_ylim(0, 100)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, ncol=4, loc="upper left")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    return path


def plot_features(path: Path, frames: np.ndarray, names: Sequence[str], utterance_id: str) -> Path:
    """Chroma, zero-crossing rate, MFCCs, energy and spectral flux of one utterance over frames.

    `names` are the 34 column names (pyAudioAnalysis's: zcr, energy, ..., mfcc_1..13, chroma_1..12,
    chroma_std); columns are found by name, so a different column order still plots correctly.
    """
    frames = np.asarray(frames, dtype=np.float64)
    names = list(names)
    if frames.ndim != 2 or frames.shape[1] != len(names):
        raise ConfigError(f"feature example for {utterance_id!r} has shape {frames.shape} but {len(names)} names")
    if frames.shape[0] == 0:
        raise ConfigError(f"feature example for {utterance_id!r} has no frames")
    columns = _feature_columns(names, utterance_id)
    t = np.arange(frames.shape[0])
    fig = Figure(figsize=(7.0, 9.0), dpi=DPI)
    axes = fig.subplots(5, 1, sharex=True)
    panels = [("chroma", "chroma (12 pitch classes)"), ("zcr", "zero-crossing rate"),
              ("mfcc", "MFCCs 1-13, each standardised over time"), ("energy", "energy"), ("flux", "spectral flux")]
    for ax, (key, label) in zip(axes, panels):
        cols = columns[key]
        if len(cols) > 1:
            values = frames[:, cols].T
            if key == "mfcc":
                # MFCC 1 (log energy) is tens of units below the rest and would wash the image out.
                values = (values - values.mean(axis=1, keepdims=True)) / (values.std(axis=1, keepdims=True) + 1e-12)
            image = ax.imshow(values, aspect="auto", origin="lower", cmap="magma",
                              extent=(-0.5, frames.shape[0] - 0.5, 0.5, len(cols) + 0.5), interpolation="nearest")
            fig.colorbar(image, ax=ax, pad=0.01)
            ax.set_ylabel("index")
        else:
            ax.plot(t, frames[:, cols[0]], linewidth=1.0)
            ax.grid(alpha=0.3)
            # An invisible colour bar reserves the same width, so all panels share one time axis.
            fig.colorbar(ScalarMappable(), ax=ax, pad=0.01).ax.set_visible(False)
        ax.set_title(label, fontsize=9, loc="left")
    axes[-1].set_xlabel("frame")
    fig.suptitle(f"acoustic features of {utterance_id}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    return path


def _feature_columns(names: Sequence[str], utterance_id: str) -> dict[str, list[int]]:
    """Column indices per plotted feature, numbered rows (mfcc_1..) in numeric order."""
    norm = [re.sub(r"[\s\-]+", "_", n.strip().lower()) for n in names]

    def numbered(prefix: str) -> list[int]:
        found = [(int(m.group(1)), i) for i, n in enumerate(norm) if (m := re.fullmatch(prefix + r"_?(\d+)", n))]
        return [i for _, i in sorted(found)]

    def single(*aliases: str) -> list[int]:
        return [i for i, n in enumerate(norm) if n in aliases][:1]

    columns = {
        "chroma": numbered("chroma"),
        "zcr": single("zcr", "zero_crossing_rate"),
        "mfcc": numbered("mfcc"),
        "energy": single("energy"),
        "flux": single("spectral_flux", "flux"),
    }
    missing = [key for key, cols in columns.items() if not cols]
    if missing:
        raise ConfigError(f"feature example for {utterance_id!r} lacks {missing}; its columns are {list(names)}")
    return columns


def safe_name(text: str) -> str:
    """A file-name-safe form of a model or protocol name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "unnamed"
