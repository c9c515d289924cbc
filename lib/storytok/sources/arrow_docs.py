"""A batch of documents as an Arrow string array -> one Chunk the kernels take directly.

An Arrow string array is one contiguous UTF-8 buffer plus offsets, so its documents need no
copy each: the buffer is copied once into a padded buffer (the kernels read 8-byte words,
possibly past the end) and every document becomes a segment [offsets[i], offsets[i+1])
followed by DOC_END. Documents are ordinary text: a literal `<|endoftext|>` inside one is
not a special token. JSONL blocks, Parquet batches, iterators of str and the batch API
(`Tokenizer.encode_arrow`) all come through here.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from storytok.errors import StorytokError
from storytok.kernels.utf8 import first_invalid_utf8
from storytok.pretokenize.pretokenizer import padded_buffer
from storytok.sources.chunks import DOC_END, Chunk

STRING_TYPES = "string or large_string"


def is_text_type(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or _is_string_view(t)


def _is_string_view(t: pa.DataType) -> bool:
    return hasattr(pa.types, "is_string_view") and pa.types.is_string_view(t)


@dataclass
class Strings:
    """The parts of a string (or binary) array: its bytes, the offsets of each value into
    them (int64, rebased to 0), and which values are null (None when none is)."""
    data: np.ndarray
    offsets: np.ndarray
    nulls: np.ndarray | None

    def __len__(self) -> int:
        return self.offsets.size - 1


def strings_of(arr: pa.Array) -> Strings:
    """Zero-copy views of a string / large_string / binary array (string_view is cast first)."""
    if _is_string_view(arr.type):
        arr = arr.cast(pa.large_string())
    t = arr.type
    if pa.types.is_string(t) or pa.types.is_binary(t):
        off_type = np.int32
    elif pa.types.is_large_string(t) or pa.types.is_large_binary(t):
        off_type = np.int64
    else:
        raise TypeError(f"not a string array: {t}")
    n = len(arr)
    bufs = arr.buffers()
    if n == 0 or bufs[1] is None:
        return Strings(np.zeros(0, np.uint8), np.zeros(n + 1, np.int64), None)
    offsets = np.frombuffer(bufs[1], off_type, count=n + 1, offset=arr.offset * np.dtype(off_type).itemsize)
    offsets = offsets.astype(np.int64)
    lo, hi = int(offsets[0]), int(offsets[-1])
    data = np.frombuffer(bufs[2], np.uint8, count=hi - lo, offset=lo) if bufs[2] is not None and hi > lo \
        else np.zeros(0, np.uint8)
    nulls = None
    if arr.null_count:
        nulls = ~np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    return Strings(data, offsets - lo, nulls)


def to_arrow_strings(texts, what: str = "texts", base: int = 0) -> pa.Array:
    """A list of str as one Arrow large_string array (one copy of the text, in C). Strings
    with lone surrogates are encoded as tiktoken does (U+FFFD); None or a non-str is a
    StorytokError naming its index."""
    try:
        arr = pa.array(texts, type=pa.large_string())
    except UnicodeEncodeError:
        arr = pa.array([_utf8(t, base + i, what) for i, t in enumerate(texts)], type=pa.large_binary())
    except (pa.ArrowTypeError, pa.ArrowInvalid, TypeError):
        bad = next(i for i, t in enumerate(texts) if not isinstance(t, str))
        raise StorytokError(f"{what}[{base + bad}] is {type(texts[bad]).__name__}, expected str") from None
    if arr.null_count:
        bad = int(np.flatnonzero(~np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool))[0])
        raise StorytokError(f"{what}[{base + bad}] is None, expected str")
    return arr


def _utf8(t, i: int, what: str) -> bytes:
    if not isinstance(t, str):
        raise StorytokError(f"{what}[{i}] is {type(t).__name__}, expected str")
    try:
        return t.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: replaced by U+FFFD, as tiktoken does
        return t.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode("utf-8")


def doc_chunk(s: Strings, *, path: str = "", file_index: int = 0, offset: int = 0, end: int | None = None,
              skip_bad_docs: bool = False, on_null: Callable[[int], StorytokError] | None = None,
              check_utf8: Callable[[int], StorytokError] | None = None) -> Chunk:
    """The documents of `s` as a Chunk: one segment per document, DOC_END after each.

    A null value is an error (`on_null(i)` makes it, naming the row) unless skip_bad_docs,
    when it is an empty document, counted in chunk.bad_docs. With check_utf8 the text is
    validated, `check_utf8(i)` making the error for the first bad row.
    """
    buf, words = padded_buffer(s.data.size)
    buf[:s.data.size] = s.data
    starts = s.offsets[:-1].copy()
    ends = s.offsets[1:].copy()
    bad = 0
    if s.nulls is not None:
        where = np.flatnonzero(s.nulls)
        if where.size and not skip_bad_docs:
            raise on_null(int(where[0])) if on_null else StorytokError(f"{path}: value {int(where[0])} is null")
        ends[where] = starts[where]
        bad = int(where.size)
    if check_utf8 is not None:
        pos = first_invalid_utf8(buf, words, 0, s.data.size)
        if pos >= 0:
            row = int(np.searchsorted(s.offsets, pos, side="right")) - 1
            raise check_utf8(row)
    n = starts.size
    return Chunk(offset, buf, words, int(s.data.size), None, seg=(starts, ends, np.full(n, DOC_END, np.int64)),
                 end=offset + n if end is None else end, path=path, file=file_index, docs=n, bad_docs=bad,
                 utf8_checked=True)


def text_bytes(chunk: Chunk) -> int:
    """Bytes of text a chunk's segments hold (documents' own bytes; not separators)."""
    starts, ends, _ = chunk.segments()
    return int((ends - starts).sum())
