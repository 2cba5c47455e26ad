"""WordVectors: GloVe text parsing (exact values, headers, broken files) and the packaged GloVe 6B."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from emofusion.errors import ConfigError, TextError
from emofusion.features.word_vectors import WordVectors

SEVEN = """\
the 0.1 0.2 0.3 0.4
, 1 2 3 4
. -1e-3 2.5 0 7
of 0.5 -0.5 0.25 -0.25
café 9 8 7 6
n't 0 0 0 1
the 5 5 5 5
"""


def write(tmp_path, text, name="vectors.txt"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_small_file_exact_values(tmp_path):
    wv = WordVectors.load_glove_text(write(tmp_path, SEVEN))
    assert wv.words == ["the", ",", ".", "of", "café", "n't", "the"]
    assert wv.dim == 4 and len(wv) == 7
    assert wv.vectors.dtype == np.float32 and wv.vectors.shape == (7, 4)
    np.testing.assert_array_equal(wv.vectors[2], np.float32([-0.001, 2.5, 0, 7]))
    np.testing.assert_array_equal(wv.get("café"), np.float32([9, 8, 7, 6]))
    # A duplicated word: the first (most frequent) row wins.
    np.testing.assert_array_equal(wv.get("the"), np.float32([0.1, 0.2, 0.3, 0.4]))
    assert "n't" in wv and "cafe" not in wv and wv.get("cafe") is None


def test_get_returns_a_copy(tmp_path):
    wv = WordVectors.load_glove_text(write(tmp_path, SEVEN))
    wv.get("of")[:] = 100
    np.testing.assert_array_equal(wv.get("of"), np.float32([0.5, -0.5, 0.25, -0.25]))


def test_limit_keeps_first_rows(tmp_path):
    wv = WordVectors.load_glove_text(write(tmp_path, SEVEN), limit=3)
    assert wv.words == ["the", ",", "."]
    assert wv.vectors.shape == (3, 4)


@pytest.mark.parametrize("limit", [0, -1, 2.5, True])
def test_bad_limit(tmp_path, limit):
    with pytest.raises(ConfigError, match="limit"):
        WordVectors.load_glove_text(write(tmp_path, SEVEN), limit=limit)


def test_300d_file(tmp_path):
    matrix = np.random.default_rng(0).standard_normal((4, 300)).astype(np.float32)
    lines = [f"w{i} " + " ".join(repr(float(x)) for x in row) for i, row in enumerate(matrix)]
    wv = WordVectors.load_glove_text(write(tmp_path, "\n".join(lines) + "\n"))
    assert wv.dim == 300 and wv.words == ["w0", "w1", "w2", "w3"]
    np.testing.assert_array_equal(wv.vectors, matrix)  # repr round-trips float32 exactly


def test_more_rows_than_one_parse_block(tmp_path):
    n = 16384 * 2 + 5  # parse blocks hold 16384 rows: three blocks, the last partly filled
    path = write(tmp_path, "".join(f"w{i} {i} -{i}\n" for i in range(n)))
    wv = WordVectors.load_glove_text(path)
    assert len(wv) == n and wv.vectors.flags.c_contiguous
    expected = np.stack([np.arange(n), -np.arange(n)], axis=1).astype(np.float32)
    np.testing.assert_array_equal(wv.vectors, expected)
    assert wv.index[f"w{n - 1}"] == n - 1


def test_word2vec_header_is_skipped_and_checked(tmp_path):
    wv = WordVectors.load_glove_text(write(tmp_path, "2 3\nfoo 1 2 3\nbar 4 5 6\n"))
    assert wv.words == ["foo", "bar"]
    np.testing.assert_array_equal(wv.vectors, np.float32([[1, 2, 3], [4, 5, 6]]))
    with pytest.raises(TextError, match="header says 3 words but the file has 2"):
        WordVectors.load_glove_text(write(tmp_path, "3 3\nfoo 1 2 3\nbar 4 5 6\n", "short.txt"))


def test_words_with_spaces_take_all_leading_fields(tmp_path):
    text = "at 1 2\n. . . 3 4\nname@x.com is 5 6\n"
    wv = WordVectors.load_glove_text(write(tmp_path, text))
    assert wv.words == ["at", ". . .", "name@x.com is"]
    np.testing.assert_array_equal(wv.get(". . ."), np.float32([3, 4]))


def test_crlf_trailing_spaces_and_blank_lines(tmp_path):
    path = tmp_path / "crlf.txt"
    path.write_bytes(b"a 1 2 \r\n\r\nb 3 4\r\n\n")
    wv = WordVectors.load_glove_text(path)
    assert wv.words == ["a", "b"]
    np.testing.assert_array_equal(wv.vectors, np.float32([[1, 2], [3, 4]]))


def test_gzip_file(tmp_path):
    path = tmp_path / "v.txt.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("a 1 2\nb 3 4\n")
    assert WordVectors.load_glove_text(path).get("b").tolist() == [3.0, 4.0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty word-vector file"),
        ("\n \n", "empty word-vector file"),
        ("a 1 2\nb 3\n", r"vectors.txt:2: 1 values, expected 2 \(inconsistent dimension\)"),
        ("a 1 2\nb 3 4 5\n", r"vectors.txt:2: 3 values, expected 2 \(inconsistent dimension\)"),
        ("a 1 2\nb 3 x\n", r"vectors.txt:2: 'x' is not a number"),
        ("a 1 2\n\nb nan 1\n", r"vectors.txt:3: .*'b'.* inf or nan"),
        ("lonely\n", r"vectors.txt:1: a word with no vector values"),
        ("5 0\n", r"vectors.txt:1: header gives dimension 0"),
    ],
)
def test_broken_files_name_file_and_line(tmp_path, text, message):
    with pytest.raises(TextError, match=message):
        WordVectors.load_glove_text(write(tmp_path, text))


def test_invalid_utf8_names_line(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes(b"a 1 2\ncaf\xe9 3 4\n")
    with pytest.raises(TextError, match=r"latin1.txt:2: not valid UTF-8"):
        WordVectors.load_glove_text(path)


def test_missing_file(tmp_path):
    with pytest.raises(TextError, match="nope.txt: word-vector file not found"):
        WordVectors.load_glove_text(tmp_path / "nope.txt")
    with pytest.raises(TextError, match="no such file"):
        WordVectors.load(str(tmp_path / "nope.txt"))
    with pytest.raises(TextError, match="word-vector file not found"):
        WordVectors.load_glove_text(tmp_path)  # a directory


def test_load_spec_path(tmp_path):
    assert WordVectors.load(str(write(tmp_path, SEVEN))).words[:2] == ["the", ","]


def test_constructor_checks_shapes():
    with pytest.raises(TextError, match="2 words but 3 vectors"):
        WordVectors(["a", "b"], np.zeros((3, 2), dtype=np.float32))
    with pytest.raises(TextError, match="float32"):
        WordVectors(["a"], np.zeros((1, 2)))
    with pytest.raises(TextError, match="2-D"):
        WordVectors(["a"], np.zeros(2, dtype=np.float32))


def cosine(a, b):
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_default_is_real_glove_6b_50d():
    wv = WordVectors.load("glove-6b-50d")
    assert wv is WordVectors.load_default()  # cached per process
    assert len(wv) == 400000 and wv.dim == 50
    assert wv.words[:3] == ["the", ",", "."]
    # Published first values of GloVe 6B 50d "the".
    np.testing.assert_allclose(wv.get("the")[:3], [0.418, 0.24968, -0.41242], rtol=0, atol=1e-6)
    king, queen, banana = wv.get("king"), wv.get("queen"), wv.get("banana")
    assert cosine(king, queen) > 0.7 > cosine(king, banana)
    for token in ("n't", "'s", "'m", "'ve", "...", "--", "café"):
        assert token in wv
