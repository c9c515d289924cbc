"""make bench: the harness runs end to end on a tiny file and reports well-formed results.

No timing is asserted here (the machine may be busy): only that every job ran in its own
process, that the table and the JSON have their parts, and that the id checks were made
and passed (storytok == tiktoken == Hugging Face on the whole file; merges on all cores ==
merges on one core).
"""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import EOT, shared_path
from storytok import bench

ROOT = Path(__file__).resolve().parents[1]
PEERS = ("tiktoken", "tokenizers", "rustbpe")


def _tiny_input(tmp_path, nbytes=300_000):
    src = shared_path("data", "tinystories_v1_valid_sample.txt")
    return bench.make_tiny(src, tmp_path / "tiny-input.txt", nbytes)


def test_blocks_and_pieces_cover_the_file_exactly(tmp_path):
    path = _tiny_input(tmp_path, 120_000)
    text = path.read_text(encoding="utf-8")
    for block_bytes in (1000, 4096, 1 << 20):
        blocks = list(bench._blocks(path, block_bytes))
        assert "".join(blocks) == text
        assert all(b.endswith(EOT) for b in blocks[:-1])
        pieces = [p for b in blocks for p in bench._pieces(b, 3000)]
        assert "".join(pieces) == text
    stories = bench._stories(text, keep_special=True)
    assert "".join(stories) == text
    assert EOT not in "".join(bench._stories(text, keep_special=False))


def test_hash_does_not_depend_on_chunking():
    a, b = bench._Hasher(), bench._Hasher()
    ids = list(range(1000))
    a.add(ids)
    for k in range(0, 1000, 7):
        b.add(ids[k:k + 7])
    assert a.result() == b.result()


@pytest.mark.timeout(600)
def test_quick_bench_produces_table_json_and_id_checks(tmp_path):
    missing = [p for p in PEERS if importlib.util.find_spec(p) is None]
    if missing:
        pytest.skip(f"peer tools not installed: {', '.join(missing)} (make setup installs them)")
    inp = _tiny_input(tmp_path)
    out = tmp_path / "bench.json"
    work = tmp_path / "work"
    p = subprocess.run([sys.executable, str(ROOT / "stages" / "bench.py"), "--input", str(inp), "--quick",
                        "--vocab-size", "1000", "--json", str(out), "--work-dir", str(work)],
                       capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]

    # the table and the verdicts are on screen
    for text in ("storytok bench", "peak RSS", "storytok speed-up", "checks", "targets", "tiktoken", "rustbpe",
                 "HF tokenizers"):
        assert text in p.stdout, text

    r = json.loads(out.read_text())
    for key in ("date", "machine", "versions", "input", "jobs", "checks", "targets", "estimates"):
        assert key in r, key
    assert r["machine"]["usable_cpus"] >= 1 and r["machine"]["cpu"]
    for tool in ("storytok", "numba", "numpy") + PEERS:
        assert r["versions"][tool], tool
    assert r["input"]["bytes"] == inp.stat().st_size

    jobs = {j["key"]: j for j in r["jobs"]}
    expected = {"train/storytok-1", "train/storytok-all", "train/hf", "train/rustbpe",
                "encode/storytok-1", "encode/storytok-all", "encode/tiktoken-1", "encode/tiktoken-all", "encode/hf",
                "cold/storytok", "cold/tiktoken", "cold/hf", "cold/rustbpe",
                "stages/tokenizer", "stages/encode", "stages/stats"}
    assert expected <= set(jobs), expected - set(jobs)
    for key in expected:
        j = jobs[key]
        assert j["error"] is None, (key, j["error"])
        assert j["n_runs"] == 1 and j["seconds"] >= 0 and j["peak_rss_bytes"] > 1 << 20, key
        if key.split("/")[0] in ("train", "encode"):
            assert j["mb_per_s"] > 0, key
    for key in ("encode/storytok-1", "encode/storytok-all", "encode/tiktoken-1", "encode/tiktoken-all", "encode/hf"):
        assert jobs[key]["tokens"] > 0 and len(jobs[key]["ids_hash"]) == 32, key
    # every storytok row of train/encode is compared with every peer row of its job
    assert {v["key"] for v in jobs["train/storytok-all"]["vs"]} == {"train/hf", "train/rustbpe"}
    assert {v["key"] for v in jobs["encode/storytok-1"]["vs"]} == {"encode/tiktoken-1", "encode/tiktoken-all",
                                                                   "encode/hf"}

    # the id checks ran, on the whole file, and passed
    names = [c["name"] for c in r["checks"]]
    assert any("merges on all cores == merges on 1 core" in n for n in names), names
    for peer in ("storytok encode_file, 1 core", "tiktoken encode, 1 thread", "tiktoken encode_batch", "HF encode_batch"):
        assert any("ids of" in n and peer in n for n in names), (peer, names)
    assert all(c["ok"] is True for c in r["checks"]), r["checks"]

    # every target is reported, with a verdict where it was measured (RSS on 2 GB needs --scale)
    targets = {t["name"]: t for t in r["targets"]}
    assert len(targets) == 8
    for name, t in targets.items():
        if "peak RSS" in name:
            assert t["ok"] is None
        else:
            assert t["ok"] in (True, False) and t["value"] is not None, name
    assert {"make tokenizer", "make encode + make stats"} <= set(r["estimates"])

    # the saved result renders again, as Markdown for the README, without running anything
    md = subprocess.run([sys.executable, str(ROOT / "stages" / "bench.py"), "--report", str(out), "--markdown"],
                        capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert md.returncode == 0, md.stderr[-2000:]
    assert "| job | tool |" in md.stdout and "Targets" in md.stdout
    assert md.stdout.count("\n| ") >= len(expected) + 1
