"""`.txt` inputs (plain, .gz, .zst): UTF-8 text with `<|endoftext|>` between documents.

The text is cut into chunks right after special tokens (chunks.safe_cut), so each chunk
encodes on its own; the special tokens found while cutting travel with the chunk. In the
pipeline the file's last chunk also ends a document, so several .txt shards give the rows
of each shard in turn, exactly as if they were one file with a separator between them.
"""
from __future__ import annotations

from collections.abc import Iterator

from storytok.errors import StorytokError
from storytok.pretokenize.specials import SpecialMatcher
from storytok.sources.chunks import DEFAULT_CHUNK_BYTES, Chunk, iter_stream_chunks
from storytok.sources.resolve import InputFile
from storytok.sources.streams import InputStream


def iter_text_chunks(f: InputFile, matcher: SpecialMatcher, *, chunk_bytes: int = DEFAULT_CHUNK_BYTES,
                     start: int = 0, file_index: int = 0, ends_doc: bool = False) -> Iterator[Chunk]:
    """Chunks of a .txt input from decompressed byte `start` (a chunk end of an earlier run).
    With `ends_doc` the last chunk's text ends a document (the pipeline's separator follows)."""
    with InputStream(f) as s:
        if start:
            s.skip(start)
        size = None if f.compression else f.size
        any_text = start > 0
        for chunk in iter_stream_chunks(s.readinto, matcher, chunk_bytes, start, size, path=f.path):
            any_text = True
            chunk.file = file_index
            chunk.compressed = f.compression is not None
            chunk.disk_pos = s.disk_pos if f.compression else chunk.end
            chunk.ends_doc = ends_doc and chunk.last
            chunk.docs = len(chunk.matches.starts) + int(chunk.ends_doc)
            yield chunk
        if not any_text:
            raise StorytokError(f"{f.path}: decompresses to no text; expected UTF-8 text with stories separated "
                                f"by <|endoftext|>")
