"""GPT-2 pre-tokenization: the `regex` reference and the Numba scanner behind one interface.

`regex_pretokens` is the definition; `scan_pretokens` is what storytok runs. Both take
plain text (special tokens are split off before either is called).
"""
from __future__ import annotations

import numpy as np
import regex

from functools import lru_cache

from storytok.kernels.scanner import byte_kinds, first_invalid_utf8, scan_spans
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


def text_buffer(data) -> tuple[np.ndarray, np.ndarray]:
    """data copied into a zero-padded, 8-byte aligned buffer: (bytes view, uint64 view).

    The kernels read keys as 8-byte words, possibly past the end of the text; the padding
    makes that safe without a bounds check per pre-token.
    """
    n = len(data)
    words = np.zeros((n + WORD_PADDING) // 8 + 1, np.uint64)
    buf = words.view(np.uint8)
    buf[:n] = np.frombuffer(data, np.uint8)
    return buf, words


def scan_pretokens(text: str) -> list[str]:
    """The Numba scanner's pre-tokens, decoded back to str for comparison with the reference."""
    data = text.encode("utf-8")
    buf, words = text_buffer(data)
    starts, ends = scan_spans(buf, words, 0, len(data), *scanner_tables())
    return [data[s:e].decode("utf-8") for s, e in zip(starts.tolist(), ends.tolist())]


def utf8_error_offset(buf: np.ndarray, start: int = 0, end: int | None = None) -> int:
    """Byte offset of the first invalid UTF-8 sequence in buf[start:end], or -1 if it is all valid."""
    return int(first_invalid_utf8(buf, start, len(buf) if end is None else end))
