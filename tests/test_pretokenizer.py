"""The Numba scanner against the `regex` package running the GPT-2 pattern (issue 4, item 1).

Reference: `regex.findall(GPT2_PAT, text)` computed here, independently of storytok's copy.
Comparison is pre-token by pre-token; a failure reports the first differing pre-token with
its code points and context.
"""
from __future__ import annotations

import sys
import unicodedata

import pytest
import regex
from hypothesis import given, settings, strategies as st

from conftest import CONTRACTIONS, GPT2_PAT, WHITESPACE, examples, fixture_texts, mixed_text, read_text

REF = regex.compile(GPT2_PAT)
MAX_CP = 0x110000


def is_surrogate(cp: int) -> bool:
    return 0xD800 <= cp <= 0xDFFF




def _scan(text):
    from storytok.pretokenize.pretokenizer import scan_pretokens
    return scan_pretokens(text)


def describe(s: str) -> str:
    return repr(s) + " [" + " ".join(f"U+{ord(c):04X}" for c in s[:12]) + ("..." if len(s) > 12 else "") + "]"


def assert_same_pretokens(text: str, label: str = ""):
    want = REF.findall(text)
    got = _scan(text)
    if got == want:
        return
    for i, (g, w) in enumerate(zip(got, want)):
        if g != w:
            break
    else:
        i = min(len(got), len(want))
    ctx = "".join(want[max(0, i - 3):i])
    g = got[i] if i < len(got) else "<end>"
    w = want[i] if i < len(want) else "<end>"
    pytest.fail(f"{label} pre-token #{i} differs (after ...{ctx[-40:]!r}): "
                f"scanner {describe(g)}, regex {describe(w)}; "
                f"counts scanner={len(got)} regex={len(want)}")


def test_pattern_is_gpt2():
    from storytok.pretokenize.pretokenizer import GPT2_PATTERN
    assert GPT2_PATTERN == GPT2_PAT


def test_regex_pretokens_is_the_reference():
    from storytok.pretokenize.pretokenizer import regex_pretokens
    t = "Hello, world! It's   2024\n\n  don'T  \u00a0 x"
    assert regex_pretokens(t) == REF.findall(t)


def test_empty_and_tiny():
    for t in ["", " ", "a", "\n", "'", "'s", " '", "1", "  ", "\t\n", " \u00a0", "\u3000a"]:
        assert_same_pretokens(t)


@pytest.mark.parametrize("path", fixture_texts(), ids=lambda p: p.name)
def test_fixture_files(path):
    if not path.exists():
        pytest.skip(f"shared file not found: {path}")
    text = read_text(path)
    assert_same_pretokens(text, path.name)
    # the same text with specials removed (as the scanner sees it between specials)
    assert_same_pretokens(text.replace("<|endoftext|>", ""), path.name + " (specials removed)")


# --- hypothesis -------------------------------------------------------------------------------

any_text = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=("Cs",)), max_size=200)


@settings(max_examples=examples(1500))
@given(mixed_text)
def test_hypothesis_mixed(text):
    assert_same_pretokens(text)


@settings(max_examples=examples(500))
@given(any_text)
def test_hypothesis_arbitrary_unicode(text):
    assert_same_pretokens(text)


@settings(max_examples=examples(300))
@given(st.lists(st.sampled_from(WHITESPACE + ["a", "1", "!", "'", "'s", "\u00e9"]), max_size=80).map("".join))
def test_hypothesis_whitespace_heavy(text):
    assert_same_pretokens(text)


# ASCII-heavy text as TinyStories is, with what the scanner carries across its 64-byte
# blocks: contractions across block edges, non-ASCII next to ASCII, whitespace runs, at
# every offset within a block and with start buffers too small for one block (resumes).
story_piece = st.one_of(
    st.sampled_from(["Once", " upon", " a", " time", ",", ".", "!", "\"", " \"", "\n", "\n\n", " ", "  ", "\t",
                     "Lily", " didn't", "'s", "'ll", "'ve", "'re", "'d", "'m", "'t", "'", " '", "''", "'S",
                     "12", " 345", "x", "ab", "-", "...", "\r\n", " \n", "\u00e9", "caf\u00e9", "\u2019s",
                     "\u00a0", "\u3000", "\u65e5\u672c", "\U0001f600", "\x00", "\x1c", "\x7f"]),
    st.sampled_from(CONTRACTIONS),
    st.text(st.characters(min_codepoint=0, max_codepoint=0x7F), max_size=12),
)


def _scan_at(text: str, offset: int, block_size: int) -> list[str]:
    from storytok.kernels.scanner import scan_spans
    from storytok.pretokenize.pretokenizer import scanner_classes, text_buffer
    data = text.encode("utf-8")
    buf, words = text_buffer(b"<" * offset + data + b"'s<|endoftext|>")
    starts, ends = scan_spans(buf, words, offset, offset + len(data), scanner_classes(), block_size)
    return [bytes(buf[s:e]).decode("utf-8") for s, e in zip(starts.tolist(), ends.tolist())]


@settings(max_examples=examples(400))
@given(st.lists(story_piece, max_size=300).map("".join), st.integers(0, 63), st.sampled_from([32, 33, 40, 72, 73, 4096]))
def test_hypothesis_story_like_any_alignment(text, offset, block_size):
    want = REF.findall(text)
    got = _scan_at(text, offset, block_size)
    if got != want:
        i = next((k for k, (g, w) in enumerate(zip(got, want)) if g != w), min(len(got), len(want)))
        pytest.fail(f"offset {offset}, block {block_size}: pre-token #{i} differs: scanner "
                    f"{got[i:i + 3]!r}, regex {want[i:i + 3]!r} (after {want[max(0, i - 3):i]!r})")


def test_ascii_rules_match_regex():
    """The scanner's built-in ASCII classes are what `regex` says (checked at start-up too)."""
    from storytok.kernels.scanner import ascii_classes
    from storytok.pretokenize.unicode_classes import LETTER, NUMBER, OTHER, SPACE
    want = [LETTER if regex.match(r"\p{L}", chr(c)) else NUMBER if regex.match(r"\p{N}", chr(c))
            else SPACE if regex.match(r"\s", chr(c)) else OTHER for c in range(128)]
    assert ascii_classes().tolist() == want


def test_every_whitespace_in_every_position():
    parts = []
    for w in WHITESPACE:
        for v in WHITESPACE:
            parts.append(f"a{w}b{w}{v}c{w}{v}{w}1{w}!{w}{v}'s{w}")
    for w in WHITESPACE:
        parts.append(f"{w}x {w}{w}  {w}\n")
    assert_same_pretokens("".join(parts))
    for w in WHITESPACE:  # whitespace at the very end and very start of the text
        for t in (w, w * 3, "a" + w, "a" + w * 2, w + "a", w * 2 + "a", " " + w, w + " "):
            assert_same_pretokens(t)


# --- every code point ---------------------------------------------------------------------------

def _all_code_points():
    return [c for c in range(MAX_CP) if not is_surrogate(c)]


def _layout_quick(c: str) -> str:
    # after a letter; after a space; doubled; before a digit, after an apostrophe,
    # before a space + letter, after two spaces (\s+(?!\S) lookahead)
    return f"a{c} {c}{c}1'{c}  {c} x"


def _layout_full(c: str) -> str:
    return f"a{c} {c}{c}1{c}'{c}  {c}\t{c}!{c}\n {c}é{c}٣{c}\u00a0{c}{c} {c}"


@pytest.mark.parametrize("layout", [_layout_quick])
def test_all_code_points(layout):
    cps = _all_code_points()
    block = 32768
    for i in range(0, len(cps), block):
        text = "".join(layout(chr(c)) for c in cps[i:i + block])
        assert_same_pretokens(text, f"code points U+{cps[i]:04X}..U+{cps[min(i + block, len(cps)) - 1]:04X}")


@pytest.mark.slow
def test_all_code_points_full_layout():
    cps = _all_code_points()
    block = 32768
    for i in range(0, len(cps), block):
        text = "".join(_layout_full(chr(c)) for c in cps[i:i + block])
        assert_same_pretokens(text, f"code points U+{cps[i]:04X}..")


@pytest.mark.slow
def test_every_code_point_alone_and_as_space_prefix():
    # each code point at the start of the text and right after a single space, its own pre-token run
    cps = _all_code_points()
    block = 65536
    for i in range(0, len(cps), block):
        text = "\n".join(f"{chr(c)} {chr(c)}" for c in cps[i:i + block])
        assert_same_pretokens(text, f"alone U+{cps[i]:04X}..")
