"""Pre-token counting: scan UTF-8 bytes and tally every distinct pre-token in a span table."""
from numba import njit

from storytok.kernels.scanner import pretoken_end
from storytok.kernels.spantable import V0, span_key, table_find, table_put, table_reserve


@njit(cache=True, nogil=True)
def count_pretokens(buf, seg_starts, seg_ends, classes, rows, arena, meta):
    """Add the pre-tokens of each text segment buf[seg_starts[k]:seg_ends[k]] to the table.

    Segments are the text between special tokens, which are never counted.
    Returns the (possibly regrown) rows and arena.
    """
    for k in range(seg_starts.shape[0]):
        i = seg_starts[k]
        end = seg_ends[k]
        while i < end:
            j = pretoken_end(buf, i, end, classes)
            h, k0, k1 = span_key(buf, i, j)
            idx = table_find(rows, arena, buf, i, j, h, k0, k1)
            if idx < 0:
                rows, arena = table_reserve(rows, arena, meta, j - i)
                idx = -table_find(rows, arena, buf, i, j, h, k0, k1) - 1
                table_put(rows, arena, meta, buf, i, j, h, k0, k1, idx)
            rows[idx, V0] += 1
            i = j
    return rows, arena
