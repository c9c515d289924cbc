"""tiktoken's workers, on storytok's own vocabulary (so the ids must be identical).

tiktoken is built from the tokenizer directory: `mergeable_ranks` are our tokens with rank =
id (our ids are in merge order), the GPT-2 pattern, `<|endoftext|>` as a special token.
Building the Encoding is not timed; only the encode calls are (reading the file, and
turning id lists into arrays to hash them, are left out: that favours tiktoken).
"""
from __future__ import annotations

import time

from bench.common import (EOT, GPT2_PATTERN, PIECE_BYTES, Clock, IdHasher, blocks, pieces, read_stories,
                          read_text, read_vocab, special_id)


def _encoding(tokenizer_dir):
    import tiktoken
    sep = special_id(tokenizer_dir)
    vocab = read_vocab(tokenizer_dir)
    ranks = {b: i for i, b in vocab.items() if i != sep}
    return tiktoken.Encoding("storytok-bench", pat_str=GPT2_PATTERN, mergeable_ranks=ranks,
                             special_tokens={EOT: sep}), sep


def encode(p: dict) -> dict:
    """The file in 512 KB pieces cut after <|endoftext|>: encode(piece, allowed_special="all") on
    one thread, or encode_batch(pieces, num_threads=N)."""
    enc, sep = _encoding(p["tokenizer_dir"])
    enc.encode("warm up " + EOT, allowed_special="all")
    threads = p["threads"]
    h = IdHasher(sep)
    c = Clock()
    for block in blocks(p["path"]):
        parts = pieces(block, PIECE_BYTES)
        if threads <= 1:
            for piece in parts:
                with c:
                    ids = enc.encode(piece, allowed_special="all")
                h.add_stream(ids)
        else:
            with c:
                out = enc.encode_batch(parts, num_threads=threads, allowed_special="all")
            for ids in out:
                h.add_stream(ids)
    return c.result(**h.result())


def encode_ordinary_batch(p: dict) -> dict:
    """encode_ordinary_batch(stories, num_threads=N): the list-of-documents call issue 10 compares
    storytok's encode_batch with."""
    enc, sep = _encoding(p["tokenizer_dir"])
    enc.encode_ordinary("warm up")
    stories = read_stories(p["path"])
    with Clock() as c:
        out = enc.encode_ordinary_batch(stories, num_threads=p["threads"])
    h = IdHasher(sep)
    h.add_docs(out)
    return c.result(**h.result())


def cold(p: dict) -> dict:
    """Import, build the Encoding from the vocabulary, first encode of a tiny file."""
    t0 = time.perf_counter()
    import tiktoken  # noqa: F401
    t1 = time.perf_counter()
    enc, _ = _encoding(p["tokenizer_dir"])
    enc.encode(read_text(p["path"]), allowed_special="all")
    t2 = time.perf_counter()
    return {"seconds": t2 - t0, "cpu_seconds": time.process_time(),
            "breakdown": {"import": round(t1 - t0, 3), "first encode (incl. Encoding())": round(t2 - t1, 3)}}
