"""The report of a run: a rich table on screen, or Markdown for README / docs/bench.md.

One table per run (one corpus per run), one section per job group; every row says which
input it read (size and distinct pre-tokens), and the last column compares it with the row
that matters for it (a peer with storytok on the same cores; an issue-10 API with
encode_file). Below: where time goes, the id checks, full-size figures, targets by issue.
"""
from __future__ import annotations

from pathlib import Path

from bench.common import MB, size_text

COLUMNS = (("job", "left"), ("what", "left"), ("input", "right"), ("runs", "right"), ("seconds", "right"),
           ("MB/s", "right"), ("CPU s", "right"), ("cores used", "right"), ("peak RSS", "right"), ("load", "right"),
           ("compared", "left"))
TAG = {True: "PASS", False: "FAIL", None: "SKIP"}
CHECK_TAG = {True: "OK", False: "FAIL", None: "SKIP"}
ISSUES = {"9": "issue 9: web text at gigatoken speed", "10": "issue 10: any corpus in, any caller",
          "4": "issue 4, kept as regression guards"}


def count_text(n: int | None) -> str:
    if n is None:
        return "?"
    if n >= 1e6:
        return f"{n / 1e6:.1f}M"
    if n >= 1e4:
        return f"{n / 1e3:.0f}K"
    if n >= 1e3:
        return f"{n / 1e3:.1f}K"
    return str(n)


def input_text(info: dict | None) -> str:
    """'400 MB, 884K distinct': the size of what a row read and its distinct pre-tokens."""
    if not info or not info.get("bytes"):
        return "-"
    out = size_text(info["bytes"])
    if info.get("distinct") is not None:
        out += f", {count_text(info['distinct'])} distinct"
    return out


def fmt_s(s: float | None) -> str:
    if s is None:
        return "-"
    return f"{s:,.2f}" if s < 10 else f"{s:,.1f}"


def cores_used(s: dict) -> str:
    """CPU seconds per wall second in the timed region: how many cores the job actually got."""
    c, w = s.get("cpu_seconds"), s.get("seconds")
    return f"{c / w:.2f}" if c and w else "-"


def row_cells(s: dict, inputs: dict) -> list[str]:
    if s.get("input") == "slice":        # a slow peer that read only the start of the input
        inp = f"first {size_text(s['bytes'])}" if s.get("bytes") else "a slice"
    else:
        inp = input_text(inputs.get(s.get("input", "main")))
    if s.get("seconds") is None:
        return [s["label"], inp, "0", "error", "", "", "", "", "", (s.get("error") or "no result")[:160]]
    return [s["label"], inp, str(s["n_runs"]), fmt_s(s["seconds"]),
            f"{s['mb_per_s']:,.1f}" if s.get("mb_per_s") else "-", fmt_s(s.get("cpu_seconds")), cores_used(s),
            f"{s['peak_rss_bytes'] / MB:,.0f} MB", f"{s['load1']:.1f}" if s.get("load1") is not None else "-",
            (s.get("ratio") or {}).get("text", "")]


def title(result: dict) -> str:
    inp = result["inputs"]["main"]
    return (f"storytok bench, {result['date']}: {result['corpus']['name']}, {Path(inp['path']).name} "
            f"({input_text(inp)} pre-tokens), vocab {result['config']['vocab_size']:,}")


def caption(result: dict) -> str:
    m, load = result["machine"], result.get("load1")
    return (f"{m['cpu']}, {m['usable_cpus']} cores, {(m.get('ram_bytes') or 0) / 2**30:.0f} GiB RAM; "
            + (f"load average (1 min) {load['min']:.1f}-{load['max']:.1f} during the run; " if load else "")
            + "seconds, CPU s (all threads): median of the runs, timed region only; cores used = CPU s / seconds; "
              "peak RSS (VmHWM of the worker process): max over the runs; load: 1-min load average before the run; "
              "compared: speed of the named storytok row / this row's (peers), or of this row / the named one (storytok)")


def check_lines(checks: list[dict]) -> list[tuple[bool | None, str]]:
    """The checks as (verdict, text) lines, in order, with the id comparisons that agree folded into
    one line after the reference (which rows gave its ids); every other check on its own line."""
    out: list[tuple[bool | None, str]] = []
    ref_at, same = None, []
    for c in checks:
        if c["about"] == "reference":
            ref_at = len(out)
            out.append((True, f"ids identical to {c['ref']} ({c['detail']}): "))
        elif ref_at is not None and c["ok"] is True and c.get("row"):
            same.append(c["row"])
        else:
            out.append((c["ok"], f"{c['name']}: {c['detail']}"))
    if ref_at is not None:
        _, text = out[ref_at]
        out[ref_at] = (True if same else None, text + (", ".join(same) if same else "no other row to compare"))
    return out


def render(result: dict, console) -> None:
    from rich.console import Console
    from rich.table import Table
    t = Table(title=title(result), caption=caption(result), caption_justify="left")
    for col, just in COLUMNS:
        t.add_column(col, justify=just, overflow="fold")
    last = None
    for s in result["jobs"]:
        if last is not None and s["group"] != last:
            t.add_section()
        cells = row_cells(s, result["inputs"])
        t.add_row(s["group"] if s["group"] != last else "", *cells,
                  style="red" if s.get("seconds") is None else None)
        last = s["group"]
    # piped to a file or a log: wide enough that rows do not fold
    wide = console if console.is_terminal else Console(file=console.file, width=max(console.width, 200), highlight=False)
    wide.print(t)

    console.print("[bold]where time goes[/bold] (medians; stages: wall seconds of train_bpe's two stages; kernels: "
                  "CPU seconds in each Numba kernel called from Python, summed over threads)", soft_wrap=True)
    for s in result["jobs"]:
        bd = s.get("breakdown")
        if not bd:
            continue
        parts = ", ".join(f"{k} {v:.2f}" for k, v in bd.items() if not k.startswith("kernel "))
        kern = ", ".join(f"{k[7:]} {v:.2f}" for k, v in bd.items() if k.startswith("kernel "))
        console.print(f"  {s['group']} | {s['label']} ({fmt_s(s.get('seconds'))} s): {parts}", soft_wrap=True,
                      markup=False)
        if kern:
            console.print(f"      kernels: {kern}", soft_wrap=True, markup=False)
    for peer, a in result.get("merge_agreement", {}).items():
        console.print(f"  merges of {peer}: first {a['identical_prefix']:,} of {a['of']:,} identical to storytok's, "
                      f"{a['common_tokens']:,} tokens in common (ties are broken differently; information only)",
                      soft_wrap=True, markup=False)
    console.print()
    console.print("[bold]checks[/bold]")
    colour = {True: "green", False: "red", None: "yellow"}
    for ok, text in check_lines(result["checks"]):
        console.print(f"  [{colour[ok]}]{CHECK_TAG[ok]:<4}[/{colour[ok]}] ", end="")
        console.print(text, soft_wrap=True, markup=False, highlight=False)
    if result.get("estimates"):
        console.print("[bold]full size[/bold] (2,000 MB make_corpus.py train file, 20 MB valid)", soft_wrap=True)
        for name, e in result["estimates"].items():
            console.print(f"  {name}: {e['seconds']:.1f} s ({e['how']})", soft_wrap=True, markup=False)
    for issue, heading in ISSUES.items():
        ts = [t for t in result["targets"] if t["issue"] == issue]
        if not ts:
            continue
        console.print(f"[bold]targets, {heading}[/bold] ({result['corpus']['name']}; ratios from this run)",
                      soft_wrap=True)
        for t in ts:
            console.print(f"  [{colour[t['ok']]}]{TAG[t['ok']]}[/{colour[t['ok']]}] ", end="")
            console.print(f"{t['name']}: {t['detail']}", soft_wrap=True, markup=False, highlight=False)


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def markdown(result: dict) -> str:
    """The report as Markdown: the table, checks, full-size figures and targets."""
    m, load, v = result["machine"], result.get("load1"), result["versions"]
    git = result.get("git") or {}
    lines = [f"Run of {result['date']} on {m['cpu']} ({m['usable_cpus']} cores, "
             f"{(m.get('ram_bytes') or 0) / 2**30:.0f} GiB RAM, {m['os']}, Python {m['python']})"
             + (f", load average {load['min']:.1f}-{load['max']:.1f} during the run" if load else "")
             + f"; corpus {result['corpus']['name']}: `{Path(result['inputs']['main']['path']).name}`, "
               f"{input_text(result['inputs']['main'])} pre-tokens, vocab {result['config']['vocab_size']:,}"
             + (f"; storytok {v.get('storytok')} at commit `{git.get('commit')}`"
                + (" + local changes" if git.get("dirty") else "") if git.get("commit") else "") + ". "
             + ", ".join(f"{k} {v[k]}" for k in ("gigatoken", "tiktoken", "tokenizers", "rustbpe", "numba", "numpy")
                         if v.get(k)) + ".",
             "",
             "| " + " | ".join(c for c, _ in COLUMNS) + " |",
             "|" + "|".join("---" if j == "left" else "--:" for _, j in COLUMNS) + "|"]
    last = None
    for s in result["jobs"]:
        cells = [s["group"] if s["group"] != last else ""] + row_cells(s, result["inputs"])
        last = s["group"]
        lines.append("| " + " | ".join(_md(c) for c in cells) + " |")
    lines += ["", "Checks:", ""]
    for ok, text in check_lines(result["checks"]):
        lines.append(f"- {CHECK_TAG[ok]}: {text}")
    if result.get("estimates"):
        lines += ["", "Full size (2,000 MB make_corpus.py train file, 20 MB valid):", ""]
        for name, e in result["estimates"].items():
            lines.append(f"- {name}: {e['seconds']:.1f} s ({e['how']})")
    for issue, heading in ISSUES.items():
        ts = [t for t in result["targets"] if t["issue"] == issue]
        if ts:
            lines += ["", f"Targets, {heading} ({result['corpus']['name']}):", ""]
            lines += [f"- **{TAG[t['ok']]}** {t['name']}: {t['detail']}" for t in ts]
    return "\n".join(lines).replace("<|endoftext|>", "<\\|endoftext\\|>")
