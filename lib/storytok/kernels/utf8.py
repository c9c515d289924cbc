"""UTF-8 in the kernels: validating a buffer once.

The scanner assumes valid UTF-8 (so it never bounds-checks a multi-byte sequence);
`first_invalid_utf8` is the one check every input passes first.
"""
import numpy as np
from numba import njit

_HIGH_BITS = np.uint64(0x8080808080808080)


@njit(cache=True, nogil=True)
def first_invalid_utf8(buf, words, start, end):
    """Offset of the first byte that starts an invalid UTF-8 sequence, or -1.

    Same rules as Python's strict decoder (no overlongs, no surrogates, <= U+10FFFF),
    and the same offset it would report as `UnicodeDecodeError.start`. Runs of ASCII are
    skipped eight bytes at a time through the word view.
    """
    i = start
    while i < end:
        if (i & 7) == 0 and i + 8 <= end and (words[i >> 3] & _HIGH_BITS) == 0:
            wi = (i >> 3) + 1
            while (wi + 4) * 8 <= end and ((words[wi] | words[wi + 1] | words[wi + 2] | words[wi + 3]) & _HIGH_BITS) == 0:
                wi += 4
            while (wi + 1) * 8 <= end and (words[wi] & _HIGH_BITS) == 0:
                wi += 1
            i = wi * 8
            continue
        b0 = buf[i]
        if b0 < 0x80:
            i += 1
            continue
        if 0xC2 <= b0 <= 0xDF:
            n, lo, hi = 2, 0x80, 0xBF
        elif b0 == 0xE0:
            n, lo, hi = 3, 0xA0, 0xBF
        elif 0xE1 <= b0 <= 0xEC or b0 == 0xEE or b0 == 0xEF:
            n, lo, hi = 3, 0x80, 0xBF
        elif b0 == 0xED:
            n, lo, hi = 3, 0x80, 0x9F
        elif b0 == 0xF0:
            n, lo, hi = 4, 0x90, 0xBF
        elif 0xF1 <= b0 <= 0xF3:
            n, lo, hi = 4, 0x80, 0xBF
        elif b0 == 0xF4:
            n, lo, hi = 4, 0x80, 0x8F
        else:
            return i
        if i + 1 >= end or not (lo <= buf[i + 1] <= hi):
            return i
        for k in range(2, n):
            if i + k >= end or not (0x80 <= buf[i + k] <= 0xBF):
                return i
        i += n
    return -1
