"""Finding special tokens in UTF-8 bytes: leftmost match, longest special first.

Special tokens are rare (one `<|endoftext|>` per story), so the search skips eight bytes
at a time through the word view while none of them holds the first byte of a special
(the classic "has a zero byte" test on word ^ byte*0x0101...), and compares candidates
only where one does.
"""
import numpy as np
from numba import njit
from numba.cpython.unsafe.numbers import trailing_zeros

from storytok.kernels.arrays import grown

_ONES = np.uint64(0x0101010101010101)
_HIGHS = np.uint64(0x8080808080808080)


@njit(cache=True, nogil=True, inline="always")
def _first_byte_flags(w, first_words):
    """Nonzero if a byte of the word w is the first byte of a special ("has a zero byte" on w ^ f)."""
    v = w ^ first_words[0]
    hit = (v - _ONES) & ~v & _HIGHS
    for f in range(1, first_words.shape[0]):  # usually none: one special, or all starting "<"
        v = w ^ first_words[f]
        hit |= (v - _ONES) & ~v & _HIGHS
    return hit


@njit(cache=True, nogil=True)
def find_specials(buf, words, start, end, sp_bytes, sp_off, sp_len, first_words):
    """(starts, ends, which) of the specials in buf[start:end], specials listed longest first.

    first_words holds each distinct first byte repeated eight times. The test flags every
    byte equal to a first byte (and at times a byte just above one: harmless, since every
    flagged position is compared in full), so no match is missed.
    """
    starts = np.empty(64, np.int64)
    ends = np.empty(64, np.int64)
    which = np.empty(64, np.int64)
    n = 0
    j = start  # matches may not start before j (the end of the previous one)
    wi = start >> 3
    w_end = (end + 7) >> 3
    while wi < w_end:
        while wi + 4 <= w_end and not (_first_byte_flags(words[wi], first_words)
                                       | _first_byte_flags(words[wi + 1], first_words)
                                       | _first_byte_flags(words[wi + 2], first_words)
                                       | _first_byte_flags(words[wi + 3], first_words)):
            wi += 4
        if wi >= w_end:
            break
        hit = _first_byte_flags(words[wi], first_words)
        while hit:
            pos = wi * 8 + np.int64(trailing_zeros(hit) >> 3)
            hit &= hit - np.uint64(1)
            if pos < j or pos >= end:
                continue
            for k in range(sp_len.shape[0]):
                n_k = sp_len[k]
                if pos + n_k > end:
                    continue
                same = True
                for q in range(n_k):
                    if buf[pos + q] != sp_bytes[sp_off[k] + q]:
                        same = False
                        break
                if same:
                    starts = grown(starts, n, n + 1)
                    ends = grown(ends, n, n + 1)
                    which = grown(which, n, n + 1)
                    starts[n] = pos
                    ends[n] = pos + n_k
                    which[n] = k
                    n += 1
                    j = pos + n_k
                    break
        wi = max(wi + 1, j >> 3)
    return starts[:n], ends[:n], which[:n]
