"""The BPE merge loop over distinct pre-tokens: local pair-count updates and a lazy max-heap.

Input is every distinct pre-token's bytes back to back plus how often it occurs. Memory is
linear in the total length of the distinct pre-tokens (S symbols), never in the corpus:

* Each word is a run of cells, two int32 per symbol: the token id and the id of the pair it
  starts (its pair with the next symbol; -1 at the word's end). Words of one byte have no
  pair and are dropped up front.
* A pair id indexes flat arrays: left, right, count, and where its occurrence list lives.
  Byte pairs get ids from a 256x256 table; every later pair contains the newest token, so
  the pairs a merge creates are found through two per-step arrays indexed by the neighbour
  token (left_id[x] = id of (x, new), right_id[y] = id of (new, y)): no hash table at all.
* A pair only gains occurrences in the step that creates it, so its occurrence list (the
  words holding it, each once) is written once, contiguously, into one int32 array; lists
  of merged pairs are dead and get compacted away when the array fills.
* Merging pair p = (a, b) visits the words on p's list and rewrites each in place. At each
  site only the neighbours change: (x, a) and (b, y) lose the word's count, (x, new) and
  (new, y) gain it; an entry whose word no longer holds p (a stale one) is skipped.
* Only new pairs gain counts, so each pair is pushed on the heap once, when created; counts
  that fall leave the entry an upper bound. A popped entry whose count is stale is pushed
  again at its current count, so the first exact entry popped is the true maximum of
  (count, left bytes, right bytes) -- ties go to the greatest pair of byte strings, and
  between pairs with equal bytes (two tokens can spell the same bytes) to the greater ids.
"""
import numpy as np
from numba import njit

from storytok.kernels.arrays import grown
from storytok.kernels.prefetch import prefetch

_B56 = np.uint64(56)
AHEAD = 16   # occurrence-list entries between prefetching a word's cells and visiting them
HEADER = 4   # int32 cells before a word's symbols: length, unused, count low, count high


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
        if pc > c or (pc == c and not _pair_gt(q, h_id[par], p_a, p_b, tok_pre, tok_len, tok_off, tok_bytes)):
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
                h_id[r], h_id[l], p_a, p_b, tok_pre, tok_len, tok_off, tok_bytes))):
            best = r
        bc = h_cnt[best]
        if bc < c or (bc == c and not _pair_gt(h_id[best], q, p_a, p_b, tok_pre, tok_len, tok_off, tok_bytes)):
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
def _word_count(cells, w):
    return (np.int64(cells[w + 3]) << 32) | (np.int64(cells[w + 2]) & 0xFFFFFFFF)


@njit(cache=True, nogil=True)
def train_merges(data, starts, counts, n_merges, progress):
    """Run up to n_merges merges; returns (left ids, right ids) of the merges made, in order.

    data holds the distinct pre-tokens' bytes back to back (uint8), word k in
    data[starts[k]:starts[k+1]], occurring counts[k] times. progress[0] is set to the number
    of merges done so far (read by a watcher thread for the progress bar).
    """
    n_in = counts.shape[0]
    # ---- words of two or more bytes, each a run of int32 cells at its position w:
    # [length, unused, count low, count high] then (token, pair id) per symbol.
    n_cells = 0
    for k in range(n_in):
        ln = starts[k + 1] - starts[k]
        if ln >= 2 and counts[k] > 0:
            n_cells += HEADER + 2 * ln
    if n_cells >= 1 << 31:
        raise ValueError("the distinct pre-tokens hold over 2**30 bytes: too many for the merge loop's int32 positions")
    cells = np.empty(n_cells, np.int32)
    w = 0
    for k in range(n_in):
        s, e = starts[k], starts[k + 1]
        if e - s >= 2 and counts[k] > 0:
            cells[w] = e - s
            cells[w + 1] = 0
            cells[w + 2] = np.int32(counts[k] & 0xFFFFFFFF)
            cells[w + 3] = np.int32(counts[k] >> 32)
            for i in range(e - s):
                cells[w + HEADER + 2 * i] = data[s + i]
            w += HEADER + 2 * (e - s)

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

    # ---- byte pairs: ids, counts, occurrence lists (CSR in id order)
    cap = 1 << 16
    p_a = np.empty(cap, np.int32)
    p_b = np.empty(cap, np.int32)
    p_cnt = np.zeros(cap, np.int64)
    p_os = np.zeros(cap, np.int64)
    p_ol = np.zeros(cap, np.int64)
    byte_pair = np.full(1 << 16, -1, np.int32)
    last_w = np.full(cap, -1, np.int64)
    n_pairs = 0
    w = 0
    while w < n_cells:
        n = cells[w]
        c = _word_count(cells, w)
        for i in range(w + HEADER, w + HEADER + 2 * (n - 1), 2):
            key = (cells[i] << 8) | cells[i + 2]
            q = byte_pair[key]
            if q < 0:
                q = n_pairs
                byte_pair[key] = q
                p_a[q] = cells[i]
                p_b[q] = cells[i + 2]
                n_pairs += 1
            cells[i + 1] = q
            p_cnt[q] += c
            if last_w[q] != w:
                last_w[q] = w
                p_ol[q] += 1
        cells[w + HEADER + 2 * n - 1] = -1
        w += HEADER + 2 * n
    n_occ = 0
    for q in range(n_pairs):
        p_os[q] = n_occ
        n_occ += p_ol[q]
    occ = np.empty(max(n_occ + n_occ // 2, 1024), np.int32)
    fill = p_os[:n_pairs].copy()
    last_w[:] = -1
    w = 0
    while w < n_cells:
        n = cells[w]
        for i in range(w + HEADER + 1, w + HEADER + 2 * (n - 1), 2):
            q = cells[i]
            if last_w[q] != w:
                last_w[q] = w
                occ[fill[q]] = w
                fill[q] += 1
        w += HEADER + 2 * n

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
        _heap_sift_down(h_cnt, h_id, hn, i, p_a, p_b, tok_pre, tok_len, tok_off, tok_bytes)

    # ---- per-step state: pairs (x, new) and (new, y) by neighbour, new occurrences
    left_id = np.empty(n_tok, np.int32)
    left_step = np.full(n_tok, -1, np.int32)
    right_id = np.empty(n_tok, np.int32)
    right_step = np.full(n_tok, -1, np.int32)
    rec_q = np.empty(1024, np.int32)
    rec_w = np.empty(1024, np.int32)
    step_last = np.empty(1024, np.int64)     # by new pair: last word recorded for it
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
                _heap_sift_down(h_cnt, h_id, hn, 0, p_a, p_b, tok_pre, tok_len, tok_off, tok_bytes)
            cur = p_cnt[q]
            if cur == c0:
                p = q
                break
            if cur > 0:
                _heap_push(h_cnt, h_id, hn, cur, q, p_a, p_b, tok_pre, tok_len, tok_off, tok_bytes)
                hn += 1
        if p < 0:
            return out_a[:step], out_b[:step]

        a = p_a[p]
        b = p_b[p]
        new = 256 + step
        out_a[step] = a
        out_b[step] = b
        la, lb = tok_len[a], tok_len[b]
        tok_bytes = grown(tok_bytes, tok_used, tok_used + la + lb)
        tok_bytes[tok_used:tok_used + la] = tok_bytes[tok_off[a]:tok_off[a] + la]
        tok_bytes[tok_used + la:tok_used + la + lb] = tok_bytes[tok_off[b]:tok_off[b] + lb]
        tok_off[new] = tok_used
        tok_len[new] = la + lb
        tok_used += la + lb
        if la >= 8:
            tok_pre[new] = tok_pre[a]
        else:
            tok_pre[new] = tok_pre[a] | (tok_pre[b] >> np.uint64(8 * la))

        first_new = n_pairs
        n_rec = 0
        o_lo = p_os[p]
        o_hi = o_lo + p_ol[p]
        for k in range(o_lo, min(o_lo + AHEAD, o_hi)):
            prefetch(cells, occ[k])
        for k in range(o_lo, o_hi):
            if k + AHEAD < o_hi:
                prefetch(cells, occ[k + AHEAD])
            w = occ[k]
            n = cells[w]
            s = w + HEADER
            e = s + 2 * n                      # cells of the word's symbols: s, s + 2, ..., e - 2
            i = s
            while i < e - 2 and cells[i + 1] != p:
                i += 2
            if i >= e - 2:
                continue                       # stale: an earlier merge took the pair here
            c = _word_count(cells, w)
            # Room for this word's new pairs and records before touching anything.
            need = n_pairs + n
            if need > cap:
                ncap = max(2 * cap, need)
                p_a = grown(p_a, n_pairs, ncap)
                p_b = grown(p_b, n_pairs, ncap)
                p_cnt = grown(p_cnt, n_pairs, ncap)
                p_os = grown(p_os, n_pairs, ncap)
                p_ol = grown(p_ol, n_pairs, ncap)
                cap = p_a.shape[0]
            if need - first_new > step_last.shape[0]:
                step_last = grown(step_last, n_pairs - first_new, need - first_new)
            if n_rec + 2 * n > rec_q.shape[0]:
                rec_q = grown(rec_q, n_rec, n_rec + 2 * n)
                rec_w = grown(rec_w, n_rec, n_rec + 2 * n)
            o = i                              # output cell; the cells before i stay as they are
            while i < e:
                if cells[i + 1] == p:
                    if o > s:                  # (x, a) becomes (x, new)
                        p_cnt[cells[o - 1]] -= c
                        x = cells[o - 2]
                        if left_step[x] != step:
                            q = n_pairs
                            n_pairs += 1
                            p_a[q] = x
                            p_b[q] = new
                            p_cnt[q] = 0
                            step_last[q - first_new] = -1
                            left_step[x] = step
                            left_id[x] = q
                        q = left_id[x]
                        p_cnt[q] += c
                        if step_last[q - first_new] != w:
                            step_last[q - first_new] = w
                            rec_q[n_rec] = q
                            rec_w[n_rec] = w
                            n_rec += 1
                        cells[o - 1] = q
                    nq = -1
                    if i + 4 < e:              # (b, y) becomes (new, y)
                        p_cnt[cells[i + 3]] -= c
                        y = cells[i + 4]
                        if right_step[y] != step:
                            q = n_pairs
                            n_pairs += 1
                            p_a[q] = new
                            p_b[q] = y
                            p_cnt[q] = 0
                            step_last[q - first_new] = -1
                            right_step[y] = step
                            right_id[y] = q
                        nq = right_id[y]
                        p_cnt[nq] += c
                        if step_last[nq - first_new] != w:
                            step_last[nq - first_new] = w
                            rec_q[n_rec] = nq
                            rec_w[n_rec] = w
                            n_rec += 1
                    cells[o] = new
                    cells[o + 1] = nq
                    i += 4
                else:
                    cells[o] = cells[i]
                    cells[o + 1] = cells[i + 1]
                    i += 2
                o += 2
            cells[w] = (o - s) >> 1
        p_cnt[p] = 0

        # Occurrence lists of the new pairs, appended in id order (a counting sort of the records).
        n_new = n_pairs - first_new
        if n_occ + n_rec > occ.shape[0]:
            n_occ = _compact_occ(occ, p_os, p_ol, p_cnt, first_new)
            if n_occ + n_rec > occ.shape[0]:
                occ = grown(occ, n_occ, n_occ + n_rec + (n_occ + n_rec) // 2)
        for j in range(n_new):
            p_ol[first_new + j] = 0
        for r in range(n_rec):
            p_ol[rec_q[r]] += 1
        top = n_occ
        for j in range(n_new):
            q = first_new + j
            p_os[q] = top
            top += p_ol[q]
            p_ol[q] = 0
        for r in range(n_rec):
            q = rec_q[r]
            occ[p_os[q] + p_ol[q]] = rec_w[r]
            p_ol[q] += 1
        n_occ = top

        # The new pairs go on the heap, once each.
        h_cnt = grown(h_cnt, hn, hn + n_new)
        h_id = grown(h_id, hn, hn + n_new)
        for j in range(n_new):
            q = first_new + j
            if p_cnt[q] > 0:
                _heap_push(h_cnt, h_id, hn, p_cnt[q], q, p_a, p_b, tok_pre, tok_len, tok_off, tok_bytes)
                hn += 1
        progress[0] = step + 1
    return out_a, out_b
