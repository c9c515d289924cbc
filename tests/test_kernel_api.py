"""The stable kernel API (storytok.kernels): the README example runs, and each function
equals its reference: the GPT-2 regex, a Counter of its matches, train_bpe, tiktoken."""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from storytok import Tokenizer, kernels, train_bpe
from storytok.pretokenize.pretokenizer import regex_pretokens

from conftest import shared_path

README = Path(__file__).resolve().parents[1] / "README.md"

TEXTS = st.lists(st.sampled_from(list("ab cd\n\t'sllve1234.,!é€😀 \u00a0\u3000") + ["the", " cat", "'s", "  "]),
                 max_size=80).map("".join)


def test_readme_example_runs():
    text = README.read_text()
    m = re.search(r"<!-- kernel-api-example[^>]*-->\s*```python\n(.*?)```", text, re.S)
    assert m, "README lost the kernel API example"
    exec(compile(m.group(1), "README kernel-api-example", "exec"), {})


def test_api_is_the_package_namespace():
    assert set(kernels.__all__) == {"scan_pretokens", "count_pretokens", "train_merges", "MergeTable",
                                    "merge_table", "encode_spans"}
    with pytest.raises(AttributeError):
        kernels.no_such_kernel


@settings(max_examples=200, deadline=None)
@given(TEXTS)
def test_scan_equals_regex(text):
    data = text.encode()
    starts, ends = kernels.scan_pretokens(data)
    assert [data[s:e].decode() for s, e in zip(starts.tolist(), ends.tolist())] == regex_pretokens(text)


@settings(max_examples=100, deadline=None)
@given(TEXTS, st.integers(1, 3))
def test_count_equals_counter(text, workers):
    words, offsets, counts = kernels.count_pretokens(text.encode(), workers=workers)
    got = {bytes(words[offsets[k]:offsets[k + 1]]): int(c) for k, c in enumerate(counts)}
    assert got == {t.encode(): c for t, c in Counter(regex_pretokens(text)).items()}


def test_count_on_many_threads_equals_one():
    data = (Path(__file__).resolve().parents[1] / "README.md").read_bytes()
    one = kernels.count_pretokens(data)
    two = kernels.count_pretokens(data, workers=4)
    as_dict = lambda w, o, c: {bytes(w[o[k]:o[k + 1]]): int(c[k]) for k in range(len(c))}
    assert as_dict(*one) == as_dict(*two)


def test_train_merges_equals_train_bpe(tmp_path):
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    path = tmp_path / "c.txt"
    path.write_text(text)
    vocab, merges = train_bpe(str(path), 256 + 300)
    left, right = kernels.train_merges(*kernels.count_pretokens(text.encode()), 300)
    names = {i: bytes([i]) for i in range(256)}
    for a, b in zip(left.tolist(), right.tolist()):
        names[len(names)] = names[a] + names[b]
    assert [(names[a], names[b]) for a, b in zip(left.tolist(), right.tolist())] == merges


def test_encode_spans_equals_tokenizer_and_tiktoken():
    pytest.importorskip("tiktoken")
    tok = Tokenizer.from_files(shared_path("fixtures", "gpt2_vocab.json"), shared_path("fixtures", "gpt2_merges.txt"),
                               ["<|endoftext|>"])
    by_bytes = {b: i for i, b in tok.vocab.items()}
    left = [by_bytes[a] for a, _ in tok.merges]
    right = [by_bytes[b] for _, b in tok.merges]
    new = [by_bytes[a + b] for a, b in tok.merges]
    table = kernels.merge_table(left, right, new, [by_bytes[bytes([x])] for x in range(256)])
    text = shared_path("fixtures", "tinystories_sample.txt").read_text()[:50_000] + " naïve café 😀 12345"
    text = text.replace("<|endoftext|>", " ")
    data = text.encode()
    starts, ends = kernels.scan_pretokens(data)
    got = kernels.encode_spans(data, starts, ends, table).tolist()
    assert got == tok.encode(text)
    enc = tok.to_tiktoken()
    assert got == enc.encode_ordinary(text)


def test_bad_arguments_are_value_errors():
    with pytest.raises(ValueError, match="not UTF-8"):
        kernels.scan_pretokens(b"ab\xff")
    with pytest.raises(ValueError, match="offsets"):
        kernels.train_merges(np.zeros(3, np.uint8), np.array([0, 5]), np.array([1]), 3)
    table = kernels.merge_table([97], [98])
    with pytest.raises(ValueError, match="spans"):
        kernels.encode_spans(b"ab", [0], [3], table)
    assert kernels.encode_spans(b"ab", [0], [2], table).tolist() == [256]
