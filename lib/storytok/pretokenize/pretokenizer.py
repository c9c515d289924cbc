"""GPT-2 pre-tokenization: the `regex` reference and the Numba scanner behind one interface.

`regex_pretokens` is the definition; `scan_pretokens` is what storytok runs. Both take
plain text (special tokens are split off before either is called).
"""
from __future__ import annotations

import numpy as np
import regex

from functools import lru_cache

from storytok.kernels.scanner import ascii_classes, scan_spans
from storytok.pretokenize.unicode_classes import SPACE, class_table

GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
_GPT2_RE = regex.compile(GPT2_PATTERN)


def regex_pretokens(text: str) -> list[str]:
    """The reference: the GPT-2 pattern as the `regex` package runs it."""
    return _GPT2_RE.findall(text)


WORD_PADDING = 24


@lru_cache(maxsize=1)
def scanner_classes() -> np.ndarray:
    """The code point classes every scanning kernel takes, once checked against what the
    scanner builds in: its view of ASCII (its block masks do not look ASCII up) and
    whitespace chars of at most 3 bytes."""
    classes = class_table()
    if not np.array_equal(classes[:128], ascii_classes()):
        bad = int(np.flatnonzero(classes[:128] != ascii_classes())[0])
        raise RuntimeError(f"regex {regex.__version__} classes U+{bad:04X} unlike the scanner's ASCII rules; "
                           "storytok cannot run with this regex version")
    if (classes[0x10000:] == SPACE).any():  # the scanner's whitespace rule knows 1- to 3-byte chars only
        bad = 0x10000 + int(np.flatnonzero(classes[0x10000:] == SPACE)[0])
        raise RuntimeError(f"regex {regex.__version__} calls U+{bad:04X} whitespace, a 4-byte char the scanner "
                           "does not expect; storytok cannot run with this regex version")
    return classes


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
    starts, ends = scan_spans(buf, words, 0, len(data), scanner_classes())
    return [data[s:e].decode("utf-8") for s, e in zip(starts.tolist(), ends.tolist())]
