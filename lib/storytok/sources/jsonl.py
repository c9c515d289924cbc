"""`.jsonl` / `.ndjson` inputs (plain, .gz, .zst): one JSON object per line, text in a field.

The decompressed bytes are read in blocks of about chunk_bytes cut after a newline, and
each block is parsed by pyarrow's JSON reader with an explicit schema (only the text field
is materialized; other fields are skipped), which gives the block's documents as one Arrow
string array: a chunk with no copy per document (arrow_docs). Memory stays a few blocks,
whatever the file size. Blank lines are skipped.

Errors name the file and line. pyarrow reports what went wrong but not on which line of
the file, so when a block fails, its lines are re-read one by one with Python's json to
find the first bad one (only on that path; the good path never touches Python objects).
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.json as pj

from storytok.errors import StorytokError
from storytok.sources.arrow_docs import doc_chunk, strings_of
from storytok.sources.chunks import DEFAULT_CHUNK_BYTES, Chunk
from storytok.sources.resolve import InputFile
from storytok.sources.streams import InputStream

_NOT_BLANK = re.compile(rb"\S")
READ_BLOCK = 1 << 12      # the least read at a time (a block grows until it holds a whole line)


def iter_jsonl_chunks(f: InputFile, field: str = "text", *, chunk_bytes: int = DEFAULT_CHUNK_BYTES,
                      start: int = 0, start_line: int = 0, file_index: int = 0,
                      skip_bad_docs: bool = False) -> Iterator[Chunk]:
    """Chunks of the documents of a JSONL file, from decompressed byte `start` (a line start,
    which is line `start_line` + 1). chunk.offset / chunk.end are decompressed byte offsets,
    chunk.line / chunk.end_line the lines before them."""
    schema = pa.schema([pa.field(field, pa.string())])
    parse = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    with InputStream(f) as s:
        if start:
            s.skip(start)
        offset, line = start, start_line
        pending = b""
        at_end = False
        while True:
            # The block at `offset` is always its first chunk_bytes (doubled while they hold no
            # newline), cut after the last newline: a resumed run cuts the same blocks.
            want = max(chunk_bytes, READ_BLOCK)
            while True:
                while len(pending) < want and not at_end:
                    data = s.read(want - len(pending))
                    at_end = not data
                    pending += data
                n = min(want, len(pending))
                final = at_end and len(pending) <= want
                cut = n if final else pending.rfind(b"\n", 0, n) + 1
                if cut or n == 0:
                    break
                want *= 2
            if n == 0:
                return
            block = memoryview(pending)[:cut]
            lines = pending.count(b"\n", 0, cut)
            if _NOT_BLANK.search(pending, 0, cut):
                chunk = _parse_block(f, field, block, parse, line, skip_bad_docs)
                chunk.offset, chunk.end = offset, offset + cut
                chunk.line, chunk.end_line = line, line + lines
                chunk.file = file_index
                chunk.compressed = f.compression is not None
                chunk.disk_pos = s.disk_pos
                chunk.last = final
                yield chunk
            block.release()
            pending = pending[cut:]
            offset += cut
            line += lines


def _parse_block(f: InputFile, field: str, block: memoryview, parse, line0: int, skip_bad_docs: bool) -> Chunk:
    read = pj.ReadOptions(use_threads=False, block_size=max(len(block) + 1, 1 << 16))
    try:
        table = pj.read_json(pa.BufferReader(pa.py_buffer(block)), read_options=read, parse_options=parse)
    except (pa.ArrowInvalid, ValueError) as e:
        raise _locate(f, field, bytes(block), line0, e) from None
    col = table.column(field)
    arr = col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()

    def on_null(row: int) -> StorytokError:
        return _locate(f, field, bytes(block), line0, None, null_row=row)

    def bad_utf8(row: int) -> StorytokError:   # pyarrow does not check the bytes inside strings
        return _locate(f, field, bytes(block), line0, None, null_row=row)

    return doc_chunk(strings_of(arr), path=f.path, skip_bad_docs=skip_bad_docs, on_null=on_null,
                     check_utf8=bad_utf8)


def _locate(f: InputFile, field: str, block: bytes, line0: int, err: Exception | None,
            null_row: int | None = None) -> StorytokError:
    """The one-line error for the first bad line of a block that pyarrow refused (err), or
    for its null_row-th document (counting non-blank lines) having no text."""
    row = -1
    hint = "fix the line" + ("" if null_row is None else ", or pass --skip-bad-docs (SKIP_BAD_DOCS=1) to read it "
                                                          "as an empty document")
    for k, raw in enumerate(block.split(b"\n")):
        if not raw.strip():
            continue
        row += 1
        where = f"{f.path}:{line0 + k + 1}"
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            return StorytokError(f"{where}: invalid UTF-8 at byte {e.start} of the line; the input must be UTF-8")
        try:
            obj = json.loads(text)
        except ValueError as e:
            return StorytokError(f"{where}: malformed JSON ({e.msg} at column {e.colno}); each line must be one "
                                 f"JSON object")
        if not isinstance(obj, dict):
            return StorytokError(f"{where}: a JSON {type(obj).__name__} where an object was expected; each line "
                                 f"must be one JSON object with a {field!r} field")
        if field not in obj:
            present = ", ".join(repr(k) for k in list(obj)[:10]) or "none"
            if null_row is None or row == null_row:
                return StorytokError(f"{where}: no field {field!r} (fields: {present}); set FIELD= (--field) to the "
                                     f"field that holds the text, or {hint}")
            continue
        value = obj[field]
        if value is None:
            if null_row is None or row == null_row:
                return StorytokError(f"{where}: field {field!r} is null; {hint}")
            continue
        if not isinstance(value, str):
            return StorytokError(f"{where}: field {field!r} is a JSON {_json_type(value)}, not a string; set FIELD= "
                                 f"(--field) to the field that holds the text")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return StorytokError(f"{where}: field {field!r} holds an invalid \\u escape (a lone surrogate); "
                                 f"the text must be valid Unicode")
    detail = " ".join(str(err).split()) if err is not None else "a document without text"
    last = line0 + block.count(b"\n") + 1
    return StorytokError(f"{f.path}: lines {line0 + 1}-{last}: cannot read them as JSON lines ({detail})")


def _json_type(v) -> str:
    return {bool: "boolean", int: "number", float: "number", list: "array", dict: "object"}.get(type(v), type(v).__name__)
