"""train_bpe: count pre-tokens on all cores, then run the merge loop kernel.

Ids follow the contract: bytes 0-255 (id == byte value), then merges in creation order,
then the special tokens. Special tokens split the text and are never counted.
"""
from __future__ import annotations

import os
import threading
import warnings

import numpy as np

from storytok.sources.chunks import DEFAULT_CHUNK_BYTES, check_text_file, check_utf8, iter_chunks
from storytok.errors import StorytokError, StorytokWarning
from storytok.kernels.bpe_train import train_merges
from storytok.kernels.count import count_pretokens
from storytok.kernels.spantable import LEN, OFF, V0, table_add_counts, table_new
from storytok.parallel import PerThread, ordered_map, resolve_workers
from storytok.progress import ProgressBar
from storytok.pretokenize.pretokenizer import scanner_classes
from storytok.pretokenize.specials import SpecialMatcher


def count_file_pretokens(path, matcher: SpecialMatcher, workers: int | None = None, progress: bool = False,
                         chunk_bytes: int = DEFAULT_CHUNK_BYTES):
    """Every distinct pre-token of the file with its count: (arena, offsets, lengths, counts)."""
    size = check_text_file(path)
    classes = scanner_classes()
    tables = PerThread(lambda: list(table_new(1 << 16, 1 << 20)))

    def count_chunk(chunk):
        check_utf8(path, chunk)
        starts, ends, _ = matcher.segments(chunk.matches, 0, chunk.length)
        t = tables.get()
        t[0], t[1] = count_pretokens(chunk.buf, chunk.words, starts, ends, classes, t[0], t[1], t[2])
        return chunk.length

    n = resolve_workers(workers)
    with ProgressBar(size, "counting pre-tokens", unit="bytes", enabled=progress) as bar:
        for n_bytes in ordered_map(count_chunk, iter_chunks(path, matcher, chunk_bytes), n):
            bar.advance(n_bytes)
    parts = tables.all()
    rows, arena, meta = parts[0]
    for other in parts[1:]:
        rows, arena = table_add_counts(rows, arena, meta, other[0], other[1])
    used = rows[:, LEN] != 0
    return arena, rows[used, OFF], rows[used, LEN], rows[used, V0]


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


def train_bpe(input_path, vocab_size: int, special_tokens: list[str] | None = None,
              workers: int | None = None, progress: bool = False):
    """Train a byte-level BPE; returns (vocab: dict[int, bytes], merges: list[tuple[bytes, bytes]])."""
    matcher = SpecialMatcher(list(special_tokens or []))
    specials = matcher.tokens
    if not isinstance(vocab_size, (int, np.integer)) or vocab_size < 256 + len(specials):
        raise StorytokError(f"vocab_size {vocab_size} is too small: it must hold the 256 bytes "
                            f"and {len(specials)} special token(s), so at least {256 + len(specials)}")
    arena, offs, lens, counts = count_file_pretokens(input_path, matcher, workers, progress)

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
        warnings.warn(f"{os.fspath(input_path)}: no pair left to merge after {len(merges)} merges; "
                      f"vocabulary stops at {len(vocab)} of the {vocab_size} asked for", StorytokWarning, stacklevel=2)
    return vocab, merges
