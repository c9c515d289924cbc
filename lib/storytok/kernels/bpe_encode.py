"""Encoding: scan pre-tokens, look each up in a cache of earlier encodings, run BPE on a miss.

The hot loop (`_run_block`) works on blocks of PROBE_BLOCK pre-tokens: it hashes them and
prefetches the cache line each will probe (`encode_cache`), then probes and emits them, so
the memory latency of a cache far larger than the CPU caches (web text) overlaps with
useful work. Pre-tokens of more than 15 bytes are looked up in a per-thread span table
(spantable's row layout, with its own inline hash and lookup) the same way, their rows
prefetched too. Nothing in the hot loop hands an array to a function that is not inlined:
Numba would then reference-count every array argument on each call (atomic operations). Whatever is in no cache goes to
`_encode_slow`: BPE, then an insert.

A miss applies the merges by rank (lowest first, leftmost on ties), as GPT-2 and tiktoken
do: the first round's ranks come from a 256 x 256 grid indexed by the bytes themselves, the
later ones from one open-addressing table whose slots pack (pair, rank) into one int64.
"""
import numpy as np
from numba import njit

from storytok.kernels.encode_cache import (BUSY, ENTRIES, EPOCH, EXT, HITS, ID_LIMIT, K0, K1, LIMIT, LONG_HITS,
                                           LONG_IDS_USED, LONG_MISSES, LONG_ON, LONG_RESETS, MARK, MAX_INLINE, MAX_SHORT,
                                           MISSES, PAUSE, SHIFT, SLOT, STOP, VAL, home_offset, _MASK_LO, pack_ids,
                                           short_key)
from storytok.kernels.intrinsics import atomic_add, claim, load8u, load_acquire, prefetch, publish
from storytok.kernels.scanner import scan_tokens
from storytok.kernels.spantable import HASH, K0 as ROW_K0, K1 as ROW_K1, LEN, OFF, ROW_WIDTH, V0, V1

NO_RANK = ID_LIMIT            # greater than every rank
RANK_MASK = ID_LIMIT - 1
LONG_WORD = 64                # from this length on, BPE uses a heap instead of rescanning
_NO_PAIR = NO_RANK << 6       # a pair that does not merge (rank << 6 | position) is at least this
_UNUSED = (NO_RANK + 1) << 6  # a slot past the last pair (stays >= _NO_PAIR when shifted left)
MAX_CACHED_LEN = 256          # longer pre-tokens are encoded every time
TOKEN_BLOCK = 1 << 12         # pre-token starts per scanner call
PROBE_BLOCK = 64              # pre-tokens hashed and prefetched before the first of them is probed
_M1 = np.int64(-7046029254386353131)  # 0x9E3779B97F4A7C15
_M2 = np.int64(-4417276706812531889)  # 0xC2B2AE3D27D4EB4F
_U = np.uint64                # unsigned indices skip Numba's negative-index wraparound code


@njit(cache=True, nogil=True, inline="always")
def _shift_of(size):
    """64 - log2(size) for a power of two: the shift that keeps a hash's top bits."""
    s = 64
    while size > 1:
        size >>= 1
        s -= 1
    return s


@njit(cache=True, nogil=True, inline="always")
def _rank(ptab, shift, x, y):
    """Merge rank of the pair (x, y), NO_RANK if it does not merge. A slot is pair << 21 | rank."""
    key = (x << 21) | y
    mask = ptab.shape[0] - 1
    q = ((key * _M1) >> shift) & mask
    while True:
        s = ptab[q]
        if s < 0:
            return NO_RANK
        if (s >> 21) == key:
            return s & RANK_MASK
        q = (q + 1) & mask


@njit(cache=True, nogil=True)
def build_merge_table(left, right, new, byte_ids):
    """(grid, ptab, new_of_rank) for merges 0..n-1 (left[r], right[r]) -> new[r]; ids < 2**21.

    ptab: pair -> rank (the first rank of a repeated pair wins); grid[b0 << 8 | b1]: the rank
    of the pair of single-byte tokens (byte_ids[b0], byte_ids[b1]), for a miss's first round."""
    n = left.shape[0]
    cap = 1024
    while cap < 2 * n:
        cap *= 2
    shift = _shift_of(cap)
    mask = cap - 1
    ptab = np.empty(cap, np.int64)
    for q in range(cap):
        ptab[q] = -1
    new_of_rank = np.empty(max(n, 1), np.int64)
    for r in range(n):
        key = (left[r] << 21) | right[r]
        q = ((key * _M1) >> shift) & mask
        while ptab[q] >= 0 and (ptab[q] >> 21) != key:
            q = (q + 1) & mask
        if ptab[q] < 0:
            ptab[q] = (key << 21) | r
        new_of_rank[r] = new[r]
    grid = np.empty(1 << 16, np.int32)
    for a in range(256):
        for b in range(256):
            grid[(a << 8) | b] = _rank(ptab, shift, byte_ids[a], byte_ids[b])
    return grid, ptab, new_of_rank


@njit(cache=True, nogil=True, inline="always")
def _sift_up(heap, i):
    while i > 0:
        p = (i - 1) >> 1
        if heap[p] <= heap[i]:
            break
        heap[p], heap[i] = heap[i], heap[p]
        i = p


@njit(cache=True, nogil=True)
def bpe_long_word(parts, m, ptab, shift, new_of_rank):
    """BPE of parts[:m] in O(m log m): a linked list of symbols and a min-heap of
    (rank << 32 | left position); stale entries are skipped when popped. Same result as
    the rescanning loop (lowest rank first, leftmost on ties), for words long enough
    that rescanning would be quadratic."""
    nxt = np.empty(m, np.int64)
    prv = np.empty(m, np.int64)
    heap = np.empty(3 * m, np.int64)  # m - 1 first pushes, then at most two per merge
    for i in range(m):
        nxt[i] = i + 1
        prv[i] = i - 1
    nxt[m - 1] = -1
    hn = 0
    for i in range(m - 1):
        r = _rank(ptab, shift, parts[i], parts[i + 1])
        if r != NO_RANK:
            heap[hn] = (r << 32) | i
            _sift_up(heap, hn)
            hn += 1
    while hn > 0:
        key = heap[0]
        hn -= 1
        heap[0] = heap[hn]
        i = 0
        while True:
            c = 2 * i + 1
            if c >= hn:
                break
            if c + 1 < hn and heap[c + 1] < heap[c]:
                c += 1
            if heap[i] <= heap[c]:
                break
            heap[i], heap[c] = heap[c], heap[i]
            i = c
        r = key >> 32
        i = key & 0xFFFFFFFF
        j = nxt[i]
        if prv[i] == -2 or j == -1 or _rank(ptab, shift, parts[i], parts[j]) != r:
            continue  # stale: i was merged away, or its pair changed since the push
        parts[i] = new_of_rank[r]
        prv[j] = -2  # j is merged into i
        nxt[i] = nxt[j]
        if nxt[j] != -1:
            prv[nxt[j]] = i
        for left in (prv[i], i):
            if left >= 0 and nxt[left] != -1:
                r = _rank(ptab, shift, parts[left], parts[nxt[left]])
                if r != NO_RANK:
                    heap[hn] = (r << 32) | left
                    _sift_up(heap, hn)
                    hn += 1
    out = 0
    i = 0
    while i != -1:
        parts[out] = parts[i]
        out += 1
        i = nxt[i]
    return out


@njit(cache=True, nogil=True)
def bpe_bytes(buf, s, n, byte_ids, grid, ptab, shift, new_of_rank, parts, ranks):
    """BPE of the n >= 1 bytes buf[s:s+n] into parts[:m]; returns m. parts and ranks are
    scratch of at least n entries.

    Below LONG_WORD bytes it rescans the pairs for the lowest rank, leftmost on ties: each
    pair is one int64, rank << 6 | position, so the scan is a plain minimum (no index to
    track, no branch to mispredict). After a merge the pairs to its right move left by one
    (their position field drops by one) and only the two pairs around it are looked up again."""
    for q in range(n):
        parts[q] = byte_ids[buf[s + q]]
    if n >= LONG_WORD:
        return bpe_long_word(parts, n, ptab, shift, new_of_rank)
    for q in range(n - 1):
        ranks[q] = (np.int64(grid[(np.int64(buf[s + q]) << 8) | buf[s + q + 1]]) << 6) | q
    ranks[n - 1] = _UNUSED
    m = n
    while m > 1:
        best = ranks[0]
        for q in range(1, m - 1):
            best = min(best, ranks[q])
        if best >= _NO_PAIR:
            break
        p = best & 63
        parts[p] = new_of_rank[best >> 6]
        for q in range(p + 1, m - 1):
            parts[q] = parts[q + 1]
            ranks[q] = ranks[q + 1] - 1
        ranks[m - 2] = _UNUSED
        m -= 1
        if p > 0:
            ranks[p - 1] = (_rank(ptab, shift, parts[p - 1], parts[p]) << 6) | (p - 1)
        if p < m - 1:
            ranks[p] = (_rank(ptab, shift, parts[p], parts[p + 1]) << 6) | p
    return m


@njit(cache=True, nogil=True, inline="always")
def _long_key(words, i, n):
    """(hash, k0, k1) of the n > 15 bytes at i for the span table: bytes 0-15 as two words,
    the rest folded in eight bytes at a time. Inline and loop-light, with no array handed to
    another function (which would cost the caller atomic reference counts on every call)."""
    k0 = load8u(words, i)
    k1 = load8u(words, i + 8)
    h = (k0 ^ (k1 * _M2) ^ n) * _M1
    for q in range(16, n, 8):
        h = (h ^ (load8u(words, i + q) & np.int64(_MASK_LO[_U(min(n - q, 8))]))) * _M1
    return (h >> 32) & 0xFFFFFFFF, k0, k1


@njit(cache=True, nogil=True, inline="always")
def _long_slot(lrows, larena, words, i, n, h, k0, k1):
    """Row of the span table holding the n bytes at i, or -(row + 1) of the empty row where
    they would go (spantable's layout; keys compared eight bytes at a time: the key arena
    has eight bytes of slack)."""
    mask = lrows.shape[0] - 1
    idx = h & mask
    while True:
        ln = lrows[idx, LEN]
        if ln == 0:
            return -(idx + 1)
        if lrows[idx, HASH] == h and ln == n and lrows[idx, ROW_K0] == k0 and lrows[idx, ROW_K1] == k1:
            off = lrows[idx, OFF]
            same = True
            for q in range(16, n, 8):
                m = np.int64(_MASK_LO[_U(min(n - q, 8))])
                if (load8u(larena, off + q) ^ load8u(words, i + q)) & m != 0:
                    same = False
                    break
            if same:
                return idx
        idx = (idx + 1) & mask


@njit(cache=True, nogil=True, inline="always")
def _long_find(lrows, larena, lids, buf, words, i, j, out, n_out):
    """Append the cached ids of buf[i:j] from the span table; returns the new n_out, or -1 if absent."""
    h, k0, k1 = _long_key(words, i, j - i)
    idx = _long_slot(lrows, larena, words, i, j - i, h, k0, k1)
    if idx < 0:
        return -1
    off = lrows[idx, V0]
    m = lrows[idx, V1]
    for q in range(m):
        out[n_out + q] = lids[off + q]
    return n_out + m


@njit(cache=True, nogil=True, inline="always")
def _long_put(lrows, larena, lmeta, lids, ts, buf, words, i, j, parts, m):
    """Cache parts[:m] as the ids of buf[i:j] in the span table (fixed arrays: rows, key arena,
    ids). When one of them is full, the table is emptied first (it is a cache, not a count)."""
    n = j - i
    room = larena.shape[0] - 8  # the arena's last eight bytes are slack for 8-byte compares
    if n > room or m > lids.shape[0] or lrows.shape[0] < 2:
        return
    used = ts[LONG_IDS_USED]
    if 2 * (lmeta[0] + 1) > lrows.shape[0] or lmeta[1] + n > room or used + m > lids.shape[0]:
        for r in range(lrows.shape[0]):
            lrows[r, LEN] = 0
        lmeta[0] = 0
        lmeta[1] = 0
        used = 0
        ts[LONG_RESETS] += 1
    h, k0, k1 = _long_key(words, i, n)
    idx = -_long_slot(lrows, larena, words, i, n, h, k0, k1) - 1
    off = lmeta[1]
    for q in range(n):  # what spantable.table_put does, without its slice copy (compile time)
        larena[off + q] = buf[i + q]
    lrows[idx, HASH] = h
    lrows[idx, ROW_K0] = k0
    lrows[idx, ROW_K1] = k1
    lrows[idx, LEN] = n
    lrows[idx, OFF] = off
    lrows[idx, V0] = used
    lrows[idx, V1] = m
    lmeta[0] += 1
    lmeta[1] = off + n
    for q in range(m):
        lids[used + q] = parts[q]
    ts[LONG_IDS_USED] = used + m


@njit(cache=True, nogil=True, inline="always")
def _encode_slow(buf, words, i, j, k0, k1, found, table, tab, ts, lrows, larena, lmeta, lids,
                 byte_ids, grid, ptab, pshift, new_of_rank, parts, ranks, out, n_out):
    """A pre-token that is in no cache: BPE, then insert. found is what the short table's
    walk gave: >= 0 a slot whose ids should have been in the span table, < 0 the empty slot
    -(found + 1) where a short pre-token goes (-1 for a long one). Appends the ids of buf[i:j] to
    out[n_out:]; returns (n_out, stop), stop meaning the table is at its limit and this miss
    was not inserted: the caller returns so that the table can grow or be swept."""
    n = j - i
    stop = False
    long_ok = ts[LONG_ON] != 0 and n <= MAX_CACHED_LEN
    if n > parts.shape[0]:
        parts = np.empty(n, np.int64)
        ranks = np.empty(n, np.int64)
    m = bpe_bytes(buf, i, n, byte_ids, grid, ptab, pshift, new_of_rank, parts, ranks)
    for q in range(m):
        out[n_out + q] = parts[q]
    if n <= MAX_SHORT and found < 0:
        ts[MISSES] += 1
        if tab[LIMIT] >= 0:
            if tab[ENTRIES] >= tab[LIMIT]:
                stop = True
            else:
                slot = -found - 1
                # claim the empty slot (another thread may have taken it since the walk: then
                # this one stays uncached for now), fill it, publish it by its k1
                if claim(table, slot + K1, np.int64(0), np.int64(BUSY)):
                    if m <= MAX_INLINE:
                        val, ext = pack_ids(parts, m, tab[EPOCH] ^ MARK)
                    else:
                        val, ext = tab[EPOCH] ^ MARK, np.int64(0)  # count 0: the ids are in the span table
                    table[slot + K0] = k0
                    table[slot + VAL] = val
                    table[slot + EXT] = ext
                    publish(table, slot + K1, k1)
                    atomic_add(tab, ENTRIES, np.int64(1))
        if m <= MAX_INLINE:
            return n_out + m, stop
    else:
        ts[LONG_MISSES] += 1
    if long_ok:
        _long_put(lrows, larena, lmeta, lids, ts, buf, words, i, j, parts, m)
    return n_out + m, stop


@njit(cache=True, nogil=True, _nrt=False)  # borrows its arrays: no reference counting on each call
def _run_block(buf, words, starts, t0, nb, b, blk, table, shift, pair_mask, out, n_out, epoch,
               lrows, larena, lids, long_on, ts):
    """The fast path over the block of pre-tokens t0..t0+nb-1, from its b-th on.

    When b == 0 it first fills blk[3b:3b+3] for the whole block and prefetches the line
    each probe will read, long before the probe: (k0, k1, home offset) for a short
    pre-token; (span hash, 1, -1) for a long one the span table may hold, (-, 0, -1) for
    one it may not. Then it emits pre-tokens while they are cache hits, and returns
    (n_out, b, q) at the first one that is not: q is the slot of its entry if it has one
    (ids in the span table), else -(empty slot + 1), or -1 for a long pre-token. (One
    function of its own, too big for LLVM to inline into the caller, so that its loops
    keep everything in registers.)"""
    if b == 0:
        row_mask = lrows.shape[0] - 1
        for c in range(nb):
            i = starts[_U(t0 + c)]
            n = starts[_U(t0 + c + 1)] - i
            if n <= MAX_SHORT:
                k0, k1 = short_key(words, i, n)
                o = home_offset(k0, k1, shift, pair_mask)
                prefetch(table, o)
                blk[_U(3 * c)] = k0
                blk[_U(3 * c + 1)] = k1
                blk[_U(3 * c + 2)] = o
            else:
                blk[_U(3 * c + 2)] = -1
                blk[_U(3 * c + 1)] = 0
                if long_on and n <= MAX_CACHED_LEN:
                    h, _, _ = _long_key(words, i, n)
                    prefetch(lrows, (h & row_mask) * ROW_WIDTH)
                    blk[_U(3 * c)] = h
                    blk[_U(3 * c + 1)] = 1
    mask = table.shape[0] - 1
    while b < nb:
        o = blk[_U(3 * b + 2)]
        if o < 0:  # a long pre-token: the span table
            if blk[_U(3 * b + 1)] == 0:
                return n_out, b, -1
            i = starts[_U(t0 + b)]
            j = starts[_U(t0 + b + 1)]
            idx = _long_slot(lrows, larena, words, i, j - i, blk[_U(3 * b)], load8u(words, i), load8u(words, i + 8))
            if idx < 0:
                return n_out, b, -1
            off = lrows[idx, V0]
            for q in range(lrows[idx, V1]):
                out[_U(n_out + q)] = lids[_U(off + q)]
            n_out += lrows[idx, V1]
            ts[LONG_HITS] += 1
            b += 1
            continue
        k0 = blk[_U(3 * b)]
        k1 = blk[_U(3 * b + 1)]
        while True:
            x = load_acquire(table, o + K1)
            if x == k1 and table[_U(o + K0)] == k0:
                break
            if x == 0:
                return n_out, b, -(o + 1)
            o = (o + SLOT) & mask
        v = table[_U(o + VAL)]
        c = v & 7
        if c == 0:
            return n_out, b, o
        if (v & MARK) != epoch:
            table[_U(o + VAL)] = v ^ MARK
        out[_U(n_out)] = (v >> 8) & RANK_MASK
        out[_U(n_out + 1)] = v >> 32
        if c > 2:
            x = table[_U(o + EXT)]
            out[_U(n_out + 2)] = x & 0xFFFFFFFF
            out[_U(n_out + 3)] = x >> 32
        n_out += c
        b += 1
    return n_out, b, -1


@njit(cache=True, nogil=True)
def encode_segments(buf, words, seg_starts, seg_ends, seg_special, classes, byte_ids, grid, ptab, new_of_rank,
                    table, tab, ts, lrows, larena, lmeta, lids, out, k, pos, n_out):
    """Encode text segments k.. (each followed by special id seg_special[k], or none if -1)
    into out[n_out:], starting at byte pos of segment k.

    table/tab: the short-token table all threads share and its state; ts: this thread's.
    out needs 8 entries of slack past one id per byte (a hit writes two ids before its
    count is known). Returns (n_out, k, pos): k == len(seg_starts) when done; else either
    the table reached its limit (ts[STOP]: the caller makes room, `CachePool.make_room`)
    or another thread asked to pause (tab[PAUSE]); either way the caller calls again from
    (k, pos) with the table it is given then.
    """
    starts = np.empty(TOKEN_BLOCK, np.int64)
    blk = np.empty(3 * PROBE_BLOCK, np.int64)
    parts = np.empty(LONG_WORD, np.int64)
    ranks = np.empty(LONG_WORD, np.int64)
    shift = tab[SHIFT]
    pair_mask = (table.shape[0] >> 3) - 1
    epoch = tab[EPOCH]
    long_on = ts[LONG_ON] != 0
    pshift = _shift_of(ptab.shape[0])
    hits = 0
    long_hits = 0
    n_seg = seg_starts.shape[0]
    ts[STOP] = 0
    while k < n_seg:
        end = seg_ends[k]
        while pos < end:
            if load_acquire(tab, PAUSE) != 0:
                ts[HITS] += hits
                ts[LONG_HITS] += long_hits
                return n_out, k, pos
            n_tok, nxt = scan_tokens(buf, words, pos, end, classes, starts)
            for t0 in range(0, n_tok, PROBE_BLOCK):
                nb = min(PROBE_BLOCK, n_tok - t0)
                b = np.int64(0)  # (a literal 0 would compile _run_block a second time)
                while b < nb:
                    n_out, b_next, q = _run_block(buf, words, starts, t0, nb, b, blk, table, shift, pair_mask, out,
                                                  n_out, epoch, lrows, larena, lids, long_on, ts)
                    hits += b_next - b
                    b = b_next
                    if b == nb:
                        break
                    t = t0 + b
                    i = starts[t]
                    j = starts[t + 1]
                    if q >= 0:  # an entry whose ids are in the span table: a hit for the clock
                        v = table[q + VAL]
                        if (v & MARK) != epoch:
                            table[q + VAL] = v ^ MARK
                        if long_on:
                            r = _long_find(lrows, larena, lids, buf, words, i, j, out, n_out)
                            if r >= 0:
                                n_out = r
                                hits += 1
                                long_hits += 1
                                b += 1
                                continue
                    n_out, stop = _encode_slow(buf, words, i, j, blk[3 * b], blk[3 * b + 1], q,
                                               table, tab, ts, lrows, larena, lmeta, lids,
                                               byte_ids, grid, ptab, pshift, new_of_rank, parts, ranks, out, n_out)
                    b += 1
                    if stop:
                        ts[STOP] = 1
                        ts[HITS] += hits
                        ts[LONG_HITS] += long_hits
                        return n_out, k, j
            pos = nxt
        if seg_special[k] >= 0:
            out[n_out] = seg_special[k]
            n_out += 1
        k += 1
        if k < n_seg:
            pos = seg_starts[k]
    ts[HITS] += hits
    ts[LONG_HITS] += long_hits
    return n_out, k, pos
