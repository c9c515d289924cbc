"""The GPT-2 pre-tokenizer as a scanner over UTF-8 bytes, eight bytes at a time.

Reproduces, without a regex engine, the pattern
    '(?:[sdmt]|ll|ve|re)| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+
For ASCII text, whether a pre-token starts at a byte depends only on the classes of that
byte and its two neighbours (letter L, number N, other O, space SP, whitespace WS):
  * an L, N or O byte starts a token when the byte before is of another class and is not
    a space (a single space leads the word instead: " ?" in the pattern);
  * a whitespace byte starts one when a non-space byte precedes it (a run begins) or
    follows it (the last char of a run goes with what follows: \\s+(?!\\S)).
So a pass over the text computes, for each 8-byte word, the start flags of its bytes
with a handful of bitwise operations (SWAR: one flag bit per byte) and no branches, which
the compiler vectorizes; a second loop turns the flags into offsets. Two things need
more than the neighbours, and their words take a careful step instead:
  * an apostrophe that starts a token may open a contraction ('s 'd 'm 't 'll 've 're),
    which ends the token early and starts another right after it;
  * a non-ASCII byte: its code point's class comes from the class table (`regex`'s),
    so tokens there are found one at a time by the pattern's alternatives (`token_end`).
Scanning anew from any token start gives the same tokens, which is what lets the two
paths hand over to each other, and a caller resume at the last start it was given.
(A byte-at-a-time state machine ran at half this speed; a token-at-a-time scanner was
slower still: every token's end depends on the last one's, so nothing overlaps.)
Input must be valid UTF-8 (`utf8.first_invalid_utf8` checks it once, up front).
"""
import numpy as np
from numba import njit
from numba.cpython.unsafe.numbers import trailing_zeros

from storytok.kernels.spankey import low_bytes_mask
from storytok.kernels.utf8 import class_at
from storytok.pretokenize.unicode_classes import LETTER, NUMBER, OTHER, SPACE

_ONES = np.uint64(0x0101010101010101)
_FLAGS = np.uint64(0x8080808080808080)   # the flag bit of every byte
_LOW7 = np.uint64(0x7F7F7F7F7F7F7F7F)
_ALL = np.uint64(0xFFFFFFFFFFFFFFFF)
_TOP = np.uint64(1) << np.uint64(63)
_U1 = np.uint64(1)
_U7 = np.uint64(7)
_U8 = np.uint64(8)
_U56 = np.uint64(56)
_FLAG0 = np.uint64(0x80)                 # the flag bit of byte 0
NEEDS_CARE = np.uint64(1)                # word_starts: bit 0 of a word's flags, never a byte's flag bit
WINDOW_WORDS = 1024                      # words per word_starts pass: its flags stay in L1
MIN_STARTS = 32                          # scan_tokens needs room for this many starts


def ascii_classes() -> np.ndarray:
    """The classes the bitwise path assumes for ASCII (A-Z a-z letters, 0-9 numbers,
    \\t \\n \\v \\f \\r and space whitespace, the rest other); pretokenizer.scanner_classes
    checks `regex` agrees before any kernel runs."""
    table = np.full(128, OTHER, np.uint8)
    table[list(range(ord("A"), ord("Z") + 1)) + list(range(ord("a"), ord("z") + 1))] = LETTER
    table[ord("0"):ord("9") + 1] = NUMBER
    table[[9, 10, 11, 12, 13, 32]] = SPACE
    return table


@njit(cache=True, nogil=True, inline="always")
def _in_range(x, lo, hi):
    """Flag of each byte of x (7-bit bytes) that lies in [lo, hi]."""
    return ((x + _ONES * np.uint64(0x80 - lo)) & ~(x + _ONES * np.uint64(0x7F - hi))) & _FLAGS


@njit(cache=True, nogil=True, inline="always")
def _classify(w):
    """Per-byte flags of the word w: (letter, number, other, space, whitespace, apostrophe, non-ASCII)."""
    hi = w & _FLAGS
    x = w & _LOW7
    ascii_ = _FLAGS ^ hi
    letter = _in_range(x | (_ONES * np.uint64(0x20)), 0x61, 0x7A) & ascii_
    number = _in_range(x, 0x30, 0x39) & ascii_
    space = _in_range(x, 0x20, 0x20) & ascii_
    white = (_in_range(x, 0x09, 0x0D) & ascii_) | space
    apos = _in_range(x, 0x27, 0x27) & ascii_
    other = ascii_ & ~(letter | number | white)
    return letter, number, other, space, white, apos, hi


@njit(cache=True, nogil=True, inline="always")
def _rule_starts(L, N, O, SP, WS, pL, pN, pO, pSP, next_ns):
    """Start flags of a word's bytes by the neighbour rules (module docstring).

    pX are the previous word's flags (only its top byte is used); next_ns is the flag of
    byte 0 of the next word if that byte is a non-space, moved to the top byte.
    """
    NS = L | N | O
    prev_ns = ((NS << _U8) | ((pL | pN | pO) >> _U56))
    word = ((L & ~((L << _U8) | (pL >> _U56)))
            | (N & ~((N << _U8) | (pN >> _U56)))
            | (O & ~((O << _U8) | (pO >> _U56)))) & ~((SP << _U8) | (pSP >> _U56))
    return word | (WS & (prev_ns | (NS >> _U8) | next_ns))


@njit(cache=True, nogil=True, inline="always")
def _ns_byte(b):
    """The top byte's flag if byte b is an ASCII non-space, else 0."""
    return np.uint64((b < 0x80) & ~((b == 0x20) | ((b >= 0x09) & (b <= 0x0D)))) << np.uint64(63)


@njit(cache=True, nogil=True)
def word_starts(words, w_lo, w_hi, out):
    """out[k] = start flags of word w_lo + k by the rules, | NEEDS_CARE if they may be wrong.

    A word needs care when it or the byte after it is not ASCII, or an apostrophe in it
    starts a token. (Its flags are only used right after an all-ASCII word, so the byte
    before it is ASCII.) Reads words[w_lo - 1] and words[w_hi]. Branch-free, so it vectorizes.
    """
    pL, pN, pO, pSP, pWS, pAP, pHI = _classify(words[w_lo - 1])
    for wi in range(w_lo, w_hi):
        L, N, O, SP, WS, AP, HI = _classify(words[wi])
        nb = words[wi + 1] & np.uint64(0xFF)
        st = _rule_starts(L, N, O, SP, WS, pL, pN, pO, pSP, _ns_byte(nb))
        care = ((HI | (AP & st)) != 0) | (nb >= 0x80)
        out[wi - w_lo] = st | np.uint64(care)
        pL, pN, pO, pSP = L, N, O, SP


@njit(cache=True, nogil=True, inline="always")
def _emit(starts, n, base, flags):
    """Append base + the byte index of every flag to starts[n:]; returns the new n.

    Four offsets are written whatever the count (a word rarely has more), so the common
    case has no loop to mispredict; starts needs 8 spare entries.
    """
    count = np.int64(((flags >> _U7) * _ONES) >> _U56)
    s = flags
    for k in range(4):
        starts[n + k] = base + np.int64(trailing_zeros(s | _TOP) >> 3)
        s &= s - _U1
    for k in range(4, count):
        starts[n + k] = base + np.int64(trailing_zeros(s) >> 3)
        s &= s - _U1
    return n + count


@njit(cache=True, nogil=True, inline="always")
def contraction_len(buf, j, end):
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
def token_end(buf, p, end, classes):
    """End of the pre-token starting at p, by the pattern's alternatives in order (any UTF-8)."""
    if buf[p] == 0x27:
        m = contraction_len(buf, p, end)
        if m:
            return p + m
    c, w = class_at(buf, p, classes)
    q = p
    if buf[p] == 0x20 and p + 1 < end:
        c1, w1 = class_at(buf, p + 1, classes)
        if c1 != SPACE:  # " ?" before a letter, number or other run
            c, w, q = c1, w1, p + 1
    j = q + w
    if c != SPACE:
        while j < end:
            cj, wj = class_at(buf, j, classes)
            if cj != c:
                break
            j += wj
        return j
    last = p  # start of the run's last char: \s+(?!\S) leaves it to what follows
    while j < end:
        cj, wj = class_at(buf, j, classes)
        if cj != SPACE:
            return last if last > p else j
        last = j
        j += wj
    return end


@njit(cache=True, nogil=True)
def scan_tokens(buf, words, pos, end, classes, starts):
    """Pre-tokens of buf[pos:end] as (count, resume): token t is buf[starts[t]:starts[t+1]].

    pos must be a token start. Fills starts until it is nearly full (it needs at least
    MIN_STARTS entries); resume is where to call again, == end when the text is done.
    words is buf viewed as uint64, with the padding of pretokenizer.padded_buffer.
    """
    cap = starts.shape[0] - 16
    flags = np.empty(WINDOW_WORDS, np.uint64)
    win_lo = win_hi = 0
    w_first = (pos >> 3) + 1   # words from here on have their previous byte in the text
    w_end = (end - 1) >> 3     # words before this one have their next byte in the text
    starts[0] = pos
    n = 1
    p = pos                    # next byte to decide; already emitted if p_is_start
    p_is_start = True          # False only right after a word whose bytes were all ASCII
    force = clear = np.uint64(0)  # start flags a contraction sets / removes in the next word
    while p < end and n < cap:
        wi = p >> 3
        if not p_is_start and w_first <= wi < w_end:
            if wi >= win_hi:
                win_lo = wi
                win_hi = min(wi + WINDOW_WORDS, w_end)
                word_starts(words, win_lo, win_hi, flags)
            f = flags[wi - win_lo]
            if (f & NEEDS_CARE) == 0:
                n = _emit(starts, n, p, ((f | force) & ~clear) & _FLAGS)
                force = clear = np.uint64(0)
                wi += 1
                stop = min(win_hi, wi + (cap - n) // 8)
                while wi < stop:
                    f = flags[wi - win_lo]
                    if (f & NEEDS_CARE) != 0:
                        break
                    n = _emit(starts, n, wi << 3, f)
                    wi += 1
                p = wi << 3
                continue
        # ---- the careful step: the word holding p, maybe partial, maybe holding end,
        # maybe with non-ASCII bytes or a contraction
        base = wi << 3
        rel = p - base
        valid = low_bytes_mask(end - base) & _FLAGS
        live = (_ALL << np.uint64(8 * rel)) & valid
        L, N, O, SP, WS, AP, HI = _classify(words[wi])
        next_ns = np.uint64(0)
        next_hi = False
        if base + 8 < end:
            nb = words[wi + 1] & np.uint64(0xFF)
            next_ns = _ns_byte(nb)
            next_hi = nb >= 0x80
        pL = pN = pO = pSP = np.uint64(0)
        if not p_is_start:
            pL, pN, pO, pSP, pWS, pAP, pHI = _classify(words[wi - 1])
        if (HI & live) != 0 or next_hi:
            # non-ASCII around: one token at a time from the last start
            e = token_end(buf, starts[n - 1], end, classes)
            if e < end:
                starts[n] = e
                n += 1
            p = e
            p_is_start = True
            force = clear = np.uint64(0)
            continue
        st = _rule_starts(L & valid, N & valid, O & valid, SP & valid, WS & valid, pL, pN, pO, pSP, next_ns)
        st = (st | force) & ~clear
        force = clear = np.uint64(0)
        if p_is_start:
            st |= _FLAG0 << np.uint64(8 * rel)
        a = AP & st & live
        while a != 0:  # apostrophes that start a token: contractions end early
            b = np.int64(trailing_zeros(a) >> 3)
            a &= a - _U1
            m = contraction_len(buf, base + b, end)
            if m:
                if b + 1 < 8:
                    st &= ~(_FLAG0 << np.uint64(8 * (b + 1)))
                else:
                    clear = _FLAG0
                if base + b + m < end:
                    if b + m < 8:
                        st |= _FLAG0 << np.uint64(8 * (b + m))
                    else:
                        force |= _FLAG0 << np.uint64(8 * (b + m - 8))
        st &= live
        if p_is_start:
            st &= ~(_FLAG0 << np.uint64(8 * rel))
        n = _emit(starts, n, base, st)
        p = base + 8
        p_is_start = False
    if p >= end:
        starts[n] = end
        return n, end
    return n - 1, starts[n - 1]


@njit(cache=True, nogil=True)
def scan_spans(buf, words, start, end, classes, block_size=1 << 12):
    """(starts, ends) of every pre-token in buf[start:end]: the scanner on its own, for tests and tools."""
    starts = np.empty(end - start + 1, np.int64)
    ends = np.empty(end - start + 1, np.int64)
    block = np.empty(max(block_size, MIN_STARTS), np.int64)
    n = 0
    pos = start
    while pos < end:
        nt, pos = scan_tokens(buf, words, pos, end, classes, block)
        for t in range(nt):
            starts[n] = block[t]
            ends[n] = block[t + 1]
            n += 1
    return starts[:n], ends[:n]
