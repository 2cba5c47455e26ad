"""A timeline you can see: one lane per speaker along the time axis, segments coloured by emotion.

    >>> plot_timeline(build_timeline(rec, "call.wav"), "timeline.png")   # doctest: +SKIP

Each segment is a bar in its speaker's lane (one lane, "speech", when speakers were not told
apart), coloured by its label with its confidence (top probability) as opacity, so an unsure 40%
segment is pale and a sure 95% one solid; a segment without a label is grey and hatched. The
colours are the web page's (service/static/app.js ``CLASS_COLOURS``), so both views read alike.
Drawn with matplotlib's Agg backend (no display needed).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from emofusion.fileio import write_atomic

if TYPE_CHECKING:
    from emofusion.inference.timeline import Timeline

# The page's colours (service/static/app.js CLASS_COLOURS); other classes take FALLBACK in order.
CLASS_COLOURS = {
    "ang": "#d64541", "exc": "#f2a600", "hap": "#f2a600", "neu": "#8a94a6", "sad": "#3b6fd6",
    "fru": "#a04ad6", "sur": "#26a69a", "fea": "#6d4c41", "dis": "#5b8c3a",
}
FALLBACK_COLOURS = ["#26a69a", "#a04ad6", "#6d4c41", "#5b8c3a", "#e67e22"]
UNLABELLED = "#c5cbd5"
MIN_ALPHA = 0.2  # a segment at chance level stays visible
NAMES = {"ang": "anger", "exc": "excitement", "hap": "happiness", "neu": "neutral", "sad": "sadness"}


def colour_of(label: str, labels: tuple[str, ...]) -> str:
    if label in CLASS_COLOURS:
        return CLASS_COLOURS[label]
    return FALLBACK_COLOURS[max(0, labels.index(label) if label in labels else 0) % len(FALLBACK_COLOURS)]


def lanes_of(timeline: "Timeline") -> list[str]:
    """Lane names, top to bottom: the speakers in order of first appearance, or one "speech" lane."""
    speakers = [p.speaker for p in timeline.speakers]
    if any(s.speaker is None for s in timeline.segments) or not speakers:
        speakers.append("speech")
    return speakers


def plot_timeline(timeline: "Timeline", out: Path | str, *, title: str | None = None) -> Path:
    """Draw ``timeline`` into ``out`` (.png, .svg or .pdf, by its suffix); returns the path.

    Arguments:
        timeline: a `Timeline` from `build_timeline`.
        out: the image file to write (written whole or not at all).
        title: shown above the lanes (e.g. the recording's name).

    Returns:
        ``out`` as a Path.
    """
    out = Path(out)
    figure = draw_timeline(timeline, title=title)
    fmt = out.suffix.lower().lstrip(".") or "png"
    write_atomic(out, lambda f: figure.savefig(f, format=fmt), mode="wb")
    return out


def draw_timeline(timeline: "Timeline", *, title: str | None = None):
    """The matplotlib Figure `plot_timeline` saves: one axes, one bar collection per segment in time
    order, lanes as y ticks."""
    from matplotlib.figure import Figure  # a bare Figure draws with Agg: no pyplot, no display
    from matplotlib.patches import Patch

    labels = tuple(timeline.probabilities) if timeline.probabilities else tuple(
        dict.fromkeys(c for s in timeline.segments for c in (s.probabilities or {})))
    lanes = lanes_of(timeline)
    figure = Figure(figsize=(max(8.0, min(20.0, timeline.duration / 6)), 1.2 + 0.6 * len(lanes)), dpi=120)
    axes = figure.add_subplot()
    for s in timeline.segments:
        lane = lanes.index(s.speaker if s.speaker is not None else "speech")
        if s.label is None:
            axes.broken_barh([(s.start, s.duration)], (lane - 0.35, 0.7), facecolor=UNLABELLED, hatch="///",
                             edgecolor="#8a94a6", linewidth=0.5)
            continue
        confidence = max(s.probabilities.values())
        axes.broken_barh([(s.start, s.duration)], (lane - 0.35, 0.7), facecolor=colour_of(s.label, labels),
                         alpha=max(MIN_ALPHA, confidence), edgecolor="white", linewidth=1.0)  # turns apart
    axes.set_yticks(range(len(lanes)), lanes)
    axes.set_ylim(len(lanes) - 0.5, -0.5)  # the first speaker on top
    axes.set_xlim(0, max(timeline.duration, 1e-3))
    axes.set_xlabel("time (s)")
    axes.grid(axis="x", color="#e7eaef", linewidth=0.8)
    axes.set_axisbelow(True)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    handles = [Patch(facecolor=colour_of(c, labels), label=f"{c} ({NAMES[c]})" if c in NAMES else c) for c in labels]
    if any(s.label is None for s in timeline.segments):
        handles.append(Patch(facecolor=UNLABELLED, hatch="///", edgecolor="#8a94a6", label="no label"))
    if handles:
        axes.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False,
                    title="emotion (opacity: confidence)", title_fontsize="small", fontsize="small")
    heading = title or "emotion timeline"
    if timeline.label is not None:
        heading += f": overall {timeline.label}"
    axes.set_title(heading, loc="left", fontsize="medium")
    if not timeline.segments:
        axes.text(0.5, 0.5, timeline.note or "no speech found", transform=axes.transAxes, ha="center", va="center")
    figure.tight_layout()
    return figure
