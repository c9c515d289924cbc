"""make bench: the harness's logic, on tiny inputs and made-up rows (no timing is asserted: the
machine may be busy).

- reading a corpus (blocks, pieces, stories) covers the file exactly;
- the id fingerprints do not depend on chunking or on the form a tool returns (a stream with
  separators, one array per document, Arrow-style offsets, lists of ints), and do change
  when one id changes;
- every peer adapter gives storytok's ids on a small file (gigatoken, tiktoken, HF);
- runs: medians, max peak RSS, rounds, error rows with their one-line reason, jobs whose
  setup failed, a worker that crashes;
- checks and targets: PASS / FAIL / SKIP with the numbers used, per corpus;
- the report renders (table, folded id checks, targets by issue) on screen and as Markdown;
- end to end: stages/bench.py on a tiny file, with an API that does not exist yet as an
  error row, not a crash.
"""
from __future__ import annotations

import importlib.util
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from conftest import EOT, examples, shared_path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import common, corpora, harness, jobs as jobs_mod, report, verdicts  # noqa: E402
from bench.harness import BenchConfig, Job  # noqa: E402

SEP = 999


def _tiny_input(tmp_path, nbytes=300_000):
    src = shared_path("data", "tinystories_v1_valid_sample.txt")
    return corpora.make_tiny(src, tmp_path / "tiny-input.txt", nbytes)


# ---- reading ----------------------------------------------------------------------------------

def test_blocks_pieces_and_stories_cover_the_file_exactly(tmp_path):
    path = _tiny_input(tmp_path, 120_000)
    text = path.read_text(encoding="utf-8")
    for block_bytes in (1000, 4096, 1 << 20):
        blocks = list(common.blocks(path, block_bytes))
        assert "".join(blocks) == text
        assert all(b.endswith(EOT) for b in blocks[:-1])
        pieces = [p for b in blocks for p in common.pieces(b, 3000)]
        assert "".join(pieces) == text
    assert "".join(common.stories(text, keep_special=True)) == text
    docs = common.read_stories(path)
    assert docs == [d for d in text.split(EOT) if d] and all(EOT not in d for d in docs)


def test_vocab_and_special_id_read_back_a_tokenizer_dir(tmp_path):
    from storytok import Tokenizer, train_bpe
    path = _tiny_input(tmp_path, 50_000)
    vocab, merges = train_bpe(path, 300, [EOT])
    Tokenizer(vocab, merges, [EOT]).save(tmp_path / "tok")
    got = common.read_vocab(tmp_path / "tok")
    assert {i: b for i, b in got.items() if b != EOT.encode()} == {i: b for i, b in vocab.items() if b != EOT.encode()}
    assert common.special_id(tmp_path / "tok") == next(i for i, b in got.items() if b == EOT.encode())


# ---- id fingerprints ---------------------------------------------------------------------------

docs_strategy = st.lists(st.lists(st.integers(0, 998), max_size=12), max_size=12)


def _stream(docs, trailing=True):
    out = []
    for k, d in enumerate(docs):
        out += d
        if trailing or k < len(docs) - 1:
            out.append(SEP)
    return out


@settings(max_examples=examples(100))
@given(docs=docs_strategy, cuts=st.lists(st.integers(0, 200), max_size=6), trailing=st.booleans())
def test_every_form_of_the_same_documents_gives_the_same_fingerprint(docs, cuts, trailing):
    stream = _stream(docs, trailing)
    # a stream, cut anywhere
    a = common.IdHasher(SEP)
    pos = 0
    for c in sorted(set(min(c, len(stream)) for c in cuts)) + [len(stream)]:
        a.add_stream(np.array(stream[pos:c], np.uint16))
        pos = c
    # one array per document (empty ones included: they are dropped, as gigatoken drops them)
    b = common.IdHasher(SEP)
    for d in docs:
        b.add_doc(np.array(d, np.int64))
    # lists of Python ints (tiktoken)
    c = common.IdHasher(SEP)
    c.add_docs(docs)
    # rows + offsets (awkward / Arrow), rows holding their separator (a make encode row) or not
    d = common.IdHasher(SEP)
    off = np.cumsum([0] + [len(x) for x in docs])
    d.add_offsets(np.array([t for x in docs for t in x], np.uint32), off)
    e = common.IdHasher(SEP)
    rows = [x + [SEP] for x in docs]
    e.add_offsets(np.array([t for x in rows for t in x], np.uint16), np.cumsum([0] + [len(x) for x in rows]))
    ra = a.result()
    for h in (b, c, d, e):
        r = h.result()
        assert (r["docs_hash"], r["docs"], r["doc_tokens"]) == (ra["docs_hash"], ra["docs"], ra["doc_tokens"])
    assert ra["docs"] == sum(1 for x in docs if x)
    assert ra["tokens"] == len(stream) and "ids_hash" not in b.result()


@given(docs=docs_strategy.filter(lambda d: any(d)), data=st.data())
@settings(max_examples=examples(50))
def test_one_changed_id_or_boundary_changes_the_fingerprint(docs, data):
    base = common.IdHasher(SEP)
    base.add_docs(docs)
    k = data.draw(st.sampled_from([i for i, d in enumerate(docs) if d]))
    j = data.draw(st.integers(0, len(docs[k]) - 1))
    changed = [list(d) for d in docs]
    changed[k][j] = (changed[k][j] + 1) % 999
    other = common.IdHasher(SEP)
    other.add_docs(changed)
    assert other.result()["docs_hash"] != base.result()["docs_hash"]
    if len(docs[k]) > 1:   # the same ids, one document split in two
        split = [list(d) for d in docs[:k]] + [docs[k][:1], docs[k][1:]] + [list(d) for d in docs[k + 1:]]
        moved = common.IdHasher(SEP)
        moved.add_docs(split)
        assert moved.result()["docs_hash"] != base.result()["docs_hash"]


def test_ids_that_do_not_fit_uint16_are_refused():
    with pytest.raises(ValueError, match="uint16"):
        common.IdHasher(SEP).add_doc([70000])


# ---- the peer adapters agree on a small file ------------------------------------------------------

@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory):
    from storytok import Tokenizer, train_bpe
    d = tmp_path_factory.mktemp("bench-peers")
    path = _tiny_input(d, 200_000)
    with open(path, "ab") as f:   # web text has CR LF and lone CR: no reader may turn them into LF
        f.write("A man page\r\nwith CR LF,\r\n\r\nlone CR\rand café, 東京 😀.\n<|endoftext|>".encode())
    vocab, merges = train_bpe(path, 600, [EOT])
    Tokenizer(vocab, merges, [EOT]).save(d / "tok")
    corpora.make_tiny(path, d / "warm.txt", 20_000)
    return {"path": str(path), "tokenizer_dir": str(d / "tok"), "warm_path": str(d / "warm.txt")}


def _peer(name):
    mod = {"gigatoken": "gigatoken", "tiktoken": "tiktoken", "hf": "tokenizers"}.get(name)
    if mod and importlib.util.find_spec(mod) is None:
        pytest.skip(f"{mod} not installed (make setup installs the bench peers)")
    return importlib.import_module(f"bench.peers.{name}")


def test_every_peer_adapter_gives_storytoks_ids(small_corpus, monkeypatch):
    p = small_corpus
    st_ = _peer("storytok")
    ref = st_.encode_file({**p, "workers": 1, "check": True})
    assert ref["docs"] > 100 and ref["tokens"] == ref["doc_tokens"] + ref["docs"]
    assert st_.encode_file({**p, "workers": 2, "check": True})["ids_hash"] == ref["ids_hash"]
    got = {
        "tiktoken 1t": _peer("tiktoken").encode({**p, "threads": 1}),
        "tiktoken 2t": _peer("tiktoken").encode({**p, "threads": 2}),
        "tiktoken ordinary": _peer("tiktoken").encode_ordinary_batch({**p, "threads": 2}),
        "HF": _peer("hf").encode(p),
        "gigatoken cold": _peer("gigatoken").encode_files({**p, "parallel": False, "warm": False}),
        "gigatoken warm": _peer("gigatoken").encode_files({**p, "parallel": True, "warm": True}),
        "gigatoken batch": _peer("gigatoken").encode_batch(p),
        "encode_to_numpy": st_.encode_to_numpy(p),
    }
    from storytok import Tokenizer
    if not hasattr(Tokenizer, "encode_batch"):   # issue 10's API, until it lands: a stand-in with its contract
        monkeypatch.setattr(Tokenizer, "encode_batch", lambda self, texts, *, workers=None:
                            [self.encode_to_numpy(t) for t in texts], raising=False)
    got["encode_batch"] = st_.encode_batch({**p, "workers": 2})
    for name, r in got.items():
        assert (r["docs_hash"], r["docs"], r["doc_tokens"]) == (ref["docs_hash"], ref["docs"], ref["doc_tokens"]), name
        if "ids_hash" in r:
            assert r["ids_hash"] == ref["ids_hash"], name
    # HF on a slice: a prefix of the file, reported as such (its ids are not compared)
    part = _peer("hf").encode({**p, "max_bytes": 50_000})
    assert part["partial"] and 50_000 <= part["bytes_read"] < 200_000


def test_the_ids_make_encode_wrote_are_read_back_as_documents(small_corpus, tmp_path):
    p = small_corpus
    run = subprocess.run([sys.executable, str(ROOT / "stages" / "encode.py"), "--tokenizer", p["tokenizer_dir"],
                          "--out-dir", str(tmp_path), f"train={p['path']}"], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-2000:]
    got = _peer("storytok").stage_output_ids({"parquet_dir": str(tmp_path / "parquet" / "train"),
                                              "tokenizer_dir": p["tokenizer_dir"]})
    ref = _peer("storytok").encode_file({**p, "workers": 1, "check": True})
    assert (got["docs_hash"], got["docs"], got["doc_tokens"]) == (ref["docs_hash"], ref["docs"], ref["doc_tokens"])


# ---- runs -------------------------------------------------------------------------------------

def _cfg(tmp_path, **kw) -> BenchConfig:
    base = dict(corpus="tinystories", input=tmp_path / "in.txt", data_dir=tmp_path, work_dir=tmp_path / "work",
                repeat=3, repeat_max_seconds=30.0)
    base.update(kw)
    return BenchConfig(**base)


def test_summary_takes_medians_max_rss_and_flags_unstable_ids():
    j = Job("encode/x", "encode", "x", "x encode", nbytes=10_000_000)
    j.runs = [{"seconds": s, "cpu_seconds": s * 2, "wall_seconds": s + 1, "peak_rss_bytes": rss, "load1_before": 1.0,
               "docs_hash": h, "docs": 3, "doc_tokens": 9}
              for s, rss, h in ((1.0, 100, "a"), (3.0, 300, "a"), (2.0, 200, "b"))] + [{"error": "boom"}]
    s = harness.summarize(j)
    assert s["seconds"] == 2.0 and s["cpu_seconds"] == 4.0 and s["peak_rss_bytes"] == 300 and s["n_runs"] == 3
    assert s["mb_per_s"] == pytest.approx(5.0) and s["error"] is None
    assert s["unstable"] == "docs_hash differs between runs"
    failed = Job("encode/y", "encode", "y", "y")
    failed.runs = [{"error": "AttributeError: no encode_batch"}]
    s = harness.summarize(failed)
    assert s.get("seconds") is None and s["error"] == "AttributeError: no encode_batch"
    sliced = Job("encode/hf", "encode", "HF", "HF", nbytes=100_000_000)
    sliced.runs = [{"seconds": 2.0, "wall_seconds": 2, "peak_rss_bytes": 1, "load1_before": 0, "bytes_read": 4_000_000}]
    assert harness.summarize(sliced)["mb_per_s"] == pytest.approx(2.0)


def test_rounds_repeat_fast_jobs_and_failed_setup_becomes_an_error_row(tmp_path, monkeypatch):
    times = {"fast": 1.0, "slow": 40.0}
    calls = []

    def fake_run(job, cfg, index, params=None):
        calls.append((job.key, index))
        if job.key == "crash":
            return {"error": "exit status 1: Traceback ... ValueError: bad", "wall_seconds": 0.1}
        return {"seconds": times[job.key] + index * 0.1, "cpu_seconds": 1.0, "wall_seconds": 1.0,
                "peak_rss_bytes": 1 << 20, "load1_before": 0.5, "load1_after": 0.7}

    monkeypatch.setattr(harness, "run_job", fake_run)
    jobs = [Job("fast", "g", "t", "fast"), Job("slow", "g", "t", "slow"), Job("crash", "g", "t", "crash"),
            Job("needy", "g", "t", "needs a tokenizer", needs=("tokenizer",)),
            Job("once", "g", "t", "once", repeat=False)]
    times["once"] = 1.0

    def prepare(need, job):
        raise RuntimeError("training the tokenizer failed: out of memory")

    rows, facts = harness.run_all(_cfg(tmp_path), jobs, prepare)
    by = {r["key"]: r for r in rows}
    assert [i for k, i in calls if k == "fast"] == [0, 1, 2]
    assert [i for k, i in calls if k == "slow"] == [0]          # over repeat_max_seconds: once
    assert [i for k, i in calls if k == "crash"] == [0]         # failed: not retried
    assert [i for k, i in calls if k == "once"] == [0]
    assert not any(k == "needy" for k, _ in calls)
    assert by["fast"]["seconds"] == pytest.approx(1.1) and by["fast"]["n_runs"] == 3
    assert "ValueError: bad" in by["crash"]["error"]
    assert by["needy"]["error"] == "not run: tokenizer: RuntimeError: training the tokenizer failed: out of memory"
    assert facts["load1"]["min"] == 0.5 and facts["load1"]["max"] == 0.7


def test_a_worker_runs_in_its_own_process_and_a_failure_is_one_line(tmp_path):
    ok = tmp_path / "ok.py"
    ok.write_text("import sys\nbuf = bytearray(64 << 20)\nprint('done', sys.argv[1:])\n")
    bad = tmp_path / "bad.py"
    bad.write_text("import sys\nprint('starting')\nprint('error: data/x.txt: no such file', file=sys.stderr)\n"
                   "sys.exit(1)\n")
    cfg = _cfg(tmp_path)
    run = harness.run_job(Job("t/ok", "g", "t", "ok", "cmd", "", {"argv": [ok, "a{round}"]}), cfg, 2)
    assert "error" not in run and run["seconds"] > 0 and run["peak_rss_bytes"] > 64 << 20
    assert "done ['a2']" in (cfg.work_dir / "runs" / "t_ok-2.log").read_text()
    run = harness.run_job(Job("t/bad", "g", "t", "bad", "cmd", "", {"argv": [bad]}), cfg, 0)
    assert run["error"] == "data/x.txt: no such file (exit status 1)"
    # a peer worker that raises: its reason, not a traceback
    run = harness.run_job(Job("t/peer", "g", "storytok", "x", "storytok", "encode_batch",
                              {"path": str(tmp_path / "missing.txt"), "tokenizer_dir": str(tmp_path)}), cfg, 0)
    assert run["error"].startswith("FileNotFoundError: ") and "\n" not in run["error"]


def test_speed_ratio_uses_mb_per_s_when_both_rows_read_bytes():
    a = {"seconds": 2.0, "mb_per_s": 100.0}
    assert harness.speed_ratio(a, {"seconds": 1.0, "mb_per_s": 25.0}) == 4.0
    assert harness.speed_ratio({"seconds": 2.0}, {"seconds": 6.0}) == 3.0
    assert harness.speed_ratio(a, None) is None and harness.speed_ratio(a, {"seconds": None}) is None


# ---- job lists --------------------------------------------------------------------------------

def test_jobs_per_group_and_corpus(tmp_path):
    (tmp_path / "in.txt").write_text("a" * 1000)
    cfg = _cfg(tmp_path, stages_dir=ROOT / "stages", tokenizer_dir=tmp_path / "tok",
               groups=("encode", "batch", "inputs", "cold"), hf_encode_bytes=500)
    keys = [j.key for j in jobs_mod.build_jobs(cfg, 2)]
    for k in ("encode/storytok-1", "encode/storytok-all", "encode/gigatoken-1-cold", "encode/gigatoken-1-warm",
              "encode/gigatoken-all-cold", "encode/gigatoken-all-warm", "encode/tiktoken-1", "encode/tiktoken-all",
              "encode/hf", "batch/storytok-encode_batch", "batch/storytok-encode_to_numpy", "batch/tiktoken",
              "batch/gigatoken", "inputs/txt", "inputs/jsonl.zst", "inputs/parquet", "cold/storytok",
              "cold/gigatoken", "cold/storytok-compile"):
        assert k in keys, k
    assert not any(k.startswith(("train/", "stages/", "scale/")) for k in keys)
    hf = next(j for j in jobs_mod.build_jobs(cfg, 2) if j.key == "encode/hf")
    assert hf.params["max_bytes"] == 500 and hf.input == "slice"
    # batch alone still runs the encode_file rows it is compared with
    only = [j.key for j in jobs_mod.build_jobs(_cfg(tmp_path, tokenizer_dir=tmp_path / "tok", groups=("batch",)), 2)]
    assert {"encode/storytok-1", "encode/storytok-all"} <= set(only) and "encode/hf" not in only
    # webtext --scale: 4 GB train (storytok, gigatoken) and 1-core encode
    big = tmp_path / "big.txt"
    big.write_text("b" * 1000)
    scale = [j.key for j in jobs_mod.build_jobs(_cfg(tmp_path, corpus="webtext", tokenizer_dir=tmp_path / "tok",
                                                     groups=("scale",), scale_input=big), 2)]
    assert {"scale/train", "scale/train-gigatoken", "scale/encode-1", "encode/storytok-1"} <= set(scale)


def test_document_copies_hold_the_same_documents(tmp_path):
    import pyarrow as pa
    import pyarrow.json as pj
    import pyarrow.parquet as pq
    path = _tiny_input(tmp_path, 60_000)
    (tmp_path / "data").mkdir()
    files = corpora.document_files(path, tmp_path / "data")
    docs = common.read_stories(path)
    assert pq.read_table(files["parquet"]).column("text").to_pylist() == docs
    with pa.CompressedInputStream(pa.OSFile(str(files["jsonl.zst"])), "zstd") as f:
        assert pj.read_json(f).column("text").to_pylist() == docs
    assert files["parquet"].parent == tmp_path / "data" / "derived"      # not beside a file we do not own
    mtime = files["parquet"].stat().st_mtime_ns
    assert corpora.document_files(path, tmp_path / "data")["parquet"].stat().st_mtime_ns == mtime   # made once


# ---- checks and targets -----------------------------------------------------------------------

def _row(key, group, tool, label, seconds=1.0, nbytes=100 * 10**6, rss=100 * 10**6, **kw):
    return {"key": key, "group": group, "tool": tool, "label": label, "seconds": seconds, "bytes": nbytes,
            "mb_per_s": nbytes / 1e6 / seconds if nbytes else None, "peak_rss_bytes": rss, "cpu_seconds": seconds,
            "n_runs": 3, "input": "main", "load1": 1.0, **kw}


IDS = {"docs_hash": "d" * 32, "docs": 10, "doc_tokens": 100}


def _rows(encode_1=0.5, giga_1=0.6, train_all=1.0, giga_train=1.2, encode_all=0.25, rss=100 * 10**6):
    return [
        _row("train/storytok-1", "train 10K", "storytok", "st train 1", 1.8, merges=9, merges_hash="m" * 32),
        _row("train/storytok-all", "train 10K", "storytok", "st train all", train_all, rss=rss, merges=9,
             merges_hash="m" * 32),
        _row("train/gigatoken", "train 10K", "gigatoken", "gt train", giga_train),
        _row("encode/storytok-1", "encode", "storytok", "st 1", encode_1, ids_hash="s" * 32, tokens=110, **IDS),
        _row("encode/storytok-all", "encode", "storytok", "st all", encode_all, ids_hash="s" * 32, tokens=110, **IDS),
        _row("encode/gigatoken-1-cold", "encode", "gigatoken", "gt cold", giga_1, **IDS),
        _row("encode/tiktoken-1", "encode", "tiktoken", "tt 1", 5.0, ids_hash="s" * 32, tokens=110, **IDS),
        {"key": "batch/storytok-encode_batch", "group": "batch", "tool": "storytok", "label": "st batch",
         "bytes": 100 * 10**6, "n_runs": 0, "input": "main",
         "error": "AttributeError: 'Tokenizer' object has no attribute 'encode_batch'"},
    ]


def test_checks_pass_fail_and_skip():
    rows = _rows()
    c = verdicts.checks(rows)
    assert c[0]["about"] == "merges" and c[0]["ok"] is True
    assert c[1]["about"] == "reference" and c[1]["row"] == "st all"
    by = {x["row"]: x for x in c[2:]}
    assert by["st 1"]["ok"] is True and by["gt cold"]["ok"] is True and by["tt 1"]["ok"] is True
    assert by["st batch"]["ok"] is None and "encode_batch" in by["st batch"]["detail"]
    rows[5] = {**rows[5], "docs_hash": "x" * 32}            # gigatoken disagrees
    rows[6] = {**rows[6], "ids_hash": "y" * 32}             # same documents, different stream (separators)
    bad = {x["row"]: x for x in verdicts.checks(rows)[2:]}
    assert bad["gt cold"]["ok"] is False and bad["tt 1"]["ok"] is False and "DIFFERENT" in bad["tt 1"]["detail"]


def test_targets_per_corpus_with_the_numbers_used():
    rows = _rows()
    t = {x["name"]: x for x in verdicts.targets(rows, verdicts.checks(rows), "tinystories", {}, 100 * 10**6)}
    enc = t["(1) encode, 1 core >= 1.0x gigatoken parallel=False (cold), 100 MB"]
    assert enc["ok"] is True and enc["value"] == pytest.approx(1.2)
    assert "st 1 200.0 MB/s / gt cold 166.7 MB/s = 1.20x (target >= 1.00x)" == enc["detail"]
    assert t["(1) train 10K, all cores, at least as fast as gigatoken train_bpe, 100 MB"]["ok"] is True
    assert t["(4) encode, all cores >= 1.8x one core, 100 MB"]["ok"] is True
    assert t["(5) ids identical to gigatoken, 100 MB"]["ok"] is True
    assert t["(5) merges on all cores == one core, 100 MB"]["ok"] is True
    assert t["(6) kernel compile with an empty Numba cache <= 10 s (17 s at issue time)"]["ok"] is None
    batch = t["encode_batch(stories) >= 0.8x encode_file, all cores, 100 MB"]
    assert batch["ok"] is None and "has no attribute 'encode_batch'" in batch["detail"]
    assert t["encode, 1 core >= 10x tiktoken 1 thread, 100 MB"]["ok"] is True
    assert not any(x.startswith("(2)") for x in t)

    slow = _rows(encode_1=1.0, giga_1=0.6, train_all=2.0, giga_train=1.0, encode_all=0.9, rss=900 * 10**6)
    t = {x["name"]: x for x in verdicts.targets(slow, verdicts.checks(slow), "webtext", {}, 400 * 10**6)}
    assert t["(2) encode, 1 core >= 1.0x gigatoken parallel=False (cold), 400 MB"]["ok"] is False
    assert t["(2) train 32K, all cores, at least as fast as gigatoken train_bpe, 400 MB"]["ok"] is False
    rss = t["(2) peak RSS of train 32K <= 600 MB, 400 MB"]
    assert rss["ok"] is False and "900 MB (target <= 600 MB)" in rss["detail"]
    assert t["(4) encode, all cores >= 1.8x one core, 400 MB"]["ok"] is False
    assert t["(3) --scale: peak RSS of train 32K <= 2 GB, 4 GB"]["detail"] == "run with --scale"
    assert not any(x["issue"] == "4" for x in t.values())


def test_full_size_estimate_from_stages_and_too_small_inputs_are_not_judged():
    rows = [_row("train/storytok-all", "train 10K", "storytok", "st", 1.0,
                 breakdown={verdicts.COUNT_KEY: 0.8}),
            _row("stages/tokenizer", "stages", "storytok", "make tokenizer", 1.5),
            _row("stages/encode", "stages", "storytok", "make encode", 2.0),
            _row("stages/stats", "stages", "storytok", "make stats", 1.5),
            _row("stages/encode-tiny", "stages", "storytok", "encode tiny", 1.0, nbytes=0),
            _row("stages/stats-tiny", "stages", "storytok", "stats tiny", 0.5, nbytes=0)]
    est = verdicts.estimates(rows, 200 * 10**6)
    assert est["make tokenizer"]["seconds"] == pytest.approx(1.5 + 0.8 * 9)
    assert est["make encode + make stats"]["seconds"] == pytest.approx((1 + 1 * 10.1) + (0.5 + 1 * 10.1))
    small = verdicts.targets(rows, [], "tinystories", verdicts.estimates(rows, 10 * 10**6), 10 * 10**6)
    full = [x for x in small if x["name"].startswith("full size")]
    assert len(full) == 2 and all(x["ok"] is None and "not judged" in x["detail"] for x in full)


# ---- report -----------------------------------------------------------------------------------

def _result():
    rows = _rows()
    rows[6]["ratio"] = {"text": "storytok 1 core 10.0x"}
    checks = verdicts.checks(rows)
    return {"date": "2026-12-01 10:00:00 UTC", "duration_seconds": 1.0,
            "machine": {"cpu": "Test CPU", "usable_cpus": 2, "ram_bytes": 24 << 30, "os": "Linux", "python": "3.11"},
            "versions": {"storytok": "0.1.0", "gigatoken": "0.10.0"}, "git": {"commit": "abc1234", "dirty": False},
            "corpus": {"name": "tinystories", "about": "x"}, "load1": {"min": 0.5, "median": 1.0, "max": 1.5},
            "inputs": {"main": {"path": "/x/ts200.txt", "bytes": 200 * 10**6, "distinct": 8312}},
            "config": {"vocab_size": 10000}, "jobs": rows, "checks": checks, "estimates": {},
            "merge_agreement": {}, "targets": verdicts.targets(rows, checks, "tinystories", {}, 200 * 10**6)}


def test_report_renders_table_checks_and_targets():
    from rich.console import Console
    out = io.StringIO()
    report.render(_result(), Console(file=out, width=220, force_terminal=False))
    text = out.getvalue()
    for s in ("storytok bench", "tinystories, ts200.txt (200 MB, 8.3K distinct pre-tokens), vocab 10,000", "peak RSS",
              "compared", "storytok 1 core 10.0x", "has no attribute 'encode_batch'", "load average (1 min) 0.5-1.5",
              "OK   ids identical to st all", "st 1, gt cold, tt 1", "targets, issue 9", "targets, issue 10",
              "PASS (1) encode, 1 core", "SKIP encode_batch"):
        assert s in text, s
    md = report.markdown(_result())
    assert "| job | what | input |" in md and "| train 10K | st train 1 | 200 MB, 8.3K distinct |" in md
    assert md.count("\n| ") == len(_result()["jobs"]) + 1
    assert "- **PASS** (1) encode, 1 core" in md and "Targets, issue 10" in md


@pytest.mark.parametrize("n,text", [(8312, "8.3K"), (884_123, "884K"), (4_012_345, "4.0M"), (12, "12")])
def test_counts_are_short(n, text):
    assert report.count_text(n) == text


# ---- end to end -------------------------------------------------------------------------------

@pytest.mark.timeout(600)
def test_bench_end_to_end_on_a_tiny_file(tmp_path):
    missing = [p for p in ("tiktoken", "tokenizers", "gigatoken") if importlib.util.find_spec(p) is None]
    if missing:
        pytest.skip(f"peer tools not installed: {', '.join(missing)} (make setup installs them)")
    inp = _tiny_input(tmp_path)
    out = tmp_path / "bench.json"
    p = subprocess.run([sys.executable, str(ROOT / "stages" / "bench.py"), "--input", str(inp), "--quick",
                        "--only", "encode,batch", "--vocab-size", "1000", "--json", str(out),
                        "--work-dir", str(tmp_path / "work"), "--data-dir", str(tmp_path / "data")],
                       capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    for text in ("storytok bench", "peak RSS", "checks", "targets, issue 9", "gigatoken", "tiktoken"):
        assert text in p.stdout, text
    r = json.loads(out.read_text())
    assert r["inputs"]["main"]["bytes"] == inp.stat().st_size and r["inputs"]["main"]["distinct"] > 1000
    jobs = {j["key"]: j for j in r["jobs"]}
    for key in ("encode/storytok-1", "encode/storytok-all", "encode/gigatoken-1-cold", "encode/gigatoken-all-warm",
                "encode/tiktoken-1", "batch/storytok-encode_to_numpy", "batch/tiktoken"):
        j = jobs[key]
        assert j["error"] is None and j["n_runs"] == 1 and j["mb_per_s"] > 0 and j["peak_rss_bytes"] > 1 << 20, key
    # ids checked across tools, all identical
    ids = [c for c in r["checks"] if c["name"].startswith("ids:") and c["ok"] is not None]
    assert len(ids) >= 8 and all(c["ok"] for c in ids), ids
    iso = [c for c in r["checks"] if c["about"] == "isolation"]
    assert iso and iso[0]["ok"] is True, iso       # no peer worker imported storytok or Numba
    # an API that is missing (or present) gives an error row or a number: never a crash
    b = jobs["batch/storytok-encode_batch"]
    assert (b["error"] is None) == (b.get("seconds") is not None)
    md = subprocess.run([sys.executable, str(ROOT / "stages" / "bench.py"), "--report", str(out), "--markdown"],
                        capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert md.returncode == 0 and "| job | what |" in md.stdout
