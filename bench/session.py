"""One bench run, from a BenchConfig to its result: the facts about its inputs (sizes, distinct
pre-tokens), the jobs, what they need made first (a tokenizer, the JSONL/Parquet copies), the
runs, then checks, estimates and targets. The CLI (stages/bench.py) only chooses the files and
prints; this is the same for any caller."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from bench import corpora, harness, jobs as jobs_mod, verdicts
from bench.corpora import CORPORA
from bench.harness import BenchConfig, Job


def pretoken_info(cfg: BenchConfig, path: Path, key: str, n_all: int, say: Callable[[str], None]) -> dict:
    """{"path", "bytes", "distinct", "pretokens"} of a corpus; counted once (a storytok worker) and cached."""
    info = {"path": str(path), "bytes": path.stat().st_size}
    cached = corpora.cached_pretokens(path, cfg.data_dir)
    if cached is None:
        say(f"setup: counting the distinct pre-tokens of {path.name} (once; cached)")
        run = harness.run_job(Job(f"setup/count-{key}", "setup", "storytok", "count", "storytok", "count",
                                  {"path": str(path), "workers": n_all}), cfg, 0)
        if "error" in run:
            say(f"could not count the pre-tokens of {path.name}: {run['error']}")
            return {**info, "distinct": None}
        cached = corpora.save_pretokens(path, cfg.data_dir, run)
    return {**info, "distinct": cached["distinct"], "pretokens": cached["pretokens"]}


def run(cfg: BenchConfig, n_all: int, say: Callable[[str], None] = lambda text: None,
        on_event: Callable[[str, Job, dict | None], None] = lambda *a: None) -> dict:
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    cfg.work_dir.mkdir(parents=True, exist_ok=True)
    tiny = corpora.make_tiny(cfg.input, cfg.work_dir / "tiny.txt")
    cfg.inputs = {"main": pretoken_info(cfg, cfg.input, "main", n_all, say),
                  "tiny": {"path": str(tiny), "bytes": tiny.stat().st_size}}
    if cfg.scale_input is not None:
        cfg.inputs["scale"] = pretoken_info(cfg, cfg.scale_input, "scale", n_all, say)
        if cfg.scale_valid is not None:
            cfg.inputs["scale+valid"] = {"path": str(cfg.scale_input),
                                         "bytes": cfg.inputs["scale"]["bytes"] + cfg.scale_valid.stat().st_size}
    jobs = jobs_mod.build_jobs(cfg, n_all)

    def prepare(need: str, job: Job) -> None:
        if need == "tokenizer":
            if (cfg.tokenizer_dir / "tokenizer.json").is_file():
                return
            say(f"setup: training the tokenizer the encode jobs use -> {cfg.tokenizer_dir}")
            setup = Job("setup/tokenizer", "setup", "storytok", "tokenizer", "storytok", "train",
                        {"path": str(cfg.input), "vocab_size": cfg.vocab_size, "workers": n_all,
                         "warm_path": str(tiny), "save_dir": str(cfg.tokenizer_dir)})
            r = harness.run_job(setup, cfg, 0)
            if "error" in r:
                raise RuntimeError(f"training the tokenizer failed: {r['error']}")
        elif need == "documents":
            files = corpora.document_files(cfg.input, cfg.data_dir,
                                           lambda path: say(f"setup: writing {path} (once; kept)"))
            jobs_mod.fill_document_paths(jobs, files)

    rows, facts = harness.run_all(cfg, jobs, prepare, on_event)
    size = cfg.input.stat().st_size
    result = {
        "date": started,
        **facts,
        "machine": harness.machine_info(n_all),
        "versions": harness.versions(),
        "git": harness.git_info(),
        "corpus": {"name": cfg.corpus, "about": CORPORA[cfg.corpus].about},
        "inputs": cfg.inputs,
        "config": {"vocab_size": cfg.vocab_size, "repeat": cfg.repeat, "repeat_max_seconds": cfg.repeat_max_seconds,
                   "workers_all": n_all, "groups": list(cfg.groups), "chunk_bytes": cfg.chunk_bytes,
                   "tokenizer": str(cfg.tokenizer_dir)},
        "jobs": rows,
        "merge_agreement": verdicts.merge_agreement(cfg.work_dir),
        "checks": verdicts.checks(rows),
    }
    result["estimates"] = verdicts.estimates(rows, size) if cfg.corpus == "tinystories" else {}
    result["targets"] = verdicts.targets(rows, result["checks"], cfg.corpus, result["estimates"], size)
    return result
