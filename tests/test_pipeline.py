"""End to end on the real samples in ../shared/data: tokenizer -> encode -> stats, through the
stage scripts exactly as `make` runs them, plus resume after kill -9 and re-runs."""
from __future__ import annotations

import json
import os
import signal
import shutil
import subprocess
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline_helpers import EOT, ROOT, STAGES, run, sample, stories_of
from storytok import Tokenizer
from storytok.store.parquet_store import ROW_GROUP_ROWS

VOCAB = 1000


@pytest.fixture(scope="module")
def e2e(tmp_path_factory):
    """One full pipeline run on both samples, with small chunks and parts so there are several."""
    out = tmp_path_factory.mktemp("e2e")
    inputs = {s: sample(s) for s in ("train", "valid")}
    r = run("tokenizer", "--train", inputs["train"], "--vocab-size", VOCAB, "--out", out / "tokenizer")
    assert r.returncode == 0, r.stderr
    r = run("encode", "--tokenizer", out / "tokenizer", "--out-dir", out, "--chunk-bytes", 100_000,
            "--part-bytes", 400_000, *(f"{s}={p}" for s, p in inputs.items()))
    assert r.returncode == 0, r.stderr
    r = run("stats", "--tokenizer", out / "tokenizer", "--out-dir", out, "train", "valid")
    assert r.returncode == 0, r.stderr
    return {"out": out, "inputs": inputs, "tok": Tokenizer.from_dir(out / "tokenizer"), "stats_stdout": r.stdout}


@pytest.mark.parametrize("split", ["train", "valid"])
def test_flat_array_decodes_to_the_input_file(e2e, split):
    arr = np.load(e2e["out"] / f"tinystories_{split}_uint16.npy", mmap_mode="r")
    assert e2e["tok"].decode_bytes(np.asarray(arr)) == e2e["inputs"][split].read_bytes()


@pytest.mark.parametrize("split", ["train", "valid"])
def test_offsets_point_at_story_starts(e2e, split):
    tok = e2e["tok"]
    eot = tok.special_ids[EOT]
    arr = np.load(e2e["out"] / f"tinystories_{split}_uint16.npy", mmap_mode="r")
    off = np.load(e2e["out"] / f"tinystories_{split}_offsets.npy", mmap_mode="r")
    rows = stories_of(e2e["inputs"][split].read_text(encoding="utf-8"))
    assert len(off) == len(rows) and off[0] == 0
    assert np.all(arr[off[1:] - 1] == eot), "the token before every story but the first is the separator"
    assert np.count_nonzero(arr == eot) == len(rows) - 1
    ends = np.append(off[1:] - 1, len(arr))
    for i in list(range(20)) + list(range(len(rows) - 5, len(rows))):
        assert tok.decode(arr[off[i]:ends[i]]) == rows[i]


def test_arrays_load_as_memory_maps_of_the_documented_dtypes(e2e):
    for split in ("train", "valid"):
        arr = np.load(e2e["out"] / f"tinystories_{split}_uint16.npy", mmap_mode="r")
        off = np.load(e2e["out"] / f"tinystories_{split}_offsets.npy", mmap_mode="r")
        assert isinstance(arr, np.memmap) and arr.dtype == np.uint16 and arr.ndim == 1
        assert isinstance(off, np.memmap) and off.dtype == np.int64 and off.ndim == 1
        assert np.all(np.diff(off) > 0)


def test_parquet_schema_and_layout_as_documented(e2e):
    tok = e2e["tok"]
    for split in ("train", "valid"):
        d = e2e["out"] / "parquet" / split
        parts = sorted(d.glob("part-*.parquet"))
        assert len(parts) >= 2, "small --part-bytes should give several parts"
        assert [p.name for p in parts] == [f"part-{i:05d}.parquet" for i in range(len(parts))]
        manifest = json.loads((d / "_manifest.json").read_text())
        assert manifest["complete"] and [p["file"] for p in manifest["parts"]] == [p.name for p in parts]
        schema = pq.read_schema(parts[0])
        assert schema.field("tokens").type == pa.list_(pa.field("item", pa.uint16(), nullable=False))
        assert schema.field("n_bytes").type == pa.int32()
        assert schema.names == ["tokens", "n_bytes"]
        assert schema.metadata[b"storytok.tokenizer_fingerprint"].decode() == tok.fingerprint()
        md = pq.ParquetFile(parts[0]).metadata
        assert md.row_group(0).column(0).compression == "ZSTD"
        assert all(md.row_group(g).num_rows <= ROW_GROUP_ROWS for g in range(md.num_row_groups))
        table = pq.read_table(d)  # the directory opens as one dataset, rows in file order
        rows = stories_of(e2e["inputs"][split].read_text(encoding="utf-8"))
        assert table.num_rows == len(rows)
        assert table.column("n_bytes").to_pylist() == [len(r.encode()) for r in rows]
        first = table.column("tokens")[1].as_py()
        assert tok.decode(first) == rows[1]


def test_rerun_after_a_finished_run_does_no_work(e2e):
    out, inputs = e2e["out"], e2e["inputs"]
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    r = run("encode", "--tokenizer", out / "tokenizer", "--out-dir", out, "--chunk-bytes", 100_000,
            "--part-bytes", 400_000, *(f"{s}={p}" for s, p in inputs.items()))
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("up to date, nothing to do") == 2
    r = run("stats", "--tokenizer", out / "tokenizer", "--out-dir", out, "train", "valid")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("(up to date)") == 2
    r = run("tokenizer", "--train", inputs["train"], "--vocab-size", VOCAB, "--out", out / "tokenizer")
    assert r.returncode == 0 and "up to date" in r.stdout
    after = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    changed = [p for p in before if after.get(p) != before[p] and p.name != "stats.json" and not p.name.endswith(".lock")]
    assert not changed, changed


def test_stats_shows_a_table(e2e):
    assert "storytok stats" in e2e["stats_stdout"] and "most frequent tokens" in e2e["stats_stdout"]


def _manifest(out, split="train"):
    try:
        return json.loads((out / "parquet" / split / "_manifest.json").read_text())
    except (OSError, ValueError):
        return None


def test_kill_9_mid_encode_then_rerun_gives_identical_arrays(e2e, tmp_path):
    """A bigger input (the train sample 5 times) so encoding takes a few seconds; the encode
    stage is killed with SIGKILL once some parts are finished, then run again."""
    big = tmp_path / "big.txt"
    data = e2e["inputs"]["train"].read_bytes()
    big.write_bytes(data * 5)
    tok_dir = e2e["out"] / "tokenizer"
    args = ["--tokenizer", tok_dir, "--chunk-bytes", 65_536, "--part-bytes", 131_072, "--workers", 1, f"train={big}"]

    killed = tmp_path / "killed"
    p = subprocess.Popen([sys.executable, str(STAGES / "encode.py"), "--out-dir", str(killed), *map(str, args)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    deadline = time.time() + 120
    while time.time() < deadline:
        m = _manifest(killed)
        if m and len(m["parts"]) >= 3:
            break
        if p.poll() is not None:
            break
        time.sleep(0.005)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    m = _manifest(killed)
    assert m is not None and not m["complete"], "the kill came too late to interrupt encoding"
    kept = len(m["parts"])
    assert kept >= 3

    # Nothing half-written looks complete: stats refuses the unfinished split.
    r = run("stats", "--tokenizer", tok_dir, "--out-dir", killed, "train")
    assert r.returncode == 1 and "unfinished" in r.stderr

    r = run("encode", "--out-dir", killed, *args)
    assert r.returncode == 0, r.stderr
    assert f"kept {kept} finished part(s)" in r.stdout
    assert not list((killed / "parquet" / "train").glob("*.partial"))

    clean = tmp_path / "clean"
    r = run("encode", "--out-dir", clean, *args)
    assert r.returncode == 0, r.stderr
    for out in (killed, clean):
        r = run("stats", "--tokenizer", tok_dir, "--out-dir", out, "train")
        assert r.returncode == 0, r.stderr
    for name in ("tinystories_train_uint16.npy", "tinystories_train_offsets.npy"):
        assert (killed / name).read_bytes() == (clean / name).read_bytes()
    assert e2e["tok"].decode_bytes(np.load(killed / "tinystories_train_uint16.npy")) == data * 5


def test_make_help_lists_every_target_and_variable():
    if shutil.which("make") is None:
        pytest.skip("make not installed")
    r = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    text = (ROOT / "Makefile").read_text()
    import re
    targets = re.findall(r"^([a-z][a-z-]*):", text, flags=re.M)
    variables = re.findall(r"^([A-Z][A-Z_]*)\s*\?=", text, flags=re.M)
    assert {"data", "tokenizer", "encode", "stats", "demo", "all", "help", "setup", "test", "clean"} <= set(targets)
    for t in targets:
        assert re.search(rf"^\s+{t}\s", r.stdout, flags=re.M), f"make help does not list target {t}"
    for v in variables:
        assert f"{v}=" in r.stdout, f"make help does not list variable {v}"
