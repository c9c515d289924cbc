"""train_bpe: count pre-tokens on all cores, then run the merge loop kernel.

Ids follow the contract: bytes 0-255 (id == byte value), then merges in creation order,
then the special tokens. Special tokens split the text and are never counted.

What is counted comes from a source (the front of this module): a path, glob, directory or
list of them, of any input kind (storytok.sources), or an iterable of str documents. Every
source becomes the same stream of chunks the encoder takes, so training sees exactly the
text runs encoding will see: inside .txt text, special tokens split it; documents from
JSONL, Parquet or an iterator are ordinary text, each one its own run.

The two stages meet at `PretokenCounts` (every distinct pre-token with its count), so any
input kind plugs in by producing chunks for `count_chunks` (or counts directly), and
`train_from_counts` turns the counts into the vocabulary and merges. Memory of both stages
is bounded by the distinct pre-tokens, not by the corpus: counting keeps one shared table
plus a small cache per thread, and the merge loop works on the distinct pre-tokens only.
"""
from __future__ import annotations

import gc
import os
import threading
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from storytok.errors import StorytokError, StorytokWarning
from storytok.kernels.bpe_train import MAX_POSITIONS, train_merges
from storytok.kernels.count import count_pretokens, new_front, new_spill
from storytok.kernels.counttable import FIELDS, count_table_add, count_table_extract, count_table_new
from storytok.parallel import PerThread, ordered_map, resolve_workers
from storytok.pretokenize.pretokenizer import scanner_classes
from storytok.pretokenize.specials import SpecialMatcher
from storytok.progress import ProgressBar
from storytok.sources.chunks import Chunk, check_text_file, iter_chunks
from storytok.sources.split import Source, is_document_iterable, iter_document_chunks

# Text per counting task: small enough that a chunk's bytes are still in cache when the
# scanner and then the counting loop read them (4 MiB cost 10% less CPU than 16 MiB on
# both corpora), large enough that the work per Python call dwarfs the call.
COUNT_CHUNK_BYTES = 4 << 20


@dataclass
class PretokenCounts:
    """Every distinct pre-token and how often it occurs: pre-token k is
    data[starts[k]:starts[k + 1]] (UTF-8 bytes), counts[k] times. Order carries no meaning."""
    data: np.ndarray     # uint8
    starts: np.ndarray   # int64, len(counts) + 1
    counts: np.ndarray   # int64

    def __len__(self) -> int:
        return len(self.counts)

    def to_dict(self) -> dict[bytes, int]:
        """{pre-token bytes: count}; for tests and small inputs."""
        raw = self.data.tobytes()
        s = self.starts.tolist()
        return {raw[s[k]:s[k + 1]]: int(c) for k, c in enumerate(self.counts.tolist())}


class _ThreadCounts:
    """One counting thread's front cache and spill buffer (count.py)."""

    def __init__(self):
        self.front = new_front()
        self.spill, self.arena, self.meta = new_spill()


class PretokenCounter:
    """Counts the pre-tokens of text segments added from any number of threads at once.

    Each thread counts into its own small cache; what does not stay there is added, under
    a lock, to one table shared by all threads. `result()` (once every `add` returned)
    gives the counts.
    """

    def __init__(self):
        self._classes = scanner_classes()
        self._lock = threading.Lock()
        self._rows, self._arena, self._meta = count_table_new(1 << 14)
        self._threads = PerThread(_ThreadCounts)

    def add(self, buf: np.ndarray, words: np.ndarray, seg_starts: np.ndarray, seg_ends: np.ndarray) -> None:
        """Count the pre-tokens of each buf[seg_starts[k]:seg_ends[k]] (a padded buffer and its
        uint64 view, as `pretokenizer.padded_buffer` makes them; segments are text between
        special tokens)."""
        if not len(seg_starts):
            return
        t = self._threads.get()
        k, pos = 0, int(seg_starts[0])
        while True:
            k, pos, t.arena = count_pretokens(buf, words, seg_starts, seg_ends, k, pos, self._classes,
                                              t.front, t.spill, t.arena, t.meta)
            if k >= len(seg_starts):
                return
            self._flush(t.spill, t.arena, t.meta)

    def add_chunk(self, chunk: Chunk) -> None:
        """Count a chunk's text runs (`Chunk.segments`: text between special tokens, or one
        run per document)."""
        starts, ends, _ = chunk.segments()
        self.add(chunk.buf, chunk.words, starts, ends)

    def _flush(self, recs: np.ndarray, rec_arena: np.ndarray, meta: np.ndarray) -> None:
        with self._lock:
            self._rows, self._arena = count_table_add(self._rows, self._arena, self._meta, recs, rec_arena,
                                                      int(meta[0]), int(meta[1]))
        meta[:] = 0

    def result(self) -> PretokenCounts:
        for t in self._threads.all():
            self._flush(t.spill, t.arena, t.meta)
            self._flush(t.front, t.arena, np.array([len(t.front) // FIELDS, 0], np.int64))   # entries are records
            t.front[:] = 0
        data, starts, counts = count_table_extract(self._rows, self._arena, self._meta)
        return PretokenCounts(data, starts, counts)


def count_chunks(chunks: Iterable[Chunk], workers: int | None = None,
                 on_chunk: Callable[[Chunk], None] | None = None) -> PretokenCounts:
    """Distinct pre-tokens with counts of the text of every chunk, on `workers` threads.

    A chunk is a `storytok.sources.chunks.Chunk` (or anything with its `buf`, `words`,
    `length`, `segments()` and `check_utf8()`); each must start at a pre-token boundary.
    on_chunk(chunk) runs on the caller's thread, in input order, after each chunk (progress)."""
    counter = PretokenCounter()

    def work(chunk: Chunk) -> Chunk:
        chunk.check_utf8()
        counter.add_chunk(chunk)
        return chunk

    for chunk in ordered_map(work, chunks, resolve_workers(workers)):
        if on_chunk is not None:
            on_chunk(chunk)
    return counter.result()


def count_file_pretokens(path, matcher: SpecialMatcher, workers: int | None = None, progress: bool = False,
                         chunk_bytes: int = COUNT_CHUNK_BYTES) -> PretokenCounts:
    """Every distinct pre-token of one UTF-8 text file with its count."""
    size = check_text_file(path)
    with ProgressBar(size, "counting pre-tokens", unit="bytes", enabled=progress) as bar:
        return count_chunks(iter_chunks(path, matcher, chunk_bytes), workers, lambda c: bar.advance(c.length))


def source_chunks(source, matcher: SpecialMatcher, *, field: str = "text", skip_bad_docs: bool = False,
                  chunk_bytes: int = COUNT_CHUNK_BYTES):
    """(chunks, total bytes or None, position(chunk) for progress or None, name) of what
    train_bpe was given."""
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


def _run_merges(counts: PretokenCounts, n_merges: int, progress: bool):
    """The merge kernel, on a worker thread when a progress bar needs the main thread."""
    done = np.zeros(1, np.int64)
    args = (counts.data, counts.starts, counts.counts, n_merges, done)
    if not progress:
        return train_merges(*args)
    result = {}
    worker = threading.Thread(target=lambda: result.update(out=train_merges(*args)))
    with ProgressBar(n_merges, "merging", unit="merges") as bar:
        worker.start()
        while worker.is_alive():
            worker.join(0.1)
            bar.update(int(done[0]))
        bar.update(int(done[0]))
    if "out" not in result:
        raise RuntimeError("merge kernel failed")
    return result["out"]


def check_vocab_size(vocab_size, special_tokens: list[str] | None) -> list[str]:
    """The special tokens as training uses them (SpecialMatcher's order), once vocab_size is
    known to hold the 256 bytes and all of them: checked before any counting."""
    specials = SpecialMatcher(list(special_tokens or [])).tokens
    if not isinstance(vocab_size, (int, np.integer)) or vocab_size < 256 + len(specials):
        raise StorytokError(f"vocab_size {vocab_size} is too small: it must hold the 256 bytes "
                            f"and {len(specials)} special token(s), so at least {256 + len(specials)}")
    return specials


def train_from_counts(counts: PretokenCounts, vocab_size: int, special_tokens: list[str] | None = None,
                      progress: bool = False, source: str = "input"):
    """The BPE of the given pre-token counts: (vocab, merges) as train_bpe returns them.
    source names the input in the warning given when the vocabulary cannot be filled."""
    specials = check_vocab_size(vocab_size, special_tokens)
    n_merges = int(vocab_size) - 256 - len(specials)
    lens = np.diff(counts.starts)
    kept = (lens >= 2) & (counts.counts > 0)
    if int(lens[kept].sum()) + int(kept.sum()) + 1 > MAX_POSITIONS:
        raise StorytokError(f"{source}: its distinct pre-tokens hold {int(lens.sum()):,} bytes, more than the merge "
                            f"loop can address (about 500 million); train on a sample of it")
    left, right = _run_merges(counts, n_merges, progress)

    vocab = {i: bytes([i]) for i in range(256)}
    merges = []
    gc_was_on = gc.isenabled()
    gc.disable()   # tens of thousands of new tuples would set off full collections over every live object
    try:
        for a, b in zip(left.tolist(), right.tolist()):
            merges.append((vocab[a], vocab[b]))
            vocab[len(vocab)] = vocab[a] + vocab[b]
    finally:
        if gc_was_on:
            gc.enable()
    for s in specials:
        vocab[len(vocab)] = s.encode("utf-8")
    if len(merges) < n_merges:
        warnings.warn(f"{source}: no pair left to merge after {len(merges)} merges; "
                      f"vocabulary stops at {len(vocab)} of the {vocab_size} asked for", StorytokWarning, stacklevel=3)
    return vocab, merges


def train_bpe(source, vocab_size: int, special_tokens: list[str] | None = None,
              workers: int | None = None, progress: bool = False, *, field: str = "text",
              skip_bad_docs: bool = False):
    """Train a byte-level BPE; returns (vocab: dict[int, bytes], merges: list[tuple[bytes, bytes]]).

    source: a path, glob or directory (str or PathLike), or a list or tuple of them, of any
    input kind (.txt, .jsonl, .ndjson, .parquet, optionally .gz / .zst; `field` names the
    JSONL field / Parquet column; a file named with no known extension is text); or any
    other iterable of str documents (a generator, a dataset column), read in bounded
    batches. Memory is bounded by the distinct pre-tokens, not by the input.
    """
    matcher = SpecialMatcher(check_vocab_size(vocab_size, special_tokens))
    chunks, total, position, name = source_chunks(source, matcher, field=field, skip_bad_docs=skip_bad_docs)
    n_chunks = 0
    with ProgressBar(total, "counting pre-tokens", unit="bytes", enabled=progress) as bar:
        def on_chunk(chunk: Chunk) -> None:
            nonlocal n_chunks
            n_chunks += 1
            if position:
                bar.update(position(chunk))
            else:
                bar.advance(chunk.length)
        counts = count_chunks(chunks, workers, on_chunk)
    if not n_chunks:
        raise StorytokError(f"{name}: no text to train on: the input holds no documents")
    return train_from_counts(counts, vocab_size, matcher.tokens, progress, source=name)
