"""Pre-token counting: scan UTF-8 bytes and tally every distinct pre-token in a span table."""
import numpy as np
from numba import njit

from storytok.kernels.scanner import scan_tokens
from storytok.kernels.spankey import finish_hash, span_hash_tail, span_key
from storytok.kernels.spantable import INLINE_PROBES, K0, K1, LEN, V0, table_find, table_put, table_reserve

TOKEN_BLOCK = 1 << 14


@njit(cache=True, nogil=True)
def count_pretokens(buf, words, seg_starts, seg_ends, classes, rows, arena, meta):
    """Add the pre-tokens of each text segment buf[seg_starts[k]:seg_ends[k]] to the table.

    Segments are the text between special tokens, which are never counted.
    Returns the (possibly regrown) rows and arena.
    """
    starts = np.empty(TOKEN_BLOCK, np.int64)
    for k in range(seg_starts.shape[0]):
        pos = seg_starts[k]
        end = seg_ends[k]
        while pos < end:
            n_tok, pos = scan_tokens(buf, words, pos, end, classes, starts)
            for t in range(n_tok):
                i = starts[t]
                j = starts[t + 1]
                h, k0, k1 = span_key(words, i, j - i)
                if j - i > 16:
                    h = span_hash_tail(buf, i, j, h)
                h = finish_hash(h)
                # The first probes are written out here: a helper taking `rows` would cost an
                # atomic reference count per pre-token. table_find handles the rest and long keys.
                idx = h & (rows.shape[0] - 1)
                hit = False
                if j - i <= 16:
                    for _ in range(INLINE_PROBES):
                        ln = rows[idx, LEN]
                        if ln == j - i and rows[idx, K0] == k0 and rows[idx, K1] == k1:
                            hit = True
                            break
                        if ln == 0:
                            break
                        idx = (idx + 1) & (rows.shape[0] - 1)
                if not hit:
                    idx = table_find(rows, arena, buf, i, j, h, k0, k1)
                if idx < 0:
                    rows, arena = table_reserve(rows, arena, meta, j - i)
                    idx = -table_find(rows, arena, buf, i, j, h, k0, k1) - 1
                    table_put(rows, arena, meta, buf, i, j, h, k0, k1, idx)
                rows[idx, V0] += 1
    return rows, arena
