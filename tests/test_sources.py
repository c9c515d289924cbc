"""Input sources: what a split's input names (files, globs, directories, lists), and every
kind (.txt, .txt.gz, .jsonl, .jsonl.zst, .parquet; shards) giving back the same documents,
each followed by DOC_END, from any resume position; bad input as one clear line each."""
from __future__ import annotations

import gzip
import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from conftest import EOT, examples, mixed_text
from input_kinds import KINDS, write_kind, write_shards
from storytok import StorytokError
from storytok.pretokenize.specials import SpecialMatcher
from storytok.sources.chunks import DOC_END, NO_SPECIAL
from storytok.sources.resolve import kind_of, resolve
from storytok.sources.split import Source, iter_document_chunks

MATCHER = SpecialMatcher([EOT])


def documents(chunks) -> list[str]:
    """The documents a chunk stream holds, rebuilt from its segments: text runs accumulate
    until DOC_END (or the separator special inside .txt text) ends a document."""
    docs, cur = [], bytearray()
    for c in chunks:
        starts, ends, after = c.segments()
        for s, e, a in zip(starts.tolist(), ends.tolist(), after.tolist()):
            cur += c.buf[s:e].tobytes()
            if a == DOC_END or a >= 0:
                docs.append(cur.decode("utf-8"))
                cur = bytearray()
            else:
                assert a == NO_SPECIAL
    assert not cur, "text after the last document's end"
    return docs


def doc_text(max_size=8):
    """Odd documents: empty, any unicode, literal specials, runs of whitespace, long ones."""
    return st.one_of(mixed_text, st.just(""), st.sampled_from(["x" * 20_000, "word " * 4_000, "\n\n", " "]))


# ---- resolving what the user names ---------------------------------------------------------

def test_resolve_file_glob_directory_and_lists_in_order(tmp_path):
    for name in ["b.jsonl", "a.txt", "sub/c.parquet", "sub/deep/d.txt.zst", ".hidden.txt", "_SUCCESS", "README.md"]:
        p = tmp_path / "corpus" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    c = tmp_path / "corpus"
    names = lambda files: [os.path.relpath(f.path, c) for f in files]
    assert names(resolve(c)) == ["a.txt", "b.jsonl", "sub/c.parquet", "sub/deep/d.txt.zst"]
    assert names(resolve(str(c / "*"))) == ["a.txt", "b.jsonl", "sub/c.parquet", "sub/deep/d.txt.zst"]
    assert names(resolve(str(c / "**" / "*.txt*"))) == ["a.txt", "sub/deep/d.txt.zst"]
    assert names(resolve([c / "b.jsonl", str(c / "a.txt")])) == ["b.jsonl", "a.txt"], "a list keeps its order"
    assert [(f.kind, f.compression) for f in resolve(c)] == [("txt", None), ("jsonl", None), ("parquet", None),
                                                             ("txt", "zstd")]


@pytest.mark.parametrize("name,kind", [("a.TXT", ("txt", None)), ("a.ndjson.gz", ("jsonl", "gzip")),
                                       ("a.jsonl.zst", ("jsonl", "zstd")), ("x.y.parquet", ("parquet", None))])
def test_kind_by_extension(name, kind):
    assert kind_of(name) == kind


@pytest.mark.parametrize("name,words", [("a.csv", ["unknown input kind (.csv)", ".jsonl", ".parquet"]),
                                        ("a.json.gz", ["unknown input kind (.json.gz)"]),
                                        ("noext", ["no extension"]),
                                        ("a.parquet.zst", ["compressed Parquet", "decompress it to .parquet"])])
def test_unknown_extension_is_one_line(tmp_path, name, words):
    (tmp_path / name).write_bytes(b"x")
    with pytest.raises(StorytokError) as e:
        resolve(tmp_path / name)
    msg = str(e.value)
    assert "\n" not in msg and name in msg and all(w in msg for w in words), msg


def test_resolve_errors(tmp_path):
    with pytest.raises(StorytokError, match=r"\*\.jsonl\.zst: no file matches this pattern"):
        resolve(str(tmp_path / "*.jsonl.zst"))
    with pytest.raises(StorytokError, match="no such file"):
        resolve(tmp_path / "missing.txt")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.md").write_text("hi")
    with pytest.raises(StorytokError, match="directory holds no input files"):
        resolve(tmp_path / "empty")
    (tmp_path / "e.txt").write_bytes(b"")
    with pytest.raises(StorytokError, match="e.txt: file is empty"):
        resolve(tmp_path / "e.txt")
    (tmp_path / "e.jsonl").write_bytes(b"")
    assert resolve(tmp_path / "e.jsonl")[0].size == 0, "an empty JSONL file is zero documents"
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(StorytokError, match="named twice"):
        resolve([tmp_path / "a.txt", str(tmp_path / "*.txt")])
    with pytest.raises(StorytokError, match="input list is empty"):
        resolve([])


# ---- every kind gives the same documents -----------------------------------------------------

@settings(max_examples=examples(25), suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                            HealthCheck.function_scoped_fixture])
@given(docs=st.lists(doc_text(), min_size=1, max_size=12), n_shards=st.integers(1, 4),
       chunk_bytes=st.sampled_from([1 << 10, 1 << 16, 16 << 20]))
def test_every_kind_gives_the_same_documents(tmp_path_factory, docs, n_shards, chunk_bytes):
    """.txt cannot hold a literal separator inside a document, so those are checked with
    JSONL and Parquet only; every other document comes back identical from every kind."""
    d = tmp_path_factory.mktemp("kinds")
    plain = [x.replace(EOT, "") for x in docs]
    assume(EOT.join(plain))
    for kind in KINDS:
        src = Source.of(write_shards(plain, d / kind, kind, n_shards))
        assert documents(src.chunks(MATCHER, chunk_bytes=chunk_bytes)) == plain, kind
    for kind in ["jsonl", "jsonl.zst", "parquet"]:
        src = Source.of(write_shards(docs, d / ("raw-" + kind), kind, n_shards))
        got = documents(src.chunks(MATCHER, chunk_bytes=chunk_bytes))
        assert got == docs, kind


@pytest.mark.parametrize("kind", KINDS)
def test_resuming_at_every_chunk_end_gives_the_rest(tmp_path, kind):
    """Positions: starting at any chunk's end gives exactly the chunks (documents) after it."""
    rng = np.random.default_rng(1)
    docs = [" ".join("w%d" % x for x in rng.integers(0, 50, rng.integers(0, 400))) for _ in range(1500)]
    src = Source.of(write_shards(docs, tmp_path / kind, kind, 3))
    chunks = list(src.chunks(MATCHER, chunk_bytes=1 << 12))
    assert len(chunks) > 8
    every = documents(chunks)
    assert every == docs
    for k in range(0, len(chunks), max(1, len(chunks) // 8)):
        rest = list(src.chunks(MATCHER, chunk_bytes=1 << 12, start=chunks[k].position))
        # documents from k+1 on: the first one may have begun before the cut (a .txt chunk
        # can end inside a document), so compare the flattened text of what follows.
        want_bytes = b"".join(c.buf[s:e].tobytes() for c in chunks[k + 1:] for s, e, _ in zip(*c.segments()))
        got_bytes = b"".join(c.buf[s:e].tobytes() for c in rest for s, e, _ in zip(*c.segments()))
        assert got_bytes == want_bytes
        assert [c.position for c in rest] == [c.position for c in chunks[k + 1:]]
    assert chunks[-1].position[0] in (len(src.files) - 1, len(src.files))


def test_documents_from_an_iterator_in_batches():
    docs = ["a b", "", "x" * 5000, "<|endoftext|> is plain here", "é"] * 50
    chunks = list(iter_document_chunks(iter(docs), chunk_bytes=4096))
    assert len(chunks) > 3 and documents(chunks) == docs
    with pytest.raises(StorytokError, match=r"documents\[3\] is int, expected str"):
        list(iter_document_chunks(iter(["a", "b", "c", 5])))
    with pytest.raises(StorytokError, match=r"documents\[1\] is None"):
        list(iter_document_chunks(iter(["a", None])))


# ---- bad input: one line, naming file and line / row ---------------------------------------

def _read(src) -> list[str]:
    return documents(src.chunks(MATCHER, chunk_bytes=1 << 12))


def _one_line(e) -> str:
    msg = str(e.value)
    assert "\n" not in msg, msg
    return msg


def _jsonl(tmp_path, lines, name="d.jsonl"):
    p = tmp_path / name
    p.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return p


GOOD = [json.dumps({"text": f"story {i}"}) for i in range(40)]


@pytest.mark.parametrize("bad,words", [
    ('{"text": "a"', ["malformed JSON", "d.jsonl:42"]),
    ('{"text": "a"} junk', ["malformed JSON", "d.jsonl:42"]),
    ('[1, 2]', ["a JSON list where an object was expected", "d.jsonl:42"]),
    ('{"id": 3, "body": "x"}', ["d.jsonl:42", "no field 'text'", "fields: 'id', 'body'", "FIELD="]),
    ('{"text": 5}', ["d.jsonl:42", "field 'text' is a JSON number, not a string", "FIELD="]),
    ('{"text": {"a": 1}}', ["d.jsonl:42", "field 'text' is a JSON object"]),
    ('{"text": null}', ["d.jsonl:42", "field 'text' is null", "--skip-bad-docs"]),
    ('{"text": "\\ud800"}', ["d.jsonl:42", "lone surrogate"]),
])
def test_bad_jsonl_names_file_and_line(tmp_path, bad, words):
    p = _jsonl(tmp_path, GOOD[:20] + [""] + GOOD[20:40] + [bad] + GOOD[:5])  # a blank line: 42 is `bad`
    with pytest.raises(StorytokError) as e:
        _read(Source.of(p))
    msg = _one_line(e)
    assert all(w in msg for w in words), msg


def test_bad_jsonl_line_number_counts_across_blocks_and_after_resume(tmp_path):
    lines = [json.dumps({"text": "w " * 300})] * 400 + ['{"text": 7}']
    p = _jsonl(tmp_path, lines, "big.jsonl")
    with pytest.raises(StorytokError, match="big.jsonl:401: field 'text' is a JSON number"):
        _read(Source.of(p))
    chunks = []
    with pytest.raises(StorytokError):
        for c in Source.of(p).chunks(MATCHER, chunk_bytes=1 << 14):
            chunks.append(c)
    assert len(chunks) > 3
    with pytest.raises(StorytokError, match="big.jsonl:401:"):
        list(Source.of(p).chunks(MATCHER, chunk_bytes=1 << 14, start=chunks[2].position))


def test_invalid_utf8_in_jsonl(tmp_path):
    p = tmp_path / "u.jsonl"
    p.write_bytes(b'{"text": "ok"}\n{"text": "caf\xe9"}\n')
    with pytest.raises(StorytokError) as e:
        _read(Source.of(p))
    assert "u.jsonl:2: invalid UTF-8" in _one_line(e)


def test_null_and_missing_texts_skipped_when_asked(tmp_path):
    p = _jsonl(tmp_path, ['{"text": "a"}', '{"text": null}', '{"id": 1}', '{"text": "b"}'])
    chunks = list(Source.of(p, skip_bad_docs=True).chunks(MATCHER))
    assert documents(chunks) == ["a", "", "", "b"] and sum(c.bad_docs for c in chunks) == 2
    with pytest.raises(StorytokError, match=r"d.jsonl:2: field 'text' is null"):
        _read(Source.of(p))
    t = pa.table({"text": pa.array(["a", None, "b"])})
    pq.write_table(t, tmp_path / "n.parquet")
    with pytest.raises(StorytokError, match=r"n.parquet: row 1: column 'text' is null.*SKIP_BAD_DOCS=1"):
        _read(Source.of(tmp_path / "n.parquet"))
    chunks = list(Source.of(tmp_path / "n.parquet", skip_bad_docs=True).chunks(MATCHER))
    assert documents(chunks) == ["a", "", "b"] and sum(c.bad_docs for c in chunks) == 1


def test_other_field_name(tmp_path):
    docs = ["one", "two <|endoftext|> three"]
    for kind in ["jsonl", "parquet"]:
        p = write_kind(docs, tmp_path / "f", kind, field="content")
        assert _read(Source.of(p, field="content")) == docs
        with pytest.raises(StorytokError) as e:
            _read(Source.of(p))
        msg = _one_line(e)
        assert "no " in msg and "'text'" in msg and "'content'" in msg and "FIELD=" in msg, msg


def test_parquet_column_errors(tmp_path):
    pq.write_table(pa.table({"id": [1, 2], "text": [3, 4]}), tmp_path / "int.parquet")
    with pytest.raises(StorytokError) as e:
        Source.of(tmp_path / "int.parquet").check()
    assert "int.parquet: column 'text' is int64, not string or large_string" in _one_line(e)
    pq.write_table(pa.table({"body": ["x"]}), tmp_path / "nofield.parquet")
    with pytest.raises(StorytokError) as e:
        Source.of(tmp_path / "nofield.parquet").check()
    assert "nofield.parquet: no column 'text' (columns: 'body')" in _one_line(e)
    (tmp_path / "fake.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(StorytokError) as e:
        Source.of(tmp_path / "fake.parquet").check()
    assert "fake.parquet: not a readable Parquet file" in _one_line(e)
    big = pa.table({"text": pa.array(["x", "yy"], pa.large_string())})
    pq.write_table(big, tmp_path / "large.parquet")
    assert _read(Source.of(tmp_path / "large.parquet")) == ["x", "yy"]


@pytest.mark.parametrize("kind", ["txt.gz", "jsonl.gz", "txt.zst", "jsonl.zst"])
@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_corrupt_compressed_input_is_one_line(tmp_path, kind, damage):
    docs = [f"story number {i} " * 40 for i in range(300)]
    if kind.endswith(".gz"):
        body = (EOT.join(docs) if kind.startswith("txt") else "".join(json.dumps({"text": d}) + "\n" for d in docs))
        p = tmp_path / ("c." + kind)
        p.write_bytes(gzip.compress(body.encode()))
    else:
        p = write_kind(docs, tmp_path / "c", kind)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2] if damage == "truncated" else data[:10] + b"\x00garbage" * 50 + data[-100:])
    with pytest.raises(StorytokError) as e:
        _read(Source.of(p))
    msg = _one_line(e)
    assert p.name in msg and ("corrupt or truncated" in msg or "cannot read them as JSON" in msg), msg


def test_txt_invalid_utf8_names_decompressed_offset(tmp_path):
    p = tmp_path / "b.txt.gz"
    p.write_bytes(gzip.compress(b"good text " * 100 + b"\xff"))
    with pytest.raises(StorytokError, match=r"b.txt.gz: invalid UTF-8 at byte 1000 of the decompressed text"):
        for c in Source.of(p).chunks(MATCHER):
            c.check_utf8()
