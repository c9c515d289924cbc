"""Which jobs a run has, per corpus and job group (`--only`).

    train    train_bpe 1 core / all cores; gigatoken train_bpe; HF BpeTrainer; rustbpe
    encode   encode_file 1 core / all cores; gigatoken encode_files parallel=False/True, cold and
             warm; tiktoken 1 thread / encode_batch all threads; HF encode_batch
    batch    issue 10's API: encode_batch(stories), encode_to_numpy(whole text), against
             tiktoken encode_ordinary_batch and gigatoken encode_batch
    inputs   issue 10's inputs: make encode from the .txt, a .jsonl.zst and a .parquet copy
    cold     a fresh process's first train + encode, per tool; storytok's kernel compile with an
             empty Numba cache
    stages   make tokenizer / encode / stats on the input and on a tiny file (the full-size
             estimate of issue 4; tinystories only by default)
    scale    --scale: tinystories 2 GB (train, encode_file, the three stages) or webtext 4 GB
             (train 32K: time and peak RSS, with gigatoken's; encode_file on 1 core)

Every job names the worker that runs it (bench.peers.<peer>.<fn>), what it reads, and the row
it is compared with. Peer workers get plain files: storytok's tokenizer directory
(tokenizer.json, vocab.json) and the corpus.
"""
from __future__ import annotations

from pathlib import Path

from bench.harness import BenchConfig, Job
from bench.corpora import CORPORA

GROUPS = ("train", "encode", "batch", "inputs", "cold", "stages", "scale")
# Issue 10's batch and inputs jobs are specified on TinyStories; on the 400 MB web file the
# list-of-str calls alone hold 3.5-5 GB (tiktoken's lists of Python ints, the whole text as one
# str), too much beside other work on a shared machine: there they run only when asked for.
DEFAULT_GROUPS = {"tinystories": ("train", "encode", "batch", "inputs", "cold", "stages"),
                  "webtext": ("train", "encode", "cold")}
COLD_VOCAB = 1000
RUST_PEERS = ("HF tokenizers", "rustbpe", "gigatoken")     # thread pools sized by RAYON_NUM_THREADS


def cores_text(n: int) -> str:
    return f"{n} cores" if n > 1 else "1 core"


def build_jobs(cfg: BenchConfig, n_all: int) -> list[Job]:
    w = cfg.work_dir
    size = cfg.input.stat().st_size
    inp = str(cfg.input)
    tiny = str(w / "tiny.txt")
    tokdir = str(cfg.tokenizer_dir)
    cores = cores_text(n_all)
    k = f"{cfg.vocab_size / 1000:g}K"
    g = cfg.groups
    jobs: list[Job] = []
    enc = {"tokenizer_dir": tokdir}
    if "train" in g:
        tg = f"train {k}"
        tr = {"path": inp, "vocab_size": cfg.vocab_size}
        st_all = "train/storytok-all"
        jobs += [
            Job("train/storytok-1", tg, "storytok", "storytok train_bpe, 1 core", "storytok", "train",
                {**tr, "workers": 1, "warm_path": tiny}, size,
                ratio=("train/storytok-1", "train/gigatoken", "{x:.2f}x gigatoken")),
            Job(st_all, tg, "storytok", f"storytok train_bpe, {cores}", "storytok", "train",
                {**tr, "workers": n_all, "warm_path": tiny, "save_dir": tokdir,
                 "learned_out": str(w / "learned-storytok.json")}, size),
            Job("train/gigatoken", tg, "gigatoken", f"gigatoken train_bpe ({cores})", "gigatoken", "train",
                {**tr, "learned_out": str(w / "learned-gigatoken.json")}, size,
                ratio=(st_all, "train/gigatoken", "storytok {x:.2f}x")),
            Job("train/hf", tg, "HF tokenizers", f"HF BpeTrainer ({cores})", "hf", "train",
                {**tr, "learned_out": str(w / "learned-hf.json")}, size,
                ratio=(st_all, "train/hf", "storytok {x:.1f}x")),
            Job("train/rustbpe", tg, "rustbpe", f"rustbpe ({cores})", "rustbpe", "train",
                {**tr, "learned_out": str(w / "learned-rustbpe.json")}, size,
                ratio=(st_all, "train/rustbpe", "storytok {x:.1f}x")),
        ]
    s1, sa = "encode/storytok-1", "encode/storytok-all"
    # the encode_file rows are also the reference of the batch and scale rows: run them for those too
    if "encode" in g or "batch" in g or "scale" in g:
        chunk = {"chunk_bytes": cfg.chunk_bytes} if cfg.chunk_bytes else {}
        need = ("tokenizer",)
        jobs += [
            Job(s1, "encode", "storytok", "storytok encode_file, 1 core", "storytok", "encode_file",
                {"path": inp, **enc, "workers": 1, "warm_path": tiny, **chunk}, size, needs=need, check_first=True),
            Job(sa, "encode", "storytok", f"storytok encode_file, {cores}", "storytok", "encode_file",
                {"path": inp, **enc, "workers": n_all, "warm_path": tiny, **chunk}, size, needs=need,
                check_first=True, ratio=(sa, s1, "{x:.2f}x 1 core")),
        ]
    if "encode" in g:
        need = ("tokenizer",)
        for par, ref, who in ((False, s1, "1 core"), (True, sa, cores)):
            for warm in (False, True):
                name = f"gigatoken parallel={par}, {'warm (2nd call)' if warm else 'cold'}"
                jobs.append(Job(f"encode/gigatoken-{'all' if par else '1'}-{'warm' if warm else 'cold'}", "encode",
                                "gigatoken", name, "gigatoken", "encode_files",
                                {"path": inp, **enc, "parallel": par, "warm": warm}, size, needs=need,
                                ratio=(ref, None, f"storytok {who} {{x:.2f}}x")))
        jobs += [
            Job("encode/tiktoken-1", "encode", "tiktoken", "tiktoken encode, 1 thread", "tiktoken", "encode",
                {"path": inp, **enc, "threads": 1}, size, needs=need, ratio=(s1, None, "storytok 1 core {x:.1f}x")),
            Job("encode/tiktoken-all", "encode", "tiktoken", f"tiktoken encode_batch, {n_all} threads", "tiktoken",
                "encode", {"path": inp, **enc, "threads": n_all}, size, needs=need,
                ratio=(sa, None, f"storytok {cores} {{x:.1f}}x")),
        ]
        sliced = cfg.hf_encode_bytes is not None and cfg.hf_encode_bytes < size
        jobs.append(Job("encode/hf", "encode", "HF tokenizers", f"HF encode_batch ({cores})", "hf", "encode",
                        {"path": inp, **enc, **({"max_bytes": cfg.hf_encode_bytes} if sliced else {})}, size,
                        input="slice" if sliced else "main", needs=need,
                        ratio=(sa, None, f"storytok {cores} {{x:.1f}}x")))
    if "batch" in g:
        sb = "batch/storytok-encode_batch"
        need = ("tokenizer",)
        jobs += [
            Job(sb, "batch", "storytok", f"storytok encode_batch(stories), {cores}", "storytok", "encode_batch",
                {"path": inp, **enc, "workers": n_all, "warm_path": tiny}, size, needs=need,
                ratio=(sb, "encode/storytok-all", f"{{x:.2f}}x encode_file {cores}")),
            Job("batch/storytok-encode_to_numpy", "batch", "storytok", "storytok encode_to_numpy(whole text)",
                "storytok", "encode_to_numpy", {"path": inp, **enc, "warm_path": tiny}, size, needs=need,
                ratio=("batch/storytok-encode_to_numpy", "encode/storytok-all", f"{{x:.2f}}x encode_file {cores}")),
            Job("batch/tiktoken", "batch", "tiktoken", f"tiktoken encode_ordinary_batch(stories), {n_all} threads",
                "tiktoken", "encode_ordinary_batch", {"path": inp, **enc, "threads": n_all}, size, needs=need,
                ratio=(sb, None, "storytok encode_batch {x:.1f}x")),
            Job("batch/gigatoken", "batch", "gigatoken", f"gigatoken encode_batch(stories), parallel=True",
                "gigatoken", "encode_batch", {"path": inp, **enc, "parallel": True}, size, needs=need,
                ratio=(sb, None, "storytok encode_batch {x:.2f}x")),
        ]
    if "inputs" in g and cfg.stages_dir is not None:
        sd, out = cfg.stages_dir, w / "inputs"
        for kind in ("txt", "jsonl.zst", "parquet"):
            rnd = out / kind / "r{round}"
            jobs.append(Job(f"inputs/{kind}", "inputs", "storytok", f"make encode from .{kind}", "cmd", "",
                            {"argv": [sd / "encode.py", "--tokenizer", tokdir, "--out-dir", rnd,
                                      f"train={inp}"], "cwd": str(sd.parent)}, size,   # other kinds: see fill_document_paths
                            needs=("tokenizer",) + (("documents",) if kind != "txt" else ()),
                            post=("storytok", "stage_output_ids",
                                  {"parquet_dir": str(out / kind / "r0" / "parquet" / "train"), **enc}),
                            ratio=(f"inputs/{kind}", "inputs/txt", "{x:.2f}x .txt") if kind != "txt" else None))
    if "cold" in g:
        jobs += [
            Job("cold/storytok", "cold start", "storytok", "storytok (warm Numba cache)", "storytok", "cold",
                {"path": tiny, "vocab_size": COLD_VOCAB}, input="tiny"),
            Job("cold/gigatoken", "cold start", "gigatoken", "gigatoken", "gigatoken", "cold",
                {"path": tiny, "vocab_size": COLD_VOCAB, **enc}, input="tiny", needs=("tokenizer",)),
            Job("cold/tiktoken", "cold start", "tiktoken", "tiktoken", "tiktoken", "cold",
                {"path": tiny, **enc}, input="tiny", needs=("tokenizer",)),
            Job("cold/hf", "cold start", "HF tokenizers", "HF tokenizers", "hf", "cold",
                {"path": tiny, "vocab_size": COLD_VOCAB, **enc}, input="tiny", needs=("tokenizer",)),
            Job("cold/rustbpe", "cold start", "rustbpe", "rustbpe", "rustbpe", "cold",
                {"path": tiny, "vocab_size": COLD_VOCAB}, input="tiny"),
        ]
        if cfg.compile_cold:
            cold = w / "cold-cache"
            jobs.append(Job("cold/storytok-compile", "cold start", "storytok",
                            "storytok kernel compile, empty Numba cache (make setup's warmup)", "storytok",
                            "compile_kernels", {}, input="none", repeat=False,
                            env={"NUMBA_CACHE_DIR": str(cold / "numba"), "XDG_CACHE_HOME": str(cold / "xdg")}))
    if "stages" in g and cfg.stages_dir is not None:
        jobs += stage_jobs(cfg, size)
    if "scale" in g and cfg.scale_input is not None:
        jobs += scale_jobs(cfg, n_all)
    if cfg.workers:   # "all cores" pinned: the Rust peers size their thread pools from RAYON_NUM_THREADS
        for j in jobs:
            if j.tool in RUST_PEERS:
                j.env["RAYON_NUM_THREADS"] = str(n_all)
            if j.peer == "cmd" and Path(str(j.params["argv"][0])).name in ("tokenizer.py", "encode.py"):
                j.params["argv"] = [*j.params["argv"], "--workers", n_all]
    return jobs


def stage_jobs(cfg: BenchConfig, size: int) -> list[Job]:
    """make tokenizer / encode / stats on the input (each round into a fresh directory, since a
    stage skips work already done; encode and stats use round 0's tokenizer), and encode + stats
    on the tiny file: their fixed cost, which the full-size estimate does not scale."""
    sd, out, inp, tiny = cfg.stages_dir, cfg.work_dir / "stages", str(cfg.input), str(cfg.work_dir / "tiny.txt")
    rnd, tok0 = out / "r{round}", out / "r0" / "tokenizer"
    cwd = str(sd.parent)
    return [
        Job("stages/tokenizer", "stages", "storytok", "make tokenizer (stages/tokenizer.py)", "cmd", "",
            {"argv": [sd / "tokenizer.py", "--train", inp, "--vocab-size", cfg.vocab_size,
                      "--out", rnd / "tokenizer"], "cwd": cwd}, size),
        Job("stages/encode", "stages", "storytok", "make encode (stages/encode.py)", "cmd", "",
            {"argv": [sd / "encode.py", "--tokenizer", tok0, "--out-dir", rnd, f"train={inp}"], "cwd": cwd}, size),
        Job("stages/stats", "stages", "storytok", "make stats (stages/stats.py)", "cmd", "",
            {"argv": [sd / "stats.py", "--tokenizer", tok0, "--out-dir", rnd, "train"], "cwd": cwd}, size),
        Job("stages/encode-tiny", "stages", "storytok", "make encode, tiny file (fixed cost)", "cmd", "",
            {"argv": [sd / "encode.py", "--tokenizer", tok0, "--out-dir", rnd / "tiny", f"train={tiny}"],
             "cwd": cwd}, input="tiny"),
        Job("stages/stats-tiny", "stages", "storytok", "make stats, tiny file (fixed cost)", "cmd", "",
            {"argv": [sd / "stats.py", "--tokenizer", tok0, "--out-dir", rnd / "tiny", "train"], "cwd": cwd},
            input="tiny"),
    ]


def scale_jobs(cfg: BenchConfig, n_all: int) -> list[Job]:
    w, big = cfg.work_dir, str(cfg.scale_input)
    bsize = cfg.scale_input.stat().st_size
    cores = cores_text(n_all)
    k = f"{cfg.vocab_size / 1000:g}K"
    tiny = str(w / "tiny.txt")
    if cfg.corpus == "webtext":
        # Training: time and peak RSS (our OpenWebText estimate), beside gigatoken's. Encoding on
        # 1 core with the tokenizer of the 400 MB file: does speed hold as distinct words grow?
        return [
            Job("scale/train", "scale", "storytok", f"storytok train_bpe {k}, {cores}", "storytok", "train",
                {"path": big, "vocab_size": cfg.vocab_size, "workers": n_all, "warm_path": tiny}, bsize,
                input="scale", repeat=False),
            Job("scale/train-gigatoken", "scale", "gigatoken", f"gigatoken train_bpe {k} ({cores})", "gigatoken",
                "train", {"path": big, "vocab_size": cfg.vocab_size}, bsize, input="scale", repeat=False,
                ratio=("scale/train", "scale/train-gigatoken", "storytok {x:.2f}x")),
            Job("scale/encode-1", "scale", "storytok", "storytok encode_file, 1 core", "storytok", "encode_file",
                {"path": big, "tokenizer_dir": str(cfg.tokenizer_dir), "workers": 1, "warm_path": tiny}, bsize,
                input="scale", repeat=False, needs=("tokenizer",),
                ratio=("scale/encode-1", "encode/storytok-1", "{x:.2f}x its speed on the main input")),
        ]
    # tinystories: the issue-4 full-size runs (2 GB): train, encode_file, then the three stages.
    tok_scale = str(w / "tokenizer-scale")
    jobs = [
        Job("scale/train", "scale", "storytok", f"storytok train_bpe, {cores}", "storytok", "train",
            {"path": big, "vocab_size": cfg.vocab_size, "workers": n_all, "warm_path": tiny, "save_dir": tok_scale},
            bsize, input="scale", repeat=False),
        Job("scale/encode", "scale", "storytok", f"storytok encode_file, {cores}", "storytok", "encode_file",
            {"path": big, "tokenizer_dir": tok_scale, "workers": n_all, "warm_path": tiny}, bsize,
            input="scale", repeat=False),
    ]
    if cfg.stages_dir is not None:
        sd, out = cfg.stages_dir, w / "scale-stages"
        cwd = str(sd.parent)
        splits = [("train", big)] + ([("valid", str(cfg.scale_valid))] if cfg.scale_valid else [])
        vsize = cfg.scale_valid.stat().st_size if cfg.scale_valid else 0
        both = "train + valid" if cfg.scale_valid else "train"
        jobs += [
            Job("scale/make-tokenizer", "scale", "storytok", "make tokenizer", "cmd", "",
                {"argv": [sd / "tokenizer.py", "--train", big, "--vocab-size", cfg.vocab_size,
                          "--out", out / "tokenizer"], "cwd": cwd}, bsize, input="scale", repeat=False),
            Job("scale/make-encode", "scale", "storytok", f"make encode, {both}", "cmd", "",
                {"argv": [sd / "encode.py", "--tokenizer", out / "tokenizer", "--out-dir", out,
                          *[f"{n}={p}" for n, p in splits]], "cwd": cwd}, bsize + vsize, input="scale+valid",
                repeat=False),
            Job("scale/make-stats", "scale", "storytok", f"make stats, {both}", "cmd", "",
                {"argv": [sd / "stats.py", "--tokenizer", out / "tokenizer", "--out-dir", out,
                          *[n for n, _ in splits]], "cwd": cwd}, bsize + vsize, input="scale+valid",
                repeat=False),
        ]
    return jobs


def fill_document_paths(jobs: list[Job], files: dict[str, Path]) -> None:
    """Point the make-encode-from-.jsonl.zst/.parquet jobs at the files prepare() made."""
    for j in jobs:
        kind = j.key.split("/", 1)[1] if j.key.startswith("inputs/") else None
        if kind in files:
            j.params["argv"] = [a if not str(a).startswith("train=") else f"train={files[kind]}"
                                for a in j.params["argv"]]


def corpus_vocab(corpus: str) -> int:
    return CORPORA[corpus].vocab_size
