"""The GPT-2 pre-tokenizer as a scanner over UTF-8 bytes, 64 bytes at a time.

Reproduces, without a regex engine, the pattern
    '(?:[sdmt]|ll|ve|re)| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+
Whether a pre-token starts at a code point depends only on its class and its neighbours'
(letter L, number N, other O, whitespace W, and the space U+0020 SP), in any script:
  * an L, N or O char starts a token when the char before is of another class and is not
    a space (a single space leads the word instead: " ?" in the pattern);
  * a W char starts one when the char before is not W (a run begins) or the char after
    is not W (the last char of a run goes with what follows: \\s+(?!\\S)).
Give every byte of a multi-byte char its char's class and the same rules hold between
bytes, with two amendments: continuation bytes never start a token, and "the char after"
a W char is the byte after its last byte (one, two or three bytes on).
So each 64-byte block becomes a handful of 64-bit masks, one bit per byte, as simdjson
does: LLVM vector compares (`_byte_masks`, an `@intrinsic`) give the ASCII classes; the
rare non-ASCII chars are classified one by one from the class table (`regex`'s) and OR'ed
into the same masks; then a few shifts and ANDs give every start of the block at once,
and the start bits become offsets: on CPUs with AVX-512 VBMI2 one vpcompressb packs the
indices of a block's start bits (`_emit_compressed`), elsewhere a loop writes them eight
at a time whatever their count. What crosses a block edge is carried: the class of the
char before the block, the bytes of a char straddling into the next block, and for a
whitespace char at the end of the block, whether the char after it (one byte read past
the block) is whitespace. So nothing depends on where a block falls, and no char,
whatever its script, leaves the block path.
One thing needs more than the neighbours: an apostrophe that starts a token may open a
contraction ('s 'd 'm 't 'll 've 're), which ends the token early (its letter is no
start) and starts another right after it (a letter that would otherwise continue the
word); the few apostrophes that start a token are checked one by one, and a contraction
reaching into the next block hands its two bits over.
Scanning anew from any token start gives the same tokens, which is what lets a caller
resume at the last start it was given.
Input must be valid UTF-8 (`utf8.first_invalid_utf8` checks it once, up front).
(Before: 8-byte words by SWAR, 0.6-0.7 GB/s, with a token-at-a-time careful step for any
word near a non-ASCII byte or an apostrophe, 4% of web400's words and 18% of web text
with typographic quotes. Writing the offsets one bit at a time took half of the block
path's time, hence the compress writer; classifying each block one step ahead, for its
predecessor's lookahead, ran 7-10% slower than reading the one byte: more values live
across iterations than registers.)
"""
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.cpython.unsafe.numbers import leading_zeros, trailing_zeros
from numba.extending import intrinsic

from storytok.pretokenize.unicode_classes import LETTER, NUMBER, OTHER, SPACE

MIN_STARTS = 32                 # scan_tokens needs room for this many starts
BLOCK = 64                      # bytes per block: one bit each in a uint64
_SLACK = 72                     # starts written by one block at most, plus the unconditional writes
_Z = np.uint64(0)
_U1 = np.uint64(1)
_U2 = np.uint64(2)
_U3 = np.uint64(3)
_U63 = np.uint64(63)
_ALL = np.uint64(0xFFFFFFFFFFFFFFFF)
_MAX_CP = 0x10FFFF

_V64 = ir.VectorType(ir.IntType(8), BLOCK)


def ascii_classes() -> np.ndarray:
    """The classes the block masks assume for ASCII (A-Z a-z letters, 0-9 numbers,
    \\t \\n \\v \\f \\r and space whitespace, the rest other); pretokenizer.scanner_classes
    checks `regex` agrees before any kernel runs."""
    table = np.full(128, OTHER, np.uint8)
    table[list(range(ord("A"), ord("Z") + 1)) + list(range(ord("a"), ord("z") + 1))] = LETTER
    table[ord("0"):ord("9") + 1] = NUMBER
    table[[9, 10, 11, 12, 13, 32]] = SPACE
    return table


def _splat(byte):
    return ir.Constant(_V64, [byte & 0xFF] * BLOCK)


@intrinsic
def _byte_masks(typingctx, buf, off):
    """(letter, number, space, whitespace, apostrophe, non-ASCII, continuation) bit masks of
    the ASCII classes of buf[off:off+64], bit k for byte off+k (all 64 bytes are read).

    One vector load and a compare per class; each <64 x i1> result is bitcast to an i64,
    which LLVM lowers to a k-mask move (AVX-512) or vpmovmskb pairs (AVX2).
    """
    if not (isinstance(buf, types.Array) and buf.dtype == types.uint8 and buf.ndim == 1 and buf.layout == "C"):
        raise TypeError(f"_byte_masks reads a contiguous uint8 array, not {buf}")
    sig = types.UniTuple(types.uint64, 7)(buf, off)

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        v = builder.load(builder.bitcast(builder.gep(ary.data, [args[1]]), _V64.as_pointer()), align=1)
        space = builder.icmp_unsigned("==", v, _splat(0x20))
        masks = (
            builder.icmp_unsigned("<", builder.sub(builder.or_(v, _splat(0x20)), _splat(0x61)), _splat(26)),
            builder.icmp_unsigned("<", builder.sub(v, _splat(0x30)), _splat(10)),
            space,
            builder.or_(space, builder.icmp_unsigned("<", builder.sub(v, _splat(0x09)), _splat(5))),
            builder.icmp_unsigned("==", v, _splat(0x27)),
            builder.icmp_signed("<", v, _splat(0)),
            builder.icmp_signed("<", v, _splat(0xC0)),   # 0x80..0xBF, as signed bytes
        )
        i64 = ir.IntType(64)
        return context.make_tuple(builder, signature.return_type, [builder.bitcast(m, i64) for m in masks])

    return sig, codegen


@intrinsic
def _popcount(typingctx, x):
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return sig, codegen


def _has_compress() -> bool:
    """Whether the kernels are compiled for a CPU with AVX-512 VBMI2 (vpcompressb)."""
    try:
        from numba.core.registry import cpu_target
        return "+avx512vbmi2" in cpu_target.target_context.codegen()._tm_features.split(",")
    except Exception:  # a Numba without that attribute: take the portable path
        return False


_COMPRESS = _has_compress()


@intrinsic
def _emit_compressed(typingctx, starts, n, base, s):
    """starts[n:n+32] = base + the index of each set bit of s, in order (junk past the
    count); returns the count. AVX-512 VBMI2 only: vpcompressb packs the indices of the set
    bits of s into bytes, then four widen-add-store steps write 8 offsets each."""
    if not (isinstance(starts, types.Array) and starts.dtype == types.int64 and starts.ndim == 1 and starts.layout == "C"):
        raise TypeError(f"_emit_compressed writes a contiguous int64 array, not {starts}")
    sig = types.uint64(starts, types.uint64, types.uint64, types.uint64)

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        _, n, base, bits = args
        i32, i64 = ir.IntType(32), ir.IntType(64)
        m64 = ir.VectorType(ir.IntType(1), BLOCK)
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_V64, [_V64, _V64, m64]),
                                            "llvm.x86.avx512.mask.compress.v64i8")
        packed = builder.call(fn, [ir.Constant(_V64, list(range(BLOCK))), ir.Constant(_V64, [0] * BLOCK),
                                   builder.bitcast(bits, m64)])
        v8 = ir.VectorType(i64, 8)
        bv = builder.insert_element(ir.Constant(v8, ir.Undefined), base, ir.Constant(i32, 0))
        bv = builder.shuffle_vector(bv, bv, ir.Constant(ir.VectorType(i32, 8), [0] * 8))
        for g in range(4):
            part = builder.shuffle_vector(packed, packed, ir.Constant(ir.VectorType(i32, 8), list(range(8 * g, 8 * g + 8))))
            ptr = builder.gep(ary.data, [builder.add(n, ir.Constant(i64, 8 * g))])
            builder.store(builder.add(builder.zext(part, v8), bv), builder.bitcast(ptr, v8.as_pointer()), align=8)
        return builder.ctpop(bits)

    return sig, codegen


@njit(cache=True, nogil=True, inline="always")
def _bits(lo, hi):
    """Bits lo..hi-1 of a uint64 set (0 <= lo < hi <= 64)."""
    return (_ALL << np.uint64(lo)) & (_ALL >> np.uint64(64 - hi))


@njit(cache=True, nogil=True, inline="always")
def _if(cond):
    """All bits if cond, else none."""
    return _Z - np.uint64(cond)


@njit(cache=True, nogil=True, inline="always")
def _contraction(b1, b2, room):
    """2 or 3 if an apostrophe followed by bytes b1, b2 opens 's 'd 'm 't 'll 've 're, else 0;
    room: bytes of text from the apostrophe on."""
    if room < 2:
        return 0
    if b1 == 115 or b1 == 100 or b1 == 109 or b1 == 116:
        return 2
    if room >= 3 and ((b1 == 108 and b2 == 108) or (b1 == 118 and b2 == 101) or (b1 == 114 and b2 == 101)):
        return 3
    return 0


@njit(cache=True, nogil=True, inline="always")
def _tail_masks(buf, base):
    """_byte_masks for the buffer's last block, which the vector load would overrun: byte by byte."""
    L = N = SP = W1 = AP = HI = CONT = _Z
    for k in range(buf.shape[0] - base):
        b = buf[base + k]
        bit = _U1 << np.uint64(k)
        L |= _if((b | 0x20) >= 0x61 and (b | 0x20) <= 0x7A) & bit
        N |= _if(b >= 0x30 and b <= 0x39) & bit
        SP |= _if(b == 0x20) & bit
        W1 |= _if(b == 0x20 or (b >= 0x09 and b <= 0x0D)) & bit
        AP |= _if(b == 0x27) & bit
        HI |= _if(b >= 0x80) & bit
        CONT |= _if(b >= 0x80 and b < 0xC0) & bit
    return L, N, SP, W1, AP, HI, CONT


@njit(cache=True, nogil=True)
def scan_tokens(buf, words, pos, end, classes, starts):
    """Pre-tokens of buf[pos:end] as (count, resume): token t is buf[starts[t]:starts[t+1]].

    pos must be a token start. Fills starts until it is nearly full (it needs at least
    MIN_STARTS entries); resume is where to call again, == end when the text is done.
    words is buf viewed as uint64 (the callers' signature; unused), with the padding of
    pretokenizer.padded_buffer. Array accesses are written out here rather than in helpers
    (an inlined helper taking an array costs reference counting on every call), with
    unsigned indices (no negative-index check on every store).
    """
    size = np.uint64(starts.shape[0])
    starts[0] = pos
    n = np.uint64(1)
    if pos >= end:
        starts[1] = end
        return 0, end
    base = pos - (pos & (BLOCK - 1))
    first = _U1 << np.uint64(pos - base)  # pos itself is starts[0]
    pL = pN = pO = pW = pSP = force = clear = spill = _Z
    spill_class = OTHER
    while True:
        # ---- classify the block: bytes lo..hi-1 of it are text
        if base + BLOCK <= buf.shape[0]:
            L, N, SP, W1, AP, HI, CONT = _byte_masks(buf, base)
        else:
            L, N, SP, W1, AP, HI, CONT = _tail_masks(buf, base)
        valid = _bits(max(pos - base, 0), min(BLOCK, end - base))
        O = ~(L | N | W1 | HI)
        W = W1
        W2 = W3 = _Z
        if (HI & valid) != 0:
            c = spill_class  # the first bytes may continue the last char of the block before
            L |= spill & _if(c == LETTER)
            N |= spill & _if(c == NUMBER)
            O |= spill & _if(c == OTHER)
            W |= spill & _if(c == SPACE)
            spill = _Z
            m = HI & ~CONT & valid
            while m != 0:  # one table look-up per non-ASCII char
                k = trailing_zeros(m)
                m &= m - _U1
                p = np.uint64(base) + k
                b0 = np.int64(buf[p])
                if b0 < 0xE0:
                    cp = ((b0 & 0x1F) << 6) | (np.int64(buf[p + _U1]) & 0x3F)
                    width = 2
                elif b0 < 0xF0:
                    cp = (((b0 & 0x0F) << 12) | ((np.int64(buf[p + _U1]) & 0x3F) << 6)
                          | (np.int64(buf[p + _U2]) & 0x3F))
                    width = 3
                else:
                    cp = (((b0 & 0x07) << 18) | ((np.int64(buf[p + _U1]) & 0x3F) << 12)
                          | ((np.int64(buf[p + _U2]) & 0x3F) << 6) | (np.int64(buf[p + _U3]) & 0x3F))
                    width = 4
                c = classes[np.uint64(min(cp, _MAX_CP))]
                char = ((_U1 << np.uint64(width)) - _U1) << k
                L |= char & _if(c == LETTER)
                N |= char & _if(c == NUMBER)
                O |= char & _if(c == OTHER)
                W |= char & _if(c == SPACE)
                if c == SPACE:
                    if width == 2:
                        W2 |= _U1 << k
                    else:  # no 4-byte char is whitespace (pretokenizer.scanner_classes checks)
                        W3 |= _U1 << k
                if np.int64(k) + width > BLOCK:
                    spill = (_U1 << np.uint64(np.int64(k) + width - BLOCK)) - _U1
                    spill_class = c
        if valid != _ALL:  # the first or last block of the text
            L &= valid
            N &= valid
            O &= valid
            W1 &= valid
            W &= valid
            SP &= valid
            AP &= valid
            W2 &= valid
            W3 &= valid
        # ---- its starts
        NS = L | N | O
        # L, N, O: a change of class, not after a space
        same = (L & ((L << _U1) | pL)) | (N & ((N << _U1) | pN)) | (O & ((O << _U1) | pO))
        s = NS & ~same & ~((SP << _U1) | pSP)
        # W: a run begins, or the char after it is not W (\s+(?!\S))
        run_end = W1 & (NS >> _U1)
        if (W2 | W3) != 0:
            run_end |= (W2 & (NS >> _U2)) | (W3 & (NS >> _U3))
        # ... for the block's last char if it is W, the char after starts in the next block
        leads = W1 | W2 | W3
        q = base + BLOCK + np.int64(_popcount(spill))
        b = buf[min(q, end - 1)]
        after = _U1 & np.uint64((q < end) & (b < 0x80) & (b != 0x20) & ((b < 0x09) | (b > 0x0D)))
        if b >= 0x80 and q < end and (W >> _U63) != 0:  # rare: a non-ASCII char after a W char at the edge
            b0 = np.int64(b)
            if b0 < 0xE0:
                cp = ((b0 & 0x1F) << 6) | (np.int64(buf[q + 1]) & 0x3F)
            elif b0 < 0xF0:
                cp = ((b0 & 0x0F) << 12) | ((np.int64(buf[q + 1]) & 0x3F) << 6) | (np.int64(buf[q + 2]) & 0x3F)
            else:  # 4 bytes: never whitespace
                cp = 0x10000
            after = _U1 & np.uint64(classes[np.uint64(min(cp, _MAX_CP))] != SPACE)
        top = _U1 << (_U63 - leading_zeros(leads | _U1))  # the last W char's first byte
        run_end |= top & (_Z - (after & (W >> _U63)))
        s |= leads & (~((W << _U1) | pW) | run_end)
        s = (s | force) & ~clear
        a = AP & s
        s &= ~first
        force = clear = first = _Z
        while a != 0:  # apostrophes that start a token: contractions end early
            k = np.int64(trailing_zeros(a))
            a &= a - _U1
            qa = np.uint64(base + k)
            room = end - np.int64(qa)
            m = _contraction(buf[qa + _U1] if room >= 2 else 0, buf[qa + _U2] if room >= 3 else 0, room)
            if m:
                if k + 1 < BLOCK:
                    s &= ~(_U1 << np.uint64(k + 1))
                else:
                    clear = _U1
                if m < room:
                    if k + m < BLOCK:
                        s |= _U1 << np.uint64(k + m)
                    else:
                        force |= _U1 << np.uint64(k + m - BLOCK)
        # ---- append them
        ubase = np.uint64(base)
        if n + np.uint64(_SLACK) <= size:
            if _COMPRESS:
                count = _emit_compressed(starts, n, ubase, s)
                if count > 32:
                    j = n
                    while s != 0:
                        starts[j] = ubase + trailing_zeros(s)
                        s &= s - _U1
                        j += _U1
            else:
                # eight at a time whatever the count (past it they are junk that later
                # writes cover): most blocks take no data-dependent exit
                count = _popcount(s)
                for k in range(8):
                    starts[n + np.uint64(k)] = ubase + trailing_zeros(s)
                    s &= s - _U1
                if count > 8:
                    for k in range(8, 16):
                        starts[n + np.uint64(k)] = ubase + trailing_zeros(s)
                        s &= s - _U1
                    j = n + np.uint64(16)
                    while s != 0:
                        starts[j] = ubase + trailing_zeros(s)
                        s &= s - _U1
                        j += _U1
            n += count
        else:  # a small starts array: stop where it is full
            while s != 0:
                if n >= size - _U1:
                    return np.int64(n) - 1, starts[n - _U1]
                starts[n] = ubase + trailing_zeros(s)
                s &= s - _U1
                n += _U1
        base += BLOCK
        if base >= end:
            break
        pL, pN, pO, pW, pSP = L >> _U63, N >> _U63, O >> _U63, W >> _U63, SP >> _U63
    starts[n] = end
    return np.int64(n), end


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
