"""Malformed tokenizer files: each is a StorytokError with one clear line naming the file.

Every case starts from a *valid* pair of small files (checked to load) and breaks one thing,
so a failure to raise is never explained by some other problem in the files.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import EOT, encode_gpt2_token


def _errors():
    from storytok import StorytokError
    return StorytokError


def _Tokenizer():
    from storytok import Tokenizer
    return Tokenizer


BASE_MERGES = [(b" ", b"t"), (b"h", b"e"), (b" t", b"he"), (b"i", b"n")]


def base_vocab() -> dict[str, int]:
    v = {encode_gpt2_token(bytes([i])): i for i in range(256)}
    for k, (a, b) in enumerate(BASE_MERGES):
        v[encode_gpt2_token(a + b)] = 256 + k
    v[EOT] = 256 + len(BASE_MERGES)
    return v


def base_merges_text() -> str:
    return "".join(f"{encode_gpt2_token(a)} {encode_gpt2_token(b)}\n" for a, b in BASE_MERGES)


def write(tmp_path, vocab_text: str | bytes | None = None, merges_text: str | bytes | None = None):
    vp, mp = tmp_path / "my_vocab.json", tmp_path / "my_merges.txt"
    vt = json.dumps(base_vocab()) if vocab_text is None else vocab_text
    mt = base_merges_text() if merges_text is None else merges_text
    vp.write_bytes(vt.encode("utf-8") if isinstance(vt, str) else vt)
    mp.write_bytes(mt.encode("utf-8") if isinstance(mt, str) else mt)
    return vp, mp


def expect_error(vp, mp, names: str, special_tokens=None):
    StorytokError = _errors()
    with pytest.raises(StorytokError) as e:
        _Tokenizer().from_files(vp, mp, special_tokens=special_tokens)
    msg = str(e.value)
    assert msg.strip() and "\n" not in msg.strip(), f"message must be one line: {msg!r}"
    assert names in msg, f"message must name {names}: {msg!r}"
    return msg


def test_valid_base_files_load(tmp_path):
    vp, mp = write(tmp_path)
    tok = _Tokenizer().from_files(vp, mp, special_tokens=[EOT])
    assert tok.encode(" the" + EOT) == [258, 260]
    assert tok.decode([258, 260]) == " the" + EOT
    # a "#version" header line (as Hugging Face writes merges.txt) is accepted
    vp2, mp2 = write(tmp_path, merges_text="#version: 0.2\n" + base_merges_text())
    assert _Tokenizer().from_files(vp2, mp2).encode(" the") == [258]


# --- vocab.json ------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "",                                   # empty file
    "{not json",                          # not JSON
    '{"a": 1,}',                          # trailing comma
    "\xff\xfe",                           # not UTF-8 (written as UTF-8 of these chars is valid... see below)
])
def test_vocab_not_json(tmp_path, text):
    vp, mp = write(tmp_path, vocab_text=text)
    expect_error(vp, mp, "my_vocab.json")


def test_vocab_not_utf8(tmp_path):
    vp, mp = write(tmp_path, vocab_text=b'{"\xff": 0}')
    expect_error(vp, mp, "my_vocab.json")


@pytest.mark.parametrize("text", ["[]", "[1, 2]", '"vocab"', "42", "null"])
def test_vocab_not_a_dict(tmp_path, text):
    vp, mp = write(tmp_path, vocab_text=text)
    expect_error(vp, mp, "my_vocab.json")


@pytest.mark.parametrize("bad", ["7", 1.5, None, [3], -1, True])
def test_vocab_non_int_ids(tmp_path, bad):
    v = base_vocab()
    v[encode_gpt2_token(b"in")] = bad
    vp, mp = write(tmp_path, vocab_text=json.dumps(v))
    expect_error(vp, mp, "my_vocab.json")


def test_vocab_duplicate_ids(tmp_path):
    v = base_vocab()
    v[encode_gpt2_token(b"in")] = 256          # same id as " t"
    vp, mp = write(tmp_path, vocab_text=json.dumps(v))
    expect_error(vp, mp, "my_vocab.json")


def test_vocab_token_outside_byte_mapping(tmp_path):
    # "€" (U+20AC) is not one of GPT-2's 256 byte characters: a foreign (non byte-level) vocab
    v = base_vocab()
    v["€"] = 999
    vp, mp = write(tmp_path, vocab_text=json.dumps(v))
    expect_error(vp, mp, "my_vocab.json")


def test_vocab_missing_single_byte(tmp_path):
    # a byte-level vocab must cover all 256 bytes, or some text cannot be encoded
    v = base_vocab()
    del v[encode_gpt2_token(b"\x00")]
    vp, mp = write(tmp_path, vocab_text=json.dumps(v))
    expect_error(vp, mp, "my_vocab.json")


def test_vocab_missing_file(tmp_path):
    _, mp = write(tmp_path)
    expect_error(tmp_path / "absent_vocab.json", mp, "absent_vocab.json")


# --- merges.txt --------------------------------------------------------------------------------------

@pytest.mark.parametrize("line", ["Ġt", "Ġ t he", "Ġ  t", " ", "Ġt\the"])
def test_merges_line_not_two_parts(tmp_path, line):
    vp, mp = write(tmp_path, merges_text=base_merges_text() + line + "\n")
    msg = expect_error(vp, mp, "my_merges.txt")
    assert "5" in msg, f"message should give the line number (5): {msg!r}"


def test_merges_unknown_token(tmp_path):
    # "zq" is not in the vocab
    vp, mp = write(tmp_path, merges_text=base_merges_text() + "zq x\n")
    expect_error(vp, mp, "my_merges.txt")


def test_merges_result_not_in_vocab(tmp_path):
    # both parts are known tokens but their concatenation has no id in vocab.json
    vp, mp = write(tmp_path, merges_text=base_merges_text() + "in in\n")
    expect_error(vp, mp, "my_merges.txt")


def test_merges_token_outside_byte_mapping(tmp_path):
    vp, mp = write(tmp_path, merges_text=base_merges_text() + "€ t\n")
    expect_error(vp, mp, "my_merges.txt")


def test_merges_not_utf8(tmp_path):
    vp, mp = write(tmp_path, merges_text=base_merges_text().encode() + b"\xff \xfe\n")
    expect_error(vp, mp, "my_merges.txt")


def test_merges_missing_file(tmp_path):
    vp, _ = write(tmp_path)
    expect_error(vp, tmp_path / "absent_merges.txt", "absent_merges.txt")


# --- ids that do not fit the requested dtype ------------------------------------------------------------

def test_encode_to_numpy_uint16_overflow_is_an_error():
    """A vocabulary with ids beyond 65,535 must not silently wrap when encoding to uint16."""
    StorytokError = _errors()
    vocab = {i: bytes([i]) for i in range(256)}
    vocab[70_000] = b"<|big|>"
    tok = _Tokenizer()(vocab, [], special_tokens=["<|big|>"])
    assert tok.encode("a<|big|>") == [97, 70_000]
    assert tok.encode_to_numpy("a<|big|>", dtype=np.int64).tolist() == [97, 70_000]
    with pytest.raises((StorytokError, OverflowError, ValueError)):
        tok.encode_to_numpy("a<|big|>", dtype=np.uint16)


# --- special tokens and ids -----------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [[""], ["<|endoftext|>", ""]])
def test_empty_special_token_rejected_by_tokenizer(bad):
    """train_bpe rejects an empty special token; the Tokenizer must too (an empty special
    matches everywhere: it cannot mean anything)."""
    StorytokError = _errors()
    vocab = {i: bytes([i]) for i in range(256)}
    with pytest.raises(StorytokError):
        _Tokenizer()(vocab, [], special_tokens=bad)


def test_empty_special_token_rejected_by_train(tmp_path):
    StorytokError = _errors()
    p = tmp_path / "t.txt"
    p.write_text("hello world hello")
    from storytok import train_bpe
    with pytest.raises(StorytokError):
        train_bpe(p, 270, [""])


@pytest.mark.parametrize("ids", [[300], [-1], [97, 10**6]])
def test_decode_unknown_id(ids):
    StorytokError = _errors()
    vocab = {i: bytes([i]) for i in range(256)}
    with pytest.raises(StorytokError):
        _Tokenizer()(vocab, []).decode(ids)
