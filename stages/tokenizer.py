#!/usr/bin/env python3
"""make tokenizer: train the byte-level BPE (with <|endoftext|>) on the train text.

--train names a file, a glob, a directory or several of these, of any input kind (.txt,
.jsonl/.ndjson, .parquet, optionally .gz/.zst; --field names the JSONL field / Parquet
column). --kind bpe (default) writes vocab.json, merges.txt, tokenizer.json,
tokenizer.tiktoken (and training.json) into the output directory. --kind gpt2-top10k builds
the TinyStories paper's tokenizer instead:
GPT-2's BPE (vocab.json + merges.txt from --gpt2-dir) restricted to the VOCAB_SIZE - 2 GPT-2
tokens most frequent in the train text, plus <|endoftext|> and <|unk|> (see
docs/gpt2_top10k.md). Skips the work when the directory already holds a tokenizer made the
same way from the same file (--force rebuilds).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from storytok.cli import console, mb, rate, run_stage, summary
from storytok.store.corpus_stats import longest_tokens
from storytok.errors import StorytokError
from storytok.bpe.tokenizer_store import KINDS, build_gpt2_top10k_into_dir, train_into_dir


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", nargs="+", action="extend", default=None,
                    help="training input: file(s), glob(s), directories (default data/TinyStoriesV2-GPT4-train.txt)")
    ap.add_argument("--field", default="text", help="JSONL field / Parquet column holding the text (default text)")
    ap.add_argument("--skip-bad-docs", action="store_true",
                    help="read a null or missing text as an empty document instead of stopping")
    ap.add_argument("--vocab-size", type=int, default=10000, help="bytes + merges + specials (default 10000)")
    ap.add_argument("--out", type=Path, default=Path("encoded_datasets/tokenizer"), help="tokenizer directory")
    ap.add_argument("--workers", type=int, default=None, help="threads (default: all cores)")
    ap.add_argument("--force", action="store_true", help="retrain even if the tokenizer is up to date")
    ap.add_argument("--kind", default="bpe", help=f"tokenizer kind: {' or '.join(KINDS)} (default bpe)")
    ap.add_argument("--gpt2-dir", type=Path, default=Path("data/gpt2"),
                    help="gpt2-top10k: folder with GPT-2's vocab.json and merges.txt (default data/gpt2)")
    ap.add_argument("--sample-stories", type=int, default=None, metavar="N",
                    help="gpt2-top10k: count tokens on the first N stories only (default: the whole file)")
    args = ap.parse_args(argv)
    train = args.train or ["data/TinyStoriesV2-GPT4-train.txt"]
    args.train = train[0] if len(train) == 1 else train

    if args.kind not in KINDS:
        raise StorytokError(f"KIND={args.kind}: unknown tokenizer kind; choose {' or '.join(KINDS)}")
    if args.kind == "gpt2-top10k":
        return gpt2_top10k(args)
    if args.sample_stories is not None:
        raise StorytokError("SAMPLE_STORIES (--sample-stories) applies to KIND=gpt2-top10k only; "
                            "the bpe kind trains on the whole TRAIN file")
    r = train_into_dir(args.train, args.vocab_size, args.out, workers=args.workers, force=args.force,
                       field=args.field, skip_bad_docs=args.skip_bad_docs)
    tok = r.tokenizer
    for note in r.notes:
        console.print(f"note: {note}", soft_wrap=True, markup=False)
    reached = f"{len(tok):,}" + ("" if len(tok) == r.requested_vocab else f" (asked for {r.requested_vocab:,})")
    if r.up_to_date:
        when = "up to date (trained earlier from the same file and vocab size; --force retrains)"
    else:
        when = f"{r.seconds:.1f}s ({rate(r.input_bytes / 1e6, r.seconds, 'MB')} of {mb(r.input_bytes)})"
    summary(f"make tokenizer: {args.out}", [
        ("trained on", _describe(args.train)),
        ("time", when),
        ("vocab size", reached),
        ("merges", f"{len(tok.merges):,}"),
        ("longest tokens", ", ".join(repr(t["text"]) for t in longest_tokens(tok, 5))),
        ("wrote", f"{args.out}/vocab.json, merges.txt, tokenizer.json, tokenizer.tiktoken"),
    ])


def _describe(train) -> str:
    return train if isinstance(train, str) else " ".join(train)


def gpt2_top10k(args) -> None:
    if not isinstance(args.train, str) or not args.train.endswith(".txt"):
        raise StorytokError(f"KIND=gpt2-top10k counts GPT-2 tokens on one plain .txt file; TRAIN={_describe(args.train)} "
                            f"names something else (use KIND=bpe for globs, directories, JSONL or Parquet)")
    args.train = Path(args.train)
    r = build_gpt2_top10k_into_dir(args.train, args.gpt2_dir, args.vocab_size, args.out,
                                   sample_stories=args.sample_stories, workers=args.workers, force=args.force)
    tok, c = r.tokenizer, r.tokenizer.counted
    for note in r.notes:
        console.print(f"note: {note}", soft_wrap=True, markup=False)
    if r.up_to_date:
        when = "up to date (built earlier from the same file, GPT-2 files and settings; --force rebuilds)"
    else:
        counting = r.seconds - r.load_seconds
        when = (f"{r.seconds:.1f}s (reading GPT-2's files {r.load_seconds:.1f}s, counting {counting:.1f}s: "
                f"{rate(c['bytes'] / 1e6, counting, 'MB')})")
    sample = f"first {c['rows']:,} stories" if not c["whole_file"] else f"all {c['rows']:,} rows"
    summary(f"make tokenizer (gpt2-top10k): {args.out}", [
        ("counted on", f"{args.train}: {sample}, {mb(c['bytes'])}, {c['gpt2_tokens']:,} GPT-2 tokens"),
        ("time", when),
        ("vocab size", f"{len(tok):,}: {len(tok) - 2:,} most frequent GPT-2 tokens (ids 0..{len(tok) - 3:,}), "
                       f"<|endoftext|> = {tok.eot_id}, <|unk|> = {tok.unk_id}"),
        ("counted text", f"{c['distinct_gpt2_tokens']:,} distinct GPT-2 tokens; <|unk|> rate "
                         f"{100 * c['unk_rate']:.3f}%, kept tokens cover {100 * c['kept_bytes_share']:.3f}% of the bytes"),
        ("most frequent", ", ".join(repr(tok.decode([i])) for i in range(min(8, len(tok) - 2)))),
        ("longest tokens", ", ".join(repr(t["text"]) for t in longest_tokens(tok, 5))),
        ("wrote", f"{args.out}/tokenizer_kind.json, kept_ids.json, vocab.json, merges.txt (GPT-2 from {args.gpt2_dir})"),
    ])


if __name__ == "__main__":
    sys.exit(run_stage(main))
