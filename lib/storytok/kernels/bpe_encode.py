"""Encoding: scan pre-tokens, look each up in a cache of earlier encodings, run BPE on a miss.

TinyStories uses few distinct words, so after the first megabytes nearly every pre-token
is a cache hit and encoding costs one scan plus one hash probe per pre-token. A miss
applies the merges by rank (lowest first, leftmost on ties), as GPT-2 and tiktoken do.
"""
import numpy as np
from numba import njit

from storytok.kernels.arrays import grown
from storytok.kernels.pairtable import pair_slot
from storytok.kernels.scanner import scan_tokens
from storytok.kernels.spankey import finish_hash, load8, low_bytes_mask, span_hash_tail, span_key
from storytok.kernels.spantable import INLINE_PROBES, K0, K1, LEN, V0, V1, table_find, table_put, table_reserve

NO_RANK = np.int64(1) << 62
LONG_WORD = 64                # from this length on, BPE uses a heap instead of rescanning
MAX_CACHED_LEN = 256          # longer pre-tokens are encoded every time
MAX_CACHE_ENTRIES = 1 << 14   # per thread (rows of 64 B at half load: 2 MB); past it new words are encoded, not cached
TOKEN_BLOCK = 1 << 14
FRONT_BITS = 13               # front cache: 8192 slots of 16 B (128 KB: stays in L2)
_FRONT_MASK = (1 << FRONT_BITS) - 1
_FRONT_MIX = np.int64(-7046029254386353131)  # 0x9E3779B97F4A7C15


def new_front_cache() -> np.ndarray:
    """Empty front cache: rows [first 8 bytes of the word, length | id << 8]; -1 never matches
    (0xFF bytes are not UTF-8, and no length is 255)."""
    return np.full((1 << FRONT_BITS, 2), -1, np.int64)


@njit(cache=True, nogil=True, inline="always")
def _front_slot(k0):
    return ((k0 * _FRONT_MIX) >> 40) & _FRONT_MASK


@njit(cache=True, nogil=True, inline="always")
def _rank(mkey, mrank, x, y):
    q = pair_slot(mkey, (x << 32) | y)
    return mrank[q] if mkey[q] != -1 else NO_RANK


@njit(cache=True, nogil=True)
def _heap_push(heap, n, key):
    heap[n] = key
    i = n
    while i > 0:
        p = (i - 1) >> 1
        if heap[p] <= heap[i]:
            break
        heap[p], heap[i] = heap[i], heap[p]
        i = p
    return n + 1


@njit(cache=True, nogil=True)
def _heap_pop(heap, n):
    top = heap[0]
    n -= 1
    heap[0] = heap[n]
    i = 0
    while True:
        l = 2 * i + 1
        if l >= n:
            break
        c = l + 1 if l + 1 < n and heap[l + 1] < heap[l] else l
        if heap[i] <= heap[c]:
            break
        heap[i], heap[c] = heap[c], heap[i]
        i = c
    return top, n


@njit(cache=True, nogil=True)
def bpe_long_word(parts, m, mkey, mrank, mnew):
    """BPE of parts[:m] in O(m log m): a linked list of symbols and a min-heap of
    (rank << 32 | left position); stale entries are skipped when popped. Same result as
    the rescanning loop (lowest rank first, leftmost on ties), for words long enough
    that rescanning would be quadratic."""
    nxt = np.arange(1, m + 1)
    prv = np.arange(-1, m - 1)
    nxt[m - 1] = -1
    alive = np.ones(m, np.bool_)
    heap = np.empty(3 * m, np.int64)
    hn = 0
    for i in range(m - 1):
        r = _rank(mkey, mrank, parts[i], parts[i + 1])
        if r != NO_RANK:
            hn = _heap_push(heap, hn, (r << 32) | i)
    while hn > 0:
        key, hn = _heap_pop(heap, hn)
        r = key >> 32
        i = key & 0xFFFFFFFF
        j = nxt[i]
        if not alive[i] or j == -1 or _rank(mkey, mrank, parts[i], parts[j]) != r:
            continue
        parts[i] = mnew[pair_slot(mkey, (parts[i] << 32) | parts[j])]
        alive[j] = False
        nxt[i] = nxt[j]
        if nxt[j] != -1:
            prv[nxt[j]] = i
        heap = grown(heap, hn, hn + 2)
        if prv[i] != -1:
            r = _rank(mkey, mrank, parts[prv[i]], parts[i])
            if r != NO_RANK:
                hn = _heap_push(heap, hn, (r << 32) | prv[i])
        if nxt[i] != -1:
            r = _rank(mkey, mrank, parts[i], parts[nxt[i]])
            if r != NO_RANK:
                hn = _heap_push(heap, hn, (r << 32) | i)
    out = 0
    i = 0
    while i != -1:
        parts[out] = parts[i]
        out += 1
        i = nxt[i]
    return out


@njit(cache=True, nogil=True)
def bpe_word(buf, s, e, byte_ids, mkey, mrank, mnew, parts, ranks):
    """BPE of the bytes buf[s:e] into parts[:m]; returns m. parts/ranks are scratch of size >= e-s."""
    m = e - s
    for i in range(m):
        parts[i] = byte_ids[buf[s + i]]
    if m >= LONG_WORD:
        return bpe_long_word(parts, m, mkey, mrank, mnew)
    for i in range(m - 1):
        ranks[i] = _rank(mkey, mrank, parts[i], parts[i + 1])
    while m > 1:
        best = 0
        for i in range(1, m - 1):
            if ranks[i] < ranks[best]:
                best = i
        if ranks[best] == NO_RANK:
            break
        parts[best] = mnew[pair_slot(mkey, (parts[best] << 32) | parts[best + 1])]
        for i in range(best + 1, m - 1):
            parts[i] = parts[i + 1]
            ranks[i] = ranks[i + 1]
        m -= 1
        if best > 0:
            ranks[best - 1] = _rank(mkey, mrank, parts[best - 1], parts[best])
        if best < m - 1:
            ranks[best] = _rank(mkey, mrank, parts[best], parts[best + 1])
    return m


@njit(cache=True, nogil=True)
def encode_segments(buf, words, seg_starts, seg_ends, seg_special, classes, byte_ids, mkey, mrank, mnew,
                    rows, arena, meta, cache_ids, cache_used, front, out):
    """Encode text segments (each followed by special id seg_special[k], or none if -1) into out.

    The cache (rows, arena, meta, cache_ids, cache_used) persists across calls; it may be
    regrown, so it is returned. A cached word of one id keeps it in the row itself (V1 == -1),
    saving a second memory access for the common case. In front of it, `front` is a small
    direct-mapped cache of one-id words up to 8 bytes (most of TinyStories): one probe, no
    loop, and it fits in L2 where the main table does not. Returns (n_out, rows, arena, cache_ids).
    """
    n_out = 0
    longest = 0
    for k in range(seg_starts.shape[0]):
        longest = max(longest, seg_ends[k] - seg_starts[k])
    parts = np.empty(max(longest, 1), np.int64)
    ranks = np.empty(max(longest, 1), np.int64)
    starts = np.empty(TOKEN_BLOCK, np.int64)
    for k in range(seg_starts.shape[0]):
        pos = seg_starts[k]
        end = seg_ends[k]
        while pos < end:
            n_tok, pos = scan_tokens(buf, words, pos, end, classes, starts)
            for t in range(n_tok):
                i = starts[t]
                j = starts[t + 1]
                n = j - i
                if n <= 8:
                    k0 = np.int64(load8(words, i) & low_bytes_mask(n))
                    f = _front_slot(k0)
                    if front[f, 0] == k0 and (front[f, 1] & 0xFF) == n:
                        out[n_out] = front[f, 1] >> 8
                        n_out += 1
                        continue
                cacheable = n <= MAX_CACHED_LEN
                h = k0 = k1 = np.int64(0)
                if cacheable:
                    h, k0, k1 = span_key(words, i, n)
                    if n > 16:
                        h = span_hash_tail(buf, i, j, h)
                    h = finish_hash(h)
                    # The first probes are written out here: a helper taking `rows` would cost an
                    # atomic reference count per pre-token. table_find handles the rest and long keys.
                    idx = h & (rows.shape[0] - 1)
                    hit = False
                    if n <= 16:
                        for _ in range(INLINE_PROBES):
                            ln = rows[idx, LEN]
                            if ln == n and rows[idx, K0] == k0 and rows[idx, K1] == k1:
                                hit = True
                                break
                            if ln == 0:
                                break
                            idx = (idx + 1) & (rows.shape[0] - 1)
                    if not hit:
                        idx = table_find(rows, arena, buf, i, j, h, k0, k1)
                    if idx >= 0:
                        m = rows[idx, V1]
                        if m < 0:
                            out[n_out] = rows[idx, V0]
                            n_out += 1
                            if n <= 8:  # promote to the front cache (evicting whoever had the slot)
                                f = _front_slot(k0)
                                front[f, 0] = k0
                                front[f, 1] = n | (rows[idx, V0] << 8)
                        else:
                            off = rows[idx, V0]
                            for q in range(m):
                                out[n_out + q] = cache_ids[off + q]
                            n_out += m
                        continue
                m = bpe_word(buf, i, j, byte_ids, mkey, mrank, mnew, parts, ranks)
                for q in range(m):
                    out[n_out + q] = parts[q]
                n_out += m
                if cacheable and meta[0] < MAX_CACHE_ENTRIES:
                    rows, arena = table_reserve(rows, arena, meta, n)
                    idx = -table_find(rows, arena, buf, i, j, h, k0, k1) - 1
                    table_put(rows, arena, meta, buf, i, j, h, k0, k1, idx)
                    if m == 1:
                        rows[idx, V0] = parts[0]
                        rows[idx, V1] = -1
                    else:
                        used = cache_used[0]
                        cache_ids = grown(cache_ids, used, used + m)
                        cache_ids[used:used + m] = parts[:m]
                        rows[idx, V0] = used
                        rows[idx, V1] = m
                        cache_used[0] = used + m
        if seg_special[k] >= 0:
            out[n_out] = seg_special[k]
            n_out += 1
    return n_out, rows, arena, cache_ids


@njit(cache=True, nogil=True)
def build_merge_table(left, right, new):
    """Merge table for ranks 0..n-1: (left << 32 | right) -> (rank, new id); the first rank of a repeated pair wins."""
    cap = 1024
    while cap < 2 * left.shape[0]:
        cap *= 2
    mkey = np.full(cap, -1, np.int64)
    mrank = np.zeros(cap, np.int64)
    mnew = np.zeros(cap, np.int64)
    for r in range(left.shape[0]):
        key = (left[r] << 32) | right[r]
        q = pair_slot(mkey, key)
        if mkey[q] == -1:
            mkey[q] = key
            mrank[q] = r
            mnew[q] = new[r]
    return mkey, mrank, mnew
