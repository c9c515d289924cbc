"""The batch API: encode_batch / encode_arrow equal encode per document (hypothesis, with
empty strings and special tokens), encode / encode_to_numpy of a large string on all cores,
train_bpe from a file, a glob, a list, a JSONL file and an iterator of the same documents,
and the Hugging Face `datasets` recipe."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import tiktoken
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import EOT, GPT2_PAT, examples, mixed_text, read_text, shared_path
from input_kinds import write_kind, write_shards
from storytok import StorytokError, StorytokWarning, Tokenizer, train_bpe
from storytok.bpe import batch

SPECIALS = [EOT, "<|pad|>", EOT + EOT]


class Trained(tuple):
    """(tok, enc, text), with a short repr: hypothesis prints the fixtures of a failing case."""

    def __repr__(self) -> str:
        return f"<tokenizer of {len(self[0])} ids, tiktoken, {len(self[2]):,} chars of text>"


@pytest.fixture(scope="module")
def trained():
    """A tokenizer trained on the real sample, and tiktoken loaded with the same merges."""
    text_path = shared_path("data", "tinystories_v1_valid_sample.txt")
    vocab, merges = train_bpe(str(text_path), 2000, [EOT])
    tok = Tokenizer(vocab, merges, [EOT])
    ranks = {vocab[i]: i for i in range(256 + len(merges))}
    enc = tiktoken.Encoding(name="storytok_batch", pat_str=GPT2_PAT, mergeable_ranks=ranks,
                            special_tokens={EOT: 256 + len(merges)})
    return Trained((tok, enc, read_text(text_path)))


@pytest.fixture(scope="module")
def multi(trained):
    """The same BPE with overlapping specials (longest match wins)."""
    tok = trained[0]
    return Tokenizer(tok.vocab, tok.merges, SPECIALS)


docs_strategy = st.lists(st.one_of(mixed_text, st.just(""), st.sampled_from(SPECIALS),
                                   st.sampled_from(["<|endof", "text|>", "<|pad", "|>"])), max_size=40)


@settings(max_examples=examples(150))
@given(docs=docs_strategy, workers=st.sampled_from([1, 2, 3]))
def test_encode_batch_equals_encode_per_document(multi, docs, workers):
    out = multi.encode_batch(docs, workers=workers)
    assert len(out) == len(docs)
    for d, ids in zip(docs, out):
        assert ids.dtype == np.uint16
        assert ids.tolist() == multi.encode(d), d


@settings(max_examples=examples(100))
@given(docs=docs_strategy)
def test_encode_arrow_ordinary_is_tiktokens_encode_ordinary(trained, docs):
    tok, enc, _ = trained
    arr = tok.encode_arrow(pa.array(docs, pa.large_string()))
    assert arr.type == pa.list_(pa.uint16()) and len(arr) == len(docs)
    assert arr.to_pylist() == [enc.encode_ordinary(d) for d in docs]
    matched = tok.encode_arrow(pa.array(docs), ordinary=False)
    assert matched.to_pylist() == [enc.encode(d, allowed_special={EOT}) for d in docs]


def test_documents_glued_by_a_special_across_their_boundary(multi):
    """Documents lie back to back in one buffer: a special spanning two of them is not one,
    and must not hide the one right after the boundary."""
    docs = ["abc<|endof", "text|>def", "x<|endoftext|><|endof", "text|>", "<|endoftext|>", "", "<|pad|>"]
    want = [multi.encode(d) for d in docs]
    assert [a.tolist() for a in multi.encode_batch(docs)] == want
    assert multi.encode_arrow(pa.array(docs), ordinary=False).to_pylist() == want


def test_encode_arrow_keeps_nulls_and_chunks(trained):
    tok, enc, _ = trained
    arr = pa.array(["one", None, "", "two <|endoftext|>"])
    out = tok.encode_arrow(arr)
    assert out.to_pylist() == [enc.encode_ordinary("one"), None, [], enc.encode_ordinary("two <|endoftext|>")]
    chunked = pa.chunked_array([pa.array(["a b", "c"]), pa.array([], pa.string()), pa.array(["d"])])
    got = tok.encode_arrow(chunked)
    assert isinstance(got, pa.ChunkedArray) and got.num_chunks == 3
    assert got.to_pylist() == [enc.encode_ordinary(x) for x in ["a b", "c", "d"]]
    assert tok.encode_arrow(pa.array([], pa.string())).to_pylist() == []
    if hasattr(pa, "string_view"):
        assert tok.encode_arrow(pa.array(["a b"], pa.string_view())).to_pylist() == [enc.encode_ordinary("a b")]
    with pytest.raises(StorytokError, match="takes a string or large_string array, not int64"):
        tok.encode_arrow(pa.array([1, 2]))


def test_encode_batch_input_errors_and_odd_strings(trained):
    tok = trained[0]
    with pytest.raises(StorytokError, match=r"texts\[2\] is int, expected str"):
        tok.encode_batch(["a", "b", 3])
    with pytest.raises(StorytokError, match=r"texts\[1\] is None"):
        tok.encode_batch(["a", None])
    with pytest.raises(StorytokError, match="for one string use encode_to_numpy"):
        tok.encode_batch("a string")
    odd = ["lone \ud800 surrogate", "", "é" * 10]
    assert [a.tolist() for a in tok.encode_batch(odd)] == [tok.encode(x) for x in odd]
    assert tok.encode_batch([]) == [] and [a.tolist() for a in tok.encode_batch(iter(["x y"]))] == [tok.encode("x y")]


def test_large_batches_and_strings_use_all_cores_with_the_same_ids(trained):
    tok, enc, text = trained
    docs = text.split(EOT) * 6                                # ~10 MB: several groups per worker
    assert sum(map(len, docs)) > 4 * batch.PARALLEL_MIN_BYTES
    one = tok.encode_batch(docs, workers=1)
    two = tok.encode_batch(docs, workers=2)
    assert all(np.array_equal(a, b) for a, b in zip(one, two))
    assert [a.tolist() for a in two[:300]] == [enc.encode_ordinary(d) for d in docs[:300]]
    big = text * 4
    want = tok._encode_bytes(big.encode())
    assert np.array_equal(tok.encode_to_numpy(big), want)
    assert np.array_equal(batch.encode_bytes(tok, big.encode(), workers=3), want)
    assert tok.encode(big[:3_000_000]) == enc.encode(big[:3_000_000], allowed_special={EOT})


def test_full_uint16_vocabulary_falls_back_to_one_call_per_document():
    """With id 65535 taken there is no spare id to mark document ends: still exact."""
    vocab = {i: bytes([i]) for i in range(256)}
    merges = [(b"a", b"b"), (b"ab", b"c")]
    vocab[256], vocab[257] = b"ab", b"abc"
    vocab[65535] = EOT.encode()
    tok = Tokenizer(vocab, merges, [EOT])
    assert batch._marker(tok) is None
    docs = ["abc ab", "", "x<|endoftext|>abc", "abcabc"] * 3
    assert [a.tolist() for a in tok.encode_batch(docs)] == [tok.encode(d) for d in docs]
    assert tok.encode_arrow(pa.array(docs)).to_pylist()[2] == tok.encode("x") + list(b"<|endoftext|>") + [257]


# ---- train_bpe from any source ---------------------------------------------------------------

def test_train_bpe_same_merges_from_file_glob_list_jsonl_parquet_and_iterator(trained, tmp_path):
    text = trained[2]
    docs = text.split(EOT)
    path = tmp_path / "all.txt"
    path.write_text(text, encoding="utf-8", newline="")
    want = train_bpe(str(path), 600, [EOT])
    shards = write_shards(docs, tmp_path / "txt", "txt", 4)
    assert train_bpe(str(tmp_path / "txt" / "*.txt"), 600, [EOT]) == want
    assert train_bpe(shards, 600, [EOT]) == want
    assert train_bpe(tmp_path / "txt", 600, [EOT]) == want
    assert train_bpe(write_shards(docs, tmp_path / "zst", "jsonl.zst", 3), 600, [EOT]) == want
    assert train_bpe(write_kind(docs, tmp_path / "p", "parquet"), 600, [EOT]) == want
    assert train_bpe(iter(docs), 600, [EOT]) == want
    assert train_bpe((d for d in docs), 600, [EOT], workers=1) == want


def test_train_bpe_iterator_documents_are_ordinary_text(tmp_path):
    """From JSONL or an iterator a literal special is text (it is counted), as encoding
    such documents treats it: the same merges as with no specials at all. A .txt file
    splits on it instead."""
    docs = ["a<|endoftext|>b"] * 50
    vocab, merges = train_bpe(iter(docs), 267, [EOT])                 # all 10 merges there are
    assert merges == train_bpe(iter(docs), 266, [])[1]
    assert b"endoftext" in vocab.values() and b"<|" in vocab.values()
    assert train_bpe(write_kind(docs, tmp_path / "d", "jsonl"), 267, [EOT]) == (vocab, merges)
    txt = write_kind(docs, tmp_path / "d", "txt")                      # "a", "b", "a", ...: no pairs
    with pytest.warns(StorytokWarning, match="no pair left to merge after 0 merges"):
        assert train_bpe(txt, 260, [EOT])[1] == []


def test_train_bpe_source_errors(tmp_path):
    with pytest.raises(StorytokError, match="to train on a list of documents, pass an iterator"):
        train_bpe(["Once upon a time there was", "a cat"], 300, [EOT])
    with pytest.raises(StorytokError, match="no file matches"):
        train_bpe(str(tmp_path / "*.jsonl"), 300, [EOT])
    with pytest.raises(StorytokError, match=r"documents\[1\] is int"):
        train_bpe(iter(["a", 5]), 300, [EOT])
    with pytest.raises(StorytokError, match="no text to train on"):
        train_bpe(iter([]), 300, [EOT])
    (tmp_path / "corpus.en").write_text("any text file is read as text when named")
    vocab, merges = train_bpe(tmp_path / "corpus.en", 260, [EOT])
    assert len(merges) == 3


# ---- Hugging Face datasets ------------------------------------------------------------------

def test_hf_datasets_map_recipe(trained):
    datasets = pytest.importorskip("datasets")
    tok, enc, text = trained
    docs = text.split(EOT)[:2000]
    ds = datasets.Dataset.from_dict({"text": docs})
    out = ds.map(lambda b: {"ids": tok.encode_batch(b["text"])}, batched=True, remove_columns=["text"])
    assert out["ids"][:50] == [enc.encode_ordinary(d) for d in docs[:50]]
    assert sum(map(len, out["ids"])) == sum(len(enc.encode_ordinary(d)) for d in docs)
    arrow = ds.with_format("arrow").map(lambda t: pa.table({"ids": tok.encode_arrow(t["text"])}), batched=True)
    assert arrow.features["ids"].feature.dtype == "uint16"
    assert arrow["ids"].to_pylist()[:50] == out["ids"][:50]


@settings(max_examples=examples(60), suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.lists(st.one_of(mixed_text, st.sampled_from(["\ud83d\ude00", "\ud800", "\udfff x", EOT])),
                     max_size=30).map("".join), piece=st.integers(1, 9))
def test_a_large_string_in_slices_gives_the_ids_of_one_call(trained, monkeypatch, text, piece):
    """encode_to_numpy converts a large str slice by slice: any slicing (a surrogate pair cut
    in two included) and any chunking give the ids of one kernel call."""
    tok = trained[0]
    monkeypatch.setattr(batch, "PARALLEL_MIN_BYTES", 1)
    monkeypatch.setattr(batch._StrReader, "PIECE", piece)
    want = tok._encode_bytes(tok._utf8(text))
    assert np.array_equal(batch.encode_text(tok, text, workers=2), want)
