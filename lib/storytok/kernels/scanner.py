"""The GPT-2 pre-tokenizer as a scanner over UTF-8 bytes.

Reproduces, without a regex engine, the pattern
    '(?:[sdmt]|ll|ve|re)| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+
The pattern's alternatives reduce to: a lowercase contraction; else a run of one class
(letters, numbers or other) optionally led by one U+0020; else a whitespace run, which
gives up its last character when a non-space follows (so that space can lead the next
word). `pretoken_end` is that rule; the count and encode kernels inline it in their loops.
Input must be valid UTF-8 (`first_invalid_utf8` checks it once, up front).
"""
import numpy as np
from numba import njit

# Must match storytok.unicode_classes.
OTHER, LETTER, NUMBER, SPACE = 0, 1, 2, 3


@njit(cache=True, nogil=True)
def first_invalid_utf8(buf, start, end):
    """Offset of the first byte that starts an invalid UTF-8 sequence, or -1.

    Same rules as Python's strict decoder (no overlongs, no surrogates, <= U+10FFFF),
    and the same offset it would report as `UnicodeDecodeError.start`.
    """
    i = start
    while i < end:
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


@njit(cache=True, nogil=True)
def class_at(buf, i, classes):
    """(class, byte length) of the code point starting at buf[i]; ASCII takes the short path."""
    b0 = np.int64(buf[i])
    if b0 < 0x80:
        return classes[b0], 1
    if b0 < 0xE0:
        cp = ((b0 & 0x1F) << 6) | (np.int64(buf[i + 1]) & 0x3F)
        return classes[cp], 2
    if b0 < 0xF0:
        cp = ((b0 & 0x0F) << 12) | ((np.int64(buf[i + 1]) & 0x3F) << 6) | (np.int64(buf[i + 2]) & 0x3F)
        return classes[cp], 3
    cp = (((b0 & 0x07) << 18) | ((np.int64(buf[i + 1]) & 0x3F) << 12)
          | ((np.int64(buf[i + 2]) & 0x3F) << 6) | (np.int64(buf[i + 3]) & 0x3F))
    return classes[cp], 4


@njit(cache=True, nogil=True)
def run_end(buf, j, end, cls, classes):
    """End of the run of code points of class `cls` starting at j."""
    while j < end:
        b = buf[j]
        if b < 0x80:
            if classes[b] != cls:
                return j
            j += 1
        else:
            c, n = class_at(buf, j, classes)
            if c != cls:
                return j
            j += n
    return j


@njit(cache=True, nogil=True)
def pretoken_end(buf, i, end, classes):
    """End (exclusive) of the GPT-2 pre-token that starts at buf[i]; `end` is where the text stops."""
    b = buf[i]
    if b == 39 and i + 1 < end:  # "'" + s d m t | ll ve re (lowercase only, as in GPT-2)
        c = buf[i + 1]
        if c == 115 or c == 100 or c == 109 or c == 116:
            return i + 2
        if i + 2 < end:
            c2 = buf[i + 2]
            if (c == 108 and c2 == 108) or (c == 118 and c2 == 101) or (c == 114 and c2 == 101):
                return i + 3
    cls, n = class_at(buf, i, classes)
    if b == 32 and i + 1 < end:  # " ?" prefix: one U+0020 leads a letter/number/other run
        cls2, n2 = class_at(buf, i + 1, classes)
        if cls2 != SPACE:
            return run_end(buf, i + 1 + n2, end, cls2, classes)
    if cls != SPACE:
        return run_end(buf, i + n, end, cls, classes)
    # Whitespace run: \s+(?!\S) keeps all but the last char when a non-space follows; a lone
    # whitespace char before a non-space falls to the final \s+ alternative.
    j = i + n
    last = i
    while j < end:
        c, m = class_at(buf, j, classes)
        if c != SPACE:
            break
        last = j
        j += m
    if j == end or last == i:
        return j
    return last


@njit(cache=True, nogil=True)
def scan_spans(buf, start, end, classes):
    """(starts, ends) of every pre-token in buf[start:end]: the scanner on its own, for tests and tools."""
    starts = np.empty(end - start, np.int64)
    ends = np.empty(end - start, np.int64)
    n = 0
    i = start
    while i < end:
        j = pretoken_end(buf, i, end, classes)
        starts[n] = i
        ends[n] = j
        n += 1
        i = j
    return starts[:n], ends[:n]
