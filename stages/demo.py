#!/usr/bin/env python3
"""make demo: the whole pipeline on a small corpus storytok writes itself (no download).

    stages/demo.py corpus --dir data/demo            write data/demo/{train,valid}.txt
    stages/demo.py report --dir data/demo --out-dir encoded_datasets/demo
                                                     check the outputs, say where they are

The Makefile runs `corpus`, then the tokenizer, encode and stats stages on it, then `report`.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from storytok.cli import console, mb, run_stage, summary
from storytok.sources.demo_corpus import write_corpus
from storytok.errors import StorytokError
from storytok.store.flatten import STATS_FILE, decodes_to_file, offsets_path, tokens_path
from storytok.fsutil import read_json
from storytok.sources.inputs import load_tokenizer

SIZES = {"train": 4_000_000, "valid": 400_000}
SEEDS = {"train": 0, "valid": 1}


def corpus(args) -> None:
    t0 = time.perf_counter()
    rows = []
    for split, n in SIZES.items():
        path = args.dir / f"{split}.txt"
        written = write_corpus(path, int(n * args.scale), seed=SEEDS[split])
        rows.append((split, f"{path} ({mb(path.stat().st_size)}{'' if written else ', unchanged'})"))
    summary(f"demo corpus: {time.perf_counter() - t0:.1f}s", rows)


def report(args) -> None:
    tok_dir = args.out_dir / "tokenizer"
    tok = load_tokenizer(tok_dir)
    stats = read_json(args.out_dir / STATS_FILE) or {}
    if not all(split in stats.get("splits", {}) for split in ("train", "valid")):
        raise StorytokError(f"{args.out_dir / STATS_FILE}: missing or incomplete; run `make demo` again")
    rows = [("corpus", f"{args.dir}/train.txt, {args.dir}/valid.txt"),
            ("tokenizer", f"{tok_dir}/ ({len(tok):,} tokens)")]
    for split in ("train", "valid"):
        ok = decodes_to_file(tok, tokens_path(args.out_dir, split), args.dir / f"{split}.txt")
        s = stats["splits"][split]
        rows.append((f"{split} parquet", f"{args.out_dir}/parquet/{split}/"))
        rows.append((f"{split} arrays", f"{tokens_path(args.out_dir, split)} ({s['tokens']:,} tokens, "
                                        f"decodes to the input: {'yes' if ok else 'NO'}), "
                                        f"{offsets_path(args.out_dir, split).name} ({s['stories']:,} stories)"))
    rows.append(("statistics", str(args.out_dir / STATS_FILE)))
    arr = np.load(tokens_path(args.out_dir, "valid"), mmap_mode="r")
    off = np.load(offsets_path(args.out_dir, "valid"), mmap_mode="r")
    first = tok.decode(arr[off[0]:off[1] - 1]).strip().split("\n")[0]
    rows.append(("first valid story", first[:120] + ("..." if len(first) > 120 else "")))
    summary("make demo: done", rows)
    real = [p for p in (args.train, args.valid) if p.exists()]
    if real:
        console.print(f"The real TinyStories files are here ({', '.join(map(str, real))}): "
                      f"`make tokenizer encode stats` (or `make all`) turns them into {args.real_out}/.",
                      soft_wrap=True, markup=False)
    else:
        console.print("For the real corpus: `make data` downloads TinyStories (2.2 GB), then "
                      "`make tokenizer encode stats`; or point TRAIN=... VALID=... at copies you have.",
                      soft_wrap=True, markup=False)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    c = sub.add_parser("corpus", help="write the demo corpus")
    c.add_argument("--dir", type=Path, default=Path("data/demo"))
    c.add_argument("--scale", type=float, default=1.0, help="size factor (1.0 = 4 MB train, 0.4 MB valid)")
    r = sub.add_parser("report", help="check the demo outputs and say where they are")
    r.add_argument("--dir", type=Path, default=Path("data/demo"))
    r.add_argument("--out-dir", type=Path, default=Path("encoded_datasets/demo"))
    r.add_argument("--train", type=Path, default=Path("data/TinyStoriesV2-GPT4-train.txt"), help="real train file")
    r.add_argument("--valid", type=Path, default=Path("data/TinyStoriesV2-GPT4-valid.txt"), help="real valid file")
    r.add_argument("--real-out", type=Path, default=Path("encoded_datasets"), help="OUT of the real pipeline")
    args = ap.parse_args(argv)
    corpus(args) if args.command == "corpus" else report(args)


if __name__ == "__main__":
    sys.exit(run_stage(main))
