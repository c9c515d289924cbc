#!/usr/bin/env python3
"""make stats: Parquet parts -> flat uint16 .npy arrays, story offsets and stats.json.

    stages/stats.py --tokenizer DIR --out-dir OUT [--name NAME] train valid

Writes OUT/<NAME>_<split>_uint16.npy, OUT/<NAME>_<split>_offsets.npy (NAME: tinystories by
default) and OUT/stats.json, and shows the statistics as a table. Splits whose arrays are
already current are not rewritten.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from storytok.cli import console, rate, run_stage, summary
from storytok.store.corpus_stats import render
from storytok.store.flatten import DEFAULT_NAME, build_arrays_and_stats, check_name, offsets_path, tokens_path
from storytok.sources.inputs import load_tokenizer


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("splits", nargs="+", metavar="SPLIT", help="e.g. train valid")
    ap.add_argument("--tokenizer", type=Path, default=Path("encoded_datasets/tokenizer"))
    ap.add_argument("--out-dir", type=Path, default=Path("encoded_datasets"))
    ap.add_argument("--name", default=DEFAULT_NAME, help=f"corpus name in the array file names (default {DEFAULT_NAME})")
    args = ap.parse_args(argv)

    check_name(args.name)
    tok = load_tokenizer(args.tokenizer)
    t0 = time.perf_counter()
    r = build_arrays_and_stats(tok, args.tokenizer, args.out_dir, args.splits, name=args.name)
    secs = time.perf_counter() - t0
    for table in render(r.stats):
        console.print(table)
    rows = []
    for split in args.splits:
        state = "up to date" if split in r.up_to_date else "written"
        rows.append((split, f"{tokens_path(args.out_dir, split, args.name)}, "
                            f"{offsets_path(args.out_dir, split, args.name)} ({state})"))
    rows.append(("stats", str(r.stats_path)))
    if r.rebuilt:
        rows.append(("time", f"{secs:.1f}s ({rate(r.tokens_written / 1e6, secs, 'M tokens')})"))
    summary("make stats", rows)


if __name__ == "__main__":
    sys.exit(run_stage(main))
