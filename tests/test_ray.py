"""ENGINE=ray against ENGINE=local: the same arrays, offsets, stats and merges.

Most tests run on one local Ray started once for the session (`ray.init(num_cpus=2)`); the
stage-level ones (the command line, kill -9 of the driver, bad input) run the stage scripts
as `make` does, against a head node started here with `ray start --head` on 127.0.0.1 and
reached through RAY_ADDRESS. Inputs are small (a real TinyStories sample cut into shards
and, with small shard sizes, into byte ranges and row-group runs), so Ray's start-up is
most of the time.

Ray is an optional extra: without it this module is skipped (`make setup-ray`; CI installs it).
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed: run `make setup-ray` (CI does)")

from input_kinds import write_shards  # noqa: E402
from pipeline_helpers import EOT, ROOT, STAGES, one_error_line, run, sample  # noqa: E402
from storytok import Tokenizer, train_bpe  # noqa: E402
from storytok.engines.ray import EncodeBatches, TokenizerFiles, connect  # noqa: E402
from storytok.engines.ray import encode_split as ray_encode  # noqa: E402
from storytok.engines.ray import train_bpe as ray_train  # noqa: E402
from storytok.engines.ray.encode import FAULT_ENV  # noqa: E402
from storytok.errors import StorytokError  # noqa: E402
from storytok.sources.inputs import load_tokenizer  # noqa: E402
from storytok.store.flatten import build_arrays_and_stats  # noqa: E402
from storytok.store.parquet_store import encode_split as local_encode, read_manifest  # noqa: E402

VOCAB = 700
ARRAYS = ("tinystories_train_uint16.npy", "tinystories_train_offsets.npy")
SMALL = {"chunk_bytes": 1 << 16}


# ---- clusters -----------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def local_ray():
    """One local Ray for the session (2 CPUs), as storytok's connect() finds it."""
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=300 << 20,
                 logging_level=logging.ERROR)
    yield connect()
    if started:
        ray.shutdown()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def head_node():
    """A head node of our own (`ray start --head --block`, 127.0.0.1, 2 CPUs), stopped by its
    process id at the end (SIGTERM: `--block` then stops every process it started). Not
    `ray stop`, which would stop every Ray on the machine. Token authentication is off for
    this loopback-only test cluster (RAY_AUTH_MODE=disabled), so clients need no token."""
    port = _free_port()
    temp = tempfile.mkdtemp(prefix="strh", dir="/tmp")     # short: Ray's socket paths must fit 107 bytes
    env = dict(os.environ, RAY_AUTH_MODE="disabled")
    env.pop("RAY_ADDRESS", None)
    log = open(Path(temp) / "head.log", "w")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "ray"), "start", "--head", "--block", f"--port={port}",
                             "--node-ip-address=127.0.0.1", "--num-cpus=2", "--include-dashboard=false",
                             "--disable-usage-stats", f"--object-store-memory={300 << 20}", f"--temp-dir={temp}"],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"ray start --head failed: {(Path(temp) / 'head.log').read_text()[-2000:]}")
                time.sleep(0.2)
        yield {"address": address, "env": dict(env, RAY_ADDRESS=address)}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)    # the group of the process we started
            proc.wait()
        log.close()
        shutil.rmtree(temp, ignore_errors=True)


# ---- inputs and the local reference -------------------------------------------------------------

@pytest.fixture(scope="module")
def docs():
    """Real stories, with a few odd documents among them."""
    stories = sample("train").read_text(encoding="utf-8").split(EOT)[:1500]
    odd = ["", "   \n\t", "Straße 中文 😀👍🏽 ١٢٣", "I'm can't we'll ’ve", "long " * 30_000]
    return stories[:500] + odd + stories[500:]


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory, docs):
    d = tmp_path_factory.mktemp("tok")
    p = d / "train.txt"
    p.write_text(EOT.join(docs), encoding="utf-8")
    v, m = train_bpe(p, VOCAB, [EOT])
    Tokenizer(v, m, [EOT]).save(d / "tokenizer")
    return d / "tokenizer"


def _stats_entry(out: Path) -> dict:
    entry = json.loads((out / "stats.json").read_text())["splits"]["train"]
    entry.pop("source")   # the digest of the manifest, which names the engine and its parts
    return entry


def _local(tok_dir, files, out: Path, **kw) -> Path:
    tok = load_tokenizer(tok_dir)
    local_encode(tok, [str(f) for f in files], out / "parquet" / "train", split="train", progress=False,
                 part_bytes=1 << 18, **SMALL, **kw)
    build_arrays_and_stats(tok, tok_dir, out, ["train"], progress=False)
    return out


def _same_outputs(a: Path, b: Path) -> None:
    for name in ARRAYS:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert _stats_entry(a) == _stats_entry(b)


KIND_SHARDS = {"txt": 200_000, "jsonl.zst": 200_000, "parquet": 120_000}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, docs):
    """docs as 3 shard files of each kind; the small shard sizes cut the .txt files into byte
    ranges and the Parquet files into runs of row groups."""
    base = tmp_path_factory.mktemp("inputs")
    return {kind: write_shards(docs, base / kind, kind, 3) for kind in KIND_SHARDS}


# ---- make encode ENGINE=ray == ENGINE=local ------------------------------------------------------

@pytest.mark.parametrize("kind", list(KIND_SHARDS))
def test_ray_arrays_offsets_and_stats_equal_local(local_ray, tok_dir, inputs, tmp_path, kind):
    files = inputs[kind]
    tok = load_tokenizer(tok_dir)
    out = tmp_path / "ray"
    r = ray_encode(tok, tok_dir, [str(f) for f in files], out / "parquet" / "train", split="train",
                   shard_bytes=KIND_SHARDS[kind], progress=False, cluster=local_ray, **SMALL)
    assert r.shards > len(files) if kind != "jsonl.zst" else r.shards == len(files)
    assert r.parts == r.shards and not r.up_to_date
    build_arrays_and_stats(tok, tok_dir, out, ["train"], progress=False)
    _same_outputs(out, _local(tok_dir, files, tmp_path / "local"))
    m = read_manifest(out / "parquet" / "train")
    assert m["complete"] and m["engine"] == "ray" and len(m["shards"]) == r.shards
    assert sorted(p.name for p in (out / "parquet" / "train").iterdir()) == \
        [".lock", "_manifest.json"] + [f"part-{k:05d}.parquet" for k in range(r.parts)]
    again = ray_encode(tok, tok_dir, [str(f) for f in files], out / "parquet" / "train", split="train",
                       shard_bytes=KIND_SHARDS[kind], progress=False, cluster=local_ray, **SMALL)
    assert again.up_to_date and again.rows == r.rows


def test_file_uri_inputs_on_ray(local_ray, tok_dir, inputs, tmp_path):
    files = inputs["parquet"] + inputs["jsonl.zst"]
    tok = load_tokenizer(tok_dir)
    out = tmp_path / "ray"
    ray_encode(tok, tok_dir, [f"file://{f}" for f in files], out / "parquet" / "train", split="train",
               shard_bytes=120_000, progress=False, cluster=local_ray, **SMALL)
    build_arrays_and_stats(tok, tok_dir, out, ["train"], progress=False)
    ref = _local(tok_dir, files, tmp_path / "local")
    for name in ARRAYS:
        assert (out / name).read_bytes() == (ref / name).read_bytes()


def test_engines_never_mix_parts(local_ray, tok_dir, inputs, tmp_path):
    """A split written by one engine is started over by the other, with the reason given."""
    files = [str(f) for f in inputs["txt"]]
    tok = load_tokenizer(tok_dir)
    split_dir = tmp_path / "out" / "parquet" / "train"
    local_encode(tok, files, split_dir, split="train", progress=False, part_bytes=1 << 18, **SMALL)
    r = ray_encode(tok, tok_dir, files, split_dir, split="train", shard_bytes=200_000, progress=False,
                   cluster=local_ray, **SMALL)
    assert "ENGINE=local" in r.started_clean_because and r.kept_parts == 0 and not r.up_to_date
    back = local_encode(tok, files, split_dir, split="train", progress=False, part_bytes=1 << 18, **SMALL)
    assert "ENGINE=ray" in back.started_clean_because and back.kept_parts == 0
    other = ray_encode(tok, tok_dir, files, split_dir, split="train", shard_bytes=300_000, progress=False,
                       cluster=local_ray, **SMALL)
    assert "ENGINE=local" in other.started_clean_because
    again = ray_encode(tok, tok_dir, files, split_dir, split="train", shard_bytes=250_000, progress=False,
                       cluster=local_ray, **SMALL)
    assert "shard plan changed" in again.started_clean_because


# ---- make tokenizer ENGINE=ray == train_bpe -------------------------------------------------------

@pytest.mark.parametrize("kind,partitions", [("txt", None), ("jsonl.zst", 3), ("parquet", 2)])
def test_ray_counted_merges_equal_train_bpe(local_ray, inputs, kind, partitions):
    from storytok.engines.ray import count_pretokens
    from storytok.engines.counts import merges_from_counts
    files = [str(f) for f in inputs[kind]]
    want = train_bpe(files, VOCAB, [EOT])
    assert ray_train(files, VOCAB, [EOT], shard_bytes=KIND_SHARDS[kind], cluster=local_ray) == want
    counts = count_pretokens(files, [EOT], shard_bytes=KIND_SHARDS[kind], partitions=partitions, cluster=local_ray)
    assert merges_from_counts(counts, VOCAB, [EOT]) == want


# ---- the map_batches recipe ---------------------------------------------------------------------

def test_map_batches_recipe_with_read_parquet_and_read_json(local_ray, tok_dir, docs, tmp_path):
    """The README's recipe: read_parquet / read_json -> map_batches(EncodeBatches) ->
    write_parquet; every document's tokens equal encode_arrow's (ordinary text), by id."""
    import ray.data
    tok = load_tokenizer(tok_dir)
    subset = docs[:400] + ["a literal <|endoftext|> inside", ""]
    want = tok.encode_arrow(pa.array(subset)).to_pylist()
    assert want[0] == tok.encode(subset[0])
    (tmp_path / "pq").mkdir()
    pq.write_table(pa.table({"id": list(range(len(subset))), "text": subset}), tmp_path / "pq" / "a.parquet",
                   row_group_size=100)
    (tmp_path / "js").mkdir()
    with open(tmp_path / "js" / "a.jsonl", "w", encoding="utf-8") as f:
        for i, d in enumerate(subset):
            f.write(json.dumps({"id": i, "text": d}) + "\n")
    for name, ds, tokenizer in (
            ("pq", ray.data.read_parquet(str(tmp_path / "pq")), str(tok_dir)),
            ("js", ray.data.read_json(str(tmp_path / "js")), TokenizerFiles.read(tok_dir))):
        out = tmp_path / f"out-{name}"
        ds.map_batches(EncodeBatches, fn_constructor_args=(tokenizer,), batch_format="pyarrow", batch_size=64,
                       concurrency=1).write_parquet(str(out))
        table = pq.read_table(out)
        assert table.column_names == ["id", "tokens"]
        assert table.schema.field("tokens").type == pa.list_(pa.uint16())
        got = dict(zip(table.column("id").to_pylist(), table.column("tokens").to_pylist()))
        assert [got[i] for i in range(len(subset))] == want, name


def test_encode_batches_outside_ray_and_its_errors(tok_dir):
    enc = EncodeBatches(str(tok_dir), keep_text=True)
    out = enc({"text": ["Once upon a time", None], "n": [1, 2]})
    assert out.column_names == ["text", "n", "tokens"]
    assert out.column("tokens").to_pylist() == [load_tokenizer(tok_dir).encode("Once upon a time"), None]
    with pytest.raises(StorytokError, match="no column 'text' in the batch \\(columns: 'body'\\)"):
        enc(pa.table({"body": ["x"]}))


# ---- faults -------------------------------------------------------------------------------------

def test_a_worker_killed_mid_task_is_retried_with_identical_outputs(local_ray, tok_dir, inputs, tmp_path,
                                                                   monkeypatch):
    """Shard 1's first attempt kills its own worker process (SIGKILL) after handing its first
    piece to the part writer; Ray retries it on a new worker; the arrays are the local ones,
    and the killed attempt's temporary file is gone."""
    marker = tmp_path / "killed-once"
    monkeypatch.setenv(FAULT_ENV, f"kill:1:{marker}")
    files = inputs["txt"]
    tok = load_tokenizer(tok_dir)
    out = tmp_path / "ray"
    r = ray_encode(tok, tok_dir, [str(f) for f in files], out / "parquet" / "train", split="train",
                   shard_bytes=200_000, progress=False, cluster=local_ray, **SMALL)
    assert marker.exists(), "the fault did not fire"
    assert int(marker.read_text()) != os.getpid()
    assert r.parts == r.shards and not list((out / "parquet" / "train").glob(".*partial"))
    build_arrays_and_stats(tok, tok_dir, out, ["train"], progress=False)
    _same_outputs(out, _local(tok_dir, files, tmp_path / "local"))


def test_a_shard_that_fails_to_decode_stops_cleanly_and_keeps_finished_parts(local_ray, tok_dir, docs,
                                                                               tmp_path):
    files = write_shards(docs, tmp_path / "in", "txt", 3)
    data = files[2].read_bytes()
    files[2].write_bytes(data[:5000] + b"\xff\xfe" + data[5000:])
    tok = load_tokenizer(tok_dir)
    split_dir = tmp_path / "out" / "parquet" / "train"
    with pytest.raises(StorytokError) as e:
        ray_encode(tok, tok_dir, [str(f) for f in files], split_dir, split="train", shard_bytes=150_000,
                   progress=False, cluster=local_ray, **SMALL)
    msg = str(e.value)
    assert files[2].name in msg and "invalid UTF-8 at byte 5000" in msg and "\n" not in msg
    m = read_manifest(split_dir)
    bad = next(k for k, s in enumerate(m["shards"]) if s[0] == 2)
    assert not m["complete"] and len(m["parts"]) == bad          # every shard before the bad one is kept
    assert sorted(p.name for p in split_dir.glob("part-*")) == [f"part-{k:05d}.parquet" for k in range(bad)]
    assert not list(split_dir.glob(".*partial"))


def test_a_part_the_driver_cannot_see_says_out_must_be_shared(tmp_path):
    """On a real cluster with OUT on a node's local disk, the driver finds no temporary part to
    rename: one line saying OUT must be shared storage, not a bare FileNotFoundError."""
    from storytok.engines.ray.encode import _publish
    manifest = {"parts": []}
    with pytest.raises(StorytokError, match="OUT must be a directory every Ray node sees") as e:
        _publish(tmp_path, {"entry": {"file": "part-00000.parquet"}, "tmp": ".part-00000.parquet.x.partial"},
                 manifest)
    assert "\n" not in str(e.value) and manifest["parts"] == []


# ---- the stages, against a head node reached through RAY_ADDRESS --------------------------------

def _stage(head, script, *args, timeout=300):
    return run(script, *args, "--engine", "ray", env=head["env"], timeout=timeout)


def test_make_tokenizer_encode_stats_on_a_head_node(head_node, inputs, tmp_path):
    """The three stages with --engine ray on a cluster reached by RAY_ADDRESS, on .txt,
    .jsonl.zst and .parquet shards at once: same tokenizer, arrays and stats as local."""
    files = inputs["txt"] + inputs["jsonl.zst"] + inputs["parquet"]
    split_args = [f"train={f}" for f in files]
    out, ref = tmp_path / "ray", tmp_path / "local"
    r = _stage(head_node, "tokenizer", "--train", *files, "--vocab-size", VOCAB, "--out", out / "tokenizer",
               "--shard-bytes", 150_000)
    assert r.returncode == 0, r.stderr
    assert f"cluster at {head_node['address']}, 2 CPUs" in r.stdout
    r = run("tokenizer", "--train", *files, "--vocab-size", VOCAB, "--out", ref / "tokenizer")
    assert r.returncode == 0, r.stderr
    assert (out / "tokenizer" / "merges.txt").read_bytes() == (ref / "tokenizer" / "merges.txt").read_bytes()
    r = _stage(head_node, "encode", "--tokenizer", out / "tokenizer", "--out-dir", out, "--shard-bytes", 150_000,
               *split_args)
    assert r.returncode == 0, r.stderr
    assert "one part per shard" in r.stdout and "Traceback" not in r.stderr, r.stderr
    for o in (out, ref):
        if o is ref:
            assert run("encode", "--tokenizer", ref / "tokenizer", "--out-dir", ref, *split_args).returncode == 0
        r = run("stats", "--tokenizer", o / "tokenizer", "--out-dir", o, "train")
        assert r.returncode == 0, r.stderr
    _same_outputs(out, ref)


def test_kill_9_of_the_driver_then_rerun_gives_identical_arrays(head_node, tok_dir, inputs, tmp_path):
    """The driver is killed with SIGKILL once some parts are recorded (tasks made slow by the
    test hook); a rerun keeps them, encodes the rest, and gives the uninterrupted arrays."""
    files = inputs["txt"]
    args = ["--tokenizer", tok_dir, "--shard-bytes", 40_000, "--chunk-bytes", 1 << 16,
            *[f"train={f}" for f in files]]
    killed = tmp_path / "killed"
    env = dict(head_node["env"], **{FAULT_ENV: "sleep:0.4"})
    p = subprocess.Popen([sys.executable, str(STAGES / "encode.py"), "--out-dir", str(killed), "--engine", "ray",
                          *map(str, args)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT, env=env)
    manifest = killed / "parquet" / "train" / "_manifest.json"
    deadline = time.time() + 180
    while time.time() < deadline and p.poll() is None:
        try:
            if len(json.loads(manifest.read_text())["parts"]) >= 3:
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.02)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    m = json.loads(manifest.read_text())
    assert not m["complete"], "the kill came too late to interrupt encoding"
    kept = len(m["parts"])
    r = _stage(head_node, "encode", "--out-dir", killed, *args)
    assert r.returncode == 0, r.stderr
    assert f"kept {kept} finished part(s)" in r.stdout
    assert not list((killed / "parquet" / "train").glob(".*partial"))
    assert run("stats", "--tokenizer", tok_dir, "--out-dir", killed, "train").returncode == 0
    _same_outputs(killed, _local(tok_dir, files, tmp_path / "local"))


def test_bad_shard_through_the_stage_is_one_line(head_node, tok_dir, docs, tmp_path):
    files = write_shards(docs[:600], tmp_path / "in", "jsonl", 2)
    with open(files[1], "a", encoding="utf-8") as f:
        f.write('{"text": "broken\n')
    lines = files[1].read_text(encoding="utf-8").count("\n")
    r = _stage(head_node, "encode", "--tokenizer", tok_dir, "--out-dir", tmp_path / "o",
               *[f"train={f}" for f in files])
    line = one_error_line(r.returncode, r.stderr)
    assert f"{files[1].name}:{lines}: malformed JSON" in line
    m = read_manifest(tmp_path / "o" / "parquet" / "train")
    assert len(m["parts"]) == 1 and not m["complete"]


# ---- bad setups: one line each ------------------------------------------------------------------

def test_unreachable_ray_address_fails_fast_in_one_line(tok_dir, inputs, tmp_path):
    env = dict(os.environ, RAY_ADDRESS=f"127.0.0.1:{_free_port()}")
    t0 = time.time()
    r = run("encode", "--tokenizer", tok_dir, "--out-dir", tmp_path, "--engine", "ray", f"train={inputs['txt'][0]}",
            env=env, timeout=120)
    line = one_error_line(r.returncode, r.stderr)
    assert "RAY_ADDRESS=127.0.0.1:" in line and "no Ray cluster answers there" in line
    assert time.time() - t0 < 30
    r = run("tokenizer", "--train", inputs["txt"][0], "--vocab-size", 300, "--out", tmp_path / "tok", "--engine",
            "ray", env=dict(env, RAY_ADDRESS="nohost"), timeout=120)
    assert "expected host:port" in one_error_line(r.returncode, r.stderr)


def test_engine_ray_without_ray_says_make_setup_ray(tok_dir, inputs, tmp_path):
    """A Python where `import ray` fails (a stub package that raises ImportError first on the path)."""
    stub = tmp_path / "stub" / "ray"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text("raise ImportError('No module named ray')\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "stub"))
    r = run("encode", "--tokenizer", tok_dir, "--out-dir", tmp_path / "o", "--engine", "ray",
            f"train={inputs['txt'][0]}", env=env)
    line = one_error_line(r.returncode, r.stderr)
    assert "ENGINE=ray needs Ray" in line and "make setup-ray" in line
    r = run("tokenizer", "--train", inputs["txt"][0], "--vocab-size", 300, "--out", tmp_path / "tok", "--engine",
            "ray", env=env)
    assert "make setup-ray" in one_error_line(r.returncode, r.stderr)
    r = run("encode", "--tokenizer", tok_dir, "--out-dir", tmp_path / "o", "--engine", "spark",
            f"train={inputs['txt'][0]}", env=env)
    assert "ENGINE=spark: unknown engine" in one_error_line(r.returncode, r.stderr)
