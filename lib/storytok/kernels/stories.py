"""Cutting token streams into stories at the separator id, for the Parquet parts and the flat arrays.

Both directions run over every token of the corpus (hundreds of millions), where NumPy
would need a mask, a gather and a cumulative sum per step, each a full-size temporary.
"""
import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def last_index(tokens, value):
    """Index of the last `value` in tokens, or -1; scans from the end (stories are short)."""
    for i in range(tokens.shape[0] - 1, -1, -1):
        if tokens[i] == value:
            return i
    return -1


@njit(cache=True, nogil=True)
def positions_of(tokens, value):
    """Indices of every `value` in tokens, in order (the batch API's end-of-document markers),
    without the full-size boolean temporary of np.flatnonzero(tokens == value)."""
    n = 0
    for i in range(tokens.shape[0]):
        if tokens[i] == value:
            n += 1
    out = np.empty(n, np.int64)
    k = 0
    for i in range(tokens.shape[0]):
        if tokens[i] == value:
            out[k] = i
            k += 1
    return out


@njit(cache=True, nogil=True)
def split_rows(tokens, eot, byte_len, final):
    """(values, offsets, n_bytes, stop): the rows of tokens[:stop], cut at every eot.

    A row ends at each separator (dropped from values); with `final` the tokens after the
    last separator are one more row (stop = len), else they are left over (stop = last
    separator + 1). Row r is values[offsets[r]:offsets[r+1]]; n_bytes[r] sums byte_len
    over its tokens.
    """
    n = tokens.shape[0]
    n_sep = 0
    last = -1
    for i in range(n):
        if tokens[i] == eot:
            n_sep += 1
            last = i
    stop = n if final else last + 1
    rows = n_sep + (1 if final else 0)
    values = np.empty(stop - n_sep, tokens.dtype)
    offsets = np.empty(rows + 1, np.int64)
    n_bytes = np.zeros(rows, np.int64)
    offsets[0] = 0
    r = 0
    v = 0
    b = 0
    for i in range(stop):
        t = tokens[i]
        if t == eot:
            n_bytes[r] = b
            b = 0
            r += 1
            offsets[r] = v
        else:
            values[v] = t
            v += 1
            b += byte_len[t]
    if final:
        n_bytes[r] = b
        offsets[r + 1] = v
    return values, offsets, n_bytes, stop


@njit(cache=True, nogil=True)
def flatten_rows(values, offsets, eot, lead_separator, is_ws, unk, unk_ws, out, counts):
    """Rows values[offsets[r]:offsets[r+1]] into out as one stream, the separator before each
    row (before the first one too if lead_separator), counting every token written.

    Returns (n_written, row_pos, row_text): where each row starts in out, and how many of
    its tokens are not whitespace (is_ws by id; the k-th `unk` token takes unk_ws[k]).
    """
    rows = offsets.shape[0] - 1
    row_pos = np.empty(rows, np.int64)
    row_text = np.empty(rows, np.int64)
    o = 0
    k = 0
    for r in range(rows):
        if r > 0 or lead_separator:
            out[o] = eot
            counts[eot] += 1
            o += 1
        row_pos[r] = o
        text = 0
        for i in range(offsets[r], offsets[r + 1]):
            t = values[i]
            out[o] = t
            o += 1
            counts[t] += 1
            if t == unk:
                text += 0 if unk_ws[k] else 1
                k += 1
            else:
                text += 0 if is_ws[t] else 1
        row_text[r] = text
    return o, row_pos, row_text
