"""What the engines share and need no Ray for: the core never imports Ray; shards cut where
documents end and read back the file exactly; pre-token counts cut by hash and combined
equal a plain count; inputs named by file:// URI read like paths."""
from __future__ import annotations

import collections
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from conftest import examples
from input_kinds import write_kind, write_shards
from pipeline_helpers import EOT, ROOT, sample
from storytok.bpe.train import PretokenCounts, count_chunks
from storytok.engines.counts import combine_counts, concat_counts, merges_from_counts, partition_counts
from storytok.pretokenize.pretokenizer import text_buffer
from storytok.pretokenize.specials import SpecialMatcher
from storytok.sources.shards import next_separator_end, plan_shards, shard_chunks
from storytok.sources.split import Source


def test_the_core_and_the_local_pipeline_never_import_ray(tmp_path):
    """import storytok, train, encode, flatten and the Ray engine's package itself: no `ray`
    module loaded (a fresh interpreter, so nothing else has imported it)."""
    code = f"""
import sys
import storytok
from storytok import Tokenizer, train_bpe
from storytok.store.parquet_store import encode_split
from storytok.store.flatten import build_arrays_and_stats
import storytok.engines, storytok.engines.counts, storytok.engines.ray
p = {str(sample('valid'))!r}
v, m = train_bpe(p, 300, [{EOT!r}])
tok = Tokenizer(v, m, [{EOT!r}])
tok.save({str(tmp_path / 'tok')!r})
encode_split(tok, p, {str(tmp_path / 'out' / 'parquet' / 'train')!r}, split="train", progress=False)
build_arrays_and_stats(tok, {str(tmp_path / 'tok')!r}, {str(tmp_path / 'out')!r}, ["train"], progress=False)
tok.encode_batch(["a", "b"]); tok.encode_arrow(["a"])
bad = sorted(m for m in sys.modules if m == "ray" or m.startswith("ray."))
print("RAY_MODULES", bad)
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "RAY_MODULES []" in r.stdout, r.stdout


# ---- shards -------------------------------------------------------------------------------------

def _text_of_chunks(chunks) -> bytes:
    return b"".join(c.data.tobytes() for c in chunks)


@pytest.mark.parametrize("shard_bytes", [30_000, 100_000, 333_333, 10 << 20])
def test_txt_shards_end_after_a_separator_and_read_back_the_file(shard_bytes):
    path = sample("valid")
    data = path.read_bytes()
    src = Source.of(str(path))
    m = SpecialMatcher([EOT])
    shards = plan_shards(src, m, shard_bytes)
    if shard_bytes < len(data):
        assert len(shards) > 1
    assert shards[0].start == 0 and shards[-1].stop is None
    for a, b in zip(shards, shards[1:]):
        assert a.stop == b.start and a.end_position == b.start_position
        assert data[:a.stop].endswith(EOT.encode())
    assert b"".join(_text_of_chunks(shard_chunks(src, s, m, chunk_bytes=1 << 16)) for s in shards) == data
    docs = 0
    for s in shards:
        docs += sum(c.docs for c in shard_chunks(src, s, m, chunk_bytes=1 << 16))
    assert docs == data.count(EOT.encode()) + 1      # the file's last document ends with the file


@settings(max_examples=examples(100), deadline=None)
@given(st.lists(st.sampled_from(["a", " ", "<|endoftext|>", "<|pad|>", "<|end", "é", "\n", "|>", "<", "x" * 40]),
                max_size=60),
       st.integers(0, 400), st.integers(1, 64))
def test_next_separator_matches_a_whole_file_search(pieces, at, window):
    """The separator found from a small window equals the first <|endoftext|> match of the
    whole text starting at or after `at` (another special beside it, near misses around)."""
    text = "".join(pieces).encode()
    m = SpecialMatcher([EOT, "<|pad|>"])
    buf, words = text_buffer(text)
    found = m.find(buf, words, 0, len(text))
    eot = m.tokens.index(EOT)
    want = next((int(e) for s, e, w in zip(found.starts, found.ends, found.which) if w == eot and s >= at), None)
    if not text:
        return   # an empty .txt file is refused before any shard is planned
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "t.txt")
        with open(path, "wb") as f:
            f.write(text)
        assert next_separator_end(Source.of(path), 0, at, m, window=window) == want


def test_overlapping_specials_leave_txt_files_whole(tmp_path):
    """With <|endoftext|> and <|endoftext|><|endoftext|> as specials, which occurrences match
    depends on the text before them (a run of separators pairs up from its start), so no
    window can find a cut: the file is one shard."""
    path = tmp_path / "t.txt"
    path.write_text((EOT * 7 + "story ") * 20_000)
    src = Source.of(str(path))
    assert len(plan_shards(src, SpecialMatcher([EOT]), 100_000)) > 1
    for specials in ([EOT, EOT + EOT], [EOT, "x" + EOT], [EOT, "|><|"], ["<|a|>"]):
        assert len(plan_shards(src, SpecialMatcher(specials), 100_000)) == 1, specials


def test_parquet_shards_are_runs_of_row_groups(tmp_path):
    docs = sample("valid").read_text(encoding="utf-8").split(EOT)
    path = write_kind(docs, tmp_path / "d", "parquet")       # 3 row groups (input_kinds)
    src = Source.of(str(path))
    m = SpecialMatcher([EOT])
    shards = plan_shards(src, m, 100_000)
    assert len(shards) > 1 and shards[-1].stop is None
    rows = [sum(c.docs for c in shard_chunks(src, s, m, chunk_bytes=1 << 16)) for s in shards]
    assert sum(rows) == len(docs)


# ---- counts -------------------------------------------------------------------------------------

def _counts(d: dict) -> PretokenCounts:
    keys = list(d)
    starts = np.zeros(len(keys) + 1, np.int64)
    np.cumsum([len(k) for k in keys], out=starts[1:])
    return PretokenCounts(np.frombuffer(b"".join(keys), np.uint8).copy(), starts, np.array([d[k] for k in keys], np.int64))


@settings(max_examples=examples(100), deadline=None)
@given(st.lists(st.dictionaries(st.binary(max_size=12), st.integers(1, 1000), max_size=40), min_size=1, max_size=6),
       st.integers(1, 7))
def test_partitioned_then_combined_counts_equal_a_plain_sum(tables, n_parts):
    want = collections.Counter()
    for t in tables:
        want.update(t)
    parts = [partition_counts(_counts(t), n_parts) for t in tables]
    combined = [combine_counts([p[k] for p in parts]) for k in range(n_parts)]
    seen = [set(c.to_dict()) for c in combined]
    for a in range(n_parts):            # a pre-token lives in one partition only
        for b in range(a + 1, n_parts):
            assert not seen[a] & seen[b]
    assert concat_counts(combined).to_dict() == dict(want)


def test_counts_from_shards_give_train_bpes_merges(tmp_path):
    """The Ray engine's counting path without Ray: shards counted apart, partitioned,
    combined; the merges equal train_bpe's on the whole file."""
    from storytok import train_bpe
    path = sample("valid")
    src = Source.of(str(path))
    m = SpecialMatcher([EOT])
    per_shard = [count_chunks(shard_chunks(src, s, m, chunk_bytes=1 << 16), 1) for s in plan_shards(src, m, 150_000)]
    parts = [partition_counts(c, 3) for c in per_shard]
    total = concat_counts([combine_counts([p[k] for p in parts]) for k in range(3)])
    assert merges_from_counts(total, 600, [EOT]) == train_bpe(path, 600, [EOT])


# ---- URIs ---------------------------------------------------------------------------------------

def test_file_uri_inputs_read_like_paths(tmp_path):
    docs = sample("valid").read_text(encoding="utf-8").split(EOT)[:300]
    files = write_shards(docs, tmp_path / "in", "jsonl.zst", 2) + write_shards(docs, tmp_path / "pq", "parquet", 2)
    m = SpecialMatcher([EOT])
    by_path = Source.of([str(f) for f in files])
    by_uri = Source.of([f"file://{f}" for f in files])
    by_glob = Source.of([f"file://{tmp_path}/in/*.jsonl.zst", f"file://{tmp_path}/pq/"])
    assert [f.path for f in by_uri.files] == [f"file://{f}" for f in files] == [f.path for f in by_glob.files]
    assert [(f.size, f.mtime_ns) for f in by_uri.files] == [(f.size, f.mtime_ns) for f in by_path.files]
    assert _text_of_chunks(by_uri.chunks(m)) == _text_of_chunks(by_path.chunks(m))
    with pytest.raises(Exception, match="no file matches this pattern"):
        Source.of(f"file://{tmp_path}/in/*.parquet")
