"""The BPE merge loop over unique pre-tokens, with incremental pair counts and a lazy max-heap.

Input is every distinct pre-token as a row of byte ids plus how often it occurs. Each merge
touches only the words that contain the winning pair (found through per-pair occurrence
lists): their old pairs are subtracted, the merge applied in place, their new pairs added.
Pairs whose count changed are pushed to a max-heap ordered by (count, left bytes, right
bytes); stale heap entries are skipped when popped. Nothing is ever recounted in full.
"""
import numpy as np
from numba import njit

from storytok.kernels.arrays import grown
from storytok.kernels.pairtable import pair_slot


@njit(cache=True, nogil=True)
def _cmp_tokens(x, y, tok_off, tok_len, tok_bytes):
    """-1, 0, 1 comparing the byte strings of tokens x and y like Python compares bytes."""
    ox, lx = tok_off[x], tok_len[x]
    oy, ly = tok_off[y], tok_len[y]
    for i in range(min(lx, ly)):
        bx, by = tok_bytes[ox + i], tok_bytes[oy + i]
        if bx != by:
            return 1 if bx > by else -1
    if lx == ly:
        return 0
    return 1 if lx > ly else -1


@njit(cache=True, nogil=True)
def _beats(c1, a1, b1, c2, a2, b2, tok_off, tok_len, tok_bytes):
    """Does (count c1, pair a1 b1) win over (c2, a2 b2)? Ties go to the greater (left, right) bytes."""
    if c1 != c2:
        return c1 > c2
    r = _cmp_tokens(a1, a2, tok_off, tok_len, tok_bytes)
    if r != 0:
        return r > 0
    return _cmp_tokens(b1, b2, tok_off, tok_len, tok_bytes) > 0


@njit(cache=True, nogil=True)
def _sift_down(hcnt, ha, hb, hn, i, tok_off, tok_len, tok_bytes):
    while True:
        l = 2 * i + 1
        if l >= hn:
            return
        best = l
        r = l + 1
        if r < hn and _beats(hcnt[r], ha[r], hb[r], hcnt[l], ha[l], hb[l], tok_off, tok_len, tok_bytes):
            best = r
        if not _beats(hcnt[best], ha[best], hb[best], hcnt[i], ha[i], hb[i], tok_off, tok_len, tok_bytes):
            return
        hcnt[i], hcnt[best] = hcnt[best], hcnt[i]
        ha[i], ha[best] = ha[best], ha[i]
        hb[i], hb[best] = hb[best], hb[i]
        i = best


@njit(cache=True, nogil=True)
def _sift_up(hcnt, ha, hb, i, tok_off, tok_len, tok_bytes):
    while i > 0:
        p = (i - 1) // 2
        if not _beats(hcnt[i], ha[i], hb[i], hcnt[p], ha[p], hb[p], tok_off, tok_len, tok_bytes):
            return
        hcnt[i], hcnt[p] = hcnt[p], hcnt[i]
        ha[i], ha[p] = ha[p], ha[i]
        hb[i], hb[p] = hb[p], hb[i]
        i = p


@njit(cache=True, nogil=True)
def train_merges(word_syms, word_start, word_count, n_merges, progress):
    """Run up to n_merges merges; returns (left ids, right ids) of the merges made, in order.

    word_syms holds each word's byte values (ids 0-255) back to back, word i in
    word_syms[word_start[i]:word_start[i+1]]; it is rewritten in place. progress[0] is set
    to the number of merges done so far (read by a watcher thread for the progress bar).
    """
    n_words = word_count.shape[0]
    word_len = np.empty(n_words, np.int64)
    for w in range(n_words):
        word_len[w] = word_start[w + 1] - word_start[w]
    word_seen = np.full(n_words, -1, np.int64)

    # Token byte strings, for tie-breaks: ids 0-255 are single bytes, merges append.
    n_tok = 256 + n_merges
    tok_off = np.zeros(n_tok, np.int64)
    tok_len = np.zeros(n_tok, np.int64)
    tok_bytes = np.zeros(max(1024, 16 * n_tok), np.uint8)
    for t in range(256):
        tok_off[t] = t
        tok_len[t] = 1
        tok_bytes[t] = t
    tok_used = 256

    # Pair table: key = (left << 32) | right -> count, head of its occurrence list, and the
    # count before the current step (to push only pairs whose count changed).
    total_pairs = 0
    for w in range(n_words):
        total_pairs += max(word_len[w] - 1, 0)
    cap = 1024
    while cap < 4 * total_pairs:
        cap *= 2
    pkey = np.full(cap, -1, np.int64)
    pcnt = np.zeros(cap, np.int64)
    phead = np.full(cap, -1, np.int64)
    pmark = np.full(cap, -1, np.int64)
    psaved = np.zeros(cap, np.int64)
    n_pairs = 0

    # Occurrence lists: node -> (word, next node).
    onext = np.empty(max(total_pairs * 2, 1024), np.int64)
    oword = np.empty(onext.shape[0], np.int64)
    n_nodes = 0

    for w in range(n_words):
        s = word_start[w]
        for i in range(word_len[w] - 1):
            key = (np.int64(word_syms[s + i]) << 32) | np.int64(word_syms[s + i + 1])
            slot = pair_slot(pkey, key)
            if pkey[slot] == -1:
                pkey[slot] = key
                n_pairs += 1
            pcnt[slot] += word_count[w]
            if phead[slot] == -1 or oword[phead[slot]] != w:
                onext[n_nodes] = phead[slot]
                oword[n_nodes] = w
                phead[slot] = n_nodes
                n_nodes += 1

    # Max-heap of (count, left, right).
    hcap = max(2 * n_pairs, 1024)
    hcnt = np.empty(hcap, np.int64)
    ha = np.empty(hcap, np.int64)
    hb = np.empty(hcap, np.int64)
    hn = 0
    for slot in range(cap):
        if pkey[slot] != -1 and pcnt[slot] > 0:
            hcnt[hn] = pcnt[slot]
            ha[hn] = pkey[slot] >> 32
            hb[hn] = pkey[slot] & 0xFFFFFFFF
            hn += 1
    for start in range(hn // 2 - 1, -1, -1):  # heapify
        _sift_down(hcnt, ha, hb, hn, start, tok_off, tok_len, tok_bytes)

    out_a = np.empty(n_merges, np.int64)
    out_b = np.empty(n_merges, np.int64)
    touched = np.empty(1024, np.int64)

    for step in range(n_merges):
        # Pop until an entry matches its pair's current count.
        a = -1
        b = -1
        while hn > 0:
            c0, a0, b0 = hcnt[0], ha[0], hb[0]
            hn -= 1
            hcnt[0], ha[0], hb[0] = hcnt[hn], ha[hn], hb[hn]
            _sift_down(hcnt, ha, hb, hn, 0, tok_off, tok_len, tok_bytes)
            slot = pair_slot(pkey, (a0 << 32) | b0)
            if pkey[slot] != -1 and pcnt[slot] == c0 and c0 > 0:
                a = a0
                b = b0
                break
        if a < 0:
            return out_a[:step], out_b[:step]

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

        n_touched = 0
        node = phead[slot]
        while node != -1:
            w = oword[node]
            node = onext[node]
            if word_seen[w] == step:
                continue
            word_seen[w] = step
            s = word_start[w]
            ln = word_len[w]
            found = False
            for i in range(ln - 1):
                if word_syms[s + i] == a and word_syms[s + i + 1] == b:
                    found = True
                    break
            if not found:
                continue  # a stale list entry: an earlier merge already consumed the pair here
            cnt = word_count[w]
            # Room for this word's new pairs, list nodes and touched keys before touching anything.
            if 2 * (n_pairs + ln) > cap:
                new_cap = cap * 2
                nkey = np.full(new_cap, -1, np.int64)
                ncnt = np.zeros(new_cap, np.int64)
                nhead = np.full(new_cap, -1, np.int64)
                nmark = np.full(new_cap, -1, np.int64)
                nsaved = np.zeros(new_cap, np.int64)
                for o in range(cap):
                    if pkey[o] != -1:
                        q = pair_slot(nkey, pkey[o])
                        nkey[q], ncnt[q], nhead[q], nmark[q], nsaved[q] = pkey[o], pcnt[o], phead[o], pmark[o], psaved[o]
                pkey, pcnt, phead, pmark, psaved, cap = nkey, ncnt, nhead, nmark, nsaved, new_cap
            onext = grown(onext, n_nodes, n_nodes + ln)
            oword = grown(oword, n_nodes, n_nodes + ln)
            touched = grown(touched, n_touched, n_touched + 2 * ln)
            # Subtract the word's pairs, merge in place, add the new pairs back.
            for i in range(ln - 1):
                key = (np.int64(word_syms[s + i]) << 32) | np.int64(word_syms[s + i + 1])
                q = pair_slot(pkey, key)
                if pmark[q] != step:
                    pmark[q] = step
                    psaved[q] = pcnt[q]
                    touched[n_touched] = key
                    n_touched += 1
                pcnt[q] -= cnt
            o = s
            i = 0
            while i < ln:
                if i < ln - 1 and word_syms[s + i] == a and word_syms[s + i + 1] == b:
                    word_syms[o] = new
                    i += 2
                else:
                    word_syms[o] = word_syms[s + i]
                    i += 1
                o += 1
            ln = o - s
            word_len[w] = ln
            for i in range(ln - 1):
                x = np.int64(word_syms[s + i])
                y = np.int64(word_syms[s + i + 1])
                key = (x << 32) | y
                q = pair_slot(pkey, key)
                if pkey[q] == -1:
                    pkey[q] = key
                    n_pairs += 1
                if pmark[q] != step:
                    pmark[q] = step
                    psaved[q] = pcnt[q]
                    touched[n_touched] = key
                    n_touched += 1
                pcnt[q] += cnt
                if (x == new or y == new) and (phead[q] == -1 or oword[phead[q]] != w):
                    onext[n_nodes] = phead[q]
                    oword[n_nodes] = w
                    phead[q] = n_nodes
                    n_nodes += 1

        # Push every pair whose count changed in this step.
        for t in range(n_touched):
            key = touched[t]
            q = pair_slot(pkey, key)
            c = pcnt[q]
            if c == psaved[q] or c <= 0:
                continue
            hcnt = grown(hcnt, hn, hn + 1)
            ha = grown(ha, hn, hn + 1)
            hb = grown(hb, hn, hn + 1)
            i = hn
            hcnt[i], ha[i], hb[i] = c, key >> 32, key & 0xFFFFFFFF
            hn += 1
            _sift_up(hcnt, ha, hb, i, tok_off, tok_len, tok_bytes)
        progress[0] = step + 1
    return out_a, out_b
