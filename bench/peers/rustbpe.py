"""rustbpe workers (training only: it has no file encoder)."""
from __future__ import annotations

import time

from bench.common import GPT2_PATTERN, Clock, blocks, learned_tokens, read_text, stories


def train(p: dict) -> dict:
    """train_from_iterator(stories, vocab_size - 1, pattern=GPT-2): rustbpe has no special tokens,
    so its vocab_size is bytes + merges, one less than ours for the same number of merges."""
    import rustbpe
    tk = rustbpe.Tokenizer()
    docs = (s for b in blocks(p["path"]) for s in stories(b, keep_special=False))
    with Clock() as c:
        tk.train_from_iterator(docs, p["vocab_size"] - 1, pattern=GPT2_PATTERN)
    ranks = sorted(tk.get_mergeable_ranks(), key=lambda t: t[1])
    learned = [bytes(t) for t, r in ranks if r >= 256]
    learned_tokens(learned, p.get("learned_out"))
    return c.result(merges=len(learned))


def cold(p: dict) -> dict:
    t0 = time.perf_counter()
    import rustbpe
    t1 = time.perf_counter()
    tk = rustbpe.Tokenizer()
    tk.train_from_iterator(iter(stories(read_text(p["path"]), False)),
                           p["vocab_size"] - 1, pattern=GPT2_PATTERN)
    t2 = time.perf_counter()
    return {"seconds": t2 - t0, "cpu_seconds": time.process_time(),
            "breakdown": {"import": round(t1 - t0, 3), "first train": round(t2 - t1, 3)}}
