"""Keys for byte spans: what the span table compares and hashes, without a byte loop.

A pre-token of up to 16 bytes becomes two integers read straight from the text's 8-byte
word view; longer ones fold their tail into the hash. Both the counting and the encoding
kernels call these on every pre-token, so the inlined part stays free of loops and calls,
which lets Numba drop its reference counting (an atomic increment and decrement per
pre-token otherwise).
"""
import numpy as np
from numba import njit

_MASKS = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [(1 << 64) - 1], dtype=np.uint64)
_M1 = np.int64(-7046029254386353131)  # 0x9E3779B97F4A7C15
_M2 = np.int64(-4417276706812531889)  # 0xC2B2AE3D27D4EB4F


@njit(cache=True, nogil=True, inline="always")
def low_bytes_mask(k):
    """The low min(k, 8) bytes of a word set (k >= 0)."""
    return _MASKS[min(k, 8)]


@njit(cache=True, nogil=True, inline="always")
def load8(words, p):
    """The 8 bytes at byte offset p, little-endian, from two aligned word loads."""
    wi = p >> 3
    sh = np.uint64((p & 7) * 8)
    return (words[wi] >> sh) | ((words[wi + 1] << (np.uint64(63) - sh)) << np.uint64(1))


@njit(cache=True, nogil=True, inline="always")
def span_key(words, s, n):
    """(partial hash, k0, k1) of the n bytes at s: the first 16 bytes packed into k0, k1.

    words is the text viewed as uint64, with at least 16 bytes of padding past the end.
    Keys over 16 bytes fold the rest in with span_hash_tail; finish_hash then mixes.
    """
    k0 = np.int64(load8(words, s) & _MASKS[min(n, 8)])
    k1 = np.int64(load8(words, s + 8) & _MASKS[min(max(n - 8, 0), 8)])
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
