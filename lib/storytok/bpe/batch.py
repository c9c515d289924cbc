"""Many documents (or one big string) on all cores: encode_batch, encode_arrow, the pipeline.

Callers such as Hugging Face `datasets.map(batched=True)`, Ray Data or a pyarrow table hand
over thousands of documents at a time. Encoding them one by one would cost a Python call,
a buffer and a kernel call per document; here a batch becomes one Arrow string array (one
contiguous UTF-8 buffer plus offsets), cut into a few groups of documents. Each group is
one kernel call over all its documents: a segment per document, followed by a marker id
that no token has, so one pass over the output finds where each document's ids end
(kernels.stories.positions_of; split_rows when the markers must go, for Arrow). No Python
object is made per token, and per document only the returned array view. A list of str
is converted a slice at a time, with a few bytes of padding appended as a last string, so
the Arrow buffer itself is the kernels' padded buffer (no copy of the text).

Groups run on a persistent thread pool (threads, and their encoder states, are reused from
one call to the next; a `datasets.map` calls once per thousand documents); the pre-token
cache is the Tokenizer's, shared by all of them. A large str
(encode, encode_to_numpy) is cut into chunks at safe boundaries and encoded the same way.
The pipeline's chunks (storytok.sources.split) go through encode_chunks.

Everything reaches the encoder through Tokenizer._encode_segments, the one seam.
"""
from __future__ import annotations

import io
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from storytok.errors import StorytokError
from storytok.kernels.stories import positions_of, split_rows
from storytok.kernels.utf8 import first_invalid_utf8
from storytok.parallel import ordered_map, resolve_workers
from storytok.pretokenize.pretokenizer import WORD_PADDING, padded_buffer
from storytok.sources.arrow_docs import Strings, is_text_type, strings_of, to_arrow_strings
from storytok.sources.chunks import DOC_END, Chunk, iter_stream_chunks

PARALLEL_MIN_BYTES = 1 << 20      # below this, one thread: splitting costs more than it gains
GROUP_MIN_BYTES = 256 << 10
GROUP_MAX_BYTES = 8 << 20
STRING_CHUNK_MAX = 16 << 20


# ---- a persistent pool, so threads are not started on every call -----------------------
_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_pool_lock = threading.Lock()


def _executor(workers: int) -> ThreadPoolExecutor:
    global _pool, _pool_size
    with _pool_lock:
        if _pool is None or _pool_size < workers:
            old = _pool
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="storytok-batch")
            _pool_size = workers
            if old is not None:
                old.shutdown(wait=False)
        return _pool


def run_ordered(fn: Callable, items: Iterable, workers: int) -> Iterator:
    """fn over items on the persistent pool, at most workers + 1 in flight, results in order.
    One worker (or one item) runs on the calling thread."""
    if workers <= 1:
        for item in items:
            yield fn(item)
        return
    pool = _executor(workers)
    window: deque = deque()
    try:
        for item in items:
            window.append(pool.submit(fn, item))
            if len(window) > workers:
                yield window.popleft().result()
        while window:
            yield window.popleft().result()
    finally:
        for f in window:
            f.cancel()


# ---- one big string ---------------------------------------------------------------------
def encode_text(tok, text: str, *, workers: int | None = None) -> np.ndarray:
    """The ids of a str (specials matched) on all cores: the same ids as one kernel call.

    The str is turned into UTF-8 a slice at a time by the calling thread (str.encode needs
    the GIL) while the pool encodes the chunks before, and each chunk's ids are copied into
    the result as soon as they are ready: neither the conversion nor the assembly waits for
    the whole text, and memory holds a few chunks besides the text and its ids (one call
    over the whole text would need a buffer of one id per byte). One worker goes the same
    way, on the calling thread."""
    n = resolve_workers(workers)
    if len(text) < PARALLEL_MIN_BYTES:
        return tok._encode_bytes(tok._utf8(text))
    return _encode_stream(tok, _StrReader(text, tok._utf8).readinto, None, len(text), n)


def encode_bytes(tok, data: bytes, *, workers: int | None = None) -> np.ndarray:
    """The ids of UTF-8 `data`, as encode_text."""
    n = resolve_workers(workers)
    if len(data) < PARALLEL_MIN_BYTES:
        return tok._encode_bytes(data)
    return _encode_stream(tok, io.BytesIO(data).readinto, len(data), len(data), n)


def _encode_stream(tok, readinto, size: int | None, approx: int, n: int) -> np.ndarray:
    """Chunks cut at safe boundaries (sources.chunks), encoded on the pool, assembled in order."""
    chunk_bytes = int(min(max(approx // (4 * n), 1 << 20), STRING_CHUNK_MAX))
    chunks = iter_stream_chunks(readinto, tok._matcher, chunk_bytes, 0, size, taper=approx)

    def encode(chunk: Chunk) -> np.ndarray:
        return tok._encode_text(chunk.buf, chunk.words, 0, chunk.length, chunk.matches)

    out = np.empty(max(approx // 3, 1 << 16), tok.token_dtype())
    used = 0
    for ids in run_ordered(encode, chunks, n):
        if used + ids.size > out.size:
            grown = np.empty(max(2 * out.size, used + ids.size), out.dtype)
            grown[:used] = out[:used]
            out = grown
        out[used:used + ids.size] = ids
        used += ids.size
    out.resize(used, refcheck=False)   # gives the unused tail back (no copy)
    return out


class _StrReader:
    """A str read as UTF-8 bytes through readinto, converting one slice of it at a time."""

    PIECE = 1 << 22

    def __init__(self, text: str, utf8):
        self.text, self.utf8 = text, utf8
        self.pos = 0
        self.pending = memoryview(b"")

    def readinto(self, view) -> int:
        got = 0
        while got < len(view):
            if not len(self.pending):
                if self.pos >= len(self.text):
                    break
                end = min(self.pos + self.PIECE, len(self.text))
                while end < len(self.text) and "\ud800" <= self.text[end - 1] <= "\udbff":
                    end += 1   # never end a slice on a high surrogate: it may pair with the next one
                self.pending = memoryview(self.utf8(self.text[self.pos:end]))
                self.pos = end
            k = min(len(view) - got, len(self.pending))
            view[got:got + k] = self.pending[:k]
            self.pending = self.pending[k:]
            got += k
        return got


# ---- many documents -----------------------------------------------------------------------
@dataclass
class _Group:
    strings: Strings
    lo: int            # first document
    hi: int            # one past the last
    base: int = 0      # index of strings' first document among the caller's (for messages)
    padded: tuple | None = None   # (buf, words) already padded around strings.data: no copy needed


def _groups(s: Strings, workers: int) -> list[_Group]:
    """Documents cut into groups of about total / (4 * workers) bytes (bounded), whole documents each."""
    total = int(s.offsets[-1])
    n_docs = len(s)
    if n_docs == 0:
        return []
    target = min(max(total // (4 * workers), GROUP_MIN_BYTES), GROUP_MAX_BYTES)
    marks = np.arange(target, total, target)
    cuts = np.unique(np.concatenate([[0], np.searchsorted(s.offsets, marks, side="left"), [n_docs]]))
    cuts = cuts[(cuts >= 0) & (cuts <= n_docs)]
    return [_Group(s, int(a), int(b)) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]


def _marker(tok) -> int | None:
    """An id no token has, that fits the encoder's output dtype (None if there is none)."""
    m = len(tok._tok_len)
    return m if m <= np.iinfo(tok.token_dtype()).max else None


def _doc_segments(tok, buf, words, starts, ends, ordinary: bool):
    """(starts, ends, after) of a group's documents: one segment per document, or, with
    specials matched, the runs between special tokens inside each document."""
    n = starts.size
    doc_after = np.full(n, DOC_END, np.int64)
    if ordinary or not tok._matcher:
        return starts, ends, doc_after
    if n == 0:
        return starts, ends, doc_after
    found = tok._matcher.find(buf, words, int(starts[0]), int(ends[-1]))
    ms, me, mw = found.starts, found.ends, found.which
    if ms.size == 0:
        return starts, ends, doc_after
    # The documents lie back to back; a match found across a boundary is not one (and may hide
    # one right after the boundary): then search each document on its own (rare).
    d = np.searchsorted(starts, ms, side="right") - 1
    if (me > ends[d]).any():
        parts = [tok._matcher.find(buf, words, int(a), int(b)) for a, b in zip(starts.tolist(), ends.tolist())]
        ms = np.concatenate([p.starts for p in parts])
        me = np.concatenate([p.ends for p in parts])
        mw = np.concatenate([p.which for p in parts])
        d = np.repeat(np.arange(n), [p.starts.size for p in parts])
        if ms.size == 0:
            return starts, ends, doc_after
    cnt = np.bincount(d, minlength=n)
    before = np.concatenate([[0], np.cumsum(cnt)[:-1]])
    first = np.arange(n) + before                       # index of each document's first segment
    total = n + ms.size
    seg_s = np.empty(total, np.int64)
    seg_e = np.empty(total, np.int64)
    after = np.empty(total, np.int64)
    seg_s[first] = starts
    seg_e[first + cnt] = ends
    after[first + cnt] = DOC_END
    idx = first[d] + (np.arange(ms.size) - before[d])   # the segment each match ends
    seg_e[idx] = ms
    after[idx] = mw
    seg_s[idx + 1] = me
    return seg_s, seg_e, after


def _encode_group(tok, g: _Group, ordinary: bool, compact: bool):
    """(ids, starts, ends): document i of the group is ids[starts[i]:ends[i]]. With `compact`
    the ids are the documents' alone, back to back (an Arrow list array's values); without,
    the marker after each document stays in between (views need no copy)."""
    s = g.strings
    base = int(s.offsets[g.lo])
    end = int(s.offsets[g.hi])
    if g.padded is not None and base == 0:
        buf, words = g.padded
    else:
        buf, words = padded_buffer(end - base)
        buf[:end - base] = s.data[base:end]
    starts = s.offsets[g.lo:g.hi] - base
    ends = s.offsets[g.lo + 1:g.hi + 1] - base
    if s.nulls is not None:
        null = s.nulls[g.lo:g.hi]
        ends = np.where(null, starts, ends)
    bad = first_invalid_utf8(buf, words, 0, end - base)
    if bad >= 0:
        row = g.base + g.lo + int(np.searchsorted(starts, bad, side="right")) - 1
        raise StorytokError(f"texts[{row}] is not valid UTF-8")
    marker = _marker(tok)
    if marker is None:   # every id of the dtype is taken: one call per document
        pieces = []
        for a, b in zip(starts.tolist(), ends.tolist()):
            st, en, af = _doc_segments(tok, buf, words, np.array([a]), np.array([b]), ordinary)
            af = np.where(af == DOC_END, -1, af)
            pieces.append(tok._encode_segments(buf, words, st, en, af))
        offsets = np.zeros(len(pieces) + 1, np.int64)
        np.cumsum([p.size for p in pieces], out=offsets[1:])
        values = np.concatenate(pieces) if pieces else np.zeros(0, tok.token_dtype())
        return values, offsets[:-1], offsets[1:]
    seg_s, seg_e, after = _doc_segments(tok, buf, words, starts, ends, ordinary)
    ids = tok._encode_segments(buf, words, seg_s, seg_e, after, doc_end=marker)
    if compact:
        values, offsets, _, _ = split_rows(ids, marker, np.zeros(marker + 1, np.int64), False)
        return values, offsets[:-1], offsets[1:]
    ends = positions_of(ids, marker)
    starts = np.empty_like(ends)
    starts[:1] = 0
    starts[1:] = ends[:-1] + 1
    return ids, starts, ends


_PAD = " " * (WORD_PADDING + 8)


def _whole_buffer(arr: pa.Array) -> tuple[np.ndarray, np.ndarray] | None:
    """(buf, words) over the data buffer of a fresh string array whose last value is _PAD:
    the kernels read 8-byte words, up to WORD_PADDING bytes past a text's end, and here
    those bytes belong to the array. None if the buffer is not as expected (then copy)."""
    bufs = arr.buffers()
    data = bufs[2]
    if data is None or data.address % 8 or not data.is_mutable or arr.offset:
        return None
    words = np.frombuffer(data, np.uint64, count=data.size // 8)
    return np.frombuffer(data, np.uint8, count=data.size), words


def _views(encoded) -> list[np.ndarray]:
    ids, starts, ends = encoded
    return [ids[a:b] for a, b in zip(starts.tolist(), ends.tolist())]


def _strings(texts, what: str) -> Strings:
    if isinstance(texts, (pa.Array, pa.ChunkedArray)):
        arr = texts.combine_chunks() if isinstance(texts, pa.ChunkedArray) else texts
        if not is_text_type(arr.type) and not pa.types.is_binary(arr.type) and not pa.types.is_large_binary(arr.type):
            raise StorytokError(f"{what}: an Arrow {arr.type} array; expected string or large_string")
        return strings_of(arr)
    if not isinstance(texts, (list, tuple)):
        texts = list(texts)
    return strings_of(to_arrow_strings(texts, what))


def _encode_groups(tok, s: Strings, workers: int | None, ordinary: bool, compact: bool, fn) -> list:
    n = resolve_workers(workers)
    groups = _groups(s, n)
    if int(s.offsets[-1]) < PARALLEL_MIN_BYTES:
        n = 1
    return list(run_ordered(lambda g: fn(_encode_group(tok, g, ordinary, compact)), groups, n))


def encode_batch(tok, texts, *, workers: int | None = None) -> list[np.ndarray]:
    """One id array per text, each equal to tok.encode_to_numpy(text): special tokens in the
    text are matched, as encode does. Arrays are views into one buffer per group.

    A list of str is turned into Arrow strings a slice at a time on the calling thread (it
    needs the GIL), while the pool encodes the slices before it: the conversion overlaps
    the encoding instead of preceding it."""
    if isinstance(texts, str):
        raise StorytokError("encode_batch takes a list of str; for one string use encode_to_numpy")
    if isinstance(texts, (pa.Array, pa.ChunkedArray)):
        s = _strings(texts, "texts")
        if s.nulls is not None:
            raise StorytokError(f"texts[{int(np.flatnonzero(s.nulls)[0])}] is null, expected str")
        return [v for part in _encode_groups(tok, s, workers, False, False, _views) for v in part]
    if not isinstance(texts, (list, tuple)):
        texts = list(texts)
    n = resolve_workers(workers)
    sample = texts[:64]
    per_doc = max(sum(len(t) for t in sample if isinstance(t, str)) / max(len(sample), 1), 1.0)
    if per_doc * len(texts) < PARALLEL_MIN_BYTES:
        n = 1
    step = int(max(1, min(GROUP_MAX_BYTES, max(per_doc * len(texts) / (4 * n), GROUP_MIN_BYTES)) // per_doc))
    slices = [(a, min(a + step, len(texts))) for a in range(0, len(texts), step)]

    def converted():
        for a, b in slices:
            piece = list(texts[a:b]) if isinstance(texts, tuple) else texts[a:b]
            piece.append(_PAD)   # bytes the kernels may read past the last text: no padded copy needed
            arr = to_arrow_strings(piece, "texts", base=a)
            yield _Group(strings_of(arr.slice(0, b - a)), 0, b - a, base=a, padded=_whole_buffer(arr))

    out: list[np.ndarray] = []
    for part in run_ordered(lambda g: _views(_encode_group(tok, g, False, False)), converted(), n):
        out += part
    return out


def encode_arrow(tok, array, *, workers: int | None = None, ordinary: bool = True):
    """A pyarrow list array of ids, a row per document (nulls stay null): list<uint16> when
    the ids fit, else list<int32>; large_list past 2**31 - 1 ids in total. A ChunkedArray
    gives a ChunkedArray, chunk for chunk. ordinary=True (the default, as for corpora)
    encodes special tokens in the text as plain text; False matches them, as encode does."""
    if isinstance(array, pa.ChunkedArray):
        chunks = [encode_arrow(tok, c, workers=workers, ordinary=ordinary) for c in array.chunks]
        return pa.chunked_array(chunks, type=_list_type(tok, chunks))
    if not isinstance(array, pa.Array):
        array = to_arrow_strings(array if isinstance(array, (list, tuple)) else list(array), "array")
    if pa.types.is_null(array.type):   # all nulls (what pa.array([]) infers)
        array = array.cast(pa.string())
    if not is_text_type(array.type):
        raise StorytokError(f"encode_arrow takes a string or large_string array, not {array.type}")
    s = strings_of(array)
    parts = _encode_groups(tok, s, workers, ordinary, True, lambda enc: enc)
    counts = np.zeros(len(s) + 1, np.int64)
    values = []
    k = 0
    for values_g, starts_g, ends_g in parts:   # compact: each group's rows back to back
        counts[k + 1:k + 1 + starts_g.size] = ends_g - starts_g
        values.append(values_g)
        k += starts_g.size
    offsets = np.cumsum(counts)
    flat = np.concatenate(values) if values else np.zeros(0, tok.token_dtype())
    value_type = pa.uint16() if flat.dtype == np.uint16 else pa.int32()
    vals = pa.array(flat.astype(np.int32) if value_type == pa.int32() else flat, type=value_type)
    mask = pa.array(s.nulls) if s.nulls is not None else None
    if offsets[-1] > np.iinfo(np.int32).max:
        return pa.LargeListArray.from_arrays(pa.array(offsets), vals, mask=mask)
    return pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), vals, mask=mask)


def _list_type(tok, chunks) -> pa.DataType:
    if chunks:
        return chunks[0].type
    return pa.list_(pa.uint16() if tok.token_dtype() == np.uint16 else pa.int32())


# ---- the pipeline: chunks of a split's input ----------------------------------------------
@dataclass
class EncodedPiece:
    chunk: Chunk          # what was encoded (its buffer is released: buf and words are dropped)
    tokens: np.ndarray    # its ids, the separator after every document


def encode_chunks(tok, chunks: Iterable[Chunk], *, sep_id: int, workers: int | None = None) -> Iterator[EncodedPiece]:
    """The chunks of a split's input (storytok.sources.split) encoded on all cores, in order:
    special tokens inside .txt text as matched, `sep_id` after every document."""
    def encode(chunk: Chunk) -> EncodedPiece:
        chunk.check_utf8()
        starts, ends, after = chunk.segments()
        ids = tok._encode_segments(chunk.buf, chunk.words, starts, ends, after, doc_end=sep_id)
        chunk.buf = chunk.words = None
        return EncodedPiece(chunk, ids)

    yield from ordered_map(encode, chunks, resolve_workers(workers))
