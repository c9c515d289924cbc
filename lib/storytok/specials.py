"""Special tokens: found first, longest match wins, and the text between them is what gets pre-tokenized.

Matching runs on bytes with Python's `re` (a literal alternation, longest first), whose
literal search is fast enough that the kernels only ever see the resulting spans.
"""
from __future__ import annotations

import re

import numpy as np


class SpecialMatcher:
    """Finds special tokens in UTF-8 bytes; specials are literal text, metacharacters included."""

    def __init__(self, special_tokens: list[str]):
        self.tokens = list(dict.fromkeys(special_tokens))
        self.encoded = [t.encode("utf-8") for t in self.tokens]
        self.max_len = max((len(b) for b in self.encoded), default=0)
        ordered = sorted(self.encoded, key=len, reverse=True)
        self._re = re.compile(b"|".join(re.escape(b) for b in ordered)) if ordered else None
        self._index = {b: i for i, b in enumerate(self.encoded)}

    def __bool__(self) -> bool:
        return self._re is not None

    def matches(self, data, start: int = 0, end: int | None = None) -> list[tuple[int, int, int]]:
        """[(start, end, special index)] of every special in data[start:end], left to right."""
        if self._re is None:
            return []
        end = len(data) if end is None else end
        return [(m.start(), m.end(), self._index[m.group()]) for m in self._re.finditer(data, start, end)]

    def segments(self, data, start: int = 0, end: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(seg_starts, seg_ends, special_after): the text runs between specials, and the index of
        the special that follows each run (-1 after the last one). Empty runs are kept so every
        special has its run; the kernels skip them at no cost."""
        end = len(data) if end is None else end
        found = self.matches(data, start, end)
        n = len(found) + 1
        starts = np.empty(n, np.int64)
        ends = np.empty(n, np.int64)
        after = np.full(n, -1, np.int64)
        pos = start
        for k, (s, e, idx) in enumerate(found):
            starts[k], ends[k], after[k] = pos, s, idx
            pos = e
        starts[-1], ends[-1] = pos, end
        return starts, ends, after
