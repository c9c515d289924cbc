"""A split's input as one stream of chunks: every file in order, each read by its kind.

The contract every consumer relies on (encoder, counter, the Parquet store): documents
come in order, and each one is followed by DOC_END, the place of the separator. A .txt
file's documents are the text between its `<|endoftext|>` tokens (special-token matches
inside the chunk), and the file's last document ends with the file; a JSONL line or a
Parquet row is one document. So N input documents always give N rows, and the flat array
is the documents joined by the separator, whatever mix of kinds the split holds.

Positions (for resuming) are (file index, offset, line): the offset in the file's own
units (decompressed bytes for .txt and JSONL, rows for Parquet), the line for messages.
A position is always a chunk's end, so a resumed run reads exactly the chunks an
uninterrupted one would have read next.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from storytok.errors import StorytokError
from storytok.pretokenize.pretokenizer import padded_buffer
from storytok.pretokenize.specials import Matches, SpecialMatcher
from storytok.sources.arrow_docs import doc_chunk, strings_of, to_arrow_strings
from storytok.sources.chunks import DEFAULT_CHUNK_BYTES, Chunk
from storytok.sources.jsonl import iter_jsonl_chunks
from storytok.sources.parquet import iter_parquet_chunks, open_parquet
from storytok.sources.resolve import InputFile, describe, resolve
from storytok.sources.text import iter_text_chunks

START = (0, 0, 0)
DOC_CHUNK_BYTES = 4 << 20   # JSONL / Parquet chunks: a block is parsed into a few copies of itself


@dataclass
class Source:
    """The resolved input of a split: its files, and how documents are read from them."""
    files: list[InputFile]
    field: str = "text"
    skip_bad_docs: bool = False
    spec: object = None                      # what the user named (for messages)

    @classmethod
    def of(cls, spec, *, field: str = "text", skip_bad_docs: bool = False, unknown_as_text: bool = False) -> "Source":
        """The files `spec` names (sources.resolve); with unknown_as_text a file named
        explicitly with no known extension is read as .txt (the API's train_bpe)."""
        if not field:
            raise StorytokError("FIELD (--field) is empty; name the JSONL field / Parquet column that holds the text")
        return cls(resolve(spec, unknown_as_text), field, skip_bad_docs, spec)

    @property
    def input_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def describe(self) -> str:
        return describe(self.files)

    def identity(self) -> list[dict]:
        return [f.identity() for f in self.files]

    def check(self) -> None:
        """Cheap checks before any work: Parquet files open and have a string column `field`."""
        for f in self.files:
            if f.kind == "parquet":
                open_parquet(f, self.field)

    def disk_before(self, file_index: int) -> int:
        return sum(f.size for f in self.files[:file_index])

    def chunks(self, matcher: SpecialMatcher, *, chunk_bytes: int = DEFAULT_CHUNK_BYTES,
               start: tuple = START) -> Iterator[Chunk]:
        """Every chunk from position `start`; each carries its end position as chunk.position."""
        first, offset, line = start
        for i in range(first, len(self.files)):
            f = self.files[i]
            o, ln = (offset, line) if i == first else (0, 0)
            yield from self._file_chunks(i, f, matcher, chunk_bytes, o, ln)

    def _file_chunks(self, i: int, f: InputFile, matcher, chunk_bytes: int, offset: int, line: int) -> Iterator[Chunk]:
        if f.kind == "txt":
            ended = False
            end = offset
            for c in iter_text_chunks(f, matcher, chunk_bytes=chunk_bytes, start=offset, file_index=i, ends_doc=True):
                ended = c.ends_doc
                end = c.end
                c.position = (i + 1, 0, 0) if c.ends_doc else (i, c.end, 0)
                yield c
            if not ended:   # the last chunk could not tell it was the last (a compressed stream)
                yield terminator(f, i, end)
            return
        doc_bytes = min(chunk_bytes, DOC_CHUNK_BYTES)
        if f.kind == "jsonl":
            it = iter_jsonl_chunks(f, self.field, chunk_bytes=doc_bytes, start=offset, start_line=line,
                                   file_index=i, skip_bad_docs=self.skip_bad_docs)
        else:
            it = iter_parquet_chunks(f, self.field, chunk_bytes=doc_bytes, start=offset, file_index=i,
                                     skip_bad_docs=self.skip_bad_docs)
        for c in it:
            c.position = (i, c.end, c.end_line)
            yield c


def terminator(f: InputFile, file_index: int, at: int) -> Chunk:
    """An empty chunk that only ends a document: the end of a .txt file."""
    buf, words = padded_buffer(0)
    empty = np.zeros(0, np.int64)
    c = Chunk(at, buf, words, 0, Matches(empty, empty, empty), path=f.path, file=file_index, last=True,
              ends_doc=True, utf8_checked=True, docs=1)
    c.position = (file_index + 1, 0, 0)
    return c


def iter_document_chunks(docs: Iterable[str], *, chunk_bytes: int = DEFAULT_CHUNK_BYTES,
                         skip_bad_docs: bool = False) -> Iterator[Chunk]:
    """Chunks of an iterable of str documents (train_bpe from an iterator), gathered into
    batches of about chunk_bytes; memory holds one batch per chunk in flight, never the input."""
    batch: list = []
    size = 0
    first = 0
    for doc in docs:
        if doc is None and skip_bad_docs:
            doc = ""
        batch.append(doc)
        size += len(doc) if isinstance(doc, str) else 0
        if size >= chunk_bytes:
            yield _docs_chunk(batch, first)
            first += len(batch)
            batch, size = [], 0
    if batch:
        yield _docs_chunk(batch, first)


def _docs_chunk(batch: list, first: int) -> Chunk:
    arr = to_arrow_strings(batch, "documents", base=first)
    return doc_chunk(strings_of(arr), path="<documents>", offset=first, end=first + len(batch),
                  check_utf8=lambda i: StorytokError(f"documents[{first + i}] is not valid UTF-8"))


def is_document_iterable(source) -> bool:
    """train_bpe's rule: a str / PathLike / list or tuple names files; any other iterable yields documents."""
    return not isinstance(source, (str, bytes, os.PathLike, list, tuple)) and isinstance(source, Iterable)
