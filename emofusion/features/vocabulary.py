"""Transcripts -> token ids, plus the frozen embedding table a text model looks them up in.

The paper feeds (500, 300) GloVe matrices to its text networks. Storing that matrix per utterance is
wasteful, so a Vocabulary instead keeps the corpus's words and their rows of the pretrained
vectors (the text *network* is `emofusion.models.text.TextEncoder`): ``encode`` gives ids, and the model's frozen ``nn.Embedding`` built from
``embedding_matrix`` turns ids into exactly the GloVe vectors the paper used.

The vocabulary is every word of the training texts that has a pretrained vector, plus the
``extra_vocab`` most frequent words of the vector file, so a shipped model still knows common words its
training set never contained. Words are ordered by their row in the vector file (frequency order for
GloVe), which makes the vocabulary independent of the order of the texts. Id 0 is padding and id 1
stands for any out-of-vocabulary word; both rows are zero.

OOV policy (``TextConfig.oov``):

* ``"zero"`` (default): an unknown word keeps its position as id 1, a zero vector, so the sequence
  length and word order the LSTM sees match the transcript.
* ``"drop"``: unknown words are removed, as many GloVe pipelines do.

Truncation to ``max_tokens`` happens after the OOV policy and keeps the first tokens.

Example:
    >>> wv = WordVectors(["the", "cat"], np.array([[1, 2], [3, 4]], dtype=np.float32))
    >>> vocab = Vocabulary.build(["The cat!"], wv, TextConfig(extra_vocab=0))
    >>> vocab.words, vocab.encode("the dog cat").tolist()
    (['<pad>', '<unk>', 'the', 'cat'], [2, 1, 3])
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from emofusion.errors import ConfigError, TextError
from emofusion.features.tokenizer import tokenize
from emofusion.features.word_vectors import DEFAULT_VECTORS, WordVectors

__all__ = ["OOV_POLICIES", "TextConfig", "Vocabulary"]

OOV_POLICIES = ("zero", "drop")

_VOCAB_FILE = "text_vocab.json"
_MATRIX_FILE = "text_embedding.safetensors"
_MATRIX_KEY = "embedding"
_FORMAT = 1


@dataclass(frozen=True)
class TextConfig:
    """How transcripts become ids. The paper uses GloVe 300-d and 500 tokens.

    Arguments:
        vectors: ``"glove-6b-50d"`` (offline default) or a path to a GloVe text file.
        max_tokens: longest sequence kept; longer transcripts lose their tail.
        lowercase: lower-case tokens (GloVe 6B is lower-cased).
        oov: ``"zero"`` or ``"drop"``, see the module docstring.
        extra_vocab: how many of the vector file's first (most frequent) words to add.
    """

    vectors: str = DEFAULT_VECTORS
    max_tokens: int = 500
    lowercase: bool = True
    oov: str = "zero"
    extra_vocab: int = 20000

    def __post_init__(self) -> None:
        if not isinstance(self.vectors, str) or not self.vectors.strip():
            raise ConfigError(f"text vectors must be a name or path, got {self.vectors!r}")
        if not _is_int(self.max_tokens) or self.max_tokens < 1:
            raise ConfigError(f"text max_tokens must be a positive integer, got {self.max_tokens!r}")
        if not isinstance(self.lowercase, bool):
            raise ConfigError(f"text lowercase must be true or false, got {self.lowercase!r}")
        if self.oov not in OOV_POLICIES:
            raise ConfigError(f"text oov must be one of {OOV_POLICIES}, got {self.oov!r}")
        if not _is_int(self.extra_vocab) or self.extra_vocab < 0:
            raise ConfigError(
                f"text extra_vocab must be a non-negative integer, got {self.extra_vocab!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TextConfig:
        """Build from a mapping; missing keys take defaults, unknown keys are an error."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"text config must be a mapping, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown text config keys {unknown}; known: {sorted(known)}")
        return cls(**data)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class Vocabulary:
    """A vocabulary with its embedding rows; see the module docstring.

    Arguments:
        config: the TextConfig it was built with.
        words: ``["<pad>", "<unk>", w2, w3, ...]``, unique.
        embedding_matrix: (len(words), D) float32 with rows 0 and 1 zero.
    """

    PAD = 0
    OOV = 1
    PAD_WORD = "<pad>"
    OOV_WORD = "<unk>"

    def __init__(self, config: TextConfig, words: list[str], embedding_matrix: np.ndarray):
        if words[:2] != [self.PAD_WORD, self.OOV_WORD]:
            raise TextError(f"vocabulary must start with {self.PAD_WORD!r}, {self.OOV_WORD!r}")
        if len(set(words)) != len(words):
            raise TextError("vocabulary has duplicate words")
        matrix = np.asarray(embedding_matrix)
        if matrix.dtype != np.float32 or matrix.ndim != 2 or matrix.shape[0] != len(words):
            raise TextError(
                f"embedding matrix must be float32 of shape ({len(words)}, D), "
                f"got {matrix.dtype} {matrix.shape}"
            )
        if matrix[: self.OOV + 1].any():
            raise TextError("embedding rows 0 (<pad>) and 1 (<unk>) must be zero")
        self.config = config
        self.words = list(words)
        self._matrix = matrix
        self._ids = {word: i for i, word in enumerate(self.words)}

    @classmethod
    def build(
        cls,
        texts: Iterable[str],
        vectors: WordVectors | None = None,
        config: TextConfig | None = None,
    ) -> Vocabulary:
        """Vocabulary from ``texts`` (the training transcripts) and rows of ``vectors``.

        ``vectors`` defaults to ``WordVectors.load(config.vectors)``.
        """
        config = config or TextConfig()
        if vectors is None:
            vectors = WordVectors.load(config.vectors)
        index = vectors.index
        # A word listed twice in the vector file keeps only its first row (the one lookups use).
        top = range(min(config.extra_vocab, len(vectors)))
        rows: set[int] = {r for r in top if index[vectors.words[r]] == r}
        for i, text in enumerate(texts):
            for token in _tokens(text, config, vectors, i):
                row = index.get(token)
                if row is not None:
                    rows.add(row)
        ordered = sorted(rows)
        words = [cls.PAD_WORD, cls.OOV_WORD, *(vectors.words[r] for r in ordered)]
        matrix = np.zeros((len(words), vectors.dim), dtype=np.float32)
        if ordered:
            matrix[2:] = vectors.vectors[np.asarray(ordered)]
        return cls(config, words, matrix)

    @property
    def embedding_matrix(self) -> np.ndarray:
        """(vocab_size, D) float32; row i is the vector of ``words[i]``."""
        return self._matrix

    @property
    def vocab_size(self) -> int:
        return len(self.words)

    @property
    def dim(self) -> int:
        return int(self._matrix.shape[1])

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, text: str) -> np.ndarray:
        """int64 ids of ``text``, at most ``max_tokens`` long.

        Raises:
            TextError: empty transcript, or (with ``oov="drop"``) no word of it is known.
        """
        tokens = _tokens(text, self.config, self._ids)
        if not tokens:
            raise TextError(f"empty transcript: {_preview(text)} has no tokens")
        ids = [self._ids.get(token, self.OOV) for token in tokens]
        if self.config.oov == "drop":
            ids = [i for i in ids if i != self.OOV]
            if not ids:
                raise TextError(f"no known words in transcript {_preview(text)} (oov='drop')")
        return np.asarray(ids[: self.config.max_tokens], dtype=np.int64)

    def encode_many(self, texts: Iterable[str]) -> list[np.ndarray]:
        """``encode`` each text; an error names the position of the bad text."""
        out = []
        for i, text in enumerate(texts):
            try:
                out.append(self.encode(text))
            except TextError as err:
                raise TextError(f"text {i}: {err}") from None
        return out

    def oov_rate(self, texts: Iterable[str]) -> float:
        """Fraction of all tokens of ``texts`` (before truncation) that are not in the vocabulary."""
        total = unknown = 0
        for i, text in enumerate(texts):
            for token in _tokens(text, self.config, self._ids, i):
                total += 1
                unknown += token not in self._ids
        if total == 0:
            raise TextError("oov_rate: the texts contain no tokens")
        return unknown / total

    def state(self) -> dict[str, Any]:
        """JSON-able part of the vocabulary: config and vocabulary (the matrix is in ``tensors``)."""
        return {"format": _FORMAT, "config": self.config.to_dict(), "words": list(self.words)}

    def tensors(self) -> dict[str, np.ndarray]:
        return {_MATRIX_KEY: self._matrix}

    @classmethod
    def from_state(cls, state: Mapping[str, Any], tensors: Mapping[str, np.ndarray]) -> Vocabulary:
        """Inverse of ``state()`` / ``tensors()``."""
        if not isinstance(state, Mapping) or state.get("format") != _FORMAT:
            raise TextError(f"vocabulary state must be a mapping with format {_FORMAT}")
        words = state.get("words")
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            raise TextError("vocabulary state: 'words' must be a list of strings")
        if _MATRIX_KEY not in tensors:
            raise TextError(f"vocabulary tensors: missing {_MATRIX_KEY!r}")
        return cls(TextConfig.from_dict(state.get("config", {})), words, tensors[_MATRIX_KEY])

    def save(self, directory: str | Path) -> None:
        """Write ``text_vocab.json`` and ``text_embedding.safetensors`` into ``directory``."""
        from safetensors.numpy import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / _VOCAB_FILE).write_text(
            json.dumps(self.state(), ensure_ascii=False), encoding="utf-8"
        )
        save_file({_MATRIX_KEY: np.ascontiguousarray(self._matrix)}, str(directory / _MATRIX_FILE))

    @classmethod
    def load(cls, directory: str | Path) -> Vocabulary:
        """Read what ``save`` wrote; errors name the file."""
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        directory = Path(directory)
        vocab_path, matrix_path = directory / _VOCAB_FILE, directory / _MATRIX_FILE
        for needed in (vocab_path, matrix_path):
            if not needed.is_file():
                raise TextError(f"{needed}: vocabulary file not found")
        try:
            state = json.loads(vocab_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise TextError(f"{vocab_path}: not valid JSON ({err})") from None
        try:
            tensors = load_file(str(matrix_path))
        except (SafetensorError, OSError) as err:
            raise TextError(f"{matrix_path}: not a safetensors file ({err})") from None
        try:
            return cls.from_state(state, tensors)
        except (TextError, ConfigError) as err:
            raise TextError(f"{directory}: {err}") from None


def _tokens(text: str, config: TextConfig, vocab: Any, position: int | None = None) -> list[str]:
    try:
        return tokenize(text, config.lowercase, vocab=vocab)
    except TextError as err:
        raise TextError(err if position is None else f"text {position}: {err}") from None


def _preview(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")
