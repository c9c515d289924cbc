"""GPT-2 pre-tokenization: the `regex` reference and the Numba scanner behind one interface.

`regex_pretokens` is the definition; `scan_pretokens` is what storytok runs. Both take
plain text (special tokens are split off before either is called).
"""
from __future__ import annotations

import numpy as np
import regex

from functools import lru_cache

from storytok.kernels.scanner import byte_kinds, scan_spans
from storytok.unicode_classes import class_table

GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
_GPT2_RE = regex.compile(GPT2_PATTERN)


def regex_pretokens(text: str) -> list[str]:
    """The reference: the GPT-2 pattern as the `regex` package runs it."""
    return _GPT2_RE.findall(text)


WORD_PADDING = 24


@lru_cache(maxsize=1)
def scanner_tables() -> tuple[np.ndarray, np.ndarray]:
    """(byte kinds, code point classes): what every scanning kernel takes."""
    classes = class_table()
    return byte_kinds(classes), classes


def padded_buffer(n: int) -> tuple[np.ndarray, np.ndarray]:
    """An 8-byte aligned buffer with room for n bytes plus padding: (bytes view, uint64 view).

    The kernels read keys as 8-byte words, possibly past the end of the text; the padding
    makes that safe without a bounds check per pre-token.
    """
    words = np.empty((n + WORD_PADDING) // 8 + 1, np.uint64)
    words[-4:] = 0
    return words.view(np.uint8), words


def text_buffer(data) -> tuple[np.ndarray, np.ndarray]:
    """data copied into a padded buffer (see padded_buffer)."""
    buf, words = padded_buffer(len(data))
    buf[:len(data)] = np.frombuffer(data, np.uint8)
    return buf, words


def scan_pretokens(text: str) -> list[str]:
    """The Numba scanner's pre-tokens, decoded back to str for comparison with the reference."""
    data = text.encode("utf-8")
    buf, words = text_buffer(data)
    starts, ends = scan_spans(buf, words, 0, len(data), *scanner_tables())
    return [data[s:e].decode("utf-8") for s, e in zip(starts.tolist(), ends.tolist())]
