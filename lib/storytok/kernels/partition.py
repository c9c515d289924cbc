"""Which of n partitions each byte span belongs to: a hash of its bytes, for spreading
pre-token counts over reducers (storytok.engines.counts)."""
from __future__ import annotations

import numpy as np
from numba import njit

_FNV_OFFSET = np.uint64(14695981039346656037)
_FNV_PRIME = np.uint64(1099511628211)
_MIX = np.uint64(0xFF51AFD7ED558CCD)


@njit(cache=True, nogil=True)
def span_partitions(data, starts, n_parts):
    """out[k] in [0, n_parts): FNV-1a of data[starts[k]:starts[k + 1]], its bits mixed
    (murmur's finalizer step) so that the low bits a modulo keeps depend on every byte."""
    n = starts.size - 1
    out = np.empty(n, np.int64)
    m = np.uint64(n_parts)
    for k in range(n):
        h = _FNV_OFFSET
        for j in range(starts[k], starts[k + 1]):
            h = (h ^ np.uint64(data[j])) * _FNV_PRIME
        h ^= h >> np.uint64(33)
        h *= _MIX
        h ^= h >> np.uint64(33)
        out[k] = np.int64(h % m)
    return out
