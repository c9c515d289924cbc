"""Open addressing over token pairs, for the merge loop's pair counts and the encoder's merge ranks.

A pair (left, right) of token ids is one int64 key, left << 32 | right; -1 marks an empty slot.
"""
import numpy as np
from numba import njit


@njit(cache=True, nogil=True, inline="always")
def pair_slot(keys, key):
    """Slot of key in the table, or the empty slot where it would go. len(keys) is a power of two."""
    mask = keys.shape[0] - 1
    h = key * np.int64(-7046029254386353131)
    idx = ((h >> 32) ^ h) & mask
    while keys[idx] != -1 and keys[idx] != key:
        idx = (idx + 1) & mask
    return idx
