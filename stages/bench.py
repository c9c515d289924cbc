#!/usr/bin/env python3
"""make bench: time storytok against tiktoken, Hugging Face tokenizers and rustbpe on one file.

    stages/bench.py                     # 200 MB make_corpus.py file (generated on first use)
    stages/bench.py --input FILE        # your own text (<|endoftext|> between stories)
    stages/bench.py --mb 20             # a smaller generated file; --quick: 10 MB, one run per job
    stages/bench.py --scale             # also a 2 GB file: train_bpe, encode_file and the make stages

Every job runs in its own subprocess (peak RSS per tool, runtime included); small jobs run
--repeat times in rounds and the median is reported. Prints a table (seconds, MB/s, CPU
seconds, peak RSS, speed-up over each peer), the id checks and the issue's targets as
PASS/FAIL, and writes everything to --json.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from storytok.bench import BenchConfig, all_cores, cleanup, ensure_corpus, run_all
from storytok.cli import console, run_stage
from storytok.errors import StorytokError

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("STORYTOK_SHARED", ROOT.parent / "shared"))
MAKE_CORPUS = SHARED / "tools" / "make_corpus.py"
GROUPS = ("train", "encode", "cold", "stages")


def _env_float(name: str) -> float | None:
    v = os.environ.get(name, "").strip()
    return float(v) if v else None


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.splitlines()[1:]))
    ap.add_argument("--input", type=Path, default=os.environ.get("INPUT") or None,
                    help="text file to benchmark on (default: a generated make_corpus.py file; env INPUT)")
    ap.add_argument("--mb", type=float, default=_env_float("BENCH_MB"),
                    help="size of the generated file in MB (default 200; env BENCH_MB)")
    ap.add_argument("--quick", action="store_true",
                    help="small run: 10 MB generated file (unless --input/--mb), one run per job, no cold-cache compile")
    ap.add_argument("--scale", action="store_true",
                    help="also run train_bpe, encode_file (peak RSS targets) and make tokenizer/encode/stats on a 2 GB file")
    ap.add_argument("--scale-mb", type=float, default=2000, help="size of the --scale file in MB (default 2000)")
    ap.add_argument("--scale-input", type=Path, default=None, help="use this file for --scale instead of generating one")
    ap.add_argument("--repeat", type=int, default=None, help="runs per job, median reported (default 3; --quick 1)")
    ap.add_argument("--repeat-max-seconds", type=float, default=30.0,
                    help="a job whose first run takes longer than this is run only once (default 30)")
    ap.add_argument("--vocab-size", type=int, default=10000)
    ap.add_argument("--only", default="train,encode,cold,stages",
                    help="comma-separated job groups: train, encode, cold, stages (default: all)")
    ap.add_argument("--no-cold-cache", action="store_true", help="skip the cold start with an empty Numba cache")
    ap.add_argument("--workers", type=int, default=None, help="'all cores' for storytok and the peers (default: all)")
    ap.add_argument("--chunk-bytes", type=int, default=None, help="encode_file chunk size (default: storytok's)")
    ap.add_argument("--json", type=Path, default=ROOT / "encoded_datasets" / "bench.json", help="results file")
    ap.add_argument("--work-dir", type=Path, default=None, help="scratch directory (default: a temporary one)")
    ap.add_argument("--keep-work", action="store_true", help="keep the scratch directory (logs of every run)")
    ap.add_argument("--report", type=Path, default=None, metavar="BENCH_JSON",
                    help="run nothing: show the report of an earlier run from its JSON")
    ap.add_argument("--markdown", action="store_true",
                    help="with --report: print it as Markdown (the README's benchmark section)")
    return ap.parse_args(argv)


def corpus(mb: float, name: str, seed: int = 0) -> Path:
    path = ROOT / "data" / "bench" / name
    try:
        path, made = ensure_corpus(MAKE_CORPUS, mb, path, seed)
    except FileNotFoundError as e:
        raise StorytokError(str(e)) from None
    if made:
        console.print(f"generated {path} ({path.stat().st_size / 1e6:,.1f} MB) with {MAKE_CORPUS}", soft_wrap=True)
    return path


def _mb(n: float) -> str:
    return f"{n / 1e6:,.0f} MB"


def _fmt_s(s: float | None) -> str:
    if s is None:
        return "-"
    return f"{s:,.2f}" if s < 10 else f"{s:,.1f}"


def _cores(s: dict) -> str:
    """CPU seconds per wall second in the timed region: how many cores the job actually got."""
    c, w = s.get("cpu_seconds"), s.get("seconds")
    return f"{c / w:.2f}" if c and w else "-"


def render(result: dict) -> None:
    m, inp = result["machine"], result["input"]
    load = result.get("load1")
    title = (f"storytok bench, {result['date']}: {inp['bytes'] / 1e6:,.1f} MB ({Path(inp['path']).name}), "
             f"vocab {result['config']['vocab_size']:,}")
    caption = (f"{m['cpu']}, {m['usable_cpus']} cores, {m['ram_bytes'] / 2**30:.0f} GiB RAM; "
               + (f"load average (1 min) {load['min']:.1f}-{load['max']:.1f} during the run; " if load else "")
               + "seconds and CPU s (all threads): median of the runs, timed region only; cores used = CPU s / seconds; "
              "peak RSS (VmHWM, whole process): max over the runs; load: 1-min load average before the run")
    t = Table(title=title, caption=caption, show_lines=False, caption_justify="left")
    for col, just in (("job", "left"), ("tool", "left"), ("runs", "right"), ("seconds", "right"), ("MB/s", "right"),
                      ("CPU s", "right"), ("cores used", "right"), ("peak RSS", "right"), ("load", "right"), ("storytok speed-up", "left")):
        t.add_column(col, justify=just, overflow="fold")
    last = last_shown = None
    for s in result["jobs"]:
        if last is not None and s["group"] != last:
            t.add_section()
        last = s["group"]
        if s.get("seconds") is None:
            t.add_row(s["group"], s["label"], "0", "failed", "", "", "", "", "", (s.get("error") or "")[:200])
            continue
        vs = ", ".join(f"{v['x']:.1f}x {v['peer']}" for v in s.get("vs", []))
        group = s["group"] if s["group"] != last_shown else ""
        last_shown = s["group"]
        t.add_row(group, s["label"], str(s["n_runs"]), _fmt_s(s["seconds"]),
                  f"{s['mb_per_s']:,.1f}" if s.get("mb_per_s") else "-",
                  _fmt_s(s.get("cpu_seconds")), _cores(s), _mb(s["peak_rss_bytes"]),
                  f"{s['load1']:.1f}" if s.get("load1") is not None else "-", vs)
    wide = console if console.is_terminal else Console(width=170, highlight=False)
    wide.print(t)

    console.print("[bold]where time goes[/bold] (medians; stages: wall seconds of train_bpe's two stages; kernels: "
                  "CPU seconds in each Numba kernel called from Python, summed over threads)", soft_wrap=True)
    for s in result["jobs"]:
        bd = s.get("breakdown")
        if not bd:
            continue
        parts = ", ".join(f"{k} {v:.2f}" for k, v in bd.items() if not k.startswith("kernel "))
        kern = ", ".join(f"{k[7:]} {v:.2f}" for k, v in bd.items() if k.startswith("kernel "))
        console.print(f"  {s['group']} | {s['label']} ({_fmt_s(s.get('seconds'))} s): {parts}", soft_wrap=True,
                      markup=False)
        if kern:
            console.print(f"      kernels: {kern}", soft_wrap=True, markup=False)
    for peer, a in result.get("merge_agreement", {}).items():
        console.print(f"  [dim]merges[/dim] {peer}: first {a['identical_prefix']:,} of {a['of']:,} identical to "
                      f"storytok's, {a['common_tokens']:,} tokens in common (tie-breaking differs; information only)",
                      soft_wrap=True)
    console.print()
    console.print("[bold]checks[/bold]")
    for c in result["checks"]:
        tag = {True: "[green]OK  [/green]", False: "[red]FAIL[/red]", None: "[yellow]SKIP[/yellow]"}[c["ok"]]
        console.print(f"  {tag} {c['name']}: {c['detail']}", soft_wrap=True, markup=True, highlight=False)
    if result["estimates"]:
        console.print("[bold]full size[/bold] (2,000 MB make_corpus.py train file, 20 MB valid)")
        for name, e in result["estimates"].items():
            console.print(f"  {name}: {e['seconds']:.1f} s  [dim]({e['how']})[/dim]", soft_wrap=True)
    console.print("[bold]targets[/bold] (issue 4, ratios from this run)")
    for tg in result["targets"]:
        tag = {True: "[green]PASS[/green]", False: "[red]FAIL[/red]", None: "[yellow]SKIP[/yellow]"}[tg["ok"]]
        console.print(f"  {tag} {tg['name']}: {tg['detail']}", soft_wrap=True)


def markdown(result: dict) -> str:
    """The report as Markdown: the table, checks, full-size figures and targets."""
    m, inp = result["machine"], result["input"]
    load = result.get("load1")
    v = result["versions"]
    git = result.get("git") or {}
    lines = [f"Run of {result['date']} on {m['cpu']} ({m['usable_cpus']} cores, {m['ram_bytes'] / 2**30:.0f} GiB RAM, "
             f"{m['os']}, Python {m['python']})"
             + (f", load average {load['min']:.1f}-{load['max']:.1f} during the run" if load else "")
             + f"; input {inp['bytes'] / 1e6:,.0f} MB (`{Path(inp['path']).name}`), vocab {result['config']['vocab_size']:,}"
             + (f"; storytok {v.get('storytok')} at commit `{git.get('commit')}`" + (" + local changes" if git.get("dirty") else "")
                if git.get("commit") else "") + ". "
             + ", ".join(f"{k} {v[k]}" for k in ("tiktoken", "tokenizers", "rustbpe", "numba", "numpy") if v.get(k)) + ".",
             "",
             "| job | tool | runs | seconds | MB/s | CPU s | cores used | peak RSS | storytok speed-up |",
             "|---|---|--:|--:|--:|--:|--:|--:|---|"]
    last = None
    for s in result["jobs"]:
        group = s["group"] if s["group"] != last else ""
        last = s["group"]
        if s.get("seconds") is None:
            lines.append(f"| {group} | {s['label']} | 0 | failed | | | | | |")
            continue
        vs = ", ".join(f"{x['x']:.1f}x {x['peer']}" for x in s.get("vs", []))
        lines.append(f"| {group} | {s['label']} | {s['n_runs']} | {_fmt_s(s['seconds'])} | "
                     + (f"{s['mb_per_s']:,.1f}" if s.get("mb_per_s") else "-")
                     + f" | {_fmt_s(s.get('cpu_seconds'))} | {_cores(s)} | {_mb(s['peak_rss_bytes'])} | {vs} |")
    lines += ["", "Checks:", ""]
    for c in result["checks"]:
        lines.append(f"- {'OK' if c['ok'] else ('FAIL' if c['ok'] is False else 'SKIP')}: {c['name']} ({c['detail']})")
    if result["estimates"]:
        lines += ["", "Full size (2,000 MB make_corpus.py train file, 20 MB valid):", ""]
        for name, e in result["estimates"].items():
            lines.append(f"- {name}: {e['seconds']:.1f} s ({e['how']})")
    lines += ["", "Targets (issue 4):", ""]
    for t in result["targets"]:
        lines.append(f"- **{'PASS' if t['ok'] else ('FAIL' if t['ok'] is False else 'SKIP')}** {t['name']}: {t['detail']}")
    return "\n".join(lines).replace("<|endoftext|>", "<\\|endoftext\\|>")


def main(argv=None) -> None:
    args = parse(argv)
    if args.report is not None:
        try:
            result = json.loads(args.report.read_text())
        except (OSError, ValueError) as e:
            raise StorytokError(f"{args.report}: cannot read a bench result ({e})") from None
        if args.markdown:
            print(markdown(result))
        else:
            render(result)
        return
    groups = []
    for g in (x.strip() for x in args.only.split(",") if x.strip()):
        if g not in GROUPS:
            raise StorytokError(f"--only: unknown job group {g!r} (choose from {', '.join(GROUPS)})")
        groups.append(g)
    if args.input is not None:
        if not args.input.is_file():
            raise StorytokError(f"{args.input}: no such input file (INPUT= names the text to benchmark on)")
        if args.input.stat().st_size == 0:
            raise StorytokError(f"{args.input}: empty input file")
        inp = args.input
    else:
        mb = args.mb if args.mb is not None else (10 if args.quick else 200)
        inp = corpus(mb, f"ts{mb:g}.txt")
    scale_input = scale_valid = None
    if args.scale:
        scale_input = args.scale_input or corpus(args.scale_mb, f"ts{args.scale_mb:g}.txt")
        valid_mb = max(round(scale_input.stat().st_size / 1e6 / 100), 1)   # 1%, as tests/test_scale.py
        scale_valid = corpus(valid_mb, f"ts{valid_mb:g}-valid.txt", seed=1)
    repeat = args.repeat if args.repeat is not None else (1 if args.quick else 3)
    own_work = args.work_dir is None
    scratch_parent = ROOT / "data" / "bench"
    scratch_parent.mkdir(parents=True, exist_ok=True)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="storytok-bench-", dir=scratch_parent))
    cfg = BenchConfig(input=inp, work_dir=work, stages_dir=ROOT / "stages", vocab_size=args.vocab_size,
                      repeat=repeat, repeat_max_seconds=args.repeat_max_seconds, groups=tuple(groups),
                      cold_cache=not (args.no_cold_cache or args.quick), scale_input=scale_input, scale_valid=scale_valid,
                      chunk_bytes=args.chunk_bytes, workers=args.workers)
    n = args.workers or all_cores()
    console.print(f"bench: {inp} ({inp.stat().st_size / 1e6:,.1f} MB), {n} cores, up to {repeat} run(s) per job, "
                  f"scratch {work}", soft_wrap=True, markup=False)

    def on_event(kind, job, info):
        if kind == "setup":
            console.print(f"  setup: {job.label}", soft_wrap=True, markup=False)
        elif kind == "run":
            if "error" in info:
                console.print(f"  [red]{job.group} | {job.label}: failed[/red] ({info['error'][:300]})", soft_wrap=True)
                return
            rate = f", {job.nbytes / 1e6 / info['seconds']:,.1f} MB/s" if job.nbytes and info["seconds"] else ""
            console.print(f"  {job.group:<10} {job.label:<48} {info['seconds']:8.2f} s{rate}, "
                          f"peak RSS {info['peak_rss_bytes'] / 1e6:,.0f} MB, load {info['load1_before']}",
                          soft_wrap=True, markup=False)

    try:
        result = run_all(cfg, on_event)
    finally:
        if own_work and not args.keep_work:
            cleanup(work)
    if not own_work or args.keep_work:
        result["work_dir"] = str(work)
    console.print()
    render(result)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.json.with_name(args.json.name + ".partial")
    tmp.write_text(json.dumps(result, indent=1))
    os.replace(tmp, args.json)
    console.print(f"wrote {args.json}", soft_wrap=True, markup=False)


if __name__ == "__main__":
    sys.exit(run_stage(main))
