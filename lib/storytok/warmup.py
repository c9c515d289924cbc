"""Compile and cache every Numba kernel once, so no later command pays the JIT.

`make setup` runs this after installing; kernels are cached on disk (`cache=True`), so a
fresh machine compiles here, once, with a message, instead of silently inside the first
`make demo` or test. Running it again only loads the cache (a second or two).

    python -m storytok.warmup
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

SAMPLE = ("Once upon a time, a little girl named Lily found a shiny red ball. She didn't know "
          "whose it was. \"Can I play?\" she asked.\n\nThey played 12 games in the park.\n")


def warm_up() -> float:
    """Run every kernel on a tiny input; returns the seconds it took."""
    t0 = time.perf_counter()
    from storytok import Tokenizer, train_bpe
    from storytok.pretokenize.pretokenizer import scan_pretokens

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "warmup.txt"
        path.write_text((SAMPLE + "<|endoftext|>\n") * 20 + "naïve café 東京 😀", encoding="utf-8")
        vocab, merges = train_bpe(path, 300, ["<|endoftext|>"], workers=1)
        tok = Tokenizer(vocab, merges, ["<|endoftext|>"])
        ids = tok.encode(SAMPLE + "<|endoftext|>" + "a" * 100)
        tok.decode(ids)
        list(tok.encode_file(path, workers=1))
        tok.encode_batch([SAMPLE, "", SAMPLE + "<|endoftext|>"], workers=1)
        tok.encode_arrow([SAMPLE, ""], workers=1)
        tok.cache_bytes = 1 << 20  # a small cache that grows, then sweeps: compiles those kernels too
        tok.encode(" ".join(f"w{i}" for i in range(20_000)))
        scan_pretokens(SAMPLE)
    return time.perf_counter() - t0


def main() -> None:
    print("storytok: compiling Numba kernels (once per machine; cached on disk)...", file=sys.stderr, flush=True)
    seconds = warm_up()
    print(f"storytok: kernels ready ({seconds:.1f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
