"""Any corpus in, through the stages: the same documents as .txt, .txt.gz, .jsonl, .jsonl.zst
and .parquet shards give the same tokenizer, Parquet rows, flat arrays and stats; resume
after kill -9 from compressed JSONL and Parquet; a second writer refused; a full disk
reported in one line and resumed; every kind of bad input one line, nothing half-written."""
from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid

import numpy as np
import pyarrow.parquet as pq
import pytest
import tiktoken

from conftest import GPT2_PAT
from input_kinds import KINDS, write_kind, write_shards
from pipeline_helpers import EOT, ROOT, STAGES, load_stage, one_error_line, run, sample
from storytok import Tokenizer
from storytok.cli import run_stage
from storytok.store.lock import split_lock

VOCAB = 700


@pytest.fixture(scope="module")
def stages():
    return {name: load_stage(name) for name in ("tokenizer", "encode", "stats")}


def _run(capsys, stages, stage, *argv) -> str:
    """Run a stage in-process; its stdout. capsys None: output left to the real streams."""
    code = run_stage(stages[stage].main, [str(a) for a in argv])
    if capsys is None:
        assert code == 0, f"{stage} failed (its error is on stderr above)"
        return ""
    out = capsys.readouterr()
    assert code == 0, out.err
    return out.out


def _fails(capsys, stages, stage, *argv) -> str:
    code = run_stage(stages[stage].main, [str(a) for a in argv])
    return one_error_line(code, capsys.readouterr().err)


@pytest.fixture(scope="module")
def docs():
    """Real stories, then odd documents: empty ones, whitespace only, many scripts and emoji,
    one long document of 300 KB (longer than a chunk), a last one without a newline."""
    stories = sample("valid").read_text(encoding="utf-8").split(EOT)[:400]
    odd = ["", "   \n\t", "Straße ÆØÅ привет 中文字符 😀👍🏽 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ١٢٣", "", "I'm can't we'll ’ve",
           "long " * 60_000, "\r\n\r\n", "end"]
    return stories[:200] + odd[:5] + stories[200:] + odd[5:]


def _pipeline(capsys, stages, out, train, valid, *extra, name="tinystories"):
    _run(capsys, stages, "tokenizer", "--train", *train, "--vocab-size", VOCAB, "--out", out / "tokenizer", *extra)
    _run(capsys, stages, "encode", "--tokenizer", out / "tokenizer", "--out-dir", out, "--chunk-bytes", 1 << 16,
         "--part-bytes", 1 << 18, *extra, *[f"train={p}" for p in train], *[f"valid={p}" for p in valid])
    _run(capsys, stages, "stats", "--tokenizer", out / "tokenizer", "--out-dir", out, "--name", name,
         "train", "valid")
    return json.loads((out / "stats.json").read_text())


def _rows(out, split):
    return [r for f in sorted((out / "parquet" / split).glob("part-*.parquet"))
            for r in pq.read_table(f).column("tokens").to_pylist()]


@pytest.fixture(scope="module")
def every_kind(tmp_path_factory, docs, stages):
    """The whole pipeline once per kind, on 3 train shards and 2 valid shards each."""
    base = tmp_path_factory.mktemp("kinds")
    train_docs, valid_docs = docs, docs[150:260]
    results = {}
    for kind in KINDS:
        train = write_shards(train_docs, base / "in" / kind / "train", kind, 3)
        valid = write_shards(valid_docs, base / "in" / kind / "valid", kind, 2)
        out = base / "out" / kind
        results[kind] = (out, _pipeline(None, stages, out, train, valid))
    return {"results": results, "train": train_docs, "valid": valid_docs}


def test_every_kind_gives_the_same_tokenizer_rows_arrays_and_stats(every_kind):
    results = every_kind["results"]
    ref_out, ref_stats = results["txt"]
    for kind, (out, stats) in results.items():
        assert (out / "tokenizer" / "merges.txt").read_bytes() == (ref_out / "tokenizer" / "merges.txt").read_bytes(), kind
        for split in ("train", "valid"):
            assert _rows(out, split) == _rows(ref_out, split), (kind, split)
            for arr in ("uint16", "offsets"):
                name = f"tinystories_{split}_{arr}.npy"
                assert (out / name).read_bytes() == (ref_out / name).read_bytes(), (kind, name)
            same = {k: v for k, v in stats["splits"][split].items() if k not in ("input", "input_bytes", "source")}
            want = {k: v for k, v in ref_stats["splits"][split].items() if k not in ("input", "input_bytes", "source")}
            assert same == want, kind
            assert stats["splits"][split]["input_files"] == (3 if split == "train" else 2)


@pytest.mark.parametrize("split", ["train", "valid"])
def test_arrays_decode_to_the_documents_joined_by_the_separator(every_kind, split):
    out, stats = every_kind["results"]["jsonl.zst"]
    tok = Tokenizer.from_dir(out / "tokenizer")
    want = every_kind[split]
    arr = np.load(out / f"tinystories_{split}_uint16.npy")
    off = np.load(out / f"tinystories_{split}_offsets.npy")
    assert tok.decode(arr) == EOT.join(want)
    assert len(off) == len(want) == stats["splits"][split]["rows"]
    ends = np.append(off[1:] - 1, len(arr))
    assert [tok.decode(arr[a:b]) for a, b in zip(off, ends)] == want
    assert stats["splits"][split]["bytes"] == len(EOT.join(want).encode())
    rows = _rows(out, split)
    assert [len(r) for r in rows] == [len(tok.encode(d)) for d in want]


def test_literal_specials_in_jsonl_and_parquet_are_plain_text(capsys, stages, tmp_path, every_kind):
    """JSONL / Parquet documents are ordinary text: a literal <|endoftext|> is encoded as
    tiktoken's encode_ordinary does, a row per document, the separator only between them."""
    tok_dir = every_kind["results"]["txt"][0] / "tokenizer"
    tok = Tokenizer.from_dir(tok_dir)
    ranks = {tok.vocab[i]: i for i in range(256 + len(tok.merges))}
    enc = tiktoken.Encoding(name="t", pat_str=GPT2_PAT, mergeable_ranks=ranks, special_tokens={EOT: len(ranks)})
    docs = ["one <|endoftext|> two", "<|endoftext|>", "", "x<|endoftext|><|endoftext|>y", "plain"] * 7
    for kind in ["jsonl", "jsonl.zst", "parquet"]:
        files = write_shards(docs, tmp_path / kind, kind, 2)
        out = tmp_path / ("out-" + kind)
        _run(capsys, stages, "encode", "--tokenizer", tok_dir, "--out-dir", out, *[f"train={p}" for p in files])
        _run(capsys, stages, "stats", "--tokenizer", tok_dir, "--out-dir", out, "train")
        assert _rows(out, "train") == [enc.encode_ordinary(d) for d in docs]
        arr = np.load(out / "tinystories_train_uint16.npy")
        assert np.count_nonzero(arr == tok.special_ids[EOT]) == len(docs) - 1
        assert tok.decode(arr) == EOT.join(docs)


def test_name_field_and_skip_bad_docs(capsys, stages, tmp_path, every_kind):
    tok_dir = every_kind["results"]["txt"][0] / "tokenizer"
    p = tmp_path / "owt.jsonl"
    p.write_text('{"content": "a story"}\n{"content": null}\n{"id": 4}\n{"content": "the end"}\n')
    line = _fails(capsys, stages, "encode", "--tokenizer", tok_dir, "--out-dir", tmp_path / "o", "--field", "content",
                  f"train={p}")
    assert "owt.jsonl:2: field 'content' is null" in line and "SKIP_BAD_DOCS=1" in line
    out = _run(capsys, stages, "encode", "--tokenizer", tok_dir, "--out-dir", tmp_path / "o", "--field", "content",
               "--skip-bad-docs", f"train={p}")
    assert "4 rows" in out and "2 bad document(s) read as empty" in out
    _run(capsys, stages, "stats", "--tokenizer", tok_dir, "--out-dir", tmp_path / "o", "--name", "owt", "train")
    assert (tmp_path / "o" / "owt_train_uint16.npy").exists() and not list((tmp_path / "o").glob("tinystories*"))
    stats = json.loads((tmp_path / "o" / "stats.json").read_text())["splits"]["train"]
    assert stats["bad_docs"] == 2 and stats["rows"] == 4 and stats["files"]["tokens"] == "owt_train_uint16.npy"
    line = _fails(capsys, stages, "stats", "--tokenizer", tok_dir, "--out-dir", tmp_path / "o", "--name", "a/b", "train")
    assert "NAME='a/b'" in line


# ---- bad input through the stages: one line, nothing half-written ---------------------------

def _corrupt_zst(tmp_path):
    p = write_kind([f"story {i} " * 50 for i in range(500)], tmp_path / "c", "jsonl.zst")
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    return p


BAD_INPUTS = {
    "malformed_json": (lambda t: _text(t / "m.jsonl", '{"text": "ok"}\n{"text": "broken\n'), ["m.jsonl:2", "malformed JSON"]),
    "missing_field": (lambda t: _text(t / "f.jsonl", '{"body": "x", "id": 1}\n'), ["f.jsonl:1", "no field 'text'", "'body', 'id'"]),
    "non_string_column": (lambda t: _parquet_int(t), ["i.parquet", "column 'text' is int64, not string or large_string"]),
    "unknown_extension": (lambda t: _text(t / "data.csv", "a,b\n"), ["data.csv", "unknown input kind (.csv)"]),
    "corrupt_zst": (_corrupt_zst, ["c.jsonl.zst", "cannot decompress it", "corrupt or truncated"]),
    "corrupt_gz": (lambda t: _bytes(t / "g.txt.gz", b"\x1f\x8b\x08\x00" + b"\xff" * 200), ["g.txt.gz", "cannot decompress it"]),
    "glob_matches_nothing": (lambda t: t / "nothing" / "*.jsonl.zst", ["*.jsonl.zst: no file matches this pattern", "TRAIN="]),
}


def _text(p, s):
    p.write_text(s, encoding="utf-8")
    return p


def _bytes(p, b):
    p.write_bytes(b)
    return p


def _parquet_int(t):
    import pyarrow as pa
    pq.write_table(pa.table({"text": pa.array([1, 2], pa.int64())}), t / "i.parquet")
    return t / "i.parquet"


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_line_and_writes_nothing(capsys, stages, tmp_path, every_kind, case):
    make, words = BAD_INPUTS[case]
    bad = make(tmp_path)
    tok_dir = every_kind["results"]["txt"][0] / "tokenizer"
    out = tmp_path / "out"
    line = _fails(capsys, stages, "encode", "--tokenizer", tok_dir, "--out-dir", out, f"train={bad}")
    assert all(w in line for w in words), line
    assert not list(out.rglob("part-*")) and not list(out.rglob("*.partial")) and not list(out.rglob("*.npy"))
    line = _fails(capsys, stages, "tokenizer", "--train", bad, "--vocab-size", 300, "--out", tmp_path / "tok")
    assert words[0].split(":")[0] in line
    assert not (tmp_path / "tok").exists()


# ---- one writer per split -----------------------------------------------------------------------

def test_a_second_writer_is_refused_and_says_who_holds_the_split(capsys, stages, tmp_path, every_kind):
    tok_dir = every_kind["results"]["txt"][0] / "tokenizer"
    src = write_kind(every_kind["valid"], tmp_path / "v", "jsonl")
    split_dir = tmp_path / "out" / "parquet" / "valid"
    with split_lock(split_dir, "test holder"):
        r = run("encode", "--tokenizer", tok_dir, "--out-dir", tmp_path / "out", f"valid={src}")
        line = one_error_line(r.returncode, r.stderr)
        assert "another run is writing this split" in line and f"pid {os.getpid()}" in line and "test holder" in line
        line = _fails(capsys, stages, "stats", "--tokenizer", tok_dir, "--out-dir", tmp_path / "out", "valid")
        assert "no encoded split here" in line
    _run(capsys, stages, "encode", "--tokenizer", tok_dir, "--out-dir", tmp_path / "out", f"valid={src}")


def test_two_real_encode_runs_at_once(tmp_path, every_kind):
    """The issue's scenario: a second `make encode` into the same OUT while the first runs.
    The second is refused in one line; the first finishes unharmed, with the right arrays."""
    tok_dir = every_kind["results"]["txt"][0] / "tokenizer"
    big = tmp_path / "big.txt"
    big.write_bytes(sample("train").read_bytes())
    args = ["--tokenizer", tok_dir, "--out-dir", tmp_path / "out", "--chunk-bytes", 65_536, "--part-bytes", 131_072,
            "--workers", 1, f"train={big}"]
    # The first run writes its parts slowly (each Parquet write sleeps first), so it is surely
    # still running when the second one starts.
    slow = ("import runpy, sys, time; import storytok.store.parquet_store as s; real = s.write_rows; "
            "s.write_rows = lambda *a: (time.sleep(0.3), real(*a))[1]; "
            f"sys.argv = ['encode.py'] + sys.argv[1:]; runpy.run_path({str(STAGES / 'encode.py')!r}, run_name='__main__')")
    first = subprocess.Popen([sys.executable, "-c", slow, *map(str, args)], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lock = tmp_path / "out" / "parquet" / "train" / ".lock"
    deadline = time.time() + 120
    while time.time() < deadline and not (lock.exists() and f"pid {first.pid}" in lock.read_text()):
        time.sleep(0.01)
    second = run("encode", *args)
    _, err = first.communicate(timeout=600)
    assert first.returncode == 0, err
    line = one_error_line(second.returncode, second.stderr)
    assert f"pid {first.pid}" in line and "another run is writing this split" in line
    r = run("stats", "--tokenizer", tok_dir, "--out-dir", tmp_path / "out", "train")
    assert r.returncode == 0, r.stderr
    tok = Tokenizer.from_dir(tok_dir)
    assert tok.decode_bytes(np.load(tmp_path / "out" / "tinystories_train_uint16.npy")) == big.read_bytes()


# ---- kill -9 and a full disk: resume to identical arrays ----------------------------------------

@pytest.mark.parametrize("kind", ["jsonl.zst", pytest.param("parquet", marks=pytest.mark.slow)])
def test_kill_9_mid_encode_then_rerun_gives_identical_arrays(tmp_path, every_kind, kind):
    tok_dir = every_kind["results"]["txt"][0] / "tokenizer"
    docs = sample("train").read_text(encoding="utf-8").split(EOT)
    files = write_shards(docs, tmp_path / "in", kind, 3)
    args = ["--tokenizer", tok_dir, "--chunk-bytes", 65_536, "--part-bytes", 131_072, "--workers", 1,
            *[f"train={f}" for f in files]]
    killed = tmp_path / "killed"
    p = subprocess.Popen([sys.executable, str(STAGES / "encode.py"), "--out-dir", str(killed), *map(str, args)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    manifest = killed / "parquet" / "train" / "_manifest.json"
    deadline = time.time() + 120
    while time.time() < deadline and p.poll() is None:
        try:
            m = json.loads(manifest.read_text())
            if len(m["parts"]) >= 4 and m["parts"][-1]["end"][0] >= 1:   # past the first shard
                break
        except (OSError, ValueError):
            pass
        time.sleep(0.005)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    m = json.loads(manifest.read_text())
    assert not m["complete"], "the kill came too late to interrupt encoding"
    kept = len(m["parts"])
    r = run("encode", "--out-dir", killed, *args)
    assert r.returncode == 0, r.stderr
    assert f"kept {kept} finished part(s)" in r.stdout
    clean = tmp_path / "clean"
    assert run("encode", "--out-dir", clean, *args).returncode == 0
    for out in (killed, clean):
        r = run("stats", "--tokenizer", tok_dir, "--out-dir", out, "train")
        assert r.returncode == 0, r.stderr
    for name in ("tinystories_train_uint16.npy", "tinystories_train_offsets.npy"):
        assert (killed / name).read_bytes() == (clean / name).read_bytes()
    tok = Tokenizer.from_dir(tok_dir)
    assert tok.decode(np.load(killed / "tinystories_train_uint16.npy")) == EOT.join(docs)


def test_disk_full_is_one_line_keeps_finished_parts_and_resumes(capsys, stages, tmp_path, every_kind, monkeypatch):
    """A writer that fails with ENOSPC from the 4th part on (a patched writer)."""
    import storytok.store.parquet_store as store
    tok_dir = every_kind["results"]["txt"][0] / "tokenizer"
    files = write_shards(every_kind["train"], tmp_path / "in", "jsonl.zst", 2)
    args = ["--tokenizer", tok_dir, "--chunk-bytes", 1 << 15, "--part-bytes", 1 << 16, *[f"train={f}" for f in files]]
    real = store.write_rows

    def full_disk(writer, table, part):
        if part.name >= "part-00003.parquet":
            raise OSError(errno.ENOSPC, "Error writing bytes to file. Detail: [errno 28] No space left on device")
        return real(writer, table, part)

    monkeypatch.setattr(store, "write_rows", full_disk)
    line = _fails(capsys, stages, "encode", "--out-dir", tmp_path / "full", *args)
    assert "part-0000" in line and "no space left on the device: the disk is full" in line
    assert "finished parts are kept" in line and "make encode" in line
    split = tmp_path / "full" / "parquet" / "train"
    m = json.loads((split / "_manifest.json").read_text())
    assert len(m["parts"]) == 3 and not m["complete"]
    assert sorted(f.name for f in split.iterdir() if f.name != ".lock") == sorted(
        ["_manifest.json"] + [p["file"] for p in m["parts"]]), "nothing half-written"
    monkeypatch.setattr(store, "write_rows", real)
    out = _run(capsys, stages, "encode", "--out-dir", tmp_path / "full", *args)
    assert "kept 3 finished part(s)" in out
    _run(capsys, stages, "encode", "--out-dir", tmp_path / "clean", *args)
    for o in ("full", "clean"):
        _run(capsys, stages, "stats", "--tokenizer", tok_dir, "--out-dir", tmp_path / o, "train")
    assert (tmp_path / "full" / "tinystories_train_uint16.npy").read_bytes() == \
        (tmp_path / "clean" / "tinystories_train_uint16.npy").read_bytes()


def test_permission_denied_and_unwritable_out_are_one_line(capsys, stages, tmp_path, every_kind, monkeypatch):
    import storytok.store.parquet_store as store
    tok_dir = every_kind["results"]["txt"][0] / "tokenizer"
    src = write_kind(every_kind["valid"], tmp_path / "v", "parquet")
    (tmp_path / "file").write_text("not a directory")
    line = _fails(capsys, stages, "encode", "--tokenizer", tok_dir, "--out-dir", tmp_path / "file" / "out", f"valid={src}")
    assert str(tmp_path / "file" / "out") in line and "cannot write it" in line

    def denied(writer, table, part):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(store, "write_rows", denied)
    line = _fails(capsys, stages, "encode", "--tokenizer", tok_dir, "--out-dir", tmp_path / "o", f"valid={src}")
    assert "part-00000.parquet: cannot write it (permission denied)" in line
    assert not list((tmp_path / "o").rglob("*.parquet")) and not list((tmp_path / "o").rglob("*.partial"))


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 1 MB tmpfs (needs root and mount; skipped elsewhere), unmounted afterwards."""
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    d = tmp_path / f"tmpfs-{uuid.uuid4().hex[:8]}"
    d.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(d)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    yield d
    subprocess.run(["umount", "-l", str(d)], capture_output=True)


def test_a_real_full_disk_then_more_room_resumes(tmp_path, every_kind, small_tmpfs):
    tok_dir = every_kind["results"]["txt"][0] / "tokenizer"
    docs = sample("train").read_text(encoding="utf-8").split(EOT) * 3       # ~1.3 MB of Parquet parts
    files = write_shards(docs, tmp_path / "in", "parquet", 2)
    args = ["--tokenizer", tok_dir, "--chunk-bytes", 1 << 16, "--part-bytes", 1 << 17, *[f"train={f}" for f in files]]
    r = run("encode", "--out-dir", small_tmpfs, *args)
    line = one_error_line(r.returncode, r.stderr)
    assert str(small_tmpfs) in line and "disk is full" in line, line
    m = json.loads((small_tmpfs / "parquet" / "train" / "_manifest.json").read_text())
    kept = len(m["parts"])
    assert kept >= 1 and not m["complete"]
    assert not list(small_tmpfs.rglob("*.partial"))
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_tmpfs)], check=True)
    r = run("encode", "--out-dir", small_tmpfs, *args)
    assert r.returncode == 0, r.stderr
    assert f"kept {kept} finished part(s)" in r.stdout
    r = run("stats", "--tokenizer", tok_dir, "--out-dir", small_tmpfs, "train")
    assert r.returncode == 0, r.stderr
    tok = Tokenizer.from_dir(tok_dir)
    assert tok.decode(np.load(small_tmpfs / "tinystories_train_uint16.npy")) == EOT.join(docs)


# ---- the Makefile: globs, several inputs, NAME, FIELD ---------------------------------------------

def test_make_encode_stats_with_globs_name_and_field(tmp_path, every_kind):
    if shutil.which("make") is None:
        pytest.skip("make not installed")
    tok_dir = every_kind["results"]["txt"][0] / "tokenizer"
    write_shards(every_kind["train"], tmp_path / "owt", "jsonl.zst", 3, field="body")
    write_kind(every_kind["valid"], tmp_path / "v", "parquet", field="body")
    out = tmp_path / "out"
    r = subprocess.run(["make", "-s", "encode", "stats", f"PY={sys.executable}", "STAMP=",
                        f"TRAIN={tmp_path}/owt/*.jsonl.zst", f"VALID={tmp_path}/v.parquet", f"OUT={out}",
                        f"TOKENIZER={tok_dir}", "NAME=owt", "FIELD=body"],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    ref = every_kind["results"]["txt"][0]
    for split in ("train", "valid"):
        assert (out / f"owt_{split}_uint16.npy").read_bytes() == (ref / f"tinystories_{split}_uint16.npy").read_bytes()


def test_a_stray_os_error_is_still_one_line(capsys):
    def main(argv):
        raise OSError(errno.ENOSPC, "No space left on device", "/data/out/x.npy")
    line = one_error_line(run_stage(main, []), capsys.readouterr().err)
    assert line.startswith("error: /data/out/x.npy: No space left on device") and "run the same command" in line
