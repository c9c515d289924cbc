#!/usr/bin/env python3
"""make data: download the TinyStories V2 (GPT-4) train and valid text files into data/.

Resumable: an interrupted download continues where it stopped on the next run. Files
already in place are kept (no network needed). Set STORYTOK_DATA_URL or --base-url to use
a mirror.

--gpt2 (what `make data KIND=gpt2-top10k` passes) also fetches GPT-2's vocab.json and
merges.txt from the Hugging Face `gpt2` repo into --gpt2-dir (default data/gpt2), for the
gpt2-top10k tokenizer; STORYTOK_GPT2_URL or --gpt2-url points elsewhere.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


from storytok.cli import Timer, mb, rate, run_stage, summary
from storytok.sources.download import BASE_URL_ENV, TINYSTORIES_FILES, base_url, download


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-dir", type=Path, default=Path("data"), help="where the files go (default: data)")
    ap.add_argument("--base-url", default=None,
                    help=f"where to download from (default: ${BASE_URL_ENV} or the Hugging Face dataset)")
    ap.add_argument("--files", nargs="+", default=list(TINYSTORIES_FILES), help="file names under the base URL")
    ap.add_argument("--retries", type=int, default=5, help="resume a broken transfer this many times (default 5)")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds without data before retrying")
    ap.add_argument("--gpt2", action="store_true", help="also fetch GPT-2's vocab.json + merges.txt (KIND=gpt2-top10k)")
    ap.add_argument("--gpt2-dir", type=Path, default=Path("data/gpt2"), help="where GPT-2's files go (default: data/gpt2)")
    ap.add_argument("--gpt2-url", default=None,
                    help="where GPT-2's files come from (default: $STORYTOK_GPT2_URL or the Hugging Face gpt2 repo)")
    args = ap.parse_args(argv)

    root = base_url(args.base_url)
    jobs = [(f"{root}/{name}", args.out_dir / name) for name in args.files]
    if args.gpt2:
        from storytok.bpe.gpt2_top10k import GPT2_FILES, gpt2_base_url   # (imports the kernels: only when asked)
        jobs += [(f"{gpt2_base_url(args.gpt2_url)}/{name}", args.gpt2_dir / name) for name in GPT2_FILES]
    rows = []
    with Timer() as total:
        for url, dest in jobs:
            res = download(url, dest, retries=args.retries, timeout=args.timeout)
            if res.skipped:
                rows.append((str(res.path), f"{mb(res.size)}, already there (delete it to download again)"))
            else:
                resumed = f", resumed at {mb(res.resumed_from)}" if res.resumed_from else ""
                rows.append((str(res.path), f"{mb(res.size)} in {res.seconds:.1f}s "
                                            f"({rate(res.fetched / 1e6, res.seconds, 'MB')}{resumed})"))
    summary(f"make data: done in {total.seconds:.1f}s", rows)


if __name__ == "__main__":
    sys.exit(run_stage(main))
