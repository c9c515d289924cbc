"""Special tokens: found first, longest match wins, and the text between them is what gets pre-tokenized."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from storytok.errors import StorytokError
from storytok.kernels.specials import find_specials


class Matches(NamedTuple):
    """Special tokens found in a text: byte ranges [starts, ends) and which special (its id order)."""
    starts: np.ndarray
    ends: np.ndarray
    which: np.ndarray

    def upto(self, end: int) -> "Matches":
        """The matches that end at or before `end`."""
        k = int(np.searchsorted(self.ends, end, side="right"))
        return Matches(self.starts[:k], self.ends[:k], self.which[:k])


class SpecialMatcher:
    """Finds special tokens in padded UTF-8 buffers; specials are literal text, metacharacters included."""

    def __init__(self, special_tokens: list[str]):
        if not all(isinstance(t, str) and t for t in special_tokens):
            raise StorytokError(f"special tokens must be non-empty strings, got {list(special_tokens)!r}")
        self.tokens = list(dict.fromkeys(special_tokens))
        self.encoded = [t.encode("utf-8") for t in self.tokens]
        self.max_len = max((len(b) for b in self.encoded), default=0)
        order = sorted(range(len(self.encoded)), key=lambda i: -len(self.encoded[i]))
        self._order = np.array(order, np.int64)
        self._lens = np.array([len(self.encoded[i]) for i in order], np.int64)
        self._offs = np.concatenate([[0], np.cumsum(self._lens)[:-1]]).astype(np.int64) if order else np.zeros(0, np.int64)
        self._bytes = np.frombuffer(b"".join(self.encoded[i] for i in order) or b"\0", np.uint8)
        firsts = sorted({b[0] for b in self.encoded})
        self._first_words = np.array([0x0101010101010101 * f for f in firsts], np.uint64)

    def __bool__(self) -> bool:
        return bool(self.tokens)

    def find(self, buf: np.ndarray, words: np.ndarray, start: int, end: int) -> Matches:
        if not self.tokens:
            empty = np.zeros(0, np.int64)
            return Matches(empty, empty, empty)
        s, e, k = find_specials(buf, words, start, end, self._bytes, self._offs, self._lens,
                                self._first_words)
        return Matches(s, e, self._order[k])

    @staticmethod
    def segments(found: Matches, start: int, end: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(seg_starts, seg_ends, special_after): the text runs between specials, and which special
        follows each run (-1 after the last one). Empty runs are kept so every special has its
        run; the kernels skip them at no cost."""
        seg_starts = np.concatenate([[start], found.ends]).astype(np.int64)
        seg_ends = np.concatenate([found.starts, [end]]).astype(np.int64)
        after = np.concatenate([found.which, [-1]]).astype(np.int64)
        return seg_starts, seg_ends, after
