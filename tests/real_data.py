"""Where the tests find real recordings: ../shared/data beside the checkout (CI has it), else the
four RAVDESS clips bundled in examples/ (examples/README.md), so tests of real speech run anywhere."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
EXAMPLES = REPO / "examples"
EXAMPLE_CLIPS = {"ang": "angry.flac", "exc": "happy.flac", "neu": "neutral.flac", "sad": "sad.flac"}
EXAMPLE_TRANSCRIPT = "Kids are talking by the door."  # what every example clip says


def ravdess_clip(path: str, example: str) -> Path:
    """../shared/data/ravdess/<path> when present, else examples/<example>."""
    shared = SHARED_DATA / "ravdess" / path
    return shared if shared.is_file() else EXAMPLES / example
