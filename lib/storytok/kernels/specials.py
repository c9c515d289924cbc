"""Finding special tokens in UTF-8 bytes: leftmost match, longest special first.

Special tokens are rare (one `<|endoftext|>` per story), so the search skips eight bytes
at a time through the word view while none of them holds the first byte of a special
(the classic "has a zero byte" test on word ^ byte*0x0101...), and compares candidates
only where one does.
"""
import numpy as np
from numba import njit

from storytok.kernels.arrays import grown

_ONES = np.uint64(0x0101010101010101)
_HIGHS = np.uint64(0x8080808080808080)


@njit(cache=True, nogil=True)
def find_specials(buf, words, start, end, sp_bytes, sp_off, sp_len, first_words, is_first):
    """(starts, ends, which) of the specials in buf[start:end], specials listed longest first.

    first_words holds each distinct first byte repeated eight times; is_first flags them.
    """
    starts = np.empty(64, np.int64)
    ends = np.empty(64, np.int64)
    which = np.empty(64, np.int64)
    n = 0
    j = start
    while j < end:
        if not is_first[buf[j]]:
            if (j & 7) != 0:
                j += 1
                continue
            # Aligned: skip whole words that hold no first byte of any special.
            wi = j >> 3
            while wi * 8 < end:
                w = words[wi]
                hit = np.uint64(0)
                for f in range(first_words.shape[0]):
                    v = w ^ first_words[f]
                    hit |= (v - _ONES) & ~v & _HIGHS
                if hit:
                    break
                wi += 1
            j = max(j, wi * 8)
            while j < end and not is_first[buf[j]]:
                j += 1
            if j >= end:
                break
        matched = -1
        for k in range(sp_len.shape[0]):
            n_k = sp_len[k]
            if j + n_k <= end:
                same = True
                for q in range(n_k):
                    if buf[j + q] != sp_bytes[sp_off[k] + q]:
                        same = False
                        break
                if same:
                    matched = k
                    break
        if matched < 0:
            j += 1
            continue
        starts = grown(starts, n, n + 1)
        ends = grown(ends, n, n + 1)
        which = grown(which, n, n + 1)
        starts[n] = j
        ends[n] = j + sp_len[matched]
        which[n] = matched
        n += 1
        j += sp_len[matched]
    return starts[:n], ends[:n], which[:n]
