"""The demo corpus writer, and `make demo` itself on a fresh output directory."""
from __future__ import annotations

import random
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from pipeline_helpers import EOT, ROOT
from storytok.sources.demo_corpus import write_corpus, write_story


def test_same_seed_same_bytes_and_tinystories_layout(tmp_path):
    a, b, c = tmp_path / "a.txt", tmp_path / "b.txt", tmp_path / "c.txt"
    write_corpus(a, 200_000, seed=3)
    write_corpus(b, 200_000, seed=3)
    write_corpus(c, 200_000, seed=4)
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()
    text = a.read_text(encoding="utf-8")
    assert len(text.encode()) >= 200_000
    assert text.endswith(f"\n{EOT}\n")
    stories = text.split(f"\n{EOT}\n")[:-1]
    assert len(stories) > 100
    assert all(s.strip() and EOT not in s for s in stories)
    assert any('"' in s for s in stories), "dialogue"
    assert any("\n" in s for s in stories), "paragraphs"
    assert len({s.split()[0] for s in stories}) > 2, "varied openings"


def test_stories_read_like_tinystories():
    rng = random.Random(0)
    for _ in range(200):
        s = write_story(rng)
        assert s[0].isupper() and s.rstrip()[-1] in '.!"'
        assert "  " not in s and "{" not in s and "}" not in s


def test_unchanged_corpus_keeps_its_mtime(tmp_path):
    p = tmp_path / "t.txt"
    assert write_corpus(p, 50_000) is True
    before = p.stat().st_mtime_ns
    time.sleep(0.01)
    assert write_corpus(p, 50_000) is False
    assert p.stat().st_mtime_ns == before
    assert not list(tmp_path.glob("*.partial"))


def test_generator_is_self_contained():
    import storytok.sources.demo_corpus as mod
    src = open(mod.__file__, encoding="utf-8").read()
    assert "/shared" not in src and ".read" not in src and src.count("open(") == 1  # writes its temp file only


def test_make_demo_runs_the_whole_pipeline(tmp_path):
    """`make demo` as a user runs it, with its outputs redirected into tmp_path."""
    if shutil.which("make") is None:
        pytest.skip("make not installed")
    real = tmp_path / "real-train.txt"
    real.write_text("x")
    cmd = ["make", "--no-print-directory", "-o", ".venv/.installed", "demo", f"PY={sys.executable}",
           f"DEMO_DIR={tmp_path / 'demo'}", f"DEMO_OUT={tmp_path / 'out'}", f"TRAIN={real}"]
    t0 = time.time()
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert time.time() - t0 < 120
    out = tmp_path / "out"
    for split in ("train", "valid"):
        arr = np.load(out / f"tinystories_{split}_uint16.npy", mmap_mode="r")
        assert arr.dtype == np.uint16 and arr.size > 1000
        assert (out / "parquet" / split / "part-00000.parquet").exists()
    assert (out / "stats.json").exists() and (out / "tokenizer" / "tokenizer.json").exists()
    assert "make demo: done" in r.stdout and "decodes to the input: yes" in r.stdout
    assert "NO" not in r.stdout.split("make demo: done")[1].split("first valid story")[0]
    assert str(real) in r.stdout and "make tokenizer encode stats" in r.stdout
