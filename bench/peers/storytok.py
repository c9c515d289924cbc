"""storytok's workers: train, encode_file, the issue-10 APIs, cold start, kernel compile, counting.

The only adapter that imports storytok. It uses the public API (`train_bpe`, `Tokenizer`) for
everything that is timed; two internals are touched, both guarded so that a renamed
internal costs a profile line or a count, never the run: train_bpe's two stages are
wrapped with timers ("where time goes"), and `count_file_pretokens` counts a corpus's
distinct pre-tokens (there is no public call for that).

Encoding is timed on a fresh Tokenizer, as gigatoken's "cold" figure is: the cached kernels
are loaded first by a throw-away Tokenizer on a tiny file (so no JIT load is timed), and the
timed one starts with an empty pre-token cache, as a user's does.
"""
from __future__ import annotations

import hashlib
import importlib
import inspect
import threading
import time
from pathlib import Path

from bench.common import EOT, Clock, IdHasher, learned_tokens, read_stories, read_text, special_id

COUNT_KEY = "counting (read, scan, count, merge tables)"   # train_bpe's first stage


# ---- profiling hooks (where time goes) ---------------------------------------------------------

def _instrument(owner, name: str, acc: dict, key: str, clock=time.perf_counter) -> None:
    """Wrap owner.name so the seconds spent in it (summed over threads) land in acc[key].

    clock=time.thread_time counts the calling thread's CPU only: on a busy machine a thread
    waiting for a core inside a kernel is not charged to the kernel."""
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


def _modules(names):
    out = []
    for name in names:
        try:
            out.append(importlib.import_module(name))
        except ImportError:
            pass
    return out


def _instrument_kernels(modules, acc: dict) -> None:
    """CPU seconds of every Numba kernel these modules call from Python (found by looking, not by
    name, so the profile follows kernels as they are renamed or split). Calls between kernels are
    compiled in and stay untimed: each figure is a kernel called from Python, callees included,
    summed over threads."""
    for mod in modules:
        for name, obj in list(vars(mod).items()):
            if hasattr(obj, "py_func") and hasattr(obj, "signatures"):   # a numba Dispatcher
                _instrument(mod, name, acc, f"kernel {name}", clock=time.thread_time)


def _breakdown(acc: dict, total: float, rest_label: str | None) -> dict:
    out = {k: round(v, 4) for k, v in sorted(acc.items(), key=lambda kv: -kv[1]) if v > 0}
    if rest_label:
        out[rest_label] = round(max(total - sum(acc.values()), 0.0), 4)
    return out


ENCODE_MODULES = ("storytok.bpe.tokenizer", "storytok.sources.chunks", "storytok.pretokenize.specials",
                  "storytok.pretokenize.pretokenizer")


def _fresh_tokenizer(p: dict, warm_up=None):
    """A Tokenizer with an empty cache, the kernels already loaded (by another Tokenizer, which
    also runs warm_up(tokenizer, tiny text): the call about to be timed, on the tiny file)."""
    from storytok import Tokenizer
    warm = Tokenizer.from_dir(p["tokenizer_dir"])
    text = read_text(p["warm_path"])
    warm.encode_to_numpy(text[:50000])
    list(warm.encode_file(p["warm_path"], workers=1))
    if warm_up is not None:
        warm_up(warm, text)
    del warm
    t = time.perf_counter()
    tok = Tokenizer.from_dir(p["tokenizer_dir"])
    return tok, time.perf_counter() - t


# ---- workers ----------------------------------------------------------------------------------

def train(p: dict) -> dict:
    """train_bpe(path, vocab_size, [EOT], workers=...) on the whole file."""
    from storytok import Tokenizer, train_bpe
    train_bpe(p["warm_path"], 300, [EOT], workers=p["workers"])          # loads the cached kernels
    stages: dict = {}
    kernels: dict = {}
    try:
        import storytok.bpe.train as train_mod
        _instrument(train_mod, "count_chunks", stages, COUNT_KEY)
        _instrument(train_mod, "_run_merges", stages, "merge loop")
    except ImportError:
        pass
    _instrument_kernels(_modules(("storytok.bpe.train", "storytok.sources.chunks")), kernels)
    with Clock() as c:
        vocab, merges = train_bpe(p["path"], p["vocab_size"], [EOT], workers=p["workers"])
    h = hashlib.sha256()
    for a, b in merges:
        h.update(len(a).to_bytes(4, "little") + a + len(b).to_bytes(4, "little") + b)
    if p.get("save_dir"):
        _save_once(Tokenizer(vocab, merges, [EOT]), Path(p["save_dir"]))
    learned_tokens([a + b for a, b in merges], p.get("learned_out"))
    return c.result(merges=len(merges), merges_hash=h.hexdigest()[:32],
                    breakdown={**(_breakdown(stages, c.seconds, "other (arrays between stages, vocab)") if stages else {}),
                               **_breakdown(kernels, c.seconds, None)})


def _save_once(tok, out: Path) -> None:
    """Save the tokenizer to out unless it is there; under a temporary name first, so a killed run
    never leaves a half-written tokenizer that later runs would take for a finished one."""
    if out.exists():
        return
    tmp = out.with_name(out.name + f".partial-{time.time_ns()}")
    tok.save(tmp)
    try:
        tmp.rename(out)
    except OSError:          # another run saved it meanwhile
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)


def encode_file(p: dict) -> dict:
    """Tokenizer.encode_file(path, workers=...): the timed loop only takes each chunk's ids (as a
    caller writing them somewhere would). With check=True, a second, untimed pass hashes them."""
    tok, load_s = _fresh_tokenizer(p)
    acc: dict = {}
    _instrument_kernels(_modules(ENCODE_MODULES), acc)
    kw = {"workers": p["workers"]}
    if p.get("chunk_bytes"):
        kw["chunk_bytes"] = p["chunk_bytes"]
    chunks = tokens = 0
    with Clock() as c:
        for chunk in tok.encode_file(p["path"], **kw):
            tokens += int(chunk.tokens.size)
            chunks += 1
    out = c.result(chunks=chunks, breakdown={**_breakdown(acc, c.cpu, "CPU outside these (reading, Python)"),
                                             "load the tokenizer (not timed)": round(load_s, 4)})
    if p.get("check"):
        h = IdHasher(special_id(p["tokenizer_dir"]))
        for chunk in tok.encode_file(p["path"], **kw):
            h.add_stream(chunk.tokens)
        out.update(h.result())
    else:
        out["tokens"] = tokens
    return out


def encode_batch(p: dict) -> dict:
    """Tokenizer.encode_batch(stories, workers=...) (issue 10): every story as a str, no separators."""
    stories = read_stories(p["path"])
    tok, load_s = _fresh_tokenizer(p, lambda t, text: t.encode_batch(text.split(EOT), workers=p["workers"]))
    with Clock() as c:
        out = tok.encode_batch(stories, workers=p["workers"])
    h = IdHasher(special_id(p["tokenizer_dir"]))
    for ids in out:
        h.add_doc(ids)
    return c.result(breakdown={"load the tokenizer (not timed)": round(load_s, 4)}, **h.result())


def encode_to_numpy(p: dict) -> dict:
    """Tokenizer.encode_to_numpy(whole text as one str): issue 10 has it use all cores."""
    text = read_text(p["path"])
    tok, load_s = _fresh_tokenizer(p, lambda t, tiny: t.encode_to_numpy(tiny))
    with Clock() as c:
        ids = tok.encode_to_numpy(text)
    del text
    h = IdHasher(special_id(p["tokenizer_dir"]))
    h.add_stream(ids)
    return c.result(breakdown={"load the tokenizer (not timed)": round(load_s, 4)}, **h.result())


def cold(p: dict) -> dict:
    """A fresh process: import, then the first train and the first encode on a tiny file."""
    t0 = time.perf_counter()
    from storytok import Tokenizer, train_bpe
    import storytok.bpe.tokenizer, storytok.bpe.train  # noqa: F401,E401  (the lazy imports, made now)
    t1 = time.perf_counter()
    vocab, merges = train_bpe(p["path"], p["vocab_size"], [EOT])
    t2 = time.perf_counter()
    tok = Tokenizer(vocab, merges, [EOT])
    tok.encode_to_numpy(read_text(p["path"]))
    t3 = time.perf_counter()
    return {"seconds": t3 - t0, "cpu_seconds": time.process_time(),
            "breakdown": {"import": round(t1 - t0, 3), "first train": round(t2 - t1, 3),
                          "first encode (incl. Tokenizer())": round(t3 - t2, 3)}}


def compile_kernels(p: dict) -> dict:
    """What `make setup` runs (storytok.warmup: every kernel once), in a process whose Numba cache
    directory is empty: the kernel compile time a fresh machine pays."""
    t0 = time.perf_counter()
    from storytok import warmup
    t1 = time.perf_counter()
    warmup.warm_up()
    t2 = time.perf_counter()
    return {"seconds": t2 - t0, "cpu_seconds": time.process_time(),
            "breakdown": {"import": round(t1 - t0, 3), "compile + run every kernel (warm_up)": round(t2 - t1, 3)}}


def count(p: dict) -> dict:
    """Distinct pre-tokens of a corpus, with storytok's own counting (what training starts from)."""
    from storytok.bpe.train import count_file_pretokens
    from storytok.pretokenize.specials import SpecialMatcher
    with Clock() as c:
        counts = count_file_pretokens(p["path"], SpecialMatcher([EOT]), p.get("workers"))
    return c.result(distinct=len(counts), pretokens=int(counts.counts.sum()))


def stage_output_ids(p: dict) -> dict:
    """The ids `make encode` wrote (Parquet parts of one split, column `tokens`), as documents."""
    import pyarrow.parquet as pq
    h = IdHasher(special_id(p["tokenizer_dir"]))
    parts = sorted(Path(p["parquet_dir"]).glob("*.parquet"))
    if not parts:
        raise FileNotFoundError(f"{p['parquet_dir']}: no Parquet parts")
    with Clock() as c:
        for part in parts:
            f = pq.ParquetFile(part)
            for rg in range(f.num_row_groups):
                col = f.read_row_group(rg, columns=["tokens"]).column("tokens")
                for chunk in col.chunks:
                    h.add_offsets(chunk.values.to_numpy(zero_copy_only=False), chunk.offsets.to_numpy())
    return c.result(parts=len(parts), **h.result())
