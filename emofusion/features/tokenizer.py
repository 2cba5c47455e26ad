"""Split a transcript into the tokens GloVe was trained on.

GloVe 6B (and 840B) vectors were trained on text run through the Stanford PTB tokenizer, so a word is
only found if we cut the text the same way: contractions become two tokens (``don't`` -> ``do n't``,
``can't`` -> ``ca n't``, ``I'm`` -> ``i 'm``), punctuation stands alone, and ``...`` / ``--`` are
single tokens. Conversational transcripts (MELD, IEMOCAP) add typographic quotes (``must’ve``),
``…`` and em dashes, and sometimes cp1252 text mis-decoded as Latin-1 (``must\\x92ve``); all are mapped
to the ASCII forms GloVe knows before splitting.

Choices, each for the vocabulary's sake:

* Hyphenated words stay whole (``x-ray``, ``twenty-five`` are GloVe words; ``kl-5`` is simply OOV).
* Words with an inner apostrophe that is not a contraction stay whole (``o'clock``, ``ma'am``,
  ``c'mon``); a leading clitic ``'em``/``'cause``/``'til``/``'n``/``'90s`` stays attached.
* Given a ``vocab``, a word that is not in it gets a second chance, because dialogue is full of
  stutters and stretched words GloVe never saw: it is split at hyphens (``and-and`` ->
  ``and - and``, ``i'm-i`` -> ``i 'm - i``), split after a one-letter elision (``y'know`` ->
  ``y' know``) or has letter runs squeezed (``waaay`` -> ``way``) when that yields known words.
  Without a vocab the output depends on the text alone.
* Runs of two or more dots become ``...`` and runs of hyphens or any dash (— ― –) become ``--``;
  ``!!!`` and ``?!`` are split into single marks, so emphasis survives as repetition of a known token.
* Numbers keep inner separators (``1,000``, ``1.5``, ``3:30``, ``9/11``); ``$5`` and ``10%`` split.
* Titles and dotted abbreviations keep their dot (``mr.``, ``u.s.``, ``a.m.``), as in GloVe.
* Colloquial fusions are left alone (``gonna``, ``wanna``, ``gotta``, ``cannot`` are all in GloVe).
* Letters outside ASCII are kept (``café``); emoji and other symbols become one-character tokens that
  are usually OOV. Control and format characters (zero-width space, BOM, soft hyphen) are dropped.

Example:
    >>> tokenize("You must’ve had your hands full… I can't!!")
    ['you', 'must', "'ve", 'had', 'your', 'hands', 'full', '...', 'i', 'ca', "n't", '!', '!']
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Container

from emofusion.errors import TextError

__all__ = ["normalize", "tokenize"]


def _cp1252_c1_map() -> dict[int, str]:
    # U+0080..U+009F are C1 controls that never occur in real transcripts; when present they are
    # cp1252 bytes (’ “ ” … —) decoded as Latin-1. Undefined cp1252 bytes map to nothing.
    table: dict[int, str] = {}
    for code in range(0x80, 0xA0):
        try:
            table[code] = bytes([code]).decode("cp1252")
        except UnicodeDecodeError:
            table[code] = ""
    return table


_C1 = _cp1252_c1_map()

_TYPOGRAPHIC = str.maketrans(
    {
        "\u2018": "'",  # ‘
        "\u2019": "'",  # ’
        "\u201a": "'",  # ‚
        "\u201b": "'",  # ‛
        "\u2032": "'",  # ′
        "\u02bc": "'",  # ʼ modifier letter apostrophe
        "\u201c": '"',  # “
        "\u201d": '"',  # ”
        "\u201e": '"',  # „
        "\u201f": '"',  # ‟
        "\u2033": '"',  # ″
        "\u00ab": '"',  # «
        "\u00bb": '"',  # »
        "\u2026": "...",  # … (NFKC already does this; kept for clarity)
        "\u2014": " -- ",  # — em dash
        "\u2015": " -- ",  # ― horizontal bar
        "\u2013": " -- ",  # – en dash: in dialogue it marks a break, like the em dash
        "\u2212": "-",  # − minus sign
        "\u2010": "-",  # ‐ hyphen
        "\u2011": "-",  # ‑ non-breaking hyphen
    }
)

# Character categories removed outright: controls, format characters (zero-width, BOM, soft hyphen),
# surrogates (from surrogateescape decoding) and private-use code points.
_DROP_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co"})

_TITLES = "mr|mrs|ms|dr|st|jr|sr|vs|prof|etc"
_LETTER = r"[^\W\d_]"
_ALNUM = r"[^\W_]"
_NOT_ALNUM_NEXT = r"(?![^\W_])"

_TOKEN = re.compile(
    rf"""
      (?P<abbrev>(?:{_LETTER}\.){{2,}}{_NOT_ALNUM_NEXT})          # u.s.  a.m.  e.g.
    | (?P<title>(?i:{_TITLES})\.{_NOT_ALNUM_NEXT})                # mr.  dr.  etc.
    | (?P<clitic>'(?i:n'|em|cause|til|n|\d\ds){_NOT_ALNUM_NEXT})  # 'em  'cause  'n'  '90s
    | (?P<number>\d+(?:[.,:/]\d+)+)                               # 1,000  1.5  3:30  9/11
    | (?P<word>{_ALNUM}+(?:[-']{_ALNUM}+)*)                       # don't  x-ray  o'clock  café
    | (?P<dots>\.{{2,}})                                          # ..  ...  .....
    | (?P<dashes>-{{2,}})                                         # --  ---
    | (?P<other>\S)                                               # , ! ? " ' $ % 😊
    """,
    re.VERBOSE,
)

# A contraction suffix at the end of a word; peeled off repeatedly so "couldn't've" -> could n't 've.
_SUFFIX = re.compile(rf"^(.*{_ALNUM})((?i:n't|'s|'m|'d|'re|'ll|'ve))$")


def normalize(text: str) -> str:
    """Map mis-decoded cp1252, compatibility forms and typographic punctuation to plain forms.

    Case is untouched; dropping control/format characters joins what they separated (a soft hyphen
    inside a word must not split it).
    """
    text = text.translate(_C1)
    text = unicodedata.normalize("NFKC", text)
    text = text.translate(_TYPOGRAPHIC)
    return "".join(
        " " if ch.isspace() else ch
        for ch in text
        if ch.isspace() or unicodedata.category(ch) not in _DROP_CATEGORIES
    )


_LETTER_RUN = re.compile(r"([^\W\d_])\1{2,}")


def _peel_contractions(word: str) -> tuple[str, list[str]]:
    suffixes: list[str] = []
    while (m := _SUFFIX.match(word)) is not None:
        word, suffix = m.group(1), m.group(2)
        suffixes.append(suffix)
    return word, suffixes[::-1]


def _known_form(base: str, vocab: Container[str]) -> list[str]:
    """Split or squeeze an out-of-vocabulary ``base`` into known tokens; [base] if nothing helps."""
    if "-" in base:
        parts = base.split("-")
        out = _word_tokens(parts[0], vocab)
        for part in parts[1:]:
            out += ["-", *_word_tokens(part, vocab)]
        return out
    left, sep, right = base.partition("'")
    if sep and len(left) == 1 and left + sep in vocab and right in vocab:
        return [left + sep, right]
    for squeezed in (_LETTER_RUN.sub(r"\1\1", base), _LETTER_RUN.sub(r"\1", base)):
        if squeezed != base and squeezed in vocab:
            return [squeezed]
    return [base]


def _word_tokens(word: str, vocab: Container[str] | None) -> list[str]:
    base, suffixes = _peel_contractions(word)
    if vocab is not None and base not in vocab:
        return [*_known_form(base, vocab), *suffixes]
    return [base, *suffixes]


def tokenize(text: str, lowercase: bool = True, *, vocab: Container[str] | None = None) -> list[str]:
    """Split ``text`` into GloVe-style tokens; returns [] for text with nothing to tokenise.

    Arguments:
        text: one transcript.
        lowercase: lower-case every token (GloVe 6B is lower-cased; a cased vector file such as
            GloVe 840B wants False).
        vocab: the words the tokens will be looked up in (a set, or a WordVectors); enables the
            out-of-vocabulary fallbacks above. Tokens that stay unknown are returned unchanged.

    Raises:
        TextError: ``text`` is not a string (e.g. a missing CSV cell read as NaN or None).
    """
    if not isinstance(text, str):
        raise TextError(f"transcript must be a string, got {type(text).__name__}: {text!r}")
    text = normalize(text)
    if lowercase:
        text = text.lower()
    tokens: list[str] = []
    for m in _TOKEN.finditer(text):
        kind, token = m.lastgroup, m.group()
        if kind == "word":
            tokens.extend(_word_tokens(token, vocab))
        elif kind == "dots":
            tokens.append("...")
        elif kind == "dashes":
            tokens.append("--")
        else:
            tokens.append(token)
    return tokens
