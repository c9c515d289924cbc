"""Pre-token counting: scan UTF-8 bytes and tally every pre-token, mostly inside the L2 cache.

Each counting thread owns a small front cache (FRONT_SETS sets of two 32-byte entries,
256 KB) for pre-tokens of up to 16 bytes. The first entry of a set is the one hit more
often since they came in (a second entry that overtakes it swaps places with it); a miss
evicts the second entry into the thread's spill buffer as a count record and takes its
place. So the few thousand words that make most of any text stay in the cache and cost
one probe of one cache line, while rare words and keys over 16 bytes go out as records.
The caller adds the records to the one shared count table (`counttable.py`, under a
lock) whenever the spill buffer fills; the kernel returns then, and again when its
segments are done. Memory is thus threads x (front + spill) plus one table of the
distinct pre-tokens, never a table per thread. (Four ways, bigger or smaller fronts, and
computing a group of keys ahead to prefetch their sets all measured slower.)

Records and entries share counttable's layout: [k0, k1 or arena offset, len | hash << 32, count].
"""
import numpy as np
from numba import njit

from storytok.kernels.counttable import COUNT, FIELDS, K0, K1, LEN_HASH
from storytok.kernels.scanner import scan_tokens
from storytok.kernels.intrinsics import load_u64
from storytok.kernels.spankey import _M1, _M2, _MASKS, finish_hash

TOKEN_BLOCK = 1 << 12          # pre-tokens per scan_tokens call
FRONT_SETS = 1 << 12           # front cache: 4096 sets x 2 ways x 32 B = 256 KB per thread
WAYS = 2                       # the set logic below is written out for two ways
SPILL_RECORDS = 1 << 15        # spill buffer: 1 MB of records per thread
SET_WIDTH = WAYS * FIELDS


def new_front() -> np.ndarray:
    return np.zeros(FRONT_SETS * SET_WIDTH, np.int64)


def new_spill() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(records, arena for the bytes of long keys, meta = [records used, arena bytes used])."""
    assert SPILL_RECORDS >= 2 * TOKEN_BLOCK, "count_pretokens needs room for a whole block of records"
    return np.zeros(SPILL_RECORDS * FIELDS, np.int64), np.zeros(1 << 16, np.uint8), np.zeros(2, np.int64)


@njit(cache=True, nogil=True)
def count_pretokens(buf, words, seg_starts, seg_ends, k, pos, classes, front, spill, spill_arena, spill_meta):
    """Count the pre-tokens of segments k.. (buf[seg_starts[k]:seg_ends[k]], ...), starting
    at pos inside segment k. Returns (k, pos, spill_arena) where counting stopped: k ==
    len(seg_starts) when every segment is done; otherwise the spill buffer is nearly full,
    and the caller empties it (spill_meta[:] = 0) and calls again with the returned k, pos.
    """
    starts = np.empty(TOKEN_BLOCK + 16, np.int64)
    set_mask = front.shape[0] // SET_WIDTH - 1
    cap = spill.shape[0] // FIELDS
    n_rec = spill_meta[0]
    used = spill_meta[1]
    n_seg = seg_starts.shape[0]
    while k < n_seg:
        end = seg_ends[k]
        while pos < end:
            if n_rec + TOKEN_BLOCK > cap:
                spill_meta[0] = n_rec
                spill_meta[1] = used
                return k, pos, spill_arena
            n_tok, nxt = scan_tokens(buf, words, pos, end, classes, starts)
            if used + (nxt - pos) > spill_arena.shape[0]:   # room for every long key of the block
                bigger = np.empty(max(2 * spill_arena.shape[0], used + (nxt - pos)), np.uint8)
                bigger[:used] = spill_arena[:used]
                spill_arena = bigger
            for t in range(n_tok):
                i = starts[t]
                n = starts[t + 1] - i
                # span_key's (hash, k0, k1) from unaligned loads; most pre-tokens fit in k0
                if n <= 8:
                    k0 = np.int64(load_u64(buf, i) & _MASKS[n])
                    k1 = np.int64(0)
                    h = (k0 ^ n) * _M1
                else:
                    k0 = np.int64(load_u64(buf, i))
                    k1 = np.int64(load_u64(buf, i + 8) & _MASKS[min(n - 8, 8)])
                    h = (k0 ^ (k1 * _M2) ^ n) * _M1
                if n <= 16:
                    h32 = finish_hash(h)
                    lh = n | (h32 << 32)
                    e = (h32 & set_mask) * SET_WIDTH
                    if front[e + LEN_HASH] == lh and front[e + K0] == k0 and front[e + K1] == k1:
                        front[e + COUNT] += 1
                    elif front[e + 6] == lh and front[e + 4] == k0 and front[e + 5] == k1:
                        c = front[e + 7] + 1
                        if c > front[e + COUNT]:               # the second way overtook the first: swap
                            front[e + 4] = front[e + K0]
                            front[e + 5] = front[e + K1]
                            front[e + 6] = front[e + LEN_HASH]
                            front[e + 7] = front[e + COUNT]
                            front[e + K0] = k0
                            front[e + K1] = k1
                            front[e + LEN_HASH] = lh
                            front[e + COUNT] = c
                        else:
                            front[e + 7] = c
                    else:                                      # a miss replaces the second way
                        if front[e + 6] != 0:
                            r = n_rec * FIELDS
                            for f in range(FIELDS):
                                spill[r + f] = front[e + 4 + f]
                            n_rec += 1
                        front[e + 4] = k0
                        front[e + 5] = k1
                        front[e + 6] = lh
                        front[e + 7] = 1
                else:
                    # span_hash_tail and a copy, written out: a call or a slice here would cost
                    # atomic reference counting per long pre-token
                    for b in range(i + 16, i + n):
                        h = (h ^ np.int64(buf[b])) * _M1
                    h = finish_hash(h)
                    for b in range(n):
                        spill_arena[used + b] = buf[i + b]
                    r = n_rec * FIELDS
                    spill[r + K0] = k0
                    spill[r + K1] = used
                    spill[r + LEN_HASH] = n | (h << 32)
                    spill[r + COUNT] = 1
                    used += n
                    n_rec += 1
            pos = nxt
        k += 1
        if k < n_seg:
            pos = seg_starts[k]
    spill_meta[0] = n_rec
    spill_meta[1] = used
    return k, pos, spill_arena
