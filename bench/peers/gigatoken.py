"""gigatoken workers (Rust; `pip install gigatoken`): the peer issue 9 measures against.

It loads storytok's tokenizer.json and returns one awkward array row per document, without
the separator (empty documents are skipped), so its ids are compared as documents.

Encoding is measured two ways, in separate processes:
- *cold*: a fresh `Tokenizer`, its first `encode_files` call: what a user encoding a corpus
  once pays (building the Tokenizer is not timed). The targets use this one.
- *warm*: the same Tokenizer object encoding the file a second time (its pre-token cache
  is full from the first call, which is not timed).
"""
from __future__ import annotations

import time
from pathlib import Path

from bench.common import EOT, Clock, IdHasher, learned_tokens, read_stories, special_id


def _hash_docs(arr, sep: int) -> dict:
    import awkward as ak
    import numpy as np
    h = IdHasher(sep)
    lens = ak.to_numpy(ak.num(arr, axis=1)).astype(np.int64)
    off = np.zeros(lens.size + 1, np.int64)
    np.cumsum(lens, out=off[1:])
    h.add_offsets(ak.to_numpy(ak.flatten(arr, axis=1)), off)
    return h.result()


def _source(path):
    import gigatoken
    return gigatoken.TextFileSource([str(path)], separator=EOT.encode())


def encode_files(p: dict) -> dict:
    """Tokenizer(tokenizer.json).encode_files(TextFileSource([path], separator), parallel=...)."""
    import gigatoken
    t = time.perf_counter()
    tok = gigatoken.Tokenizer(str(Path(p["tokenizer_dir"]) / "tokenizer.json"))
    load_s = time.perf_counter() - t
    breakdown = {"load the tokenizer (not timed)": round(load_s, 4)}
    if p.get("warm"):
        t = time.perf_counter()
        first = tok.encode_files(_source(p["path"]), parallel=p["parallel"])
        breakdown["first call, filling the cache (not timed)"] = round(time.perf_counter() - t, 4)
        del first
    with Clock() as c:
        arr = tok.encode_files(_source(p["path"]), parallel=p["parallel"])
    return c.result(breakdown=breakdown, **_hash_docs(arr, special_id(p["tokenizer_dir"])))


def encode_batch(p: dict) -> dict:
    """Tokenizer.encode_batch(stories as a list of str, parallel=True): for the issue-10 API rows."""
    import gigatoken
    tok = gigatoken.Tokenizer(str(Path(p["tokenizer_dir"]) / "tokenizer.json"))
    stories = read_stories(p["path"])
    with Clock() as c:
        arr = tok.encode_batch(stories, parallel=p.get("parallel", True))
    return c.result(**_hash_docs(arr, special_id(p["tokenizer_dir"])))


def train(p: dict) -> dict:
    """gigatoken_rs.train_bpe(path, vocab_size, [EOT], separator=EOT). Its ties differ from ours
    (HF's rule), so only its time is compared, not its merges."""
    import gigatoken
    with Clock() as c:
        vocab, merges = gigatoken.gigatoken_rs.train_bpe(str(p["path"]), p["vocab_size"], [EOT],
                                                          separator=EOT.encode())
    learned_tokens([a + b for a, b in merges], p.get("learned_out"))
    return c.result(merges=len(merges))


def cold(p: dict) -> dict:
    """Import, Tokenizer(tokenizer.json), first encode_files of a tiny file; then a tiny train."""
    t0 = time.perf_counter()
    import gigatoken
    t1 = time.perf_counter()
    tok = gigatoken.Tokenizer(str(Path(p["tokenizer_dir"]) / "tokenizer.json"))
    tok.encode_files(_source(p["path"]), parallel=False)
    t2 = time.perf_counter()
    gigatoken.gigatoken_rs.train_bpe(str(p["path"]), p["vocab_size"], [EOT], separator=EOT.encode())
    t3 = time.perf_counter()
    return {"seconds": t3 - t0, "cpu_seconds": time.process_time(),
            "breakdown": {"import": round(t1 - t0, 3), "first encode (incl. Tokenizer())": round(t2 - t1, 3),
                          "first train": round(t3 - t2, 3)}}
