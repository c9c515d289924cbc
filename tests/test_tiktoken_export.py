"""tiktoken export/import: `Tokenizer.to_tiktoken()`, the `tokenizer.tiktoken` file `save`
writes, and `Tokenizer.from_tiktoken`.

References from outside storytok: tiktoken itself (its Encoding and `load_tiktoken_bpe`),
GPT-2's own files read by conftest (not by storytok), and random BPEs for which tiktoken
must either give our ids or the export must be refused (never a different tokenizer).
"""
from __future__ import annotations

import base64
import re
import sys
import warnings

import pytest
from hypothesis import given, settings, strategies as st

from conftest import EOT, examples, fixture_texts, mixed_text, read_gpt2_merges, read_gpt2_vocab, read_text, shared_path

tiktoken = pytest.importorskip("tiktoken")
from tiktoken.load import load_tiktoken_bpe  # noqa: E402

from test_tokenizer_gpt2 import scrub  # noqa: E402  (code points tiktoken's older Unicode classes differently)
from storytok import StorytokError, StorytokWarning, Tokenizer  # noqa: E402


@pytest.fixture(scope="module")
def gpt2():
    v, m = shared_path("fixtures", "gpt2_vocab.json"), shared_path("fixtures", "gpt2_merges.txt")
    return Tokenizer.from_files(v, m, [EOT])


@pytest.fixture(scope="module")
def trained():
    from storytok import train_bpe
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StorytokWarning)
        vocab, merges = train_bpe(shared_path("fixtures", "tinystories_sample.txt"), 700, [EOT])
    return Tokenizer(vocab, merges, [EOT])


@pytest.fixture(scope="module")
def encodings(gpt2, trained):
    return {"gpt2": (gpt2, gpt2.to_tiktoken()), "trained": (trained, trained.to_tiktoken())}


@pytest.fixture(scope="module")
def ordinary(gpt2, trained):
    """The same BPEs without special tokens (<|endoftext|> is then plain text, as in encode_ordinary)."""
    return {"gpt2": Tokenizer(gpt2.vocab, gpt2.merges), "trained": Tokenizer(trained.vocab, trained.merges)}


def texts():
    return [read_text(p) for p in fixture_texts() if p.exists()]


def tt(enc, text: str) -> list[int]:
    return enc.encode(text, allowed_special="all")


# --- to_tiktoken ------------------------------------------------------------------------------------

def test_gpt2_export_is_gpt2s_own_ranks(gpt2, encodings):
    """The exported ranks are GPT-2's vocab.json (read by conftest, not storytok) minus <|endoftext|>."""
    want = read_gpt2_vocab(shared_path("fixtures", "gpt2_vocab.json"))
    want.pop(EOT.encode())
    enc = encodings["gpt2"][1]
    assert enc._mergeable_ranks == want and enc._special_tokens == {EOT: 50256}


@pytest.mark.parametrize("name", ["gpt2", "trained"])
def test_to_tiktoken_equals_our_ids_on_fixtures(encodings, name):
    tok, enc = encodings[name]
    all_texts = texts()
    assert len(all_texts) >= 4
    for text in all_texts + [EOT.join(all_texts)]:
        assert tt(enc, text) == tok.encode(text)
        assert enc.decode(tok.encode(text)) == text


@pytest.mark.parametrize("name", ["gpt2", "trained"])
@settings(max_examples=examples(150))
@given(text=mixed_text)
def test_to_tiktoken_equals_our_ids_on_generated_text(encodings, ordinary, name, text):
    tok, enc = encodings[name]
    text = scrub(text)
    assert tt(enc, text) == tok.encode(text)
    assert enc.encode_ordinary(text) == ordinary[name].encode(text)


def test_tiktoken_not_installed_is_one_clear_line(trained, monkeypatch):
    monkeypatch.setitem(sys.modules, "tiktoken", None)   # import tiktoken -> ImportError
    with pytest.raises(StorytokError, match=r"pip install tiktoken") as e:
        trained.to_tiktoken()
    assert "\n" not in str(e.value)


# --- tokenizer.tiktoken -----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["gpt2", "trained"])
def test_saved_file_loads_with_tiktoken(encodings, name, tmp_path):
    tok, _ = encodings[name]
    tok.save(tmp_path)
    ranks = load_tiktoken_bpe(str(tmp_path / "tokenizer.tiktoken"))
    assert ranks == {b: i for i, b in tok.vocab.items() if i not in tok.special_ids.values()}
    enc = tiktoken.Encoding("from_file", pat_str=encodings[name][1]._pat_str, mergeable_ranks=ranks,
                            special_tokens=dict(tok.special_ids))
    for text in texts():
        assert tt(enc, text) == tok.encode(text)


@pytest.mark.parametrize("name", ["gpt2", "trained"])
def test_from_tiktoken_round_trips(encodings, name, tmp_path):
    tok, _ = encodings[name]
    tok.save(tmp_path)
    forms = ([EOT], {EOT: tok.special_ids[EOT]}) if name == "trained" else ({EOT: 50256},)   # (GPT-2 loads slowly)
    for specials in forms:
        again = Tokenizer.from_tiktoken(tmp_path / "tokenizer.tiktoken", specials)
        assert again.vocab == tok.vocab and again.merges == tok.merges and again.special_ids == tok.special_ids
        assert again.fingerprint() == tok.fingerprint()
    text = texts()[0]
    assert again.encode(text) == tok.encode(text)


def test_from_tiktoken_recovers_gpt2s_merges(tmp_path):
    """A rank file written by hand from GPT-2's vocab.json (no storytok) gives GPT-2's merges.txt."""
    ranks = read_gpt2_vocab(shared_path("fixtures", "gpt2_vocab.json"))
    ranks.pop(EOT.encode())
    p = tmp_path / "gpt2.tiktoken"
    p.write_bytes(b"".join(base64.b64encode(b) + b" %d\n" % r for b, r in ranks.items()))
    tok = Tokenizer.from_tiktoken(p, [EOT])
    assert tok.merges == read_gpt2_merges(shared_path("fixtures", "gpt2_merges.txt"))
    assert tok.special_ids == {EOT: 50256}


def test_fingerprint_and_loading_ignore_the_new_file(trained, tmp_path):
    """from_dir reads the GPT-2 files as before: with or without tokenizer.tiktoken, same tokenizer."""
    trained.save(tmp_path)
    fp = Tokenizer.from_dir(tmp_path).fingerprint()
    (tmp_path / "tokenizer.tiktoken").unlink()
    assert Tokenizer.from_dir(tmp_path).fingerprint() == fp == trained.fingerprint()


def test_up_to_date_tokenizer_gets_the_file_without_changing(tmp_path):
    """A folder trained before save wrote tokenizer.tiktoken stays up to date (same fingerprint,
    so encoded splits stay current) and gains the file."""
    from storytok.bpe.tokenizer_store import train_into_dir
    train = shared_path("fixtures", "tinystories_sample.txt")
    r = train_into_dir(train, 400, tmp_path / "tok", progress=False)
    (tmp_path / "tok" / "tokenizer.tiktoken").unlink()
    before = {p.name: p.read_bytes() for p in (tmp_path / "tok").iterdir()}
    again = train_into_dir(train, 400, tmp_path / "tok", progress=False)
    assert again.up_to_date and again.tokenizer.fingerprint() == r.tokenizer.fingerprint()
    after = {p.name: p.read_bytes() for p in (tmp_path / "tok").iterdir()}
    assert after.pop("tokenizer.tiktoken") and after == before


# --- refused: never a silently different tokenizer -------------------------------------------------

def _renumbered(tok: Tokenizer) -> Tokenizer:
    """The same BPE with the ids of two merged tokens swapped: ids no longer in merge order."""
    vocab = dict(tok.vocab)
    vocab[300], vocab[400] = vocab[400], vocab[300]
    return Tokenizer(vocab, tok.merges, tok.special_tokens)


def _abc(merges, specials=(EOT,)) -> Tokenizer:
    vocab = {i: bytes([i]) for i in range(256)}
    for a, b in merges:
        vocab[len(vocab)] = a + b
    return Tokenizer(vocab, merges, list(specials))


@pytest.mark.parametrize("case,words", [
    ("renumbered", "not in merge order"),
    ("gpt2_top10k", "renumbering of GPT-2"),
    ("non_canonical", "tiktoken's rank order builds it from b'a' + b'bc'"),
    ("orphan", "made by no merge"),
    ("duplicate_bytes", "has two ids"),
    ("overlapping_specials", "overlap"),
])
def test_export_refused_in_one_line(trained, gpt2, case, words, tmp_path):
    if case == "renumbered":
        tok = _renumbered(trained)
    elif case == "gpt2_top10k":
        from storytok.bpe.gpt2_top10k import CompactTokenizer
        tok = CompactTokenizer(gpt2, [262, 290, 50256, -1])
    elif case == "non_canonical":   # bc first, then ab, then abc from (ab, c): tiktoken makes abc from a + bc
        tok = _abc([(b"b", b"c"), (b"a", b"b"), (b"ab", b"c")])
        assert tok.encode("abc") == [ord("a"), 256]
    elif case == "orphan":
        tok = _abc([(b"a", b"b")])
        tok = Tokenizer({**tok.vocab, 257: b"xyz"}, tok.merges, [])
    elif case == "duplicate_bytes":
        tok = Tokenizer({**{i: bytes([i]) for i in range(256)}, 256: b"a"}, [], [])
    else:
        tok = _abc([(b"a", b"b")], specials=[EOT, EOT + EOT])
    with pytest.raises(StorytokError, match=re.escape(words)) as e:
        tok.to_tiktoken()
    assert "\n" not in str(e.value)
    if isinstance(tok, Tokenizer):   # save keeps the other files, warns, and leaves no (stale) rank file
        (tmp_path / "tokenizer.tiktoken").write_text("stale")
        with pytest.warns(StorytokWarning, match=re.escape(words)):
            tok.save(tmp_path)
        assert not (tmp_path / "tokenizer.tiktoken").exists()
        if case != "duplicate_bytes":   # (vocab.json cannot hold one token under two ids)
            assert Tokenizer.from_dir(tmp_path).fingerprint() == tok.fingerprint()


_letters = st.sampled_from([b"a", b"b", b"c", b" "])


@st.composite
def random_bpe(draw):
    """A random merge list over a few letters (often not one training would make), ids in merge
    order or shuffled."""
    tokens, merges = [b"a", b"b", b"c", b" "], []
    for _ in range(draw(st.integers(1, 25))):
        a, b = draw(st.sampled_from(tokens)), draw(st.sampled_from(tokens))
        if a + b not in tokens and len(a + b) <= 8:
            merges.append((a, b))
            tokens.append(a + b)
    made = list(range(256, 256 + len(merges)))
    if draw(st.booleans()):
        made = draw(st.permutations(made))
    vocab = {i: bytes([i]) for i in range(256)}
    vocab.update({i: a + b for i, (a, b) in zip(made, merges)})
    return Tokenizer(vocab, merges, [EOT])


@settings(max_examples=examples(300))
@given(tok=random_bpe(), words=st.lists(st.lists(_letters, max_size=14).map(b"".join), min_size=1, max_size=8))
def test_random_bpe_exports_exactly_or_is_refused(tok, words):
    text = EOT.join(w.decode() for w in words)
    try:
        enc = tok.to_tiktoken()
    except StorytokError as e:
        assert "\n" not in str(e)
        return
    assert tt(enc, text) == tok.encode(text)


# --- bad rank files ---------------------------------------------------------------------------------

def _line(b: bytes, r: int) -> str:
    return f"{base64.b64encode(b).decode()} {r}\n"


BYTES = "".join(_line(bytes([i]), i) for i in range(256))


@pytest.mark.parametrize("content,words", [
    (BYTES + "!!notbase64!! 256\n", "not valid base64"),
    (BYTES + _line(b"ab", 255), "rank 255 was already given on line 256"),
    (BYTES + _line(b"a", 256), "token b'a' was already given"),
    (BYTES + _line(b"ab", 257), "ranks skip 256"),
    (BYTES + _line(b"ab", 256) + _line(b"abc", 300), "ranks skip 257 and 42 more"),
    (BYTES + "YWI= 256 extra\n", "line 257"),
    (BYTES + "YWI= -3\n", "not a non-negative integer"),
    ("".join(_line(bytes([i]), i) for i in range(255)), "lacks 1 single byte"),
    (BYTES + _line(b"abc", 256), "cannot be built from two tokens of lower rank"),
    ("", "no tokens"),
    (BYTES + _line(EOT.encode(), 256), "also an ordinary token"),
])
def test_bad_rank_file_is_one_clear_line(tmp_path, content, words):
    p = tmp_path / "bad.tiktoken"
    p.write_text(content)
    with pytest.raises(StorytokError, match=words) as e:
        Tokenizer.from_tiktoken(p, [EOT])
    assert str(p) in str(e.value) and "\n" not in str(e.value)


def test_special_ids_may_fill_gaps_but_not_clash(tmp_path):
    """cl100k style: specials at given ids (a hole below the ranks filled by one is fine)."""
    p = tmp_path / "r.tiktoken"
    p.write_text("".join(_line(bytes([i]), i + 1) for i in range(256)) + _line(b"ab", 257))
    tok = Tokenizer.from_tiktoken(p, {EOT: 0})
    assert tok.special_ids == {EOT: 0} and tok.merges == [(b"a", b"b")] and tok.encode("ab" + EOT) == [257, 0]
    with pytest.raises(StorytokError, match="ranks skip 0"):
        Tokenizer.from_tiktoken(p, [EOT])
    with pytest.raises(StorytokError, match="rank 257 .* also given to a special token"):
        Tokenizer.from_tiktoken(p, {EOT: 257})
    assert Tokenizer.from_tiktoken(p, {EOT: 0}).to_tiktoken().encode("ab" + EOT, allowed_special="all") == [257, 0]


def test_missing_rank_file(tmp_path):
    with pytest.raises(StorytokError, match="no such tiktoken rank file"):
        Tokenizer.from_tiktoken(tmp_path / "nope.tiktoken", [EOT])
