"""The BPE merge loop over distinct pre-tokens: local pair-count updates and a lazy max-heap.

Input is every distinct pre-token's bytes back to back plus how often it occurs. Memory is
linear in the total length S of the distinct pre-tokens, never in the corpus:

* Every byte of every word (of two or more bytes) is a cell of three int32: its token, the
  id of the pair it starts (with the next live cell of the word; -1 at the word's end) and
  the word's index (for its count). A boundary cell precedes each word. Merging never moves
  cells: the left cell of a merged pair takes the new token and the right one dies, keeping
  a jump to its live neighbours, so a position stays valid for the whole run.
* A pair id indexes flat arrays: left, right, count, and where its occurrence list lives.
  Byte pairs get ids from a 256x256 table; every later pair contains the newest token, so
  the pairs a merge creates are found through two per-step arrays indexed by the neighbour
  token (left_id[x] = id of (x, new), right_id[y] = id of (new, y)): no hash table at all.
* An occurrence list holds the cell positions where the pair started, ascending. A pair
  only gains occurrences in the step that creates it, so its list is written once,
  contiguously, into one int32 array; lists of merged pairs are dead and get compacted
  away when the array fills.
* Merging pair p = (a, b) walks p's list: a position whose cell no longer starts p (an
  earlier merge took one of its symbols) is skipped after one look at the cell, which was
  prefetched. At each site only the neighbours change: (x, a) and (b, y) lose the word's
  count, (x, new) and (new, y) gain it. Walking the list in ascending order merges
  left to right, as the rules say ("aaa" merges once).
* Only new pairs gain counts, so each pair is pushed on the heap once, when created; counts
  that fall leave the entry an upper bound. A popped entry whose count is stale is pushed
  again at its current count, so the first exact entry popped is the true maximum of
  (count, left bytes, right bytes) -- ties go to the greatest pair of byte strings, and
  between pairs with equal bytes (two tokens can spell the same bytes) to the greater ids.
"""
import numpy as np
from numba import njit

from storytok.kernels.arrays import grown
from storytok.kernels.intrinsics import prefetch

_B56 = np.uint64(56)
AHEAD = 32   # occurrence-list entries between prefetching a cell and visiting it
CELL = 3     # int32 per cell: (token, pair id, word) alive; (DEAD, next, previous) dead
DEAD = -1
BATCH = 1 << 14  # occurrences visited between checks for room
MAX_POSITIONS = 1 << 29   # cells; keeps cell indices and occurrence lists (at most 3 per cell) in int32
BOUNDARY = -2


@njit(cache=True, nogil=True, inline="always")
def _tok_cmp(x, y, tok_pre, tok_len, tok_off, tok_bytes):
    """-1, 0, 1 comparing the byte strings of tokens x and y as Python compares bytes.

    tok_pre holds each token's first 8 bytes big-endian (zero-padded), so most pairs of
    tokens are ordered by one unsigned comparison."""
    if x == y:
        return 0
    px, py = tok_pre[x], tok_pre[y]
    if px != py:
        return 1 if px > py else -1
    lx, ly = tok_len[x], tok_len[y]
    if lx > 8 and ly > 8:
        ox, oy = tok_off[x], tok_off[y]
        for i in range(8, min(lx, ly)):
            bx, by = tok_bytes[ox + i], tok_bytes[oy + i]
            if bx != by:
                return 1 if bx > by else -1
    if lx == ly:
        return 0
    return 1 if lx > ly else -1


@njit(cache=True, nogil=True)
def _pair_gt(p, q, p_a, p_b, tok_pre, tok_len, tok_off, tok_bytes):
    """Is pair p ordered above pair q among pairs of equal count?"""
    r = _tok_cmp(p_a[p], p_a[q], tok_pre, tok_len, tok_off, tok_bytes)
    if r == 0:
        r = _tok_cmp(p_b[p], p_b[q], tok_pre, tok_len, tok_off, tok_bytes)
    if r == 0:
        if p_a[p] != p_a[q]:
            return p_a[p] > p_a[q]
        return p_b[p] > p_b[q]
    return r > 0


@njit(cache=True, nogil=True)
def _heap_push(h_cnt, h_id, hn, c, q, p_a, p_b, tok_pre, tok_len, tok_off, tok_bytes):
    """Add (c, q) to the heap of hn entries (arrays already large enough); sifts up."""
    i = hn
    while i > 0:
        par = (i - 1) >> 1
        pc = h_cnt[par]
        if pc > c or (pc == c and not _pair_gt(np.int64(q), np.int64(h_id[par]), p_a, p_b, tok_pre, tok_len, tok_off, tok_bytes)):
            break
        h_cnt[i] = pc
        h_id[i] = h_id[par]
        i = par
    h_cnt[i] = c
    h_id[i] = q


@njit(cache=True, nogil=True)
def _heap_sift_down(h_cnt, h_id, hn, i, p_a, p_b, tok_pre, tok_len, tok_off, tok_bytes):
    c = h_cnt[i]
    q = h_id[i]
    while True:
        l = 2 * i + 1
        if l >= hn:
            break
        best = l
        r = l + 1
        if r < hn and (h_cnt[r] > h_cnt[l] or (h_cnt[r] == h_cnt[l] and _pair_gt(
                np.int64(h_id[r]), np.int64(h_id[l]), p_a, p_b, tok_pre, tok_len, tok_off, tok_bytes))):
            best = r
        bc = h_cnt[best]
        if bc < c or (bc == c and not _pair_gt(np.int64(h_id[best]), np.int64(q), p_a, p_b, tok_pre, tok_len, tok_off, tok_bytes)):
            break
        h_cnt[i] = bc
        h_id[i] = h_id[best]
        i = best
    h_cnt[i] = c
    h_id[i] = q


@njit(cache=True, nogil=True)
def _compact_occ(occ, p_os, p_ol, p_cnt, n_pairs):
    """Move the occurrence lists of live pairs (count > 0) to the front of occ, in id order
    (lists lie in id order, so every move goes left); returns the entries used."""
    top = 0
    for q in range(n_pairs):
        n = p_ol[q]
        if p_cnt[q] <= 0 or n == 0:
            p_ol[q] = 0
            p_os[q] = top
            continue
        s = p_os[q]
        if s != top:
            for k in range(n):
                occ[top + k] = occ[s + k]
            p_os[q] = top
        top += n
    return top


@njit(cache=True, nogil=True, inline="always")
def _next_alive(cells, i):
    """The first cell after i that is alive or a word boundary; dead cells hold a jump forward."""
    j = i + 1
    while cells[CELL * j] == DEAD:
        j = cells[CELL * j + 1]
    return j


@njit(cache=True, nogil=True, inline="always")
def _prev_alive(cells, i):
    """The last cell before i that is alive or a word boundary; dead cells hold a jump back."""
    j = i - 1
    while cells[CELL * j] == DEAD:
        j = cells[CELL * j + 2]
    return j


@njit(cache=True, nogil=True)
def _cells_from_words(data, starts, counts):
    """(cells, word counts, positions): a boundary cell, then one cell per byte, for every
    word of two or more bytes; pair ids are filled in later."""
    n_in = counts.shape[0]
    n_words = 0
    n_pos = 1
    for k in range(n_in):
        ln = starts[k + 1] - starts[k]
        if ln >= 2 and counts[k] > 0:
            n_words += 1
            n_pos += 1 + ln
    if n_pos > MAX_POSITIONS:
        raise ValueError("the distinct pre-tokens hold over 500 million bytes, too many for the merge loop's int32 cells")
    cells = np.empty(CELL * n_pos, np.int32)
    wcount = np.empty(max(n_words, 1), np.int64)
    w = 0
    pos = 0
    for k in range(n_in):
        s, e = starts[k], starts[k + 1]
        if e - s >= 2 and counts[k] > 0:
            wcount[w] = counts[k]
            cells[CELL * pos] = BOUNDARY
            cells[CELL * pos + 1] = -1
            cells[CELL * pos + 2] = w
            pos += 1
            for i in range(s, e):
                cells[CELL * pos] = data[i]
                cells[CELL * pos + 1] = -1
                cells[CELL * pos + 2] = w
                pos += 1
            w += 1
    cells[CELL * pos] = BOUNDARY
    cells[CELL * pos + 1] = -1
    cells[CELL * pos + 2] = -1
    return cells, wcount, pos + 1


@njit(cache=True, nogil=True)
def _byte_pairs(cells, wcount, n_pos, p_a, p_b, p_cnt, p_os, p_ol):
    """Ids, counts and occurrence lists (CSR in id order, positions ascending) of the byte
    pairs; fills the cells' pair ids. Returns (occ, pairs, occurrences)."""
    byte_pair = np.full(1 << 16, -1, np.int32)
    n_pairs = 0
    for i in range(n_pos - 1):
        x = cells[CELL * i]
        y = cells[CELL * (i + 1)]
        if x >= 0 and y >= 0:
            key = (x << 8) | y
            q = byte_pair[key]
            if q < 0:
                q = n_pairs
                byte_pair[key] = q
                p_a[q] = x
                p_b[q] = y
                n_pairs += 1
            cells[CELL * i + 1] = q
            p_cnt[q] += wcount[cells[CELL * i + 2]]
            p_ol[q] += 1
    n_occ = 0
    for q in range(n_pairs):
        p_os[q] = n_occ
        n_occ += p_ol[q]
    occ = np.empty(max(n_occ + n_occ // 2, 1024), np.int32)
    fill = p_os[:n_pairs].copy()
    for i in range(n_pos - 1):
        q = cells[CELL * i + 1]
        if cells[CELL * i] >= 0 and q >= 0:
            occ[fill[q]] = i
            fill[q] += 1
    return occ, n_pairs, n_occ


@njit(cache=True, nogil=True)
def _append_lists(occ, n_occ, p_os, p_ol, p_cnt, first_new, n_pairs, rec_q, rec_i, n_rec):
    """Occurrence lists of the pairs first_new.. from the step's records, appended to occ in
    id order (a stable counting sort, so each list keeps its positions ascending); lists
    of dead pairs are compacted away first when occ is full. Returns (occ, used)."""
    if n_occ + n_rec > occ.shape[0]:
        n_occ = _compact_occ(occ, p_os, p_ol, p_cnt, first_new)
        if n_occ + n_rec > occ.shape[0]:
            occ = grown(occ, np.int64(n_occ), np.int64(n_occ + n_rec + (n_occ + n_rec) // 2))
    for q in range(first_new, n_pairs):
        p_ol[q] = 0
    for r in range(n_rec):
        p_ol[rec_q[r]] += 1
    top = n_occ
    for q in range(first_new, n_pairs):
        p_os[q] = top
        top += p_ol[q]
        p_ol[q] = 0
    for r in range(n_rec):
        q = rec_q[r]
        occ[p_os[q] + p_ol[q]] = rec_i[r]
        p_ol[q] += 1
    return occ, top


@njit(cache=True, nogil=True)
def train_merges(data, starts, counts, n_merges, progress):
    """Run up to n_merges merges; returns (left ids, right ids) of the merges made, in order.

    data holds the distinct pre-tokens' bytes back to back (uint8), word k in
    data[starts[k]:starts[k+1]], occurring counts[k] times. progress[0] is set to the number
    of merges done so far (read by a watcher thread for the progress bar).
    """
    cells, wcount, n_pos = _cells_from_words(data, starts, counts)

    # ---- token byte strings, for the tie-break
    n_tok = 256 + max(n_merges, 0)
    tok_pre = np.zeros(n_tok, np.uint64)
    tok_len = np.zeros(n_tok, np.int64)
    tok_off = np.zeros(n_tok, np.int64)
    tok_bytes = np.zeros(max(1024, 8 * n_tok), np.uint8)
    for t in range(256):
        tok_pre[t] = np.uint64(t) << _B56
        tok_len[t] = 1
        tok_off[t] = t
        tok_bytes[t] = t
    tok_used = 256

    # ---- pairs: left, right, count, occurrence list (start in occ, length)
    cap = 1 << 16
    p_a = np.empty(cap, np.int32)
    p_b = np.empty(cap, np.int32)
    p_cnt = np.zeros(cap, np.int64)
    p_os = np.zeros(cap, np.int32)
    p_ol = np.zeros(cap, np.int32)
    occ, n_pairs, n_occ = _byte_pairs(cells, wcount, np.int64(n_pos), p_a, p_b, p_cnt, p_os, p_ol)

    # ---- the heap: one entry per pair with a positive count
    hcap = max(1024, 2 * n_pairs)
    h_cnt = np.empty(hcap, np.int64)
    h_id = np.empty(hcap, np.int32)
    hn = 0
    for q in range(n_pairs):
        if p_cnt[q] > 0:
            h_cnt[hn] = p_cnt[q]
            h_id[hn] = q
            hn += 1
    for i in range(hn // 2 - 1, -1, -1):
        _heap_sift_down(h_cnt, h_id, np.int64(hn), np.int64(i), p_a, p_b, tok_pre, tok_len, tok_off, tok_bytes)

    # ---- per-step state: pairs (x, new) and (new, y) by neighbour, new occurrences
    left_id = np.empty(n_tok, np.int32)
    left_step = np.full(n_tok, -1, np.int32)
    right_id = np.empty(n_tok, np.int32)
    right_step = np.full(n_tok, -1, np.int32)
    rec_q = np.empty(1024, np.int32)
    rec_i = np.empty(1024, np.int32)
    out_a = np.empty(max(n_merges, 0), np.int64)
    out_b = np.empty(max(n_merges, 0), np.int64)

    for step in range(max(n_merges, 0)):
        # Pop until an entry holds its pair's current count.
        p = -1
        while hn > 0:
            c0 = h_cnt[0]
            q = h_id[0]
            hn -= 1
            if hn > 0:
                h_cnt[0] = h_cnt[hn]
                h_id[0] = h_id[hn]
                _heap_sift_down(h_cnt, h_id, np.int64(hn), np.int64(0), p_a, p_b, tok_pre, tok_len, tok_off, tok_bytes)
            cur = p_cnt[q]
            if cur == c0:
                p = q
                break
            if cur > 0:
                _heap_push(h_cnt, h_id, np.int64(hn), np.int64(cur), np.int64(q), p_a, p_b, tok_pre, tok_len, tok_off, tok_bytes)
                hn += 1
        if p < 0:
            return out_a[:step], out_b[:step]

        a = p_a[p]
        b = p_b[p]
        new = 256 + step
        out_a[step] = a
        out_b[step] = b
        la, lb = tok_len[a], tok_len[b]
        tok_bytes = grown(tok_bytes, np.int64(tok_used), np.int64(tok_used + la + lb))
        tok_bytes[tok_used:tok_used + la] = tok_bytes[tok_off[a]:tok_off[a] + la]
        tok_bytes[tok_used + la:tok_used + la + lb] = tok_bytes[tok_off[b]:tok_off[b] + lb]
        tok_off[new] = tok_used
        tok_len[new] = la + lb
        tok_used += la + lb
        if la >= 8:
            tok_pre[new] = tok_pre[a]
        else:
            tok_pre[new] = tok_pre[a] | (tok_pre[b] >> np.uint64(8 * la))

        # Room for the step's new pairs (at most two per token: (x, new) and (new, y)) and, per
        # batch, for its records, made here: an array reassigned inside the visiting loop would
        # cost Numba an atomic reference count update per position.
        first_new = n_pairs
        if n_pairs + 2 * new + 2 > cap:
            ncap = max(2 * cap, n_pairs + 2 * new + 2)
            p_a = grown(p_a, np.int64(n_pairs), np.int64(ncap))
            p_b = grown(p_b, np.int64(n_pairs), np.int64(ncap))
            p_cnt = grown(p_cnt, np.int64(n_pairs), np.int64(ncap))
            p_os = grown(p_os, np.int64(n_pairs), np.int64(ncap))
            p_ol = grown(p_ol, np.int64(n_pairs), np.int64(ncap))
            cap = p_a.shape[0]
        o_lo = np.int64(p_os[p])
        o_hi = o_lo + p_ol[p]
        for k in range(o_lo, min(o_lo + AHEAD, o_hi)):
            prefetch(cells, CELL * occ[k])
        n_rec = 0
        b_lo = o_lo
        while b_lo < o_hi:
            b_hi = min(b_lo + BATCH, o_hi)
            if n_rec + 2 * (b_hi - b_lo) > rec_q.shape[0]:
                rec_q = grown(rec_q, np.int64(n_rec), np.int64(n_rec + 2 * (b_hi - b_lo)))
                rec_i = grown(rec_i, np.int64(n_rec), np.int64(n_rec + 2 * (b_hi - b_lo)))
            for k in range(b_lo, b_hi):
                if k + AHEAD < o_hi:
                    prefetch(cells, CELL * occ[k + AHEAD])
                i = occ[k]
                if cells[CELL * i + 1] != p or cells[CELL * i] < 0:
                    continue                       # stale: an earlier merge took the pair here
                # Merge the cells i (a) and j (b): i becomes the new token, j dies.
                c = wcount[cells[CELL * i + 2]]
                j = _next_alive(cells, i)
                y = _next_alive(cells, j)
                x = _prev_alive(cells, i)
                if cells[CELL * x] >= 0:           # (x, a) becomes (x, new)
                    p_cnt[cells[CELL * x + 1]] -= c
                    t = cells[CELL * x]
                    if left_step[t] != step:
                        q = n_pairs
                        n_pairs += 1
                        p_a[q] = t
                        p_b[q] = new
                        p_cnt[q] = 0
                        left_step[t] = step
                        left_id[t] = q
                    q = left_id[t]
                    p_cnt[q] += c
                    cells[CELL * x + 1] = q
                    rec_q[n_rec] = q
                    rec_i[n_rec] = x
                    n_rec += 1
                nq = -1
                if cells[CELL * y] >= 0:           # (b, y) becomes (new, y)
                    p_cnt[cells[CELL * j + 1]] -= c
                    t = cells[CELL * y]
                    if right_step[t] != step:
                        q = n_pairs
                        n_pairs += 1
                        p_a[q] = new
                        p_b[q] = t
                        p_cnt[q] = 0
                        right_step[t] = step
                        right_id[t] = q
                    nq = right_id[t]
                    p_cnt[nq] += c
                    rec_q[n_rec] = nq
                    rec_i[n_rec] = i
                    n_rec += 1
                cells[CELL * i] = new
                cells[CELL * i + 1] = nq
                cells[CELL * j] = DEAD             # a dead cell jumps to its live neighbours
                cells[CELL * j + 1] = y
                cells[CELL * j + 2] = i
                if j != i + 1:                     # shortcut the older dead cells next to i
                    cells[CELL * (i + 1) + 1] = y
            b_lo = b_hi
        p_cnt[p] = 0
        occ, n_occ = _append_lists(occ, np.int64(n_occ), p_os, p_ol, p_cnt, np.int64(first_new), np.int64(n_pairs),
                                   rec_q, rec_i, np.int64(n_rec))

        # The new pairs go on the heap, once each.
        n_new = n_pairs - first_new
        h_cnt = grown(h_cnt, np.int64(hn), np.int64(hn + n_new))
        h_id = grown(h_id, np.int64(hn), np.int64(hn + n_new))
        for q in range(first_new, n_pairs):
            if p_cnt[q] > 0:
                _heap_push(h_cnt, h_id, np.int64(hn), np.int64(p_cnt[q]), np.int64(q), p_a, p_b, tok_pre, tok_len, tok_off, tok_bytes)
                hn += 1
        progress[0] = step + 1
    return out_a, out_b
