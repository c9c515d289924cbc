"""Encoding of given pre-token spans with a merge table, without the encoder's cache.

The kernel behind `storytok.kernels.api.encode_spans`: callers that bring their own
pre-token spans get exact ids from the same BPE step the encoder runs on a cache miss.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from storytok.kernels.bpe_encode import bpe_word


@njit(cache=True, nogil=True)
def encode_spans(buf, starts, ends, byte_ids, mkey, mrank, mnew):
    """Ids of the pre-tokens buf[starts[k]:ends[k]], back to back (int64)."""
    n = starts.shape[0]
    total = 0
    longest = 1
    for k in range(n):
        m = ends[k] - starts[k]
        total += m
        longest = max(longest, m)
    out = np.empty(total, np.int64)
    parts = np.empty(longest, np.int64)
    ranks = np.empty(longest, np.int64)
    o = 0
    for k in range(n):
        m = bpe_word(buf, starts[k], ends[k], byte_ids, mkey, mrank, mnew, parts, ranks)
        for i in range(m):
            out[o + i] = parts[i]
        o += m
    return out[:o]
