"""Corpus readers and the CSV manifest: raw corpora in, :class:`~emofusion.records.Utterance` out.

One module per corpus (``iemocap``), plus ``manifest`` for the project's own CSV format, which
every later stage reads.
"""

from emofusion.corpora.iemocap import (
    ALL_UTTERANCE_COUNTS,
    PAPER_COUNTS,
    count_table,
    map_labels,
    read_iemocap,
    scan_iemocap,
    split_counts,
    verify_all_utterance_counts,
    verify_paper_counts,
)
from emofusion.corpora.manifest import MANIFEST_COLUMNS, read_manifest, write_manifest

__all__ = [
    "ALL_UTTERANCE_COUNTS",
    "MANIFEST_COLUMNS",
    "PAPER_COUNTS",
    "count_table",
    "map_labels",
    "read_iemocap",
    "read_manifest",
    "scan_iemocap",
    "split_counts",
    "verify_all_utterance_counts",
    "verify_paper_counts",
    "write_manifest",
]
