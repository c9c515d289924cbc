"""An open-addressing hash table keyed by byte spans: the encoder's cache of pre-token ids.

Caching encodings needs "bytes -> small record" lookups at tens of millions per second
without creating Python strings (training counts with `count.py` and `counttable.py`).
Each row is one 64-byte cache line: [hash, first 8 bytes, next 8 bytes, length, arena
offset, v0, v1, spare].
Keys up to 16 bytes (nearly every pre-token) compare as three integers; longer keys also
compare their tail against the byte arena, which keeps every key for later extraction.
A table is the tuple (rows, arena, meta) with meta = [entries, arena bytes used]; keys
and hashes come from `spankey.span_key` / `span_hash`.
"""
import numpy as np
from numba import njit

from storytok.kernels.arrays import grown

HASH, K0, K1, LEN, OFF, V0, V1 = 0, 1, 2, 3, 4, 5, 6
ROW_WIDTH = 8
INLINE_PROBES = 4  # probes the hot loops make themselves before calling table_find


@njit(cache=True, nogil=True)
def table_new(capacity, arena_capacity):
    """capacity must be a power of two."""
    return (np.zeros((capacity, ROW_WIDTH), np.int64), np.zeros(max(arena_capacity, 64), np.uint8),
            np.zeros(2, np.int64))


@njit(cache=True, nogil=True)
def table_find(rows, arena, buf, s, e, h, k0, k1):
    """Row index holding buf[s:e], or -(row + 1) for the empty row where it would go."""
    mask = rows.shape[0] - 1
    n = e - s
    idx = h & mask
    while True:
        ln = rows[idx, LEN]
        if ln == 0:
            return -(idx + 1)
        if rows[idx, HASH] == h and ln == n and rows[idx, K0] == k0 and rows[idx, K1] == k1:
            if n <= 16:
                return idx
            off = rows[idx, OFF]
            same = True
            for i in range(16, n):
                if arena[off + i] != buf[s + i]:
                    same = False
                    break
            if same:
                return idx
        idx = (idx + 1) & mask


@njit(cache=True, nogil=True)
def _rehash(rows, new_capacity):
    new_rows = np.zeros((new_capacity, ROW_WIDTH), np.int64)
    mask = new_capacity - 1
    for r in range(rows.shape[0]):
        if rows[r, LEN] != 0:
            idx = rows[r, HASH] & mask
            while new_rows[idx, LEN] != 0:
                idx = (idx + 1) & mask
            new_rows[idx, :] = rows[r, :]
    return new_rows


@njit(cache=True, nogil=True)
def table_reserve(rows, arena, meta, n_bytes):
    """Room for one more entry of n_bytes: grows rows past half full and the arena when short."""
    if 2 * (meta[0] + 1) > rows.shape[0]:
        rows = _rehash(rows, rows.shape[0] * 2)
    return rows, grown(arena, meta[1], meta[1] + n_bytes)


@njit(cache=True, nogil=True)
def table_put(rows, arena, meta, buf, s, e, h, k0, k1, empty_row):
    """Store key buf[s:e] in the empty row table_find pointed at (after table_reserve)."""
    n = e - s
    off = meta[1]
    arena[off:off + n] = buf[s:e]
    meta[1] = off + n
    meta[0] += 1
    rows[empty_row, HASH] = h
    rows[empty_row, K0] = k0
    rows[empty_row, K1] = k1
    rows[empty_row, LEN] = n
    rows[empty_row, OFF] = off
    rows[empty_row, V0] = 0
    rows[empty_row, V1] = 0
