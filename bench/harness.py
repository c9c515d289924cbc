"""Jobs, runs and medians: the parent side of make bench.

Every run of every job is a fresh subprocess (`python -m bench.worker ...`), so a tool's peak
RSS is its own and no tool inherits another's caches or threads. Jobs run in rounds (every
job once, then again), so a burst of load from elsewhere on the machine is spread over all
tools instead of hitting one; a job's figure is the median of its runs. A job that fails
(a tool missing, an API not there yet, a crash) becomes an error row with its one-line
reason, and the run goes on.

The parent imports neither storytok nor any peer: what it needs from them (a tokenizer, a
pre-token count, the ids a stage wrote) it gets from a worker.
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from bench.common import MB

ROOT = Path(__file__).resolve().parents[1]
PEER_PACKAGES = ["gigatoken", "tiktoken", "tokenizers", "rustbpe"]
OTHER_PACKAGES = ["numba", "numpy", "regex", "pyarrow", "rich", "awkward"]


@dataclass
class Job:
    key: str                 # unique id, e.g. "train/storytok-1"
    group: str               # train | encode | batch | inputs | cold | stages | scale
    tool: str                # storytok | gigatoken | tiktoken | HF tokenizers | rustbpe
    label: str               # what is run, as shown in the table
    peer: str = ""           # bench.peers.<peer>.<fn> runs it; or "cmd": params["argv"] run as a script
    fn: str = ""
    params: dict = field(default_factory=dict)
    nbytes: int = 0          # input bytes, for MB/s (0: not a throughput job)
    input: str = "main"      # which input it reads (a key of BenchConfig.inputs), for the table's input column
    repeat: bool = True      # False: run once (compiles, the scale jobs)
    env: dict = field(default_factory=dict)
    needs: tuple = ()        # "tokenizer", "scale-tokenizer", "documents": made before its first run
    check_first: bool = False  # params["check"] = True on its first run only (an untimed id pass)
    post: tuple | None = None  # (peer, fn, params): run once after its first good run; merged into it (ids)
    ratio: tuple | None = None  # (key_a, key_b or None for this job, text): speed of a / speed of b, shown here
    runs: list = field(default_factory=list)


@dataclass
class BenchConfig:
    corpus: str                        # tinystories | webtext: the targets and defaults that apply
    input: Path
    data_dir: Path                     # data/bench: corpora and what is derived from them
    work_dir: Path                     # scratch for this run
    stages_dir: Path | None = None     # stages/ of the checkout, for the stage-script jobs
    vocab_size: int = 10000
    repeat: int = 3
    repeat_max_seconds: float = 30.0   # a job whose first run took longer is run once
    groups: tuple = ("train", "encode", "batch", "inputs", "cold", "stages")
    compile_cold: bool = True          # also the kernel compile with an empty Numba cache
    scale_input: Path | None = None    # --scale: the big file (2 GB tinystories, 4 GB webtext)
    scale_valid: Path | None = None    # tinystories --scale: valid split for make encode / make stats
    chunk_bytes: int | None = None
    workers: int | None = None         # "all cores" (default: the CPUs this process may use)
    tokenizer_dir: Path | None = None  # the tokenizer the encode jobs use (trained once per corpus, kept)
    hf_encode_bytes: int | None = None  # HF encode only reads the first this many bytes (too slow on web text)
    inputs: dict = field(default_factory=dict)   # key -> {"path", "bytes", "distinct", ...}, for the table
    python: str = sys.executable


def all_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def load1() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def _argv(job: Job, cfg: BenchConfig, d: Path, stem: str, result_path: Path, params: dict, index: int) -> list[str]:
    if job.peer == "cmd":   # {round} in a stage's arguments: each run writes into its own directory
        script, *args = [str(a).replace("{round}", str(index)) for a in params["argv"]]
        return [cfg.python, "-m", "bench.worker", "run", str(result_path), script, *args]
    spec = d / f"{stem}.json"
    spec.write_text(json.dumps({"peer": job.peer, "fn": job.fn, "params": params}))
    return [cfg.python, "-m", "bench.worker", str(spec), str(result_path)]


def worker_env(extra: dict | None = None) -> dict:
    """The environment of a worker: this one, with the checkout on PYTHONPATH (for `bench`)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(extra or {})
    return env


def run_job(job: Job, cfg: BenchConfig, index: int, params: dict | None = None) -> dict:
    """One run of a job in a fresh subprocess: the worker's figures + wall, CPU, peak RSS, load."""
    d = cfg.work_dir / "runs"
    d.mkdir(parents=True, exist_ok=True)
    stem = f"{job.key.replace('/', '_')}-{index}"
    log = d / f"{stem}.log"
    result_path = d / f"{stem}.result.json"
    result_path.unlink(missing_ok=True)
    params = dict(job.params if params is None else params)
    if job.check_first:
        params["check"] = index == 0
    argv = _argv(job, cfg, d, stem, result_path, params, index)
    load_before = load1()
    t0 = time.perf_counter()
    with open(log, "w") as f:
        proc = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, env=worker_env(job.env),
                                cwd=params.get("cwd"))
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    run = {"wall_seconds": wall, "process_cpu_seconds": usage.ru_utime + usage.ru_stime,
           "ru_maxrss_bytes": usage.ru_maxrss * 1024, "load1_before": load_before, "load1_after": load1()}
    result = {}
    if result_path.exists():
        try:
            result = json.loads(result_path.read_text())
        except ValueError:
            result = {}
    if code != 0 or not result or "error" in result:
        run["error"] = result.get("error") or failure_reason(log, code)
        return run
    run.update(result)
    if job.peer == "cmd":   # a whole stage process: its wall time is the figure
        run.update(seconds=wall, cpu_seconds=run["process_cpu_seconds"])
    run["peak_rss_bytes"] = run.get("vm_hwm_bytes") or run["ru_maxrss_bytes"]
    return run


def failure_reason(log: Path, code: int) -> str:
    """One line for a run that died: the last meaningful line of its output (a stage's error line,
    an exception's last line), and the exit status."""
    try:
        lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        lines = []
    if code < 0:
        return f"killed by signal {-code}" + (f" ({lines[-1][:200]})" if lines else "")
    last = next((ln for ln in reversed(lines) if not ln.startswith(("File ", "^", "~"))), "")
    if last.lower().startswith("error: "):      # a stage's own one-line error
        last = last[len("error: "):]
    return (last[:300] or "no output") + f" (exit status {code})"


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def summarize(job: Job) -> dict:
    """A job's row: medians of seconds and CPU seconds over its good runs, max peak RSS, the ids."""
    ok = [r for r in job.runs if "error" not in r]
    s = {"key": job.key, "group": job.group, "tool": job.tool, "label": job.label, "bytes": job.nbytes,
         "input": job.input, "runs": job.runs, "n_runs": len(ok),
         "error": next((r["error"] for r in job.runs if "error" in r), None) if not ok else None}
    if not ok:
        return s
    sec = median([r["seconds"] for r in ok])
    nbytes = next((r["bytes_read"] for r in ok if r.get("bytes_read")), job.nbytes)   # a worker that read a slice
    s["bytes"] = nbytes
    s.update(seconds=sec, cpu_seconds=median([r.get("cpu_seconds") for r in ok]),
             wall_seconds=median([r["wall_seconds"] for r in ok]),
             peak_rss_bytes=max(r["peak_rss_bytes"] for r in ok),
             load1=median([r["load1_before"] for r in ok]),
             mb_per_s=(nbytes / MB / sec) if nbytes and sec else None,
             seconds_all=[round(r["seconds"], 3) for r in ok])
    for k in ("ids_hash", "tokens", "docs_hash", "docs", "doc_tokens", "merges", "merges_hash", "chunks",
              "distinct", "pretokens", "partial", "loaded"):
        v = next((r[k] for r in ok if k in r), None)
        if v is not None:
            s[k] = v
    # every run of a job that reports ids or merges must report the same ones
    for k in ("ids_hash", "docs_hash", "merges_hash"):
        seen = {r[k] for r in ok if k in r}
        if len(seen) > 1:
            s["unstable"] = f"{k} differs between runs"
    bd = [r["breakdown"] for r in ok if r.get("breakdown")]
    if bd:
        keys = list(dict.fromkeys(k for b in bd for k in b))
        s["breakdown"] = {k: round(median([b.get(k) for b in bd]), 3) for k in keys}
    return s


def add_ratios(summaries: list[dict], jobs: list[Job]) -> None:
    """The ratio each job asks for: speed of row a / speed of row b (MB/s when both have bytes)."""
    by = {s["key"]: s for s in summaries}
    for job, s in zip(jobs, summaries):
        if not job.ratio:
            continue
        a, b, text = job.ratio
        b = b or job.key
        x = speed_ratio(by.get(a), by.get(b))
        if x is not None:
            s["ratio"] = {"a": a, "b": b, "x": x, "text": text.format(x=x)}


def speed_ratio(a: dict | None, b: dict | None) -> float | None:
    """How many times faster a ran than b: MB/s over MB/s when both read bytes, else seconds."""
    if not a or not b or not a.get("seconds") or not b.get("seconds"):
        return None
    if a.get("mb_per_s") and b.get("mb_per_s"):
        return a["mb_per_s"] / b["mb_per_s"]
    return b["seconds"] / a["seconds"]


def run_all(cfg: BenchConfig, jobs: list[Job], prepare: Callable[[str, Job], None],
            on_event: Callable[[str, Job, dict | None], None] = lambda *a: None) -> tuple[list[dict], dict]:
    """Run the jobs in rounds. prepare(need, job) makes what a job needs before its first run (a
    tokenizer, the document files); if it raises, that job fails with the reason as its row.
    Returns the rows and the run's facts (duration, load)."""
    started = time.time()
    loads = []
    ready: dict[str, str | None] = {}     # need -> None (made) or the reason it could not be made
    for rnd in range(max(cfg.repeat, 1)):
        for j in jobs:
            if rnd > 0:
                ok = [r for r in j.runs if "error" not in r]
                if not j.repeat or not ok or ok[0]["seconds"] > cfg.repeat_max_seconds:
                    continue
            missing = None
            for need in j.needs:
                if need not in ready:
                    try:
                        prepare(need, j)
                        ready[need] = None
                    except Exception as e:  # noqa: BLE001  (one job's setup failing is that job's error row)
                        ready[need] = f"{need}: {type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
                missing = missing or ready[need]
            if missing:
                if rnd == 0:
                    j.runs.append({"error": f"not run: {missing}"})
                    on_event("run", j, j.runs[-1])
                continue
            on_event("start", j, {"round": rnd + 1})
            run = run_job(j, cfg, rnd)
            loads += [x for x in (run.get("load1_before"), run.get("load1_after")) if x is not None]
            if "error" not in run and j.post and not any("post" in r for r in j.runs):
                peer, fn, params = j.post
                post = Job(j.key + "-ids", j.group, j.tool, "ids of " + j.label, peer, fn, params)
                pr = run_job(post, cfg, rnd)
                run["post"] = {k: pr.get(k) for k in ("docs_hash", "docs", "doc_tokens", "error") if k in pr}
                for k in ("docs_hash", "docs", "doc_tokens"):
                    if k in pr:
                        run[k] = pr[k]
            j.runs.append(run)
            on_event("run", j, run)
    summaries = [summarize(j) for j in jobs]
    add_ratios(summaries, jobs)
    facts = {"duration_seconds": round(time.time() - started, 1),
             "load1": {"min": min(loads), "median": statistics.median(loads), "max": max(loads)} if loads else None}
    return summaries, facts


# ---- environment ------------------------------------------------------------------------------

def machine_info(n_all: int) -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = int(line.split()[1]) * 1024
    except OSError:
        pass
    return {"cpu": cpu, "logical_cpus": os.cpu_count(), "usable_cpus": n_all, "ram_bytes": ram,
            "os": f"{platform.system()} {platform.release()}", "python": platform.python_version(),
            "hostname": platform.node()}


def versions() -> dict:
    from importlib import metadata
    out = {}
    for name in ["storytok"] + PEER_PACKAGES + OTHER_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_info(root: Path = ROOT) -> dict:
    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    return {"commit": git("rev-parse", "--short", "HEAD") or None,
            "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}


def cleanup(work: Path) -> None:
    shutil.rmtree(work, ignore_errors=True)
