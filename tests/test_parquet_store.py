"""The Parquet store's bookkeeping: cutting stories, resuming, starting clean, cleaning up."""
from __future__ import annotations

import json
import os

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings, strategies as st

from conftest import examples
from pipeline_helpers import EOT, sample
from storytok import StorytokError, Tokenizer, train_bpe
from storytok.store.lock import LOCK_FILE
from storytok.store.parquet_store import MANIFEST, encode_split, finished_manifest

STORY = "Once upon a time, a cat sat. It was happy.\n<|endoftext|>\n"


@pytest.fixture(scope="module")
def tok():
    vocab, merges = train_bpe(str(sample("valid")), 400, [EOT])
    return Tokenizer(vocab, merges, [EOT])


@pytest.fixture
def text(tmp_path):
    p = tmp_path / "in.txt"
    p.write_text(STORY * 12000, encoding="utf-8")  # ~680 KB
    return p


def _encode(tok, text, d, **kw):
    kw.setdefault("chunk_bytes", 1 << 16)
    kw.setdefault("part_bytes", 1 << 17)
    return encode_split(tok, text, d, split="train", progress=False, **kw)


def _manifest(d):
    return json.loads((d / MANIFEST).read_text())


def test_split_rows_cuts_at_the_separator():
    from storytok.kernels.stories import split_rows
    no_bytes = np.zeros(10, np.int64)
    t = np.array([1, 2, 9, 9, 3, 9, 4], dtype=np.uint16)
    values, offsets, _, stop = split_rows(t, 9, no_bytes, False)
    assert values.tolist() == [1, 2, 3] and offsets.tolist() == [0, 2, 2, 3] and t[stop:].tolist() == [4]
    t = np.array([5, 6], dtype=np.uint16)
    values, offsets, _, stop = split_rows(t, 9, no_bytes, False)
    assert values.size == 0 and offsets.tolist() == [0] and t[stop:].tolist() == [5, 6]


def _rows(d):
    return [r for f in sorted(d.glob("part-*.parquet")) for r in pq.read_table(f).column("tokens").to_pylist()]


def test_resume_keeps_the_valid_prefix_and_removes_leftovers(tok, text, tmp_path):
    d = tmp_path / "split"
    full = _encode(tok, text, d)
    assert full.parts >= 4
    reference = _rows(d)
    m = _manifest(d)
    # Simulate a run killed during part 3: manifest lists parts 0-2, part 3 is a leftover
    # under its temporary name, part 4 was renamed but never recorded.
    m["parts"], m["complete"] = m["parts"][:3], False
    (d / MANIFEST).write_text(json.dumps(m))
    os.rename(d / "part-00003.parquet", d / ".part-00003.parquet.partial")
    kept_mtime = (d / "part-00002.parquet").stat().st_mtime_ns
    r = _encode(tok, text, d)
    assert r.kept_parts == 3 and not r.up_to_date and r.started_clean_because is None
    assert r.encoded_bytes == text.stat().st_size - m["parts"][2]["end"][1]
    assert (d / "part-00002.parquet").stat().st_mtime_ns == kept_mtime
    assert not [f for f in d.iterdir() if f.name.startswith(".") and f.name != LOCK_FILE]
    assert _rows(d) == reference and _manifest(d)["complete"]


def test_a_changed_part_file_is_redone(tok, text, tmp_path):
    d = tmp_path / "split"
    _encode(tok, text, d)
    reference = _rows(d)
    with open(d / "part-00001.parquet", "ab") as f:
        f.write(b"junk")
    with pytest.raises(StorytokError, match="missing or changed"):
        finished_manifest(d)
    r = _encode(tok, text, d)
    assert r.kept_parts == 1 and _rows(d) == reference


@pytest.mark.parametrize("change", ["input_mtime", "input_size", "chunk_bytes"])
def test_changed_inputs_start_clean(tok, text, tmp_path, change):
    d = tmp_path / "split"
    _encode(tok, text, d)
    kw = {}
    if change == "input_mtime":
        st = text.stat()
        os.utime(text, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    elif change == "input_size":
        text.write_text(STORY * 11000, encoding="utf-8")
    else:
        kw["chunk_bytes"] = 1 << 17
    r = _encode(tok, text, d, **kw)
    assert r.started_clean_because and r.kept_parts == 0
    assert r.rows == text.read_text().count(EOT) + 1
    assert len(list(d.glob("part-*.parquet"))) == r.parts


def test_invalid_utf8_half_way_keeps_finished_parts_and_nothing_else(tok, tmp_path):
    good = (STORY * 6000).encode()
    p = tmp_path / "bad.txt"
    p.write_bytes(good + b"Bad \xff byte.\n<|endoftext|>\n" + STORY.encode())
    d = tmp_path / "split"
    with pytest.raises(StorytokError) as e:
        _encode(tok, p, d)
    assert str(len(good) + 4) in str(e.value), "the message names the byte offset"
    m = _manifest(d)
    assert not m["complete"]
    assert sorted(f.name for f in d.iterdir()) == sorted([MANIFEST, LOCK_FILE] + [x["file"] for x in m["parts"]])
    with pytest.raises(StorytokError, match="unfinished"):
        finished_manifest(d)


def test_unfinished_and_missing_splits_are_refused(tmp_path):
    with pytest.raises(StorytokError, match="run `make encode` first"):
        finished_manifest(tmp_path / "nothing")


def test_a_failing_part_writer_keeps_the_parts_before_it(tok, text, tmp_path, monkeypatch):
    """Parts are written on threads and may finish out of order; when one fails, the error
    reaches the caller, the manifest lists exactly the parts before it (all on disk), and a
    re-run finishes the split with the same rows."""
    d = tmp_path / "split"
    reference_dir = tmp_path / "reference"
    _encode(tok, text, reference_dir)
    import storytok.store.parquet_store as store
    real = store.write_rows

    def flaky(writer, table, part):
        if part.name == "part-00002.parquet":
            raise OSError(28, "No space left on device")
        return real(writer, table, part)

    monkeypatch.setattr(store, "write_rows", flaky)
    with pytest.raises(StorytokError, match=r"part-00002.parquet: cannot write it \(no space left on the device: "
                                            r"the disk is full\); finished parts are kept"):
        _encode(tok, text, d)
    m = _manifest(d)
    assert not m["complete"] and len(m["parts"]) == 2
    assert sorted(f.name for f in d.iterdir()) == sorted([MANIFEST, LOCK_FILE] + [x["file"] for x in m["parts"]])
    monkeypatch.setattr(store, "write_rows", real)
    r = _encode(tok, text, d)
    assert r.kept_parts == 2 and _manifest(d)["complete"]
    assert _rows(d) == _rows(reference_dir)


@settings(max_examples=examples(300))
@given(st.lists(st.integers(0, 12), max_size=200), st.booleans())
def test_split_rows_matches_a_plain_split(ids, final):
    """The row-splitting kernel against list slicing: rows end at each separator (9), the
    tail is a row only when final, n_bytes sums the per-id byte lengths."""
    from storytok.kernels.stories import split_rows
    tokens = np.array(ids, dtype=np.uint16)
    byte_len = np.arange(13, dtype=np.int64) * 3 + 1
    values, offsets, n_bytes, stop = split_rows(tokens, 9, byte_len, final)
    rows, row = [], []
    for t in ids:
        if t == 9:
            rows.append(row)
            row = []
        else:
            row.append(t)
    if final:
        rows.append(row)
    assert stop == (len(ids) if final else (len(ids) - ids[::-1].index(9) if 9 in ids else 0))
    assert [values[offsets[r]:offsets[r + 1]].tolist() for r in range(len(offsets) - 1)] == rows
    assert n_bytes.tolist() == [sum(3 * t + 1 for t in r) for r in rows]


@settings(max_examples=examples(300))
@given(st.lists(st.lists(st.integers(0, 12).filter(lambda t: t != 9), max_size=20), min_size=1, max_size=30),
       st.booleans())
def test_flatten_rows_matches_a_plain_join(rows, lead):
    """The flattening kernel against joining lists: separator (9) between rows (and in front
    with lead), every written token counted, non-whitespace tokens per row (ws: ids 0-2)."""
    from storytok.kernels.stories import flatten_rows
    values = np.array([t for r in rows for t in r], dtype=np.uint16)
    offsets = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int64)
    is_ws = np.arange(13) < 3
    out = np.empty(values.size + len(rows), np.uint16)
    counts = np.zeros(13, np.int64)
    n, row_pos, row_text = flatten_rows(values, offsets, 9, lead, is_ws, -1, np.zeros(0, bool), out, counts)
    want = ([9] if lead else []) + [t for k, r in enumerate(rows) for t in ([9] if k else []) + r]
    assert out[:n].tolist() == want
    assert counts.tolist() == np.bincount(want, minlength=13).tolist()
    assert [want[p:p + len(r)] for p, r in zip(row_pos.tolist(), rows)] == rows
    assert row_text.tolist() == [sum(t >= 3 for t in r) for r in rows]
