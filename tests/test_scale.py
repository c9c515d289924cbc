"""Scale: the whole pipeline on a 2 GB TinyStories-like corpus, peak RSS under 1 GB per stage.

Slow (tens of minutes on 2 cores); run with `make test-all` or
`pytest -m slow -s tests/test_scale.py`. STORYTOK_SCALE_MB picks another size (e.g. 200
for a quicker look). Prints time, throughput and peak RSS of every stage.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from pipeline_helpers import EOT, ROOT, SHARED, STAGES
from storytok import Tokenizer
from storytok.store.flatten import decodes_to_file

RSS_LIMIT = 1 << 30
MB = int(os.environ.get("STORYTOK_SCALE_MB", "2000"))


def _measured(args, log):
    """Run a command; return (seconds, peak RSS in bytes) of that process, from wait4."""
    t0 = time.perf_counter()
    with open(log, "w") as f:
        p = subprocess.Popen([str(a) for a in args], stdout=f, stderr=subprocess.STDOUT, cwd=ROOT)
        _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    secs = time.perf_counter() - t0
    assert p.returncode == 0, open(log).read()[-3000:]
    return secs, usage.ru_maxrss * 1024


def _count_eot(path, block=64 << 20) -> int:
    n, tail, pat = 0, b"", EOT.encode()
    with open(path, "rb") as f:
        while data := f.read(block):
            buf = tail + data
            n += buf.count(pat)
            tail = buf[-(len(pat) - 1):]
    return n


@pytest.mark.slow
def test_two_gigabytes_end_to_end_under_1gb_rss(tmp_path_factory):
    tool = SHARED / "tools" / "make_corpus.py"
    if not tool.exists():
        pytest.skip(f"{tool} not found (expected ../shared beside the checkout)")
    work = tmp_path_factory.mktemp("scale")
    if shutil.disk_usage(work).free < MB * 1_000_000 * 4:
        pytest.skip(f"needs ~{4 * MB / 1000:.0f} GB free disk in {work}")
    train, valid, out = work / "train.txt", work / "valid.txt", work / "out"
    subprocess.run([sys.executable, tool, "--mb", str(MB), "--out", train], check=True, capture_output=True)
    subprocess.run([sys.executable, tool, "--mb", str(max(MB // 100, 1)), "--out", valid, "--seed", "1"],
                   check=True, capture_output=True)
    py = sys.executable
    stages = {
        "tokenizer": [py, STAGES / "tokenizer.py", "--train", train, "--vocab-size", 10000, "--out", out / "tokenizer"],
        "encode": [py, STAGES / "encode.py", "--tokenizer", out / "tokenizer", "--out-dir", out,
                   f"train={train}", f"valid={valid}"],
        "stats": [py, STAGES / "stats.py", "--tokenizer", out / "tokenizer", "--out-dir", out, "train", "valid"],
    }
    results = {}
    for name, args in stages.items():
        results[name] = _measured(args, work / f"{name}.log")
    size = train.stat().st_size + valid.stat().st_size
    lines = [f"scale test on {size / 1e9:.2f} GB (train {train.stat().st_size / 1e6:,.0f} MB):"]
    for name, (secs, rss) in results.items():
        lines.append(f"  {name:<10} {secs:8.1f} s  {size / 1e6 / secs:7.1f} MB/s  peak RSS {rss / 2**20:7.0f} MiB")
    print("\n".join(lines))
    for name, (secs, rss) in results.items():
        assert rss < RSS_LIMIT, f"{name}: peak RSS {rss / 2**20:.0f} MiB"

    tok = Tokenizer.from_dir(out / "tokenizer")
    for split, path in (("train", train), ("valid", valid)):
        arr = np.load(out / f"tinystories_{split}_uint16.npy", mmap_mode="r")
        off = np.load(out / f"tinystories_{split}_offsets.npy", mmap_mode="r")
        assert arr.dtype == np.uint16 and len(off) == _count_eot(path) + 1
        assert decodes_to_file(tok, out / f"tinystories_{split}_uint16.npy", path)
