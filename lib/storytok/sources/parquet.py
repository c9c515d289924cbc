"""`.parquet` inputs: documents in a string column (Hugging Face's TinyStories, FineWeb, ...).

Only the text column is read, in record batches of about chunk_bytes of text (estimated
from the file's metadata), so memory is a few batches whatever the file size. Each batch's
column is an Arrow string array: a chunk with no copy per document (arrow_docs). Positions
are row numbers, so a resumed run starts at the row group holding its first row.
"""
from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from storytok.errors import StorytokError
from storytok.sources.arrow_docs import STRING_TYPES, doc_chunk, is_text_type, strings_of
from storytok.sources.chunks import DEFAULT_CHUNK_BYTES, Chunk
from storytok.sources.resolve import InputFile


def open_parquet(f: InputFile, field: str) -> pq.ParquetFile:
    """The file opened, its `field` column checked: present and a string column."""
    try:
        pf = pq.ParquetFile(f.path)
    except (pa.ArrowException, OSError) as e:
        raise StorytokError(f"{f.path}: not a readable Parquet file ({' '.join(str(e).split())})") from None
    schema = pf.schema_arrow
    if field not in schema.names:
        present = ", ".join(repr(n) for n in schema.names[:20]) or "none"
        raise StorytokError(f"{f.path}: no column {field!r} (columns: {present}); set FIELD= (--field) to the "
                            f"column that holds the text")
    t = schema.field(field).type
    if not is_text_type(t):
        raise StorytokError(f"{f.path}: column {field!r} is {t}, not {STRING_TYPES}; set FIELD= (--field) to the "
                            f"column that holds the text")
    return pf


def _batch_rows(pf: pq.ParquetFile, field: str, chunk_bytes: int) -> int:
    """Rows per batch for about chunk_bytes of text, from the column's uncompressed size."""
    md = pf.metadata
    rows = md.num_rows
    size = 0
    for g in range(md.num_row_groups):
        rg = md.row_group(g)
        for c in range(rg.num_columns):
            col = rg.column(c)
            if col.path_in_schema == field:
                size += col.total_uncompressed_size
    per_row = max(size / max(rows, 1), 1.0)
    return int(max(1, min(chunk_bytes / per_row, 1 << 20)))


def _chunk(f: InputFile, field: str, arr, row: int, file_index: int, skip_bad_docs: bool, total: int) -> Chunk:
    def on_null(i: int) -> StorytokError:
        return StorytokError(f"{f.path}: row {row + i}: column {field!r} is null; fix the row, or pass "
                             f"--skip-bad-docs (SKIP_BAD_DOCS=1) to read it as an empty document")

    def bad_utf8(i: int) -> StorytokError:
        return StorytokError(f"{f.path}: row {row + i}: column {field!r} is not valid UTF-8")

    chunk = doc_chunk(strings_of(arr), path=f.path, file_index=file_index, offset=row, end=row + len(arr),
                      skip_bad_docs=skip_bad_docs, on_null=on_null, check_utf8=bad_utf8)
    chunk.last = row + len(arr) >= total
    chunk.disk_pos = int(f.size * (row + len(arr)) / max(total, 1))
    return chunk


def iter_parquet_chunks(f: InputFile, field: str = "text", *, chunk_bytes: int = DEFAULT_CHUNK_BYTES,
                        start: int = 0, file_index: int = 0, skip_bad_docs: bool = False) -> Iterator[Chunk]:
    """Chunks of the documents in column `field`, from row `start`; chunk.offset / chunk.end
    are row numbers."""
    pf = open_parquet(f, field)
    md = pf.metadata
    total = md.num_rows
    if start >= total:
        return
    first_group, row = 0, 0
    while first_group < md.num_row_groups and row + md.row_group(first_group).num_rows <= start:
        row += md.row_group(first_group).num_rows
        first_group += 1
    batch_rows = _batch_rows(pf, field, chunk_bytes)
    try:
        # Batches are counted from each row group's start, so a run resumed at a chunk's end
        # (a batch boundary) reads the same batches an uninterrupted one reads after it.
        for g in range(first_group, md.num_row_groups):
            for batch in pf.iter_batches(batch_size=batch_rows, columns=[field], row_groups=[g], use_threads=False):
                arr = batch.column(0)
                if row + len(arr) <= start:
                    row += len(arr)
                    continue
                if row < start:   # not a chunk end of this batch size: take the rest of the batch
                    arr, row = arr.slice(start - row), start
                if len(arr):
                    yield _chunk(f, field, arr, row, file_index, skip_bad_docs, total)
                row += len(arr)
    except (pa.ArrowException, OSError) as e:
        raise StorytokError(f"{f.path}: cannot read column {field!r} near row {row} ({' '.join(str(e).split())}); "
                            f"the file may be corrupt") from None
