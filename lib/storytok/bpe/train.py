"""train_bpe: count pre-tokens on all cores, then run the merge loop kernel.

Ids follow the contract: bytes 0-255 (id == byte value), then merges in creation order,
then the special tokens. Special tokens split the text and are never counted.

What is counted comes from a source (the front of this module): a path, glob, directory or
list of them, of any input kind (storytok.sources), or an iterable of str documents. Every
source becomes the same stream of chunks the encoder takes, so training sees exactly the
text runs encoding will see: inside .txt text, special tokens split it; documents from
JSONL, Parquet or an iterator are ordinary text, each one its own run.
"""
from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable, Iterable

import numpy as np

from storytok.sources.chunks import DEFAULT_CHUNK_BYTES, Chunk, check_text_file, iter_chunks
from storytok.errors import StorytokError, StorytokWarning
from storytok.kernels.bpe_train import train_merges
from storytok.kernels.count import count_pretokens
from storytok.kernels.spantable import LEN, OFF, V0, table_add_counts, table_new
from storytok.parallel import PerThread, ordered_map, resolve_workers
from storytok.progress import ProgressBar
from storytok.pretokenize.pretokenizer import scanner_classes
from storytok.pretokenize.specials import SpecialMatcher
from storytok.sources.split import Source, is_document_iterable, iter_document_chunks


def count_file_pretokens(path, matcher: SpecialMatcher, workers: int | None = None, progress: bool = False,
                         chunk_bytes: int = DEFAULT_CHUNK_BYTES):
    """Every distinct pre-token of one .txt file with its count: (arena, offsets, lengths, counts)."""
    size = check_text_file(path)
    return count_chunk_pretokens(iter_chunks(path, matcher, chunk_bytes), workers, progress, size)


def count_chunk_pretokens(chunks: Iterable[Chunk], workers: int | None = None, progress: bool = False,
                          total: int | None = None, done: Callable[[Chunk], int] | None = None):
    """Every distinct pre-token of the chunks' text runs (chunk.segments(): the text between
    special tokens, or one run per document) with its count: (arena, offsets, lengths, counts).
    `done(chunk)` says how far into `total` a chunk reaches, for the progress bar."""
    classes = scanner_classes()
    tables = PerThread(lambda: list(table_new(1 << 16, 1 << 20)))

    def count_chunk(chunk):
        chunk.check_utf8()
        starts, ends, _ = chunk.segments()
        t = tables.get()
        t[0], t[1] = count_pretokens(chunk.buf, chunk.words, starts, ends, classes, t[0], t[1], t[2])
        return chunk

    n = resolve_workers(workers)
    with ProgressBar(total, "counting pre-tokens", unit="bytes", enabled=progress) as bar:
        for chunk in ordered_map(count_chunk, chunks, n):
            if done is not None:
                bar.update(done(chunk))
            else:
                bar.advance(chunk.length)
    parts = tables.all()
    if not parts:
        raise StorytokError("no text to train on: the input holds no documents")
    rows, arena, meta = parts[0]
    for other in parts[1:]:
        rows, arena = table_add_counts(rows, arena, meta, other[0], other[1])
    used = rows[:, LEN] != 0
    return arena, rows[used, OFF], rows[used, LEN], rows[used, V0]


def source_chunks(source, matcher: SpecialMatcher, *, field: str = "text", skip_bad_docs: bool = False,
                  chunk_bytes: int = DEFAULT_CHUNK_BYTES):
    """(chunks, total bytes or None, done(chunk), name) of what train_bpe was given."""
    if is_document_iterable(source):
        chunks = iter_document_chunks(source, chunk_bytes=chunk_bytes, skip_bad_docs=skip_bad_docs)
        return chunks, None, None, "the documents"
    if isinstance(source, Source):
        src = source
    else:
        if isinstance(source, (list, tuple)):
            _check_path_list(source)
        src = Source.of(source, field=field, skip_bad_docs=skip_bad_docs, unknown_as_text=True)
        src.check()
    return (src.chunks(matcher, chunk_bytes=chunk_bytes), src.input_bytes,
            lambda c: src.disk_before(c.file) + (c.disk_pos or c.end), src.describe())


def _check_path_list(items) -> None:
    """A list names files; say how to pass documents when it looks like it holds some."""
    import glob
    for x in items:
        if isinstance(x, str) and not glob.has_magic(x) and not os.path.exists(x) and (
                "\n" in x or " " in x or len(x) > 512):
            raise StorytokError(f"train_bpe got a list whose item {x[:40]!r}... is not a file: a list names input "
                                f"files; to train on a list of documents, pass an iterator: iter(docs)")


def _run_merges(syms, starts, counts, n_merges: int, progress: bool):
    """The merge kernel, on a worker thread when a progress bar needs the main thread."""
    done = np.zeros(1, np.int64)
    if not progress:
        return train_merges(syms, starts, counts, n_merges, done)
    result = {}
    worker = threading.Thread(target=lambda: result.update(out=train_merges(syms, starts, counts, n_merges, done)))
    with ProgressBar(n_merges, "merging", unit="merges") as bar:
        worker.start()
        while worker.is_alive():
            worker.join(0.1)
            bar.update(int(done[0]))
        bar.update(int(done[0]))
    if "out" not in result:
        raise RuntimeError("merge kernel failed")
    return result["out"]


def train_bpe(source, vocab_size: int, special_tokens: list[str] | None = None,
              workers: int | None = None, progress: bool = False, *, field: str = "text",
              skip_bad_docs: bool = False):
    """Train a byte-level BPE; returns (vocab: dict[int, bytes], merges: list[tuple[bytes, bytes]]).

    source: a path, glob or directory (str or PathLike), or a list or tuple of them, of any
    input kind (.txt, .jsonl, .ndjson, .parquet, optionally .gz / .zst; `field` names the
    JSONL field / Parquet column; a file named with no known extension is text); or any
    other iterable of str documents (a generator, a dataset column), read in bounded
    batches. Memory is bounded by the pre-token table, not by the input.
    """
    matcher = SpecialMatcher(list(special_tokens or []))
    specials = matcher.tokens
    if not isinstance(vocab_size, (int, np.integer)) or vocab_size < 256 + len(specials):
        raise StorytokError(f"vocab_size {vocab_size} is too small: it must hold the 256 bytes "
                            f"and {len(specials)} special token(s), so at least {256 + len(specials)}")
    chunks, total, done, name = source_chunks(source, matcher, field=field, skip_bad_docs=skip_bad_docs)
    arena, offs, lens, counts = count_chunk_pretokens(chunks, workers, progress, total, done)

    starts = np.zeros(len(lens) + 1, np.int64)
    np.cumsum(lens, out=starts[1:])
    gather = np.repeat(offs - starts[:-1], lens) + np.arange(starts[-1])
    syms = arena[gather].astype(np.int64)
    n_merges = int(vocab_size) - 256 - len(specials)
    left, right = _run_merges(syms, starts, counts.astype(np.int64), n_merges, progress)

    vocab = {i: bytes([i]) for i in range(256)}
    merges = []
    for a, b in zip(left.tolist(), right.tolist()):
        merges.append((vocab[a], vocab[b]))
        vocab[len(vocab)] = vocab[a] + vocab[b]
    for s in specials:
        vocab[len(vocab)] = s.encode("utf-8")
    if len(merges) < n_merges:
        warnings.warn(f"{name}: no pair left to merge after {len(merges)} merges; "
                      f"vocabulary stops at {len(vocab)} of the {vocab_size} asked for", StorytokWarning, stacklevel=2)
    return vocab, merges
