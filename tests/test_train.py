"""train_bpe against outside references: CS336's reference merges/vocab and the oracle trainer.

Every comparison is exact equality with a reference computed independently of storytok
(CS336's fixture files, or tests/oracle_bpe.py written from design.md's rules).
"""
from __future__ import annotations

import json
import re
import warnings
from functools import lru_cache
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from conftest import DATA, EOT, FIXTURES, decode_gpt2_token, examples, mixed_text, read_gpt2_merges, shared_path
from oracle_bpe import oracle_train_bpe, train_from_counts, count_pretokens


def _train_bpe():
    from storytok import train_bpe
    return train_bpe


def _errors():
    from storytok import StorytokError, StorytokWarning
    return StorytokError, StorytokWarning


@lru_cache(maxsize=None)
def oracle(path: str, vocab_size: int, specials: tuple[str, ...] = (EOT,)):
    return oracle_train_bpe(path, vocab_size, list(specials))


def train_quiet(*args, **kwargs):
    """train_bpe, recording StorytokWarnings instead of letting them escape."""
    _, StorytokWarning = _errors()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        vocab, merges = _train_bpe()(*args, **kwargs)
    return vocab, merges, [x for x in w if issubclass(x.category, StorytokWarning)]


def assert_id_layout(vocab: dict[int, bytes], merges: list[tuple[bytes, bytes]], specials: list[str]):
    """bytes 0-255 == byte value, merges next in creation order, specials last (in given order)."""
    assert sorted(vocab) == list(range(len(vocab))), "ids must be 0..len(vocab)-1"
    assert len(vocab) == 256 + len(merges) + len(specials)
    for i in range(256):
        assert vocab[i] == bytes([i]), f"id {i} must be the single byte {i}"
    for k, (a, b) in enumerate(merges):
        assert vocab[256 + k] == a + b, f"merge {k} ({a!r}, {b!r}) must have id {256 + k}"
    base = 256 + len(merges)
    for j, s in enumerate(specials):
        assert vocab[base + j] == s.encode("utf-8"), f"special {s!r} must have id {base + j}"
    # every merge's parts existed before it
    known = {bytes([i]) for i in range(256)}
    for a, b in merges:
        assert a in known and b in known
        known.add(a + b)


# ---------------------------------------------------------------------------------------------
# The oracle itself, checked against CS336's reference (no storytok needed).

def test_oracle_matches_cs336_reference():
    corpus = shared_path("fixtures", "corpus.en")
    vocab, merges = oracle_train_bpe(corpus, 500, [EOT])
    ref_merges = read_gpt2_merges(shared_path("fixtures", "train-bpe-reference-merges.txt"))
    assert merges == ref_merges
    ref_vocab = json.loads(shared_path("fixtures", "train-bpe-reference-vocab.json").read_text("utf-8"))
    assert set(vocab.values()) == {decode_gpt2_token(k) for k in ref_vocab}


def test_oracle_incremental_equals_full_recount_small():
    corpus = shared_path("fixtures", "corpus.en")
    assert oracle_train_bpe(corpus, 350, [EOT]) == oracle_train_bpe(corpus, 350, [EOT], full_recount=True)


@pytest.mark.slow
def test_oracle_incremental_equals_full_recount_tinystories():
    path = shared_path("data", "tinystories_v1_train_sample.txt")
    assert oracle_train_bpe(path, 1000, [EOT]) == oracle_train_bpe(path, 1000, [EOT], full_recount=True)


# ---------------------------------------------------------------------------------------------
# storytok vs the references

def test_cs336_reference_merges_and_vocab():
    corpus = shared_path("fixtures", "corpus.en")
    vocab, merges, warns = train_quiet(corpus, 500, [EOT])
    ref_merges = read_gpt2_merges(shared_path("fixtures", "train-bpe-reference-merges.txt"))
    assert not warns
    assert len(merges) == len(ref_merges) == 243
    for k, (got, want) in enumerate(zip(merges, ref_merges)):
        assert tuple(got) == want, f"merge #{k}: got {got!r}, reference {want!r}"
    ref_vocab = json.loads(shared_path("fixtures", "train-bpe-reference-vocab.json").read_text("utf-8"))
    ref_values = {decode_gpt2_token(k) for k in ref_vocab}
    assert len(vocab) == 500
    assert set(vocab.values()) == ref_values, (
        f"only storytok: {sorted(set(vocab.values()) - ref_values)[:10]}; "
        f"only reference: {sorted(ref_values - set(vocab.values()))[:10]}")
    assert_id_layout(vocab, merges, [EOT])


def test_accepts_str_and_path():
    corpus = shared_path("fixtures", "corpus.en")
    v1, m1, _ = train_quiet(str(corpus), 300, [EOT])
    v2, m2, _ = train_quiet(Path(corpus), 300, [EOT])
    assert m1 == m2 and v1 == v2


def _first_diff(got, want):
    for k, (g, w) in enumerate(zip(got, want)):
        if tuple(g) != tuple(w):
            return f"first difference at merge #{k}: storytok {g!r}, oracle {w!r}"
    return f"lengths differ: storytok {len(got)}, oracle {len(want)}"


@pytest.mark.parametrize("vocab_size", [1000, 10000])
@pytest.mark.parametrize("name", ["tinystories_v1_train_sample.txt", "tinystories_v1_valid_sample.txt"])
def test_samples_match_oracle(name, vocab_size):
    path = shared_path("data", name)
    o_vocab, o_merges = oracle(str(path), vocab_size)
    vocab, merges, warns = train_quiet(path, vocab_size, [EOT])
    merges = [tuple(m) for m in merges]
    assert merges == o_merges, _first_diff(merges, o_merges)
    assert vocab == o_vocab
    assert_id_layout(vocab, merges, [EOT])
    reachable = len(o_vocab) == vocab_size
    # the valid sample cannot reach 10,000 (the oracle runs out of pairs at ~7,600): warn then
    assert bool(warns) == (not reachable), [str(w.message) for w in warns]
    if not reachable:
        assert str(len(o_vocab)) in str(warns[0].message)


def test_workers_1_and_2_identical():
    path = shared_path("data", "tinystories_v1_train_sample.txt")
    v1, m1, _ = train_quiet(path, 1000, [EOT], workers=1)
    v2, m2, _ = train_quiet(path, 1000, [EOT], workers=2)
    assert m1 == m2
    assert v1 == v2


def test_workers_identical_specials_everywhere(tmp_path):
    # many short documents, specials back to back, at the start and end: chunk cuts land on them
    docs = ["Once upon a time", "", " there was\n\n a cat", "\n", "It's  big!!", "  ", "the end."]
    text = EOT + EOT.join(docs * 400) + EOT + EOT
    p = tmp_path / "many_docs.txt"
    p.write_bytes(text.encode("utf-8"))
    o_vocab, o_merges = oracle_train_bpe(p, 330, [EOT])
    for workers in (1, 2, 3):
        vocab, merges, _ = train_quiet(p, 330, [EOT], workers=workers)
        assert [tuple(m) for m in merges] == o_merges, f"workers={workers}"
        assert vocab == o_vocab


@pytest.mark.parametrize("case", ["eot-is-text", "no-specials-in-file", "crlf"])
def test_workers_big_file_without_usable_cuts(tmp_path, case):
    """Parallel counting must cut chunks safely even where no configured special occurs:
    specials=[] (the file's <|endoftext|> is plain text), a 2 MB file with no special at all,
    and the same with \r\n line ends."""
    text = shared_path("data", "tinystories_v1_train_sample.txt").read_bytes().decode("utf-8")
    specials = [EOT]
    if case == "eot-is-text":
        specials = []
    elif case == "no-specials-in-file":
        text = text.replace(EOT, "\n")
    else:
        text = text.replace(EOT, "").replace("\n", "\r\n")
    p = tmp_path / "big.txt"
    p.write_bytes(text.encode("utf-8"))
    o_vocab, o_merges = oracle_train_bpe(p, 500, specials)
    for workers in (1, 2):
        vocab, merges, _ = train_quiet(p, 500, specials, workers=workers)
        assert [tuple(m) for m in merges] == o_merges, f"workers={workers}: " + _first_diff(merges, o_merges)
        assert vocab == o_vocab


# ---------------------------------------------------------------------------------------------
# special tokens

def test_specials_never_counted_nothing_merges_across(tmp_path):
    # Correct: the pre-tokens are only "x" and "y" -> no pair at all, nothing to merge.
    # Counting the special would merge '<' '|' ...; deleting it and joining would merge 'x' 'y'.
    p = tmp_path / "x_eot_y.txt"
    p.write_bytes(("x" + EOT + "y" + EOT) .encode() * 200)
    _, StorytokWarning = _errors()
    with pytest.warns(StorytokWarning):
        vocab, merges = _train_bpe()(p, 300, [EOT])
    assert merges == []
    assert len(vocab) == 257
    assert vocab[256] == EOT.encode()


def test_specials_split_words_compared_to_oracle(tmp_path):
    text = ("the cat<|endoftext|>sat on<|endoftext|><|endoftext|> the mat. " * 50
            + "<|endoftext|>|endoftext|><|endoftext <|endoftext|\n" * 30)
    p = tmp_path / "glued.txt"
    p.write_bytes(text.encode())
    o_vocab, o_merges = oracle_train_bpe(p, 290, [EOT])
    vocab, merges, _ = train_quiet(p, 290, [EOT])
    assert [tuple(m) for m in merges] == o_merges
    assert vocab == o_vocab
    for a, b in merges:
        assert EOT.encode() not in a + b


@pytest.mark.parametrize("specials", [["[.*]", "a|b"], ["a|b", "[.*]", "(x)+", "^$\\d"], ["<|endoftext|>", "<|endoftext|><|endoftext|>"]])
def test_specials_with_regex_metacharacters_are_literal(tmp_path, specials):
    # Unescaped, "[.*]" would match every '.' and '*', "a|b" every 'a' and every 'b'.
    text = ("a cab. a|b ab*ab [.*] baa.. [.*][.*]a|b (x)+ xx+ ^$\\d $d ^ "
            "<|endoftext|><|endoftext|><|endoftext|> aab\n") * 60
    p = tmp_path / "meta.txt"
    p.write_bytes(text.encode())
    o_vocab, o_merges = oracle_train_bpe(p, 300, specials)
    vocab, merges, _ = train_quiet(p, 300, specials)
    assert [tuple(m) for m in merges] == o_merges
    assert vocab == o_vocab
    assert_id_layout(vocab, [tuple(m) for m in merges], specials)


def test_multibyte_special(tmp_path):
    specials = ["<|ende|>", "§§", "🙂"]
    text = "héllo wörld §§ naïve 🙂🙂 café<|ende|>crème brûlée 🙂 " * 40
    p = tmp_path / "mb.txt"
    p.write_bytes(text.encode())
    o_vocab, o_merges = oracle_train_bpe(p, 320, specials)
    vocab, merges, _ = train_quiet(p, 320, specials)
    assert [tuple(m) for m in merges] == o_merges
    assert vocab == o_vocab


def test_no_special_tokens(tmp_path):
    p = tmp_path / "plain.txt"
    p.write_bytes(("low lower lowest newer wider " + EOT + " new\n") .encode() * 20)
    o_vocab, o_merges = oracle_train_bpe(p, 290, [])
    vocab, merges, _ = train_quiet(p, 290, [])
    assert [tuple(m) for m in merges] == o_merges   # <|endoftext|> is ordinary text here
    assert vocab == o_vocab


# ---------------------------------------------------------------------------------------------
# tie-breaking and merge application details, checked on tiny inputs against the oracle

@pytest.mark.parametrize("text", [
    "aaaa aaa aa a",                      # overlapping pairs: 'aaa' counts (a,a) twice, merges once
    "ab ba ab ba cd dc",                  # ties everywhere: greatest (left, right) bytes wins
    "A a B b \u00e9 \u00c9 z Z",          # upper/lower and multi-byte ties
    "\u00ff\u00fe \u0100\u0101 \u00ff\u00fe \u0100\u0101",  # ties on non-ASCII byte values (>= 0x80)
    "the the the then then thee",
])
def test_tiny_corpora_match_oracle(tmp_path, text):
    p = tmp_path / "tiny.txt"
    p.write_bytes(text.encode())
    o_vocab, o_merges = oracle_train_bpe(p, 256 + 1 + 12, [EOT])
    vocab, merges, _ = train_quiet(p, 256 + 1 + 12, [EOT])
    assert [tuple(m) for m in merges] == o_merges
    assert vocab == o_vocab


def test_tie_break_is_by_bytes_not_ids(tmp_path):
    # After (a,b) -> id 256, the pairs (ab, c) and (z, c) tie at 3. By bytes b"z" > b"ab" wins;
    # an implementation breaking ties by token id (256 > 122) would pick (ab, c).
    p = tmp_path / "tie.txt"
    p.write_bytes(b"abc\nabc\nabc\nzc\nzc\nzc\nab\nab")
    o_vocab, o_merges = oracle_train_bpe(p, 256 + 3, [])
    assert o_merges[:2] == [(b"a", b"b"), (b"z", b"c")]
    vocab, merges, _ = train_quiet(p, 256 + 3, [])
    assert [tuple(m) for m in merges] == o_merges


def test_tie_break_compares_pairs_not_concatenations(tmp_path):
    # After (a,b) and (z,z): (ab, c) and (a, zz) tie at 3. As pairs (b"ab", b"c") > (b"a", b"zz");
    # comparing the concatenations instead (b"abc" < b"azz") would pick (a, zz).
    p = tmp_path / "tie2.txt"
    p.write_bytes(b"\n".join([b"ab"] * 5 + [b"abc"] * 3 + [b"azz"] * 3))
    o_vocab, o_merges = oracle_train_bpe(p, 256 + 4, [])
    assert o_merges == [(b"a", b"b"), (b"z", b"z"), (b"ab", b"c"), (b"a", b"zz")]
    vocab, merges, _ = train_quiet(p, 256 + 4, [])
    assert [tuple(m) for m in merges] == o_merges


_alphabet = st.sampled_from(list("aabbc ") + ["\n", "é", "'s", "1", "!", EOT])


@settings(max_examples=examples(150))
@given(parts=st.lists(_alphabet, min_size=1, max_size=120), extra=st.integers(0, 30))
def test_random_small_corpora_match_oracle(tmp_path_factory, parts, extra):
    # few symbols -> ties at every step, overlapping runs ("aaa"), specials glued to text
    text = "".join(parts)
    p = tmp_path_factory.mktemp("rand") / "r.txt"
    p.write_bytes(text.encode())
    if not text.replace(EOT, ""):
        return
    vs = 257 + extra
    o_vocab, o_merges = oracle_train_bpe(p, vs, [EOT])
    vocab, merges, _ = train_quiet(p, vs, [EOT])
    assert [tuple(m) for m in merges] == o_merges
    assert vocab == o_vocab


@settings(max_examples=examples(100))
@given(docs=st.lists(mixed_text, min_size=1, max_size=6), extra=st.integers(0, 40))
def test_random_unicode_corpora_match_oracle(tmp_path_factory, docs, extra):
    # arbitrary Unicode, every whitespace kind (\r\n kept as is), contractions, specials between docs
    text = EOT.join(docs)
    if not text.replace(EOT, ""):
        return
    p = tmp_path_factory.mktemp("uni") / "u.txt"
    p.write_bytes(text.encode("utf-8"))
    vs = 257 + extra
    o_vocab, o_merges = oracle_train_bpe(p, vs, [EOT])
    vocab, merges, _ = train_quiet(p, vs, [EOT])
    assert [tuple(m) for m in merges] == o_merges
    assert vocab == o_vocab


@settings(max_examples=examples(100))
@given(specials=st.lists(st.sampled_from(["ab", "ba", "aba", "<|x|>", "<|x|><|x|>", "xaby", "\n\n", "é", "a b"]),
                         min_size=1, max_size=4, unique=True),
       text=st.lists(st.sampled_from(["a", "b", "x", "y", " ", "\n", "<|x|>", "é", "ab", "ba", "aab"]),
                     min_size=1, max_size=80).map("".join),
       extra=st.integers(0, 20))
def test_overlapping_specials_match_oracle(tmp_path_factory, specials, text, extra):
    p = tmp_path_factory.mktemp("spec") / "s.txt"
    p.write_bytes(text.encode("utf-8"))
    vs = 256 + len(specials) + extra
    o_vocab, o_merges = oracle_train_bpe(p, vs, specials)
    vocab, merges, _ = train_quiet(p, vs, specials)
    assert [tuple(m) for m in merges] == o_merges
    assert vocab == o_vocab


def test_crlf_and_unicode_whitespace_kept(tmp_path):
    # the file's bytes are the corpus: no newline translation (\r\n stays two bytes)
    text = "Once upon\r\na time\r\n\r\n  there\u00a0was\u2028a cat\u3000\u3000in\x85 a hat.\r\n" * 30
    p = tmp_path / "crlf.txt"
    p.write_bytes(text.encode())
    o_vocab, o_merges = oracle_train_bpe(p, 300, [EOT])
    assert (b"\r", b"\n") in o_merges
    vocab, merges, _ = train_quiet(p, 300, [EOT])
    assert [tuple(m) for m in merges] == o_merges


def test_progress_true_same_result(tmp_path, capsys):
    corpus = shared_path("fixtures", "corpus.en")
    v1, m1, _ = train_quiet(corpus, 400, [EOT], progress=True)
    v2, m2, _ = train_quiet(corpus, 400, [EOT], progress=False)
    assert m1 == m2 and v1 == v2


# ---------------------------------------------------------------------------------------------
# errors and warnings

def _one_line(msg: str):
    assert msg and "\n" not in msg.strip(), f"message must be one line: {msg!r}"


def test_vocab_size_too_small(tmp_path):
    StorytokError, _ = _errors()
    p = shared_path("fixtures", "corpus.en")
    for vs, specials in [(256, [EOT]), (100, [EOT]), (257, [EOT, "<|pad|>"]), (0, [])]:
        with pytest.raises(StorytokError) as e:
            _train_bpe()(p, vs, specials)
        _one_line(str(e.value))


def test_vocab_size_exactly_bytes_plus_specials(tmp_path):
    p = shared_path("fixtures", "corpus.en")
    vocab, merges, warns = train_quiet(p, 257, [EOT])
    assert merges == [] and len(vocab) == 257 and vocab[256] == EOT.encode()
    assert not warns


def test_missing_file(tmp_path):
    StorytokError, _ = _errors()
    p = tmp_path / "no_such_file.txt"
    with pytest.raises(StorytokError) as e:
        _train_bpe()(p, 300, [EOT])
    _one_line(str(e.value))
    assert "no_such_file.txt" in str(e.value)


def test_empty_file(tmp_path):
    StorytokError, _ = _errors()
    p = tmp_path / "empty_input.txt"
    p.write_bytes(b"")
    with pytest.raises(StorytokError) as e:
        _train_bpe()(p, 300, [EOT])
    _one_line(str(e.value))
    assert "empty_input.txt" in str(e.value)


def _has_number(msg: str, n: int) -> bool:
    return bool(re.search(rf"(?<![\d,_]){n}(?![\d,_])", msg)) or f"{n:,}" in msg or f"{n:_}" in msg


@pytest.mark.parametrize("bad,where", [
    (b"\xff", 120),                    # never valid
    (b"\xc3(", 120),                   # bad continuation
    (b"\xed\xa0\x80", 120),            # encoded surrogate
    (b"\xe2\x82", None),               # truncated sequence at end of file
])
def test_invalid_utf8_names_offset(tmp_path, bad, where):
    StorytokError, _ = _errors()
    head = b"hello world\n" * 10      # 120 bytes
    data = head + bad + (b" more text\n" * 5 if where is not None else b"")
    p = tmp_path / "bad_utf8.txt"
    p.write_bytes(data)
    with pytest.raises(StorytokError) as e:
        _train_bpe()(p, 300, [EOT])
    msg = str(e.value)
    _one_line(msg)
    assert "bad_utf8.txt" in msg
    assert _has_number(msg, 120), f"message must give the byte offset 120: {msg!r}"


def test_invalid_utf8_offset_absolute_with_workers(tmp_path):
    # the bad byte deep in the file: with parallel chunks, the offset must still be absolute
    StorytokError, _ = _errors()
    good = shared_path("data", "tinystories_v1_train_sample.txt").read_bytes()
    cut = good.index(b" ", 1_500_000)
    data = good[:cut] + b"\x80" + good[cut:]
    p = tmp_path / "bad_deep.txt"
    p.write_bytes(data)
    for workers in (1, 2):
        with pytest.raises(StorytokError) as e:
            _train_bpe()(p, 300, [EOT], workers=workers)
        msg = str(e.value)
        _one_line(msg)
        assert _has_number(msg, cut), f"workers={workers}: expected byte offset {cut} in {msg!r}"


@pytest.mark.timeout(120)
def test_unreachable_vocab_size_warns_and_returns(tmp_path):
    p = tmp_path / "small.txt"
    p.write_bytes(b"ab ab abc abc abcd" + EOT.encode() + b" xyz")
    o_vocab, o_merges = oracle_train_bpe(p, 10_000, [EOT])
    _, StorytokWarning = _errors()
    with pytest.warns(StorytokWarning) as rec:
        vocab, merges = _train_bpe()(p, 10_000, [EOT])
    reached = len(o_vocab)
    assert reached < 300
    msgs = [str(w.message) for w in rec if issubclass(w.category, StorytokWarning)]
    assert any(_has_number(m, reached) for m in msgs), f"warning must mention reached size {reached}: {msgs}"
    assert [tuple(m) for m in merges] == o_merges
    assert vocab == o_vocab
    assert_id_layout(vocab, [tuple(m) for m in merges], [EOT])


@pytest.mark.timeout(120)
def test_only_specials_file(tmp_path):
    # no ordinary text at all: nothing to count; either a clear error or bytes + specials + warning
    StorytokError, StorytokWarning = _errors()
    p = tmp_path / "only_specials.txt"
    p.write_bytes(EOT.encode() * 100)
    try:
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            vocab, merges = _train_bpe()(p, 300, [EOT])
    except StorytokError as e:
        _one_line(str(e))
        return
    assert merges == [] and len(vocab) == 257
    assert any(issubclass(x.category, StorytokWarning) for x in w)
