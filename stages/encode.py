#!/usr/bin/env python3
"""make encode: encode each split's documents into Parquet parts (one row per document), resumably.

    stages/encode.py --tokenizer DIR --out-dir OUT train=data/train.txt valid=data/valid.txt
    stages/encode.py ... train='data/owt/*.jsonl.zst' train=more/ valid=valid.parquet --field text

A split's input is a file, a glob, a directory, a URI (s3://..., file://...), or several
of these (name the split again); kinds by extension: .txt, .jsonl/.ndjson, .parquet,
optionally .gz/.zst. Writes OUT/parquet/<split>/part-NNNNN.parquet and _manifest.json. An
interrupted run continues where it stopped; a finished one is left alone; a changed
tokenizer or input starts the split over. A second run on the same split is refused while
the first one writes it.

--engine ray encodes the split's shards as tasks on a Ray cluster (RAY_ADDRESS, or a
local Ray with --workers CPUs): one part per shard, the same arrays (storytok.engines.ray).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from storytok.cli import console, mb, rate, run_stage, summary
from storytok.engines import ENGINES, check_engine
from storytok.errors import StorytokError
from storytok.sources.inputs import check_source, load_tokenizer
from storytok.sources.shards import DEFAULT_SHARD_BYTES
from storytok.store.parquet_store import DEFAULT_CHUNK_BYTES, DEFAULT_PART_BYTES, encode_split


def split_arg(text: str) -> tuple[str, str]:
    name, eq, path = text.partition("=")
    if not eq or not name:
        raise argparse.ArgumentTypeError(f"expected SPLIT=PATH, got {text!r}")
    return name, path


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("inputs", nargs="+", type=split_arg, metavar="SPLIT=PATH",
                    help="e.g. train=data/train.txt; a glob or directory; repeat a split for several")
    ap.add_argument("--tokenizer", type=Path, default=Path("encoded_datasets/tokenizer"))
    ap.add_argument("--out-dir", type=Path, default=Path("encoded_datasets"))
    ap.add_argument("--field", default="text", help="JSONL field / Parquet column holding the text (default text)")
    ap.add_argument("--skip-bad-docs", action="store_true",
                    help="read a null or missing text as an empty document (counted) instead of stopping")
    ap.add_argument("--workers", type=int, default=None, help="threads (default: all cores)")
    ap.add_argument("--chunk-bytes", type=int, default=DEFAULT_CHUNK_BYTES, help="text per encoding task")
    ap.add_argument("--part-bytes", type=int, default=DEFAULT_PART_BYTES, help="text per Parquet part (local engine)")
    ap.add_argument("--engine", default="local", help=f"where to encode: {' or '.join(ENGINES)} (default local)")
    ap.add_argument("--shard-bytes", type=int, default=DEFAULT_SHARD_BYTES,
                    help="ray engine: big .txt / .parquet files are cut into shards of about this much (one part each)")
    ap.add_argument("--cache-mb", type=float, default=None,
                    help="memory for the encoder's pre-token caches, all threads together "
                         "(default 256; 0 turns them off; local engine)")
    args = ap.parse_args(argv)
    check_engine(args.engine)
    if args.engine == "ray":
        from storytok.engines.ray import require_ray
        require_ray()

    specs: dict[str, list[str]] = {}
    for name, path in args.inputs:
        if not path:
            raise StorytokError(f"split {name!r} has no input file; SPLITS may name train and valid "
                                f"(their files are TRAIN and VALID)")
        specs.setdefault(name, []).append(path)
    sources = {name: check_source(paths if len(paths) > 1 else paths[0], _variable(name), field=args.field,
                                  skip_bad_docs=args.skip_bad_docs)
               for name, paths in specs.items()}
    tok = load_tokenizer(args.tokenizer)
    if args.cache_mb is not None:
        if args.cache_mb < 0:
            raise StorytokError(f"--cache-mb must be >= 0, got {args.cache_mb:g}")
        getattr(tok, "gpt2", tok).cache_bytes = int(args.cache_mb * (1 << 20))  # a gpt2-top10k kind wraps one
    cluster = None
    if args.engine == "ray":
        from storytok.engines.ray import connect, encode_split as encode_on_ray
        cluster = connect(args.workers)
    rows = []
    try:
        for name, src in sources.items():
            t0 = time.perf_counter()
            if cluster is None:
                r = encode_split(tok, src, args.out_dir / "parquet" / name, split=name, workers=args.workers,
                                 chunk_bytes=args.chunk_bytes, part_bytes=args.part_bytes)
            else:
                r = encode_on_ray(tok, args.tokenizer, src, args.out_dir / "parquet" / name, split=name,
                                  chunk_bytes=args.chunk_bytes, shard_bytes=args.shard_bytes, cluster=cluster)
            rows.append(_split_row(args, name, r, time.perf_counter() - t0))
    finally:
        if cluster is not None:
            cluster.close()
    if cluster is not None:
        rows.append(("engine", f"ray: {cluster.describe()}; one part per shard"))
    summary("make encode", rows)


def _split_row(args, name: str, r, secs: float) -> tuple[str, str]:
    """The summary line of one split (and a note first if it started over)."""
    if r.started_clean_because:
        console.print(f"{name}: started over because {r.started_clean_because}", soft_wrap=True, markup=False)
    if r.up_to_date:
        how = "up to date, nothing to do"
    else:
        kept = f", kept {r.kept_parts} finished part(s)" if r.kept_parts else ""
        how = f"{mb(r.encoded_bytes)} of text in {secs:.1f}s, {rate(r.encoded_bytes / 1e6, secs, 'MB')}{kept}"
    bad = f", {r.bad_docs:,} bad document(s) read as empty" if r.bad_docs else ""
    return (f"{name}", f"{r.rows:,} rows, {r.tokens:,} tokens{bad}, {r.parts} part(s) in "
                       f"{args.out_dir / 'parquet' / name}/ from {r.input} ({how})")


def _variable(split: str) -> str:
    return {"train": "TRAIN", "valid": "VALID"}.get(split, f"{split}=")


if __name__ == "__main__":
    sys.exit(run_stage(main))
