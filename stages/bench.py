#!/usr/bin/env python3
"""make bench: time storytok against gigatoken, tiktoken, HF tokenizers and rustbpe on one corpus.

    stages/bench.py                          # tinystories: 200 MB make_corpus.py file, vocab 10K
    stages/bench.py --corpus webtext         # 400 MB make_webtext.py file, vocab 32K
    stages/bench.py --input FILE             # any text (<|endoftext|> between documents)
    stages/bench.py --quick                  # 10 MB, one run per job, no compile job: about a minute
    stages/bench.py --scale                  # + tinystories 2 GB / webtext 4 GB runs
    stages/bench.py --only encode,batch      # job groups: train encode batch inputs cold stages scale
    stages/bench.py --report encoded_datasets/bench.json [--markdown]   # show an earlier run

Corpora are generated on first use into data/bench/ and reused (with their distinct
pre-token count and JSONL/Parquet copies beside them). Every job runs in its own
subprocess (peak RSS per tool, runtime included); jobs run --repeat times in rounds and
the median is reported. Prints the table, the id checks and the targets of issues 9, 10
and 4 as PASS/FAIL, and writes everything to --json. The harness is bench/ (not the library).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))          # the bench/ package (before stages/, where this file is bench.py)

from bench import corpora, harness, jobs as jobs_mod, report, session  # noqa: E402
from bench.corpora import CORPORA  # noqa: E402
from bench.harness import BenchConfig, Job  # noqa: E402
from storytok.cli import console, run_stage  # noqa: E402
from storytok.errors import StorytokError  # noqa: E402

SHARED = Path(os.environ.get("STORYTOK_SHARED", ROOT.parent / "shared"))
DATA = ROOT / "data" / "bench"     # generated corpora and what is derived from them (--data-dir)


def _env_float(name: str) -> float | None:
    v = os.environ.get(name, "").strip()
    return float(v) if v else None


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.splitlines()[1:]))
    ap.add_argument("--corpus", choices=sorted(CORPORA), default=os.environ.get("CORPUS") or "tinystories",
                    help="which kind of text: picks the generated input, its default vocab and the targets "
                         "(default tinystories; env CORPUS)")
    ap.add_argument("--input", type=Path, default=os.environ.get("INPUT") or None,
                    help="text file to benchmark on instead of the generated one (env INPUT)")
    ap.add_argument("--mb", type=float, default=_env_float("BENCH_MB"),
                    help="size of the generated file in MB (default: 200 tinystories, 400 webtext; env BENCH_MB)")
    ap.add_argument("--quick", action="store_true",
                    help="small run: a 10 MB generated file (unless --input/--mb), one run per job, no compile job")
    ap.add_argument("--scale", action="store_true",
                    help="also the big-file jobs: tinystories 2 GB (train, encode_file, the make stages), "
                         "webtext 4 GB (train 32K peak RSS and time, encode on 1 core)")
    ap.add_argument("--scale-mb", type=float, default=None, help="size of the --scale file (default 2000 / 4000)")
    ap.add_argument("--scale-input", type=Path, default=None, help="use this file for --scale instead of generating one")
    ap.add_argument("--repeat", type=int, default=None, help="runs per job, median reported (default 3; --quick 1)")
    ap.add_argument("--repeat-max-seconds", type=float, default=30.0,
                    help="a job whose first run takes longer than this is run only once (default 30)")
    ap.add_argument("--vocab-size", type=int, default=None, help="default: 10000 tinystories, 32000 webtext")
    ap.add_argument("--tokenizer", type=Path, default=None,
                    help="tokenizer directory the encode jobs use (default: trained once per corpus and vocab, "
                         "kept in data/bench/)")
    ap.add_argument("--only", default=None,
                    help=f"comma-separated job groups: {', '.join(jobs_mod.GROUPS)} "
                         "(default: all for tinystories; train, encode, cold for webtext; scale needs --scale or --only scale)")
    ap.add_argument("--hf-encode-mb", type=float, default=None,
                    help="HF encode_batch reads only the first N MB (default: all for tinystories, 40 for webtext, "
                         "where it runs at about 1 MB/s, 4 with --quick; 0 = all)")
    ap.add_argument("--no-compile", action="store_true", help="skip the kernel compile with an empty Numba cache")
    ap.add_argument("--workers", type=int, default=None, help="'all cores' for storytok and the peers (default: all)")
    ap.add_argument("--chunk-bytes", type=int, default=None, help="encode_file chunk size (default: storytok's)")
    ap.add_argument("--json", type=Path, default=ROOT / "encoded_datasets" / "bench.json", help="results file")
    ap.add_argument("--data-dir", type=Path, default=DATA,
                    help="where generated corpora, their pre-token counts, JSONL/Parquet copies and tokenizers are "
                         "kept (default data/bench)")
    ap.add_argument("--work-dir", type=Path, default=None, help="scratch directory (default: a temporary one)")
    ap.add_argument("--keep-work", action="store_true", help="keep the scratch directory (logs of every run)")
    ap.add_argument("--report", type=Path, default=None, metavar="BENCH_JSON",
                    help="run nothing: show the report of an earlier run from its JSON")
    ap.add_argument("--markdown", action="store_true",
                    help="with --report: print it as Markdown (for README / docs/bench.md)")
    return ap.parse_args(argv)


def generated(data: Path, corpus: corpora.Corpus, mb: float, suffix: str = "", seed: int = 0) -> Path:
    path = corpora.corpus_path(data, corpus, mb, suffix)
    tool = SHARED / "tools" / corpus.tool
    if not path.exists():
        console.print(f"generating {path} ({mb:g} MB) with {tool} (once; kept for later runs)...", soft_wrap=True,
                      markup=False)
    try:
        path, _ = corpora.ensure_corpus(tool, mb, path, seed)
    except FileNotFoundError as e:
        raise StorytokError(str(e)) from None
    return path


def checked_input(path: Path, what: str) -> Path:
    if not path.is_file():
        raise StorytokError(f"{path}: no such file ({what} names the text to benchmark on)")
    if path.stat().st_size == 0:
        raise StorytokError(f"{path}: empty input file")
    return path


def groups_of(args, corpus: str) -> tuple:
    """--only's groups, else the corpus's defaults (--quick: without stages); --scale adds scale."""
    if args.only is None:
        groups = list(jobs_mod.DEFAULT_GROUPS[corpus])
        if args.quick and "stages" in groups:   # their full-size estimate means little from 10 MB
            groups.remove("stages")
    else:
        groups = []
        for g in (x.strip() for x in args.only.split(",") if x.strip()):
            if g not in jobs_mod.GROUPS:
                raise StorytokError(f"--only: unknown job group {g!r} (choose from {', '.join(jobs_mod.GROUPS)})")
            groups.append(g)
    if args.scale and "scale" not in groups:
        groups.append("scale")
    return tuple(groups)


def progress(kind: str, job: Job, info: dict | None) -> None:
    """One line per run as it ends: its time, MB/s, peak RSS and the load; or its error."""
    if kind != "run":
        return
    if "error" in info:
        console.print(f"  [red]{job.group:<10} {job.label}: error[/red] ", end="")
        console.print(info["error"][:300], soft_wrap=True, markup=False, highlight=False)
        return
    nbytes = info.get("bytes_read") or job.nbytes
    rate = f", {nbytes / 1e6 / info['seconds']:,.1f} MB/s" if nbytes and info["seconds"] else ""
    console.print(f"  {job.group:<10} {job.label:<62} {info['seconds']:8.2f} s{rate}, "
                  f"peak RSS {info['peak_rss_bytes'] / 1e6:,.0f} MB, load {info['load1_before']}",
                  soft_wrap=True, markup=False)


def make_config(args) -> tuple[BenchConfig, int]:
    """The run the options ask for: corpus files (generated if need be), vocab, groups, tokenizer,
    scratch directory."""
    corpus = CORPORA[args.corpus]
    groups = groups_of(args, corpus.name)
    data = args.data_dir
    if args.input is not None:
        inp = checked_input(args.input, "INPUT=/--input")
    else:
        inp = generated(data, corpus, args.mb if args.mb is not None else (corpus.quick_mb if args.quick else corpus.mb))
    vocab = args.vocab_size or corpus.vocab_size
    scale_input = scale_valid = None
    if "scale" in groups:
        if args.scale_input:
            scale_input = checked_input(args.scale_input, "--scale-input")
        else:
            scale_input = generated(data, corpus, args.scale_mb or corpus.scale_mb)
        if corpus.name == "tinystories":
            valid_mb = max(round(scale_input.stat().st_size / 1e6 / 100), 1)   # 1%, as tests/test_scale.py
            scale_valid = generated(data, corpus, valid_mb, "-valid", seed=1)
    hf_mb = args.hf_encode_mb if args.hf_encode_mb is not None else corpus.hf_encode_mb
    if args.quick and args.hf_encode_mb is None and hf_mb:
        hf_mb = min(hf_mb, 4)
    hf_bytes = int(hf_mb * 1e6) if hf_mb else None
    repeat = args.repeat if args.repeat is not None else (1 if args.quick else 3)
    tokdir = args.tokenizer or corpora.derived_path(inp, data, f"-tok{vocab}")
    if args.tokenizer is not None and not (args.tokenizer / "tokenizer.json").is_file():
        raise StorytokError(f"{args.tokenizer}: no tokenizer.json (--tokenizer names a directory make tokenizer wrote)")
    data.mkdir(parents=True, exist_ok=True)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="run-", dir=data))
    work.mkdir(parents=True, exist_ok=True)
    n_all = args.workers or harness.all_cores()
    cfg = BenchConfig(corpus=corpus.name, input=inp, data_dir=data, work_dir=work, stages_dir=ROOT / "stages",
                      vocab_size=vocab, repeat=repeat, repeat_max_seconds=args.repeat_max_seconds, groups=groups,
                      compile_cold=not (args.no_compile or args.quick), scale_input=scale_input,
                      scale_valid=scale_valid, chunk_bytes=args.chunk_bytes, workers=args.workers,
                      tokenizer_dir=tokdir, hf_encode_bytes=hf_bytes)
    return cfg, n_all


def main(argv=None) -> None:
    args = parse(argv)
    if args.report is not None:
        try:
            result = json.loads(args.report.read_text())
        except (OSError, ValueError) as e:
            raise StorytokError(f"{args.report}: cannot read a bench result ({e})") from None
        if args.markdown:
            print(report.markdown(result))
        else:
            report.render(result, console)
        return
    cfg, n_all = make_config(args)
    own_work = args.work_dir is None
    work = cfg.work_dir
    console.print(f"bench: {cfg.corpus}, {cfg.input} ({cfg.input.stat().st_size / 1e6:,.1f} MB), vocab "
                  f"{cfg.vocab_size:,}, {n_all} cores, up to {cfg.repeat} run(s) per job, groups {','.join(cfg.groups)}; "
                  f"scratch {cfg.work_dir}", soft_wrap=True, markup=False)
    try:
        result = session.run(cfg, n_all, say=lambda text: console.print(f"  {text}", soft_wrap=True, markup=False),
                             on_event=progress)
    finally:
        if own_work and not args.keep_work:
            harness.cleanup(work)
    if not own_work or args.keep_work:
        result["work_dir"] = str(work)
    console.print()
    report.render(result, console)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.json.with_name(args.json.name + ".partial")
    tmp.write_text(json.dumps(result, indent=1))
    os.replace(tmp, args.json)
    console.print(f"wrote {args.json}", soft_wrap=True, markup=False)


if __name__ == "__main__":
    sys.exit(run_stage(main))
