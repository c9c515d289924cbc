"""A tokenizer trained and saved by storytok, loaded by Hugging Face `tokenizers` (both
tokenizer.json and vocab.json + merges.txt) and by tiktoken, gives storytok's ids; and
storytok's own saved files load back to the same tokenizer.
"""
from __future__ import annotations

import json
import warnings

import pytest
from hypothesis import given, settings, strategies as st

from conftest import (EOT, GPT2_PAT, decode_gpt2_token, examples, mixed_text, read_gpt2_merges, read_text,
                      shared_path)

tokenizers = pytest.importorskip("tokenizers")
tiktoken = pytest.importorskip("tiktoken")

VOCAB_SIZE = 2000


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from storytok import Tokenizer, train_bpe
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # 2,000 is reachable on the sample: no warning expected
        vocab, merges = train_bpe(shared_path("data", "tinystories_v1_train_sample.txt"), VOCAB_SIZE, [EOT])
    tok = Tokenizer(vocab, merges, special_tokens=[EOT])
    d = tmp_path_factory.mktemp("saved")
    tok.save(d)
    return vocab, [tuple(m) for m in merges], tok, d


def sample_texts():
    return [read_text(shared_path("data", "tinystories_v1_valid_sample.txt")),
            read_text(shared_path("data", "tinystories_v1_train_sample.txt"))[:600_000],
            read_text(shared_path("fixtures", "tinystories_sample.txt")),
            read_text(shared_path("fixtures", "german.txt")),
            read_text(shared_path("fixtures", "address.txt"))]


def _first_diff(got, want):
    i = next((k for k, (g, w) in enumerate(zip(got, want)) if g != w), min(len(got), len(want)))
    return f"first difference at #{i}: storytok {got[max(0, i - 2):i + 3]}, reference {want[max(0, i - 2):i + 3]}"


def test_saved_files_exist_and_encode_what_was_trained(trained):
    """vocab.json / merges.txt decoded with GPT-2's byte mapping (written out in conftest) are
    exactly the trained vocab and merges."""
    vocab, merges, _, d = trained
    for name in ("vocab.json", "merges.txt", "tokenizer.json"):
        assert (d / name).is_file(), name
    raw = json.loads((d / "vocab.json").read_text("utf-8"))
    assert {i: decode_gpt2_token(s) for s, i in raw.items()} == vocab
    assert read_gpt2_merges(d / "merges.txt") == merges


def test_hf_tokenizer_json(trained):
    _, _, tok, d = trained
    hf = tokenizers.Tokenizer.from_file(str(d / "tokenizer.json"))
    for text in sample_texts():
        got, want = tok.encode(text), hf.encode(text).ids
        assert got == want, _first_diff(got, want)
    assert hf.token_to_id(EOT) == tok.encode(EOT)[0]
    assert hf.encode("a" + EOT + "b").ids == tok.encode("a" + EOT + "b")


def test_hf_bytelevel_bpe_from_vocab_and_merges(trained):
    _, _, tok, d = trained
    bl = tokenizers.ByteLevelBPETokenizer(str(d / "vocab.json"), str(d / "merges.txt"), add_prefix_space=False)
    bl.add_special_tokens([EOT])
    for text in sample_texts():
        got, want = tok.encode(text), bl.encode(text).ids
        assert got == want, _first_diff(got, want)


def test_hf_bpe_model_from_file(trained):
    from tokenizers import decoders, models, pre_tokenizers
    _, _, tok, d = trained
    hf = tokenizers.Tokenizer(models.BPE.from_file(str(d / "vocab.json"), str(d / "merges.txt")))
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf.decoder = decoders.ByteLevel()
    hf.add_special_tokens([EOT])
    for text in sample_texts():
        ids = tok.encode(text)
        assert ids == hf.encode(text).ids, _first_diff(ids, hf.encode(text).ids)
        assert hf.decode(ids, skip_special_tokens=False) == text


def test_trained_vocab_vs_tiktoken(trained):
    """tiktoken loaded with storytok's merges as mergeable ranks (ids are ranks in storytok's layout)."""
    vocab, merges, tok, _ = trained
    ranks = {vocab[i]: i for i in range(256 + len(merges))}
    enc = tiktoken.Encoding(name="storytok_trained", pat_str=GPT2_PAT, mergeable_ranks=ranks,
                            special_tokens={EOT: 256 + len(merges)})
    for text in sample_texts():
        got, want = tok.encode(text), enc.encode(text, allowed_special={EOT})
        assert got == want, _first_diff(got, want)


@settings(max_examples=examples(300))
@given(st.text(st.characters(min_codepoint=0, max_codepoint=0x24F, exclude_categories=("Cs",)), max_size=120)
       | st.lists(st.sampled_from(["Once", " upon", " a", " time", "\n\n", "  ", EOT, "'s", "'S", "!", " 42",
                                   "\t", " \u00a0", "\r\n", "ü", "Tom"]), max_size=30).map("".join))
def test_hf_tokenizer_json_generated(trained, text):
    # Latin-range text only: HF's regex engine (Oniguruma) has its own Unicode version
    _, _, tok, d = trained
    hf = _hf_cached(str(d / "tokenizer.json"))
    assert tok.encode(text) == hf.encode(text).ids


_HF = {}


def _hf_cached(path):
    if path not in _HF:
        _HF[path] = tokenizers.Tokenizer.from_file(path)
    return _HF[path]


def test_from_files_roundtrip(trained, tmp_path):
    from storytok import Tokenizer
    vocab, merges, tok, d = trained
    again = Tokenizer.from_files(d / "vocab.json", d / "merges.txt", special_tokens=[EOT])
    for text in sample_texts():
        assert again.encode(text) == tok.encode(text)
    again.save(tmp_path)
    for name in ("vocab.json", "merges.txt"):
        assert (tmp_path / name).read_bytes() == (d / name).read_bytes(), f"{name} changed on re-save"
    assert json.loads((tmp_path / "tokenizer.json").read_text("utf-8")) == \
        json.loads((d / "tokenizer.json").read_text("utf-8"))
    # the string-path form works too
    assert Tokenizer.from_files(str(d / "vocab.json"), str(d / "merges.txt")).encode("Once upon") == \
        tok.encode("Once upon")


def test_gpt2_files_resave_byte_identical_content(tmp_path):
    """GPT-2's files -> storytok -> save: same vocab (as a mapping) and same merges in order."""
    from storytok import Tokenizer
    v, m = shared_path("fixtures", "gpt2_vocab.json"), shared_path("fixtures", "gpt2_merges.txt")
    tok = Tokenizer.from_files(v, m, special_tokens=[EOT])
    tok.save(tmp_path)
    assert json.loads((tmp_path / "vocab.json").read_text("utf-8")) == json.loads(v.read_text("utf-8"))
    assert read_gpt2_merges(tmp_path / "merges.txt") == read_gpt2_merges(m)
    hf = tokenizers.Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    text = read_text(shared_path("fixtures", "tinystories_sample.txt"))
    assert hf.encode(text).ids == tok.encode(text)
