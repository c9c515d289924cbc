"""make bench: storytok against tiktoken, Hugging Face tokenizers and rustbpe, in one run.

Every measurement runs in its own subprocess (`python -m storytok.bench worker SPEC RESULT`,
or `... run RESULT SCRIPT ARGS` for a stage script), so its peak RSS (VmHWM, the kernel's
high-water mark of that process image) is the tool's own, runtime included, and no tool
inherits another's caches or threads. Inside a worker
only the work itself is timed (perf_counter; CPU seconds from process_time, all threads);
imports, tokenizer construction and a warm-up on a tiny file are not. Jobs are run in
rounds (every job once, then again), so a burst of load from other processes on the
machine is spread over all tools instead of hitting one; each job's figure is the median
of its runs.

This module imports no peer at import time: tiktoken, tokenizers and rustbpe are dev
tools, imported only inside the worker that measures them. Peer workers do not import
storytok's kernels either (no Numba in their RSS): the parent hands them plain files
(tokenizer.json, a tiktoken ranks file) and the pattern string.

Ids are checked, not assumed: every encode worker hashes the uint16 stream of the whole
file (sha1 over the concatenated tokens, so chunking does not matter), and the parent
compares the hashes and token counts across tools.
"""
from __future__ import annotations

import base64
import hashlib
import importlib.util
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

EOT = "<|endoftext|>"
MB = 1_000_000
FULL_TRAIN_BYTES = 2000 * MB      # the 2 GB make_corpus.py file of the full-size estimate
FULL_VALID_BYTES = 20 * MB        # its valid split (1%, as tests/test_scale.py makes it)
BLOCK_BYTES = 2 << 20             # peers read the file in blocks cut after <|endoftext|>
PIECE_BYTES = 512 << 10           # ... and tiktoken encodes it in pieces of about this size
TINY_BYTES = 256 << 10            # the cold-start / warm-up file
COLD_VOCAB = 1000
COUNT_KEY = "counting (read, scan, count, merge tables)"   # train_bpe's first stage, timed in the worker

PEER_PACKAGES = ["tiktoken", "tokenizers", "rustbpe"]
OTHER_PACKAGES = ["numba", "numpy", "regex", "pyarrow", "rich", "psutil"]


# ============================================================================================
# workers: each runs in a fresh subprocess and returns a dict (seconds, cpu_seconds, ...)
# ============================================================================================

class _Clock:
    """Accumulates the timed region: wall (perf_counter) and CPU of all threads (process_time)."""

    def __init__(self):
        self.seconds = 0.0
        self.cpu = 0.0

    def __enter__(self):
        self._t, self._c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.seconds += time.perf_counter() - self._t
        self.cpu += time.process_time() - self._c


def _blocks(path, block_bytes: int = BLOCK_BYTES):
    """The file as str blocks, each ending right after an <|endoftext|> (the last may not)."""
    eot = EOT.encode()
    with open(path, "rb") as f:
        pending = b""
        while True:
            more = f.read(block_bytes)
            data = pending + more
            if not more:
                if data:
                    yield data.decode("utf-8")
                return
            cut = data.rfind(eot)
            if cut < 0:
                pending = data
                continue
            cut += len(eot)
            yield data[:cut].decode("utf-8")
            pending = data[cut:]


def _pieces(block: str, piece_chars: int) -> list[str]:
    """block split into pieces of about piece_chars, each cut right after an <|endoftext|>."""
    out, pos = [], 0
    while pos < len(block):
        cut = block.find(EOT, pos + piece_chars)
        end = len(block) if cut < 0 else cut + len(EOT)
        out.append(block[pos:end])
        pos = end
    return out


def _stories(block: str, keep_special: bool) -> list[str]:
    parts = block.split(EOT)
    if keep_special:
        last = parts.pop()
        out = [p + EOT for p in parts]
        if last:
            out.append(last)
        return out
    return [p for p in parts if p]


class _Hasher:
    """sha1 over the uint16 token stream (independent of how the stream is chunked).

    sha1 (about 1.7 GB/s here, no copy of a uint16 array) rather than blake2b: storytok's
    hashing happens inside its timed region, so it should cost as little as possible.
    """

    def __init__(self):
        import numpy as np
        self._np = np
        self.h = hashlib.sha1()
        self.n = 0
        self.seconds = 0.0

    def add(self, ids) -> None:
        t = time.thread_time()
        a = self._np.ascontiguousarray(ids, dtype=self._np.uint16)
        self.h.update(memoryview(a).cast("B"))
        self.n += int(a.size)
        self.seconds += time.thread_time() - t

    def result(self) -> dict:
        return {"ids_hash": self.h.hexdigest()[:32], "tokens": self.n}


def _learned_tokens(tokens: list[bytes], out) -> None:
    """The tokens a trainer made, in creation order (hex), for the parent to compare."""
    if out:
        Path(out).write_text(json.dumps([t.hex() for t in tokens]))


def _instrument(owner, name: str, acc: dict, key: str, clock=time.perf_counter) -> None:
    """Wrap owner.name so the seconds spent in it (summed over threads) land in acc[key].

    clock=time.thread_time counts the calling thread's CPU only: on a busy machine a thread
    waiting for a core inside a kernel is not charged to the kernel."""
    import inspect
    import threading
    raw = inspect.getattr_static(owner, name, None)
    static = isinstance(raw, staticmethod)
    if isinstance(raw, classmethod):
        return
    fn = raw.__func__ if static else getattr(owner, name, None)
    if fn is None or not callable(fn) or getattr(fn, "_bench_wrapped", False):
        return
    lock = threading.Lock()
    acc.setdefault(key, 0.0)

    def timed(*a, **k):
        t = clock()
        try:
            return fn(*a, **k)
        finally:
            dt = clock() - t
            with lock:
                acc[key] += dt

    timed._bench_wrapped = True
    setattr(owner, name, staticmethod(timed) if static else timed)


def _instrument_kernels(modules, acc: dict) -> None:
    """CPU seconds of every Numba kernel that these modules call from Python (found by looking, not
    by name, so the profile follows the kernels as they are renamed or split). Calls between
    kernels are compiled in and stay untimed: each figure is a kernel called from Python, callees
    included, summed over threads."""
    for mod in modules:
        for name, obj in list(vars(mod).items()):
            if hasattr(obj, "py_func") and hasattr(obj, "signatures"):   # a numba Dispatcher
                _instrument(mod, name, acc, f"kernel {name}", clock=time.thread_time)


def _breakdown(acc: dict, total: float, rest_label: str | None) -> dict:
    out = {k: round(v, 4) for k, v in sorted(acc.items(), key=lambda kv: -kv[1]) if v > 0}
    if rest_label:
        out[rest_label] = round(max(total - sum(acc.values()), 0.0), 4)
    return out


def w_st_train(p: dict) -> dict:
    from storytok import Tokenizer, train_bpe
    import storytok.bpe.train as train_mod
    specials = [EOT]
    train_bpe(p["warm_path"], 300, specials, workers=p["workers"])          # loads the cached kernels
    stages: dict = {}
    _instrument(train_mod, "count_file_pretokens", stages, COUNT_KEY)
    _instrument(train_mod, "_run_merges", stages, "merge loop")
    kernels: dict = {}
    import importlib
    _instrument_kernels([importlib.import_module(m) for m in ("storytok.bpe.train", "storytok.sources.chunks")
                         if importlib.util.find_spec(m)], kernels)
    with _Clock() as c:
        vocab, merges = train_bpe(p["path"], p["vocab_size"], specials, workers=p["workers"])
    h = hashlib.sha256()
    for a, b in merges:
        h.update(len(a).to_bytes(4, "little") + a + len(b).to_bytes(4, "little") + b)
    if p.get("save_dir") and not Path(p["save_dir"]).exists():
        Tokenizer(vocab, merges, specials).save(p["save_dir"])
    _learned_tokens([a + b for a, b in merges], p.get("learned_out"))
    return {"seconds": c.seconds, "cpu_seconds": c.cpu, "merges": len(merges), "merges_hash": h.hexdigest()[:32],
            "breakdown": {**(_breakdown(stages, c.seconds, "other (arrays between stages, vocab)") if stages else {}),
                          **_breakdown(kernels, c.seconds, None)}}


def w_st_encode(p: dict) -> dict:
    import importlib
    from storytok import Tokenizer
    tok = Tokenizer.from_dir(p["tokenizer_dir"])
    tok.encode_to_numpy(Path(p["warm_path"]).read_text(encoding="utf-8")[:50000])  # loads the cached kernels
    acc: dict = {}
    mods = []
    for name in ("storytok.bpe.tokenizer", "storytok.sources.chunks", "storytok.pretokenize.specials", "storytok.bpe.train", "storytok.pretokenize.pretokenizer"):
        try:
            mods.append(importlib.import_module(name))
        except ImportError:
            pass
    _instrument_kernels(mods, acc)
    try:
        from storytok.pretokenize.specials import SpecialMatcher
        for meth in ("matches", "segments"):
            if not hasattr(getattr(SpecialMatcher, meth, None), "py_func"):
                _instrument(SpecialMatcher, meth, acc, f"Python SpecialMatcher.{meth}")
    except ImportError:
        pass
    hasher = _Hasher()
    kw = {"workers": p["workers"]}
    if p.get("chunk_bytes"):
        kw["chunk_bytes"] = p["chunk_bytes"]
    chunks = 0
    with _Clock() as c:
        for chunk in tok.encode_file(p["path"], **kw):
            hasher.add(chunk.tokens)
            chunks += 1
    acc["bench: hashing the ids for the check"] = hasher.seconds
    breakdown = _breakdown(acc, c.cpu, "CPU outside these (reading, Python)")
    return {"seconds": c.seconds, "cpu_seconds": c.cpu, "chunks": chunks, "breakdown": breakdown, **hasher.result()}


def _tiktoken_encoding(p: dict):
    import tiktoken
    ranks = {}
    with open(p["ranks_path"], "rb") as f:
        for line in f:
            tok, rank = line.split()
            ranks[base64.b64decode(tok)] = int(rank)
    return tiktoken.Encoding("storytok-bench", pat_str=p["pattern"], mergeable_ranks=ranks,
                             special_tokens=p["special_tokens"])


def w_tt_encode(p: dict) -> dict:
    enc = _tiktoken_encoding(p)
    enc.encode("warm up " + EOT, allowed_special="all")
    threads = p["threads"]
    hasher = _Hasher()
    c = _Clock()
    for block in _blocks(p["path"]):
        pieces = _pieces(block, PIECE_BYTES)
        if threads <= 1:
            for piece in pieces:
                with c:
                    ids = enc.encode(piece, allowed_special="all")
                hasher.add(ids)
        else:
            with c:
                out = enc.encode_batch(pieces, num_threads=threads, allowed_special="all")
            for ids in out:
                hasher.add(ids)
    return {"seconds": c.seconds, "cpu_seconds": c.cpu, **hasher.result()}


def w_hf_encode(p: dict) -> dict:
    import tokenizers
    tk = tokenizers.Tokenizer.from_file(p["tokenizer_json"])
    tk.encode("warm up " + EOT)
    hasher = _Hasher()
    c = _Clock()
    for block in _blocks(p["path"]):
        stories = _stories(block, keep_special=True)
        with c:
            out = tk.encode_batch(stories, add_special_tokens=False)
        for e in out:
            hasher.add(e.ids)
    return {"seconds": c.seconds, "cpu_seconds": c.cpu, **hasher.result()}


def _hf_trainer_setup(vocab_size: int):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOT], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    return tk, trainer


def _hf_learned(tk) -> list[bytes]:
    from storytok.bpe.bytes_unicode import unicode_to_bytes
    u2b = unicode_to_bytes()
    merges = json.loads(tk.to_str())["model"]["merges"]
    out = []
    for m in merges:
        a, b = m.split(" ") if isinstance(m, str) else m
        out.append(bytes(u2b[ch] for ch in a + b))
    return out


def w_hf_train(p: dict) -> dict:
    tk, trainer = _hf_trainer_setup(p["vocab_size"])
    # Batches of stories (specials removed: nothing is counted across or inside them).
    batches = (_stories(b, keep_special=False) for b in _blocks(p["path"]))
    with _Clock() as c:
        tk.train_from_iterator(batches, trainer=trainer)
    learned = _hf_learned(tk)
    _learned_tokens(learned, p.get("learned_out"))
    return {"seconds": c.seconds, "cpu_seconds": c.cpu, "merges": len(learned)}


def w_rust_train(p: dict) -> dict:
    import rustbpe
    tk = rustbpe.Tokenizer()
    stories = (s for b in _blocks(p["path"]) for s in _stories(b, keep_special=False))
    # rustbpe has no special tokens: its vocab_size is bytes + merges, so one less than ours.
    with _Clock() as c:
        tk.train_from_iterator(stories, p["vocab_size"] - 1, pattern=p["pattern"])
    ranks = sorted(tk.get_mergeable_ranks(), key=lambda t: t[1])
    learned = [bytes(t) for t, r in ranks if r >= 256]
    _learned_tokens(learned, p.get("learned_out"))
    return {"seconds": c.seconds, "cpu_seconds": c.cpu, "merges": len(learned)}


def w_st_cold(p: dict) -> dict:
    """Fresh process: import, then the first train and the first encode on a tiny file."""
    t0 = time.perf_counter()
    from storytok import Tokenizer, train_bpe
    import storytok.bpe.tokenizer, storytok.bpe.train  # noqa: F401  (the lazy imports, made now)
    t1 = time.perf_counter()
    vocab, merges = train_bpe(p["path"], p["vocab_size"], [EOT])
    t2 = time.perf_counter()
    tok = Tokenizer(vocab, merges, [EOT])
    tok.encode_to_numpy(Path(p["path"]).read_text(encoding="utf-8"))
    t3 = time.perf_counter()
    return {"seconds": t3 - t0, "cpu_seconds": time.process_time(),
            "breakdown": {"import": round(t1 - t0, 3), "first train": round(t2 - t1, 3),
                          "first encode (incl. Tokenizer())": round(t3 - t2, 3)}}


def w_tt_cold(p: dict) -> dict:
    t0 = time.perf_counter()
    import tiktoken  # noqa: F401
    t1 = time.perf_counter()
    enc = _tiktoken_encoding(p)
    enc.encode(Path(p["path"]).read_text(encoding="utf-8"), allowed_special="all")
    t2 = time.perf_counter()
    return {"seconds": t2 - t0, "cpu_seconds": time.process_time(),
            "breakdown": {"import": round(t1 - t0, 3), "first encode (incl. Encoding())": round(t2 - t1, 3)}}


def w_hf_cold(p: dict) -> dict:
    t0 = time.perf_counter()
    import tokenizers
    t1 = time.perf_counter()
    tk, trainer = _hf_trainer_setup(p["vocab_size"])
    tk.train_from_iterator(_stories(Path(p["path"]).read_text(encoding="utf-8"), False), trainer=trainer)
    t2 = time.perf_counter()
    tk = tokenizers.Tokenizer.from_file(p["tokenizer_json"])
    tk.encode_batch(_stories(Path(p["path"]).read_text(encoding="utf-8"), True))
    t3 = time.perf_counter()
    return {"seconds": t3 - t0, "cpu_seconds": time.process_time(),
            "breakdown": {"import": round(t1 - t0, 3), "first train": round(t2 - t1, 3),
                          "first encode (incl. from_file)": round(t3 - t2, 3)}}


def w_rust_cold(p: dict) -> dict:
    t0 = time.perf_counter()
    import rustbpe
    t1 = time.perf_counter()
    tk = rustbpe.Tokenizer()
    tk.train_from_iterator(iter(_stories(Path(p["path"]).read_text(encoding="utf-8"), False)),
                           p["vocab_size"] - 1, pattern=p["pattern"])
    t2 = time.perf_counter()
    return {"seconds": t2 - t0, "cpu_seconds": time.process_time(),
            "breakdown": {"import": round(t1 - t0, 3), "first train": round(t2 - t1, 3)}}


WORKERS: dict[str, Callable[[dict], dict]] = {
    "st_train": w_st_train, "st_encode": w_st_encode, "tt_encode": w_tt_encode, "hf_encode": w_hf_encode,
    "hf_train": w_hf_train, "rust_train": w_rust_train, "st_cold": w_st_cold, "tt_cold": w_tt_cold,
    "hf_cold": w_hf_cold, "rust_cold": w_rust_cold,
}


def peak_rss_self() -> int | None:
    """This process's peak RSS (VmHWM), in bytes.

    Not getrusage/wait4's ru_maxrss: on Linux a child's ru_maxrss starts from its parent's
    RSS at fork (the pre-exec image is counted), so a big parent inflates every child.
    VmHWM belongs to the process image after exec: the tool and its runtime only.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _write_result(result_path: str, result: dict) -> None:
    tmp = result_path + ".partial"
    Path(tmp).write_text(json.dumps(result))
    os.replace(tmp, result_path)


def worker_main(spec_path: str, result_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    result = WORKERS[spec["mode"]](spec["params"])
    result["vm_hwm_bytes"] = peak_rss_self()
    _write_result(result_path, result)
    return 0


def run_script_main(result_path: str, script: str, args: list[str]) -> int:
    """Run a stage script as `python script args` would, then record this process's peak RSS."""
    import runpy
    sys.argv = [script, *args]
    sys.path.insert(0, str(Path(script).resolve().parent))
    code = 0
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    if code == 0:
        _write_result(result_path, {"vm_hwm_bytes": peak_rss_self()})
    return code


# ============================================================================================
# the parent: jobs, runs, checks, targets
# ============================================================================================

@dataclass
class Job:
    key: str                 # unique id, e.g. "train/storytok-1"
    group: str               # train | encode | cold start | stages | scale
    tool: str                # storytok | tiktoken | HF tokenizers | rustbpe
    label: str               # what is run, as shown in the table
    mode: str                # a WORKERS key, or "cmd" (params["argv"] run as is)
    params: dict
    nbytes: int = 0          # input bytes, for MB/s (0: not a throughput job)
    repeat: bool = True      # False: run once (stages, which skip work that is already done)
    env: dict = field(default_factory=dict)
    short: str = ""          # name in the speed-up column ("HF", "tiktoken 1t")
    runs: list = field(default_factory=list)
    error: str | None = None


@dataclass
class BenchConfig:
    input: Path
    work_dir: Path
    stages_dir: Path | None = None     # stages/ of the checkout, for the stage-script jobs
    vocab_size: int = 10000
    repeat: int = 3
    repeat_max_seconds: float = 30.0   # a job whose first run took longer is run once
    groups: tuple = ("train", "encode", "cold", "stages")
    cold_cache: bool = True            # also a cold start with an empty Numba cache (compiles everything)
    scale_input: Path | None = None    # --scale: storytok train + encode_file + the stages on this (2 GB) file
    scale_valid: Path | None = None    # ... with this as the valid split of make encode / make stats
    chunk_bytes: int | None = None
    workers: int | None = None         # "all cores" (default: the CPUs this process may use)
    python: str = sys.executable


def all_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _load1() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def run_job(job: Job, cfg: BenchConfig, index: int) -> dict:
    """One run of a job in a fresh subprocess: the worker's timed figures + wall, CPU, peak RSS of the process."""
    d = cfg.work_dir / "runs"
    d.mkdir(parents=True, exist_ok=True)
    stem = f"{job.key.replace('/', '_')}-{index}"
    log = d / f"{stem}.log"
    result_path = d / f"{stem}.result.json"
    result_path.unlink(missing_ok=True)
    if job.mode == "cmd":
        script, *args = [str(a).replace("{round}", str(index)) for a in job.params["argv"]]
        argv = [cfg.python, "-m", "storytok.bench", "run", str(result_path), script, *args]
    else:
        spec = d / f"{stem}.json"
        spec.write_text(json.dumps({"mode": job.mode, "params": job.params}))
        argv = [cfg.python, "-m", "storytok.bench", "worker", str(spec), str(result_path)]
    env = dict(os.environ)
    lib = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = lib + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(job.env)
    load_before = _load1()
    t0 = time.perf_counter()
    with open(log, "w") as f:
        proc = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=job.params.get("cwd"))
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    run = {"wall_seconds": wall, "process_cpu_seconds": usage.ru_utime + usage.ru_stime,
           "ru_maxrss_bytes": usage.ru_maxrss * 1024, "load1_before": load_before, "load1_after": _load1()}
    if code != 0 or not result_path.exists():
        tail = log.read_text(errors="replace").strip().splitlines()[-12:]
        run["error"] = f"exit status {code}: " + " | ".join(tail)
        return run
    run.update(json.loads(result_path.read_text()))
    if job.mode == "cmd":   # a whole stage process: its wall time is the figure
        run.update(seconds=wall, cpu_seconds=run["process_cpu_seconds"])
    run["peak_rss_bytes"] = run.get("vm_hwm_bytes") or run["ru_maxrss_bytes"]
    return run


def _median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def summarize(job: Job) -> dict:
    ok = [r for r in job.runs if "error" not in r]
    s = {"key": job.key, "group": job.group, "tool": job.tool, "label": job.label, "short": job.short,
         "bytes": job.nbytes,
         "runs": job.runs, "n_runs": len(ok), "error": job.error or next((r["error"] for r in job.runs if "error" in r), None)}
    if ok:
        sec = _median([r["seconds"] for r in ok])
        s.update(seconds=sec, cpu_seconds=_median([r.get("cpu_seconds") for r in ok]),
                 wall_seconds=_median([r["wall_seconds"] for r in ok]),
                 peak_rss_bytes=max(r["peak_rss_bytes"] for r in ok),
                 load1=_median([r["load1_before"] for r in ok]),
                 mb_per_s=(job.nbytes / MB / sec) if job.nbytes and sec else None,
                 seconds_all=[round(r["seconds"], 3) for r in ok])
        first = ok[0]
        for k in ("ids_hash", "tokens", "merges", "merges_hash", "chunks"):
            if k in first:
                s[k] = first[k]
        # every run of a job must give the same ids/merges
        for k in ("ids_hash", "merges_hash"):
            if k in first and any(r.get(k) != first[k] for r in ok):
                s["unstable"] = f"{k} differs between runs"
        bd = [r["breakdown"] for r in ok if r.get("breakdown")]
        if bd:
            keys = list(dict.fromkeys(k for b in bd for k in b))
            s["breakdown"] = {k: round(_median([b.get(k) for b in bd]), 3) for k in keys}
    return s


def write_tiktoken_ranks(tokenizer_dir: Path, out: Path) -> dict:
    """storytok's vocab as tiktoken mergeable ranks (rank == id: our ids are in merge order)."""
    from storytok.bpe import gpt2_files
    vocab = gpt2_files.read_vocab_json(tokenizer_dir / "vocab.json")
    specials = gpt2_files.read_special_tokens(tokenizer_dir / "tokenizer.json")
    special_bytes = {s.encode() for s in specials}
    ranks = {i: b for i, b in vocab.items() if b not in special_bytes}
    special_ids = {s: next(i for i, b in vocab.items() if b == s.encode()) for s in specials}
    with open(out, "wb") as f:
        for i in sorted(ranks):
            f.write(base64.b64encode(ranks[i]) + b" " + str(i).encode() + b"\n")
    return special_ids


def make_tiny(src: Path, out: Path, nbytes: int = TINY_BYTES) -> Path:
    """The start of src, cut right after an <|endoftext|> (or a newline): the warm-up and cold-start file."""
    with open(src, "rb") as f:
        data = f.read(nbytes)
    eot = EOT.encode()
    cut = data.rfind(eot)
    cut = cut + len(eot) if cut >= 0 else data.rfind(b"\n") + 1
    if cut <= 0:
        cut = len(data)
        while cut and (data[cut - 1] & 0xC0) == 0x80:
            cut -= 1
    out.write_bytes(data[:cut] if cut else data)
    return out


def build_jobs(cfg: BenchConfig, n_all: int) -> list[Job]:
    from storytok.pretokenize.pretokenizer import GPT2_PATTERN  # the parent may import storytok; workers of peers do not
    w = cfg.work_dir
    size = cfg.input.stat().st_size
    inp = str(cfg.input)
    tiny = str(w / "tiny.txt")
    tokdir = str(w / "tokenizer")
    cores = f"{n_all} cores" if n_all > 1 else "1 core"
    common_tt = {"ranks_path": str(w / "ranks.tiktoken"), "pattern": GPT2_PATTERN,
                 "special_tokens": {}}  # filled in after training
    jobs: list[Job] = []
    g = cfg.groups
    if "train" in g:
        jobs += [
            Job("train/storytok-1", "train 10K", "storytok", "storytok, 1 core", "st_train",
                {"path": inp, "vocab_size": cfg.vocab_size, "workers": 1, "warm_path": tiny}, size),
            Job("train/storytok-all", "train 10K", "storytok", f"storytok, {cores}", "st_train",
                {"path": inp, "vocab_size": cfg.vocab_size, "workers": n_all, "warm_path": tiny, "save_dir": tokdir,
                 "learned_out": str(w / "learned-storytok.json")}, size),
            Job("train/hf", "train 10K", "HF tokenizers", f"HF tokenizers ({cores})", "hf_train",
                {"path": inp, "vocab_size": cfg.vocab_size, "learned_out": str(w / "learned-hf.json")}, size,
                short="HF"),
            Job("train/rustbpe", "train 10K", "rustbpe", f"rustbpe ({cores})", "rust_train",
                {"path": inp, "vocab_size": cfg.vocab_size, "pattern": GPT2_PATTERN,
                 "learned_out": str(w / "learned-rustbpe.json")}, size, short="rustbpe"),
        ]
    if "encode" in g:
        chunk = {"chunk_bytes": cfg.chunk_bytes} if cfg.chunk_bytes else {}
        jobs += [
            Job("encode/storytok-1", "encode", "storytok", "storytok encode_file, 1 core", "st_encode",
                {"path": inp, "tokenizer_dir": tokdir, "workers": 1, "warm_path": tiny, **chunk}, size),
            Job("encode/storytok-all", "encode", "storytok", f"storytok encode_file, {cores}", "st_encode",
                {"path": inp, "tokenizer_dir": tokdir, "workers": n_all, "warm_path": tiny, **chunk}, size),
            Job("encode/tiktoken-1", "encode", "tiktoken", "tiktoken encode, 1 thread", "tt_encode",
                {"path": inp, "threads": 1, **common_tt}, size, short="tiktoken 1t"),
            Job("encode/tiktoken-all", "encode", "tiktoken", f"tiktoken encode_batch, {n_all} threads", "tt_encode",
                {"path": inp, "threads": n_all, **common_tt}, size, short=f"tiktoken {n_all}t"),
            Job("encode/hf", "encode", "HF tokenizers", f"HF encode_batch ({cores})", "hf_encode",
                {"path": inp, "tokenizer_json": str(w / "tokenizer" / "tokenizer.json")}, size, short="HF"),
        ]
    if "cold" in g:
        jobs += [
            Job("cold/storytok", "cold start", "storytok", "storytok (warm Numba cache)",
                "st_cold", {"path": tiny, "vocab_size": COLD_VOCAB}),
            Job("cold/tiktoken", "cold start", "tiktoken", "tiktoken", "tt_cold",
                {"path": tiny, **common_tt}),
            Job("cold/hf", "cold start", "HF tokenizers", "HF tokenizers", "hf_cold",
                {"path": tiny, "vocab_size": COLD_VOCAB, "tokenizer_json": str(w / "tokenizer" / "tokenizer.json")}),
            Job("cold/rustbpe", "cold start", "rustbpe", "rustbpe", "rust_cold",
                {"path": tiny, "vocab_size": COLD_VOCAB, "pattern": GPT2_PATTERN}),
        ]
        if cfg.cold_cache:
            cold = w / "cold-cache"
            jobs.append(Job("cold/storytok-nocache", "cold start", "storytok",
                            "storytok (empty Numba cache: compiles)", "st_cold",
                            {"path": tiny, "vocab_size": COLD_VOCAB}, repeat=False,
                            env={"NUMBA_CACHE_DIR": str(cold / "numba"), "XDG_CACHE_HOME": str(cold / "xdg")}))
    if "stages" in g and cfg.stages_dir is not None:
        # Each round gets its own output directory ({round}), since a stage skips work that is
        # already done; encode and stats use round 0's tokenizer.
        sd, out = cfg.stages_dir, w / "stages"
        rnd, tok0 = out / "r{round}", out / "r0" / "tokenizer"
        cwd = str(sd.parent)
        jobs += [
            Job("stages/tokenizer", "stages", "storytok", "make tokenizer (stages/tokenizer.py)", "cmd",
                {"argv": [sd / "tokenizer.py", "--train", inp, "--vocab-size", cfg.vocab_size,
                          "--out", rnd / "tokenizer"], "cwd": cwd}, size),
            Job("stages/encode", "stages", "storytok", "make encode (stages/encode.py)", "cmd",
                {"argv": [sd / "encode.py", "--tokenizer", tok0, "--out-dir", rnd, f"train={inp}"], "cwd": cwd}, size),
            Job("stages/stats", "stages", "storytok", "make stats (stages/stats.py)", "cmd",
                {"argv": [sd / "stats.py", "--tokenizer", tok0, "--out-dir", rnd, "train"], "cwd": cwd}, size),
            # The same two stages on the tiny file: their fixed cost (start-up, imports, tokenizer load),
            # which the full-size estimate does not scale.
            Job("stages/encode-tiny", "stages", "storytok", "make encode, tiny file (fixed cost)", "cmd",
                {"argv": [sd / "encode.py", "--tokenizer", tok0, "--out-dir", rnd / "tiny", f"train={tiny}"],
                 "cwd": cwd}),
            Job("stages/stats-tiny", "stages", "storytok", "make stats, tiny file (fixed cost)", "cmd",
                {"argv": [sd / "stats.py", "--tokenizer", tok0, "--out-dir", rnd / "tiny", "train"], "cwd": cwd}),
        ]
    if cfg.scale_input is not None:
        big = str(cfg.scale_input)
        bsize = cfg.scale_input.stat().st_size
        gb = size_text(bsize)
        jobs += [
            Job("scale/train", "scale", "storytok", f"storytok train, {cores}, {gb}", "st_train",
                {"path": big, "vocab_size": cfg.vocab_size, "workers": n_all, "warm_path": tiny,
                 "save_dir": str(w / "tokenizer-scale")}, bsize, repeat=False),
            Job("scale/encode", "scale", "storytok", f"storytok encode_file, {cores}, {gb}", "st_encode",
                {"path": big, "tokenizer_dir": str(w / "tokenizer-scale"), "workers": n_all, "warm_path": tiny},
                bsize, repeat=False),
        ]
        if cfg.stages_dir is not None:
            sd, out = cfg.stages_dir, w / "scale-stages"
            cwd = str(sd.parent)
            splits = [("train", big)] + ([("valid", str(cfg.scale_valid))] if cfg.scale_valid else [])
            vsize = cfg.scale_valid.stat().st_size if cfg.scale_valid else 0
            both = "train + valid" if cfg.scale_valid else "train"
            jobs += [
                Job("scale/make-tokenizer", "scale", "storytok", f"make tokenizer, {gb}", "cmd",
                    {"argv": [sd / "tokenizer.py", "--train", big, "--vocab-size", cfg.vocab_size,
                              "--out", out / "tokenizer"], "cwd": cwd}, bsize, repeat=False),
                Job("scale/make-encode", "scale", "storytok", f"make encode, {gb} {both}", "cmd",
                    {"argv": [sd / "encode.py", "--tokenizer", out / "tokenizer", "--out-dir", out,
                              *[f"{n}={p}" for n, p in splits]], "cwd": cwd}, bsize + vsize, repeat=False),
                Job("scale/make-stats", "scale", "storytok", f"make stats, {gb} {both}", "cmd",
                    {"argv": [sd / "stats.py", "--tokenizer", out / "tokenizer", "--out-dir", out,
                              *[n for n, _ in splits]], "cwd": cwd}, bsize + vsize, repeat=False),
            ]
    if cfg.workers:   # "all cores" pinned: the Rust peers size their thread pools from RAYON_NUM_THREADS
        for j in jobs:
            if j.tool in ("HF tokenizers", "rustbpe"):
                j.env["RAYON_NUM_THREADS"] = str(n_all)
            if j.mode == "cmd" and Path(str(j.params["argv"][0])).name in ("tokenizer.py", "encode.py"):
                j.params["argv"] = [*j.params["argv"], "--workers", n_all]
    return jobs


def _ensure_tokenizer(cfg: BenchConfig, jobs: list[Job], n_all: int, on_event) -> None:
    """Encode jobs need storytok's tokenizer: trained by the train job, or here when train is not run."""
    tokdir = cfg.work_dir / "tokenizer"
    if not tokdir.exists():
        setup = Job("setup/train", "setup", "storytok", "train the tokenizer the encode jobs use", "st_train",
                    {"path": str(cfg.input), "vocab_size": cfg.vocab_size, "workers": n_all,
                     "warm_path": str(cfg.work_dir / "tiny.txt"), "save_dir": str(tokdir)})
        on_event("setup", setup, None)
        run = run_job(setup, cfg, 0)
        if "error" in run:
            raise RuntimeError(f"training the tokenizer for the encode jobs failed: {run['error']}")
    special_ids = write_tiktoken_ranks(tokdir, cfg.work_dir / "ranks.tiktoken")
    for j in jobs:
        if "special_tokens" in j.params:
            j.params["special_tokens"] = special_ids


def run_all(cfg: BenchConfig, on_event: Callable[[str, Job, dict | None], None] = lambda *a: None) -> dict:
    """Run every job (in rounds), then derive checks, ratios, targets and estimates."""
    cfg.work_dir.mkdir(parents=True, exist_ok=True)
    n_all = cfg.workers or all_cores()
    make_tiny(cfg.input, cfg.work_dir / "tiny.txt")
    jobs = build_jobs(cfg, n_all)
    needs_tok = any(j.mode in ("st_encode", "tt_encode", "hf_encode", "tt_cold", "hf_cold") for j in jobs)
    started = time.time()
    loads = []
    for rnd in range(max(cfg.repeat, 1)):
        for j in jobs:
            if rnd > 0:
                ok = [r for r in j.runs if "error" not in r]
                if not j.repeat or not ok or ok[0]["seconds"] > cfg.repeat_max_seconds:
                    continue
            if j.group == "scale" and rnd > 0:
                continue
            if needs_tok and j.group in ("encode", "cold start", "scale") and not (cfg.work_dir / "ranks.tiktoken").exists():
                _ensure_tokenizer(cfg, jobs, n_all, on_event)
            on_event("start", j, {"round": rnd + 1})
            run = run_job(j, cfg, rnd)
            loads += [x for x in (run.get("load1_before"), run.get("load1_after")) if x is not None]
            j.runs.append(run)
            on_event("run", j, run)
    summaries = [summarize(j) for j in jobs]
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(started)),
        "duration_seconds": round(time.time() - started, 1),
        "machine": machine_info(n_all),
        "versions": versions(),
        "git": git_info(cfg.stages_dir.parent if cfg.stages_dir else Path(__file__).resolve().parents[2]),
        "input": {"path": str(cfg.input), "bytes": cfg.input.stat().st_size},
        "scale_input": ({"path": str(cfg.scale_input), "bytes": cfg.scale_input.stat().st_size}
                        if cfg.scale_input else None),
        "config": {"vocab_size": cfg.vocab_size, "repeat": cfg.repeat, "repeat_max_seconds": cfg.repeat_max_seconds,
                   "workers_all": n_all, "groups": list(cfg.groups), "chunk_bytes": cfg.chunk_bytes},
        "load1": {"min": min(loads), "median": statistics.median(loads), "max": max(loads)} if loads else None,
        "jobs": summaries,
    }
    by = {s["key"]: s for s in summaries}
    add_ratios(summaries)
    result["merge_agreement"] = merge_agreement(cfg.work_dir)
    result["checks"] = checks(by)
    result["estimates"] = estimates(by, cfg)
    result["targets"] = targets(by, result["estimates"], cfg)
    return result


def add_ratios(summaries: list[dict]) -> None:
    """For each storytok row of train/encode: how many times faster than each peer row of that job."""
    for s in summaries:
        if s["tool"] != "storytok" or s["group"] not in ("train 10K", "encode") or not s.get("seconds"):
            continue
        s["vs"] = [{"peer": p["short"] or p["label"], "key": p["key"], "x": p["seconds"] / s["seconds"]}
                   for p in summaries if p["group"] == s["group"] and p["tool"] != "storytok" and p.get("seconds")]


def merge_agreement(work: Path) -> dict:
    """How far the peers' merges agree with storytok's (information only: tie-breaking differs)."""
    out = {}
    try:
        ours = json.loads((work / "learned-storytok.json").read_text())
    except OSError:
        return out
    for peer, name in (("HF tokenizers", "learned-hf.json"), ("rustbpe", "learned-rustbpe.json")):
        try:
            theirs = json.loads((work / name).read_text())
        except OSError:
            continue
        k = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b), min(len(ours), len(theirs)))
        common = len(set(ours) & set(theirs))
        out[peer] = {"merges": len(theirs), "identical_prefix": k, "common_tokens": common,
                     "of": len(ours)}
    return out


def _check(name: str, ok: bool | None, detail: str) -> dict:
    return {"name": name, "ok": ok, "detail": detail}


def checks(by: dict) -> list[dict]:
    out = []
    a, b = by.get("train/storytok-1"), by.get("train/storytok-all")
    if a and b and a.get("merges_hash") and b.get("merges_hash"):
        out.append(_check("train: merges on all cores == merges on 1 core", a["merges_hash"] == b["merges_hash"],
                          f"{b['merges']:,} merges, sha256 {b['merges_hash'][:12]} vs {a['merges_hash'][:12]}"))
    ref = by.get("encode/storytok-all")
    if ref and ref.get("ids_hash"):
        for key in ("encode/storytok-1", "encode/tiktoken-1", "encode/tiktoken-all", "encode/hf"):
            o = by.get(key)
            if not o:
                continue
            if not o.get("ids_hash"):
                out.append(_check(f"encode: ids of {o['label']} == storytok", None, f"not run: {o.get('error')}"))
                continue
            same = o["ids_hash"] == ref["ids_hash"] and o["tokens"] == ref["tokens"]
            out.append(_check(f"encode: ids of {ref['label']} == {o['label']}", same,
                              f"whole file, {ref['tokens']:,} vs {o['tokens']:,} tokens, "
                              f"sha1 {ref['ids_hash'][:12]} vs {o['ids_hash'][:12]}"))
    for s in by.values():
        if s.get("unstable"):
            out.append(_check(f"{s['label']}: same result in every run", False, s["unstable"]))
    return out


def estimates(by: dict, cfg: BenchConfig) -> dict:
    """Full-size (2 GB make_corpus.py file) times of make tokenizer and make encode + make stats.

    Measured when --scale ran the stages on the 2 GB file. Otherwise scaled from the input:
    make tokenizer = the stage on the input + pre-token counting of the remaining bytes at
    the measured rate (all cores); the merge loop works on unique pre-tokens, whose number
    barely grows with more of the same kind of text, so it is not scaled. make encode + make
    stats = each stage on the input minus its fixed cost (the same stage on the tiny file),
    scaled linearly to 2,000 MB train + 20 MB valid, plus the fixed cost once. With --scale
    both are shown, so the scaling can be judged against the measurement.
    """
    out = {}
    size = cfg.input.stat().st_size
    full = FULL_TRAIN_BYTES + FULL_VALID_BYTES
    st = by.get("train/storytok-all", {})
    count_s = (st.get("breakdown") or {}).get(COUNT_KEY)
    tok_stage = by.get("stages/tokenizer", {})
    rough = f"; ROUGH: scaled from only {size / MB:,.1f} MB" if size < 100 * MB else ""
    scaled_what = "pre-token counting"
    if count_s is None and st.get("seconds") is not None:   # no breakdown: scale the whole of training (upper bound)
        count_s, scaled_what = st["seconds"], "all of train_bpe (no per-stage breakdown)"
    tok_est = enc_est = None
    if count_s is not None:
        base = tok_stage.get("seconds")
        how = "stage on the input"
        if base is None and st.get("seconds") is not None:
            base = st["seconds"] + (by.get("cold/storytok", {}).get("wall_seconds") or 0.0)
            how = "train_bpe + cold start on the input"
        if base is not None:
            tok_est = {
                "seconds": base + count_s * (FULL_TRAIN_BYTES / size - 1), "measured": False,
                "how": f"{how} {base:.1f} s ({size / MB:,.0f} MB) + {scaled_what} at "
                       f"{size / MB / count_s:,.0f} MB/s (all cores) for the other "
                       f"{(FULL_TRAIN_BYTES - size) / MB:,.0f} MB"
                       + ("; merge loop not scaled" if scaled_what == "pre-token counting" else "") + rough}
    enc, sts = by.get("stages/encode", {}), by.get("stages/stats", {})
    if enc.get("seconds") is not None and sts.get("seconds") is not None:
        k = full / size
        fe = by.get("stages/encode-tiny", {}).get("seconds", 0.0)
        fs = by.get("stages/stats-tiny", {}).get("seconds", 0.0)
        e = fe + max(enc["seconds"] - fe, 0.0) * k
        s = fs + max(sts["seconds"] - fs, 0.0) * k
        enc_est = {
            "seconds": e + s, "encode_seconds": e, "stats_seconds": s, "measured": False,
            "how": f"stages on {size / MB:,.0f} MB (encode {enc['seconds']:.1f} s, stats {sts['seconds']:.1f} s) "
                   f"minus their fixed cost (same stage on the tiny file: {fe:.1f} s, {fs:.1f} s), "
                   f"x{k:.1f} to 2,020 MB (train + valid), + fixed cost" + rough}
    m_tok = by.get("scale/make-tokenizer", {})
    m_enc, m_sts = by.get("scale/make-encode", {}), by.get("scale/make-stats", {})
    def full_size(job):   # only a run on (about) the 2 GB file stands for the full-size figure
        return job.get("seconds") is not None and job["bytes"] >= 0.9 * FULL_TRAIN_BYTES

    if m_tok.get("seconds") is not None:
        key = "make tokenizer" if full_size(m_tok) else f"make tokenizer, measured on {size_text(m_tok['bytes'])}"
        out[key] = {"seconds": m_tok["seconds"], "measured": full_size(m_tok),
                    "how": f"measured: stages/tokenizer.py on the {size_text(m_tok['bytes'])} file"}
        if tok_est:
            out["make tokenizer" if not full_size(m_tok) else "make tokenizer, scaled from the input"] = tok_est
    elif tok_est:
        out["make tokenizer"] = tok_est
    if m_enc.get("seconds") is not None and m_sts.get("seconds") is not None:
        key = ("make encode + make stats" if full_size(m_enc)
               else f"make encode + make stats, measured on {size_text(m_enc['bytes'])}")
        out[key] = {
            "seconds": m_enc["seconds"] + m_sts["seconds"], "encode_seconds": m_enc["seconds"],
            "stats_seconds": m_sts["seconds"], "measured": full_size(m_enc),
            "how": f"measured: stages/encode.py {m_enc['seconds']:.1f} s + stages/stats.py {m_sts['seconds']:.1f} s "
                   f"on {size_text(m_enc['bytes'])} (train + valid)"}
        if enc_est:
            out["make encode + make stats" if not full_size(m_enc)
                else "make encode + make stats, scaled from the input"] = enc_est
    elif enc_est:
        out["make encode + make stats"] = enc_est
    return out


def _target(name, value, op, limit, fmt, detail="") -> dict:
    if value is None:
        return {"name": name, "value": None, "target": limit, "ok": None, "detail": detail or "not measured"}
    ok = value >= limit if op == ">=" else value < limit
    return {"name": name, "value": value, "target": limit, "ok": ok,
            "detail": f"{fmt(value)} (target {op} {fmt(limit)})" + (f"; {detail}" if detail else "")}


def size_text(nbytes: int) -> str:
    return f"{nbytes / 1e9:.1f} GB" if nbytes >= 1e8 else f"{nbytes / MB:,.1f} MB"


def _kind(e: dict | None) -> str:
    if not e:
        return ""
    return "measured" if e.get("measured") else "estimate (--scale measures it)"


def targets(by: dict, est: dict, cfg: BenchConfig) -> list[dict]:
    def sec(k):
        return by.get(k, {}).get("seconds")

    def ratio(a, b):
        x, y = sec(a), sec(b)
        return y / x if x and y else None

    times = lambda v: f"{v:.2f}x"  # noqa: E731
    secs = lambda v: f"{v:.1f} s"  # noqa: E731
    mbytes = lambda v: f"{v / MB:,.0f} MB"  # noqa: E731
    t = [
        _target("training >= 4x faster than rustbpe", ratio("train/storytok-all", "train/rustbpe"), ">=", 4, times),
        _target("training >= 8x faster than HF tokenizers", ratio("train/storytok-all", "train/hf"), ">=", 8, times),
        _target("encoding, 1 core >= 10x tiktoken 1 thread (MB/s)", ratio("encode/storytok-1", "encode/tiktoken-1"),
                ">=", 10, times),
        _target("encoding, all cores >= 1.7x storytok 1 core", ratio("encode/storytok-all", "encode/storytok-1"),
                ">=", 1.7, times),
        _target("full size: make tokenizer (2 GB) < 30 s", est.get("make tokenizer", {}).get("seconds"), "<", 30, secs,
                _kind(est.get("make tokenizer"))),
        _target("full size: make encode + make stats (2 GB) < 30 s",
                est.get("make encode + make stats", {}).get("seconds"), "<", 30, secs,
                _kind(est.get("make encode + make stats"))),
    ]
    scale_note = "" if cfg.scale_input else "run with --scale"
    gb = size_text(cfg.scale_input.stat().st_size) if cfg.scale_input else "2 GB"
    t.append(_target(f"peak RSS, training {gb} < 400 MB", by.get("scale/train", {}).get("peak_rss_bytes"), "<",
                     400 * MB, mbytes, scale_note))
    t.append(_target(f"peak RSS, encoding {gb} < 600 MB", by.get("scale/encode", {}).get("peak_rss_bytes"), "<",
                     600 * MB, mbytes, scale_note))
    return t


# ---- environment ----------------------------------------------------------------------------

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


def git_info(root: Path) -> dict:
    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    return {"commit": git("rev-parse", "--short", "HEAD") or None,
            "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}


def ensure_corpus(tool: Path, mb: float, out: Path, seed: int = 0) -> tuple[Path, bool]:
    """out, generated with make_corpus.py (--mb mb) unless a file of about that size is there already."""
    want = int(mb * MB)
    if out.exists() and abs(out.stat().st_size - want) <= max(want // 100, 64 << 10):
        return out, False
    if not tool.exists():
        raise FileNotFoundError(f"{tool} not found: the bench corpus is generated by ../shared/tools/make_corpus.py "
                                "(expected ../shared beside the checkout); pass INPUT=<file> to use your own text")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    subprocess.run([sys.executable, str(tool), "--mb", str(mb), "--out", str(tmp), "--seed", str(seed)], check=True,
                   stdout=subprocess.DEVNULL)
    os.replace(tmp, out)
    return out, True


def cleanup(work: Path) -> None:
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "worker":
        sys.exit(worker_main(sys.argv[2], sys.argv[3]))
    if len(sys.argv) >= 4 and sys.argv[1] == "run":
        sys.exit(run_script_main(sys.argv[2], sys.argv[3], sys.argv[4:]))
    print("usage: python -m storytok.bench worker SPEC.json RESULT.json | run RESULT.json SCRIPT [ARGS...]\n"
          "(internal: the harness is stages/bench.py)", file=sys.stderr)
    sys.exit(2)
