"""Compile and cache every Numba kernel once, so no later command pays the JIT.

`make setup` runs this after installing; kernels are cached on disk (`cache=True`), so a
fresh machine compiles here, once, with a message, instead of silently inside the first
`make demo` or test. Running it again only loads the cache (a second or two).

Numba compiles on one thread, so on a machine with two cores or more the kernels both
steps share are compiled first, then training's in a child process while encoding's
compile here: the wall time is the longer half, not the sum. Both write the same on-disk cache (Numba replaces its files atomically).

    python -m storytok.warmup            # everything, halves in parallel
    python -m storytok.warmup --half train|encode
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SAMPLE = ("Once upon a time, a little girl named Lily found a shiny red ball. She didn't know "
          "whose it was. \"Can I play?\" she asked.\n\nThey played 12 games in the park.\n")
WARMUP_TEXT = (SAMPLE + "<|endoftext|>\n") * 20 + "naïve café 東京 😀"


def _sample_file(tmp: str) -> Path:
    path = Path(tmp) / "warmup.txt"
    path.write_text(WARMUP_TEXT, encoding="utf-8")
    return path


def warm_train() -> None:
    """Training's kernels: counting, the count table, the merge loop."""
    from storytok import kernels, train_bpe

    with tempfile.TemporaryDirectory() as tmp:
        train_bpe(_sample_file(tmp), 300, ["<|endoftext|>"], workers=1)
    words, offsets, counts = kernels.count_pretokens(SAMPLE.encode())
    kernels.train_merges(words, offsets, counts, 10)
    from storytok.kernels.partition import span_partitions   # the Ray engine's counting (engines.counts)
    span_partitions(np.frombuffer(b"a story", np.uint8), np.array([0, 1, 7], np.int64), 2)


def warm_encode() -> None:
    """Encoding's kernels: the block encoder and its cache, batches, Arrow, rows, the scanner."""
    from storytok import Tokenizer, kernels
    from storytok.pretokenize.pretokenizer import scan_pretokens

    merges = [(b"e", b" "), (b"t", b"h"), (b"th", b"e"), (b" ", b"a"), (b"i", b"n")]
    vocab = {i: bytes([i]) for i in range(256)}
    for a, b in merges:
        vocab[len(vocab)] = a + b
    vocab[len(vocab)] = b"<|endoftext|>"
    tok = Tokenizer(vocab, merges, ["<|endoftext|>"])
    with tempfile.TemporaryDirectory() as tmp:
        path = _sample_file(tmp)
        tok.decode(tok.encode(SAMPLE + "<|endoftext|>" + "a" * 100))
        list(tok.encode_file(path, workers=1))
        tok.encode_batch([SAMPLE, "", SAMPLE + "<|endoftext|>"], workers=1)
        tok.encode_arrow([SAMPLE, ""], workers=1)
        tok.cache_bytes = 1 << 20  # a small cache that grows, then sweeps: compiles those kernels too
        tok.encode(" ".join(f"w{i}" for i in range(20_000)))
    scan_pretokens(SAMPLE)
    data = SAMPLE.encode()
    starts, ends = kernels.scan_pretokens(data)
    kernels.encode_spans(data, starts, ends, kernels.merge_table([101], [32]))


def warm_shared() -> None:
    """Kernels both halves call (specials, UTF-8 check, scanner): compiled before the halves
    split, so neither process compiles them again."""
    from storytok.pretokenize.pretokenizer import scan_pretokens, text_buffer
    from storytok.pretokenize.specials import SpecialMatcher
    from storytok.kernels.utf8 import first_invalid_utf8

    data = WARMUP_TEXT.encode()
    buf, words = text_buffer(data)
    SpecialMatcher(["<|endoftext|>"]).find(buf, words, 0, len(data))
    first_invalid_utf8(buf, words, 0, len(data))
    scan_pretokens(SAMPLE)


HALVES = {"train": warm_train, "encode": warm_encode}


def warm_up(parallel: bool | None = None) -> float:
    """Run every kernel on a tiny input; returns the seconds it took. parallel (default:
    when there are two cores or more) compiles the training half in a child process."""
    t0 = time.perf_counter()
    if parallel is None:
        parallel = (os.cpu_count() or 1) >= 2
    child = None
    if parallel:
        warm_shared()
        child = subprocess.Popen([sys.executable, "-m", "storytok.warmup", "--half", "train"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        warm_encode()
        if child is None:
            warm_train()
    finally:
        if child is not None:
            _, err = child.communicate()
    if child is not None and child.returncode != 0:
        raise RuntimeError(f"compiling the training kernels failed:\n{err.strip()}")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--half", choices=sorted(HALVES), help="compile one half only (what the child process runs)")
    ap.add_argument("--serial", action="store_true", help="both halves in this process, one after the other")
    args = ap.parse_args()
    if args.half:
        HALVES[args.half]()
        return
    print("storytok: compiling Numba kernels (once per machine; cached on disk)...", file=sys.stderr, flush=True)
    seconds = warm_up(parallel=not args.serial and None)
    print(f"storytok: kernels ready ({seconds:.1f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
