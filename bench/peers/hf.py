"""Hugging Face `tokenizers` workers: BpeTrainer (ByteLevel, GPT-2 regex) and encode_batch
with storytok's tokenizer.json."""
from __future__ import annotations

import json
import time
from pathlib import Path

from bench.common import EOT, Clock, IdHasher, blocks, bytes_to_unicode, learned_tokens, read_text, special_id, stories


def _trainer(vocab_size: int):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOT], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    return tk, trainer


def _learned(tk) -> list[bytes]:
    u2b = {c: b for b, c in bytes_to_unicode().items()}
    out = []
    for m in json.loads(tk.to_str())["model"]["merges"]:
        a, b = m.split(" ") if isinstance(m, str) else m
        out.append(bytes(u2b[ch] for ch in a + b))
    return out


def train(p: dict) -> dict:
    """train_from_iterator over batches of stories (separators removed: nothing is counted across
    or inside them); the file is read inside the timed call, as it must be."""
    tk, trainer = _trainer(p["vocab_size"])
    batches = (stories(b, keep_special=False) for b in blocks(p["path"]))
    with Clock() as c:
        tk.train_from_iterator(batches, trainer=trainer)
    learned = _learned(tk)
    learned_tokens(learned, p.get("learned_out"))
    return c.result(merges=len(learned))


def encode(p: dict) -> dict:
    """Tokenizer.from_file(tokenizer.json).encode_batch(stories, each ending in <|endoftext|>), block by
    block; with max_bytes, only the blocks up to that many bytes (its ids are then not compared)."""
    import tokenizers
    tk = tokenizers.Tokenizer.from_file(str(Path(p["tokenizer_dir"]) / "tokenizer.json"))
    tk.encode("warm up " + EOT)
    h = IdHasher(special_id(p["tokenizer_dir"]))
    c = Clock()
    read = 0
    for block in blocks(p["path"]):
        docs = stories(block, keep_special=True)
        with c:
            out = tk.encode_batch(docs, add_special_tokens=False)
        for e in out:
            h.add_stream(e.ids)
        read += len(block.encode("utf-8"))
        if p.get("max_bytes") and read >= p["max_bytes"]:
            # the first max_bytes only (HF is too slow for a whole web corpus): its ids cover a prefix
            return c.result(bytes_read=read, partial=True)
    return c.result(**h.result())


def cold(p: dict) -> dict:
    t0 = time.perf_counter()
    import tokenizers
    t1 = time.perf_counter()
    tk, trainer = _trainer(p["vocab_size"])
    tk.train_from_iterator(stories(read_text(p["path"]), False), trainer=trainer)
    t2 = time.perf_counter()
    tk = tokenizers.Tokenizer.from_file(str(Path(p["tokenizer_dir"]) / "tokenizer.json"))
    tk.encode_batch(stories(read_text(p["path"]), True))
    t3 = time.perf_counter()
    return {"seconds": t3 - t0, "cpu_seconds": time.process_time(),
            "breakdown": {"import": round(t1 - t0, 3), "first train": round(t2 - t1, 3),
                          "first encode (incl. from_file)": round(t3 - t2, 3)}}
