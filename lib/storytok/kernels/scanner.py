"""The GPT-2 pre-tokenizer as a scanner over UTF-8 bytes.

Reproduces, without a regex engine, the pattern
    '(?:[sdmt]|ll|ve|re)| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+
Instead of matching tokens one by one (a data-dependent branch at the end of every run,
mispredicted most of the time), the scanner decides for each code point whether a
pre-token starts there, from the kinds of it and its two predecessors, with one table
lookup and almost no branches:
  * a class change between letters, numbers and other starts a token;
  * whitespace after non-whitespace starts a token;
  * a non-space after whitespace starts one unless the whitespace is a single U+0020,
    which leads the word instead (" ?" in the pattern);
  * a whitespace run of two or more that is followed by a non-space gives up its last
    char to what follows (\\s+(?!\\S)): that char starts a token too, decided one step late;
  * an apostrophe that starts a token and is followed by s d m t / ll ve re (lowercase)
    forms a contraction, and whatever follows it starts a new token.
(A token-at-a-time scanner, even with an 8-bytes-at-once path for letter runs, measured
half as fast: its run-end branches mispredict on nearly every word.)
Input must be valid UTF-8 (`first_invalid_utf8` checks it once, up front). The 8-byte
word view of the buffer lets `span_key` build keys with two loads instead of a byte loop.
"""
import numpy as np
from numba import njit

from storytok.unicode_classes import LETTER, NUMBER, OTHER, SPACE

# Byte kinds for the fast path: the classes above, U+0020 apart from other whitespace,
# "start of a segment", and two kinds that leave the fast path.
K_SP, K_NONE, K_APOS, K_MULTI = 4, 5, 6, 7
N_PREV, N_CUR = 6, 5

# TRANSITIONS[(before_prev * N_PREV + prev) * N_CUR + cur], from the kinds of the last three
# code points: bit 0 = a pre-token starts at cur; bit 1 = one starts at prev (the last char
# of a whitespace run of 2+ that a non-space follows). One lookup decides both.
_TABLE = np.zeros((N_PREV, N_PREV, N_CUR), np.uint8)
for _pp in range(N_PREV):
    for _p in range(N_PREV):
        for _c in range(N_CUR):
            if _p == K_NONE:
                start = 1
            elif _p in (OTHER, LETTER, NUMBER):
                start = 1 if (_c != _p or _c in (SPACE, K_SP)) else 0
            elif _p == SPACE:  # e.g. "\n": a following non-space starts fresh; more whitespace continues the run
                start = 1 if _c in (OTHER, LETTER, NUMBER) else 0
            else:  # K_SP: a single space glues to what follows; a run continues
                start = 0
            gives_up_last = _c < SPACE and _p in (SPACE, K_SP) and _pp in (SPACE, K_SP)
            _TABLE[_pp, _p, _c] = start | (2 if gives_up_last else 0)
TRANSITIONS = _TABLE.ravel()


def byte_kinds(classes: np.ndarray) -> np.ndarray:
    """The 256-entry byte -> kind table for the fast path, derived from the code point classes."""
    kinds = np.full(256, K_MULTI, np.uint8)
    kinds[:128] = classes[:128]
    kinds[0x20] = K_SP
    kinds[0x27] = K_APOS
    return kinds


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
            i += 8
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


@njit(cache=True, nogil=True, inline="always")
def class_at(buf, i, classes):
    """(class, byte length) of the multi-byte code point starting at buf[i]."""
    b0 = np.int64(buf[i])
    if b0 < 0xE0:
        cp = ((b0 & 0x1F) << 6) | (np.int64(buf[i + 1]) & 0x3F)
        return classes[cp], 2
    if b0 < 0xF0:
        cp = ((b0 & 0x0F) << 12) | ((np.int64(buf[i + 1]) & 0x3F) << 6) | (np.int64(buf[i + 2]) & 0x3F)
        return classes[cp], 3
    cp = (((b0 & 0x07) << 18) | ((np.int64(buf[i + 1]) & 0x3F) << 12)
          | ((np.int64(buf[i + 2]) & 0x3F) << 6) | (np.int64(buf[i + 3]) & 0x3F))
    return classes[cp], 4


_MASKS = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [(1 << 64) - 1], dtype=np.uint64)
_M1 = np.int64(-7046029254386353131)  # 0x9E3779B97F4A7C15
_M2 = np.int64(-4417276706812531889)  # 0xC2B2AE3D27D4EB4F


@njit(cache=True, nogil=True, inline="always")
def _load8(words, p):
    """The 8 bytes at byte offset p, little-endian, from two aligned word loads."""
    wi = p >> 3
    sh = np.uint64((p & 7) * 8)
    return (words[wi] >> sh) | ((words[wi + 1] << (np.uint64(63) - sh)) << np.uint64(1))


@njit(cache=True, nogil=True, inline="always")
def _contraction_len(buf, j, end):
    """2 or 3 if buf[j] (an apostrophe) opens 's 'd 'm 't 'll 've 're, else 0."""
    if j + 1 >= end:
        return 0
    d = buf[j + 1]
    if d == 115 or d == 100 or d == 109 or d == 116:
        return 2
    if j + 2 < end:
        d2 = buf[j + 2]
        if (d == 108 and d2 == 108) or (d == 118 and d2 == 101) or (d == 114 and d2 == 101):
            return 3
    return 0


@njit(cache=True, nogil=True)
def scan_tokens(buf, pos, end, kinds, classes, starts):
    """Pre-tokens of buf[pos:end] as (count, resume): token t is buf[starts[t]:starts[t+1]].

    Fills at most starts.shape[0] entries; when full, the last start found is not yet
    final and resume is where to call again (scanning anew from a token start gives the
    same tokens). resume == end when the text is done.
    """
    cap = starts.shape[0] - 3
    n = 0
    a = K_NONE      # kind of the previous code point
    aa = K_NONE     # and of the one before it
    prev = pos      # byte offset of the previous code point
    force = 0       # the previous token was a contraction: a token starts here whatever follows
    j = pos
    while j < end and n < cap:
        c = kinds[buf[j]]
        w = 1
        if c >= K_APOS:
            if c == K_MULTI:
                c, w = class_at(buf, j, classes)
            else:
                c = OTHER
                r = TRANSITIONS[(aa * N_PREV + a) * N_CUR + OTHER]
                if force or r & 1:
                    m = _contraction_len(buf, j, end)
                    if m:
                        if r & 2:
                            starts[n] = prev
                            n += 1
                        starts[n] = j
                        n += 1
                        a = aa = LETTER
                        prev = j + m - 1
                        force = 1
                        j += m
                        continue
        r = TRANSITIONS[(aa * N_PREV + a) * N_CUR + c]
        if r & 2:  # rare: a whitespace run gives its last char to what follows
            starts[n] = prev
            n += 1
        starts[n] = j
        n += (r & 1) | force
        force = 0
        aa = a
        a = c
        prev = j
        j += w
    if j >= end:
        starts[n] = end
        return n, end
    return n - 1, starts[n - 1]


@njit(cache=True, nogil=True, inline="always")
def span_key(words, s, n):
    """(partial hash, k0, k1) of the n bytes at s: the first 16 bytes packed into k0, k1.

    words is the text viewed as uint64, with at least 16 bytes of padding past the end.
    Keys over 16 bytes fold the rest in with span_hash_tail; finish_hash then mixes. The
    split keeps this inlined part free of loops and calls, which lets Numba drop its
    reference counting (an atomic increment and decrement per pre-token otherwise).
    """
    k0 = np.int64(_load8(words, s) & _MASKS[min(n, 8)])
    k1 = np.int64(_load8(words, s + 8) & _MASKS[min(max(n - 8, 0), 8)])
    return (k0 ^ (k1 * _M2) ^ n) * _M1, k0, k1


@njit(cache=True, nogil=True)
def span_hash_tail(buf, s, e, h):
    """Fold the bytes of buf[s+16:e] into a span_key hash (keys over 16 bytes only)."""
    for i in range(s + 16, e):
        h = (h ^ np.int64(buf[i])) * _M1
    return h


@njit(cache=True, nogil=True, inline="always")
def finish_hash(h):
    return (h >> 32) & 0xFFFFFFFF  # the well-mixed high half


@njit(cache=True, nogil=True)
def span_hash(buf, words, s, e):
    """(hash, k0, k1) of buf[s:e] in one call, for code off the hot path."""
    h, k0, k1 = span_key(words, s, e - s)
    if e - s > 16:
        h = span_hash_tail(buf, s, e, h)
    return finish_hash(h), k0, k1


@njit(cache=True, nogil=True)
def scan_spans(buf, words, start, end, kinds, classes):
    """(starts, ends) of every pre-token in buf[start:end]: the scanner on its own, for tests and tools."""
    starts = np.empty(end - start + 1, np.int64)
    ends = np.empty(end - start + 1, np.int64)
    block = np.empty(1 << 12, np.int64)
    n = 0
    pos = start
    while pos < end:
        nt, pos = scan_tokens(buf, pos, end, kinds, classes, block)
        for t in range(nt):
            starts[n] = block[t]
            ends[n] = block[t + 1]
            n += 1
    return starts[:n], ends[:n]
