"""Emotion class sets and the label maps that turn corpus labels into them."""

from __future__ import annotations

from collections.abc import Iterable

from emofusion.errors import ConfigError

# The paper's four classes, in the order its Table 1 lists them.
PAPER_CLASSES: tuple[str, ...] = ("ang", "exc", "neu", "sad")

# Named label maps: corpus label -> class. Labels absent from a map are dropped (e.g. IEMOCAP
# `xxx`, `oth`, `fru`, `sur` for four-class work).
LABEL_MAPS: dict[str, dict[str, str]] = {
    # The paper: ang/exc/neu/sad, `hap` dropped.
    "paper4": {"ang": "ang", "exc": "exc", "neu": "neu", "sad": "sad"},
    # The common variant that merges happiness into excitement.
    "merge_hap4": {"ang": "ang", "exc": "exc", "hap": "exc", "neu": "neu", "sad": "sad"},
    # Six classes used by several IEMOCAP papers.
    "six": {"ang": "ang", "exc": "exc", "hap": "hap", "neu": "neu", "sad": "sad", "fru": "fru"},
}


def label_map(name: str) -> dict[str, str]:
    """Return the named label map (a copy, so callers may edit it)."""
    try:
        return dict(LABEL_MAPS[name])
    except KeyError:
        raise ConfigError(f"unknown label map {name!r}; choose one of {sorted(LABEL_MAPS)}") from None


def ordered_classes(labels: Iterable[str]) -> tuple[str, ...]:
    """The distinct classes among ``labels``: the paper's four first (in Table-1 order), then the
    others alphabetically. Every class list (a model's output order, report columns, count tables)
    is put in this order.

    >>> ordered_classes(["sad", "fru", "ang", "sad"])
    ('ang', 'sad', 'fru')
    """
    present = set(labels)
    return tuple([c for c in PAPER_CLASSES if c in present] + sorted(present - set(PAPER_CLASSES)))
