"""The table every pre-token count ends in: one per training run, 32 bytes per distinct key.

Counting threads tally the frequent pre-tokens in small caches of their own
(`count.py`) and hand everything else over as count records; this table sums the records
of all threads, so it holds each distinct pre-token once, whatever the number of threads.
A record and a row have the same four int64 fields:

    [first 8 bytes, next 8 bytes (or, past 16 bytes, the offset of the key in an arena),
     length | hash << 32, count]

Keys of up to 16 bytes live in the row itself; longer ones in the table's byte arena. An
empty row has field 2 == 0 (no key is empty). Records come in batches, and the rows they
will touch are prefetched a few records ahead: past a few thousand keys the table
outgrows the caches and each row is a memory access.
"""
import numpy as np
from numba import njit

from storytok.kernels.arrays import grown
from storytok.kernels.intrinsics import prefetch

FIELDS = 4
K0, K1, LEN_HASH, COUNT = 0, 1, 2, 3
AHEAD = 16              # records between prefetching a row and using it
MAX_LOAD_NUM, MAX_LOAD_DEN = 5, 8   # grow past 5/8 full


def count_table_new(capacity: int):
    """(rows, arena, meta) with room for capacity keys; meta = [keys, arena bytes used].
    Plain NumPy: one kernel fewer to load when a process starts."""
    cap = 1024
    while cap * MAX_LOAD_NUM < capacity * MAX_LOAD_DEN:
        cap *= 2
    return np.zeros(cap * FIELDS, np.int64), np.zeros(1 << 16, np.uint8), np.zeros(2, np.int64)


@njit(cache=True, nogil=True)
def _rehash(rows, new_cap):
    out = np.zeros(new_cap * FIELDS, np.int64)
    mask = new_cap - 1
    for r in range(rows.shape[0] // FIELDS):
        lh = rows[r * FIELDS + LEN_HASH]
        if lh != 0:
            idx = (lh >> 32) & mask
            while out[idx * FIELDS + LEN_HASH] != 0:
                idx = (idx + 1) & mask
            for f in range(FIELDS):
                out[idx * FIELDS + f] = rows[r * FIELDS + f]
    return out


@njit(cache=True, nogil=True)
def count_table_add(rows, arena, meta, recs, rec_arena, n, rec_bytes):
    """Add the first n records of recs (flat, FIELDS per record; long keys' bytes in
    rec_arena[:rec_bytes]) to the table; returns the (possibly regrown) rows and arena.

    Both grow before the loop, never inside it: an array reassigned in a loop costs an
    atomic reference count update per iteration."""
    if meta[1] + rec_bytes > arena.shape[0]:
        arena = grown(arena, meta[1], meta[1] + rec_bytes)
    cap = rows.shape[0] // FIELDS
    if (meta[0] + n) * MAX_LOAD_DEN > cap * MAX_LOAD_NUM:
        new_cap = cap
        while (meta[0] + n) * MAX_LOAD_DEN > new_cap * MAX_LOAD_NUM:
            new_cap *= 2
        rows = _rehash(rows, new_cap)
        cap = new_cap
    mask = cap - 1
    for r in range(min(AHEAD, n)):
        prefetch(rows, ((recs[r * FIELDS + LEN_HASH] >> 32) & mask) * FIELDS)
    for r in range(n):
        if r + AHEAD < n:
            prefetch(rows, ((recs[(r + AHEAD) * FIELDS + LEN_HASH] >> 32) & mask) * FIELDS)
        base = r * FIELDS
        lh = recs[base + LEN_HASH]
        if lh == 0:
            continue                   # an empty entry (a front cache is added as it is)
        k0 = recs[base + K0]
        k1 = recs[base + K1]
        ln = lh & 0xFFFFFFFF
        idx = (lh >> 32) & mask
        while True:
            row = idx * FIELDS
            rlh = rows[row + LEN_HASH]
            if rlh == 0:
                rows[row + K0] = k0
                rows[row + LEN_HASH] = lh
                rows[row + COUNT] = recs[base + COUNT]
                if ln <= 16:
                    rows[row + K1] = k1
                else:
                    off = meta[1]
                    for b in range(ln):            # a loop, not a slice: no reference counting
                        arena[off + b] = rec_arena[k1 + b]
                    meta[1] = off + ln
                    rows[row + K1] = off
                meta[0] += 1
                break
            if rlh == lh and rows[row + K0] == k0:
                if ln <= 16:
                    if rows[row + K1] == k1:
                        rows[row + COUNT] += recs[base + COUNT]
                        break
                else:
                    off = rows[row + K1]
                    same = True
                    for i in range(8, ln):
                        if arena[off + i] != rec_arena[k1 + i]:
                            same = False
                            break
                    if same:
                        rows[row + COUNT] += recs[base + COUNT]
                        break
            idx = (idx + 1) & mask
    return rows, arena


@njit(cache=True, nogil=True)
def count_table_extract(rows, arena, meta):
    """Every key with its count: (bytes back to back as uint8, starts (n + 1), counts).

    Keys come in row order, which depends on insertion order; whoever uses them must not
    depend on the order (the merge loop does not)."""
    n = meta[0]
    starts = np.zeros(n + 1, np.int64)
    counts = np.empty(n, np.int64)
    total = 0
    k = 0
    for r in range(rows.shape[0] // FIELDS):
        lh = rows[r * FIELDS + LEN_HASH]
        if lh != 0:
            total += lh & 0xFFFFFFFF
            k += 1
            starts[k] = total
    data = np.empty(total, np.uint8)
    k = 0
    for r in range(rows.shape[0] // FIELDS):
        row = r * FIELDS
        lh = rows[row + LEN_HASH]
        if lh == 0:
            continue
        ln = lh & 0xFFFFFFFF
        s = starts[k]
        counts[k] = rows[row + COUNT]
        if ln <= 16:
            k0 = rows[row + K0]
            k1 = rows[row + K1]
            for i in range(min(ln, 8)):
                data[s + i] = (k0 >> (8 * i)) & 0xFF
            for i in range(8, ln):
                data[s + i] = (k1 >> (8 * (i - 8))) & 0xFF
        else:
            off = rows[row + K1]
            for b in range(ln):
                data[s + b] = arena[off + b]
        k += 1
    return data, starts, counts
