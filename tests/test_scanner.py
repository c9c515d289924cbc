"""The block scanner (kernels/scanner.py) against `regex` on mixed-script text (issue 9).

The scanner decides 64 bytes at a time and carries state across block edges: the class of
the char before a block, the bytes of a char that straddles into the next block, a
contraction reaching over the edge, whether a whitespace char's successor (maybe in the
next block) is whitespace. These tests put every kind of char at every position around a
block edge, start and end the text anywhere in a block, leave the scanner a starts array
too small for one block (so it stops and resumes mid-block), and compare with
`regex.findall(GPT2_PAT, text)` pre-token by pre-token.
"""
from __future__ import annotations

import itertools
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import regex
from hypothesis import given, settings, strategies as st

from conftest import GPT2_PAT, WHITESPACE, examples

REF = regex.compile(GPT2_PAT)
BLOCK = 64

# One char (or short string) of each kind the scanner treats differently, 1 to 4 bytes long.
REPS = [
    "a", "Z", "1", "!", "'", " ", "\n", "\t",                       # ASCII classes
    "\u00e9", "\u0416", "\u0663", "\u00a0", "\u0085", "\u0301",     # 2 bytes: letter, letter, number, ws, ws, mark (other)
    "\u65e5", "\u2019", "\u3000", "\u2028", "\u2167",               # 3 bytes: letter, other, ws, ws, number
    "\U0001f600", "\U0001d7d8", "\U00010437",                       # 4 bytes: other, number, letter
    "s", "ll",                                                      # contraction tails
]

# Web-like pieces: ASCII prose with the non-ASCII web text carries between and inside words.
WEB_PIECES = [
    " the", " of", " and", "The", " it", "'s", "'ll", "'re", "'ve", "'d", "'m", "'t", "'S", "'LL", "'x", "''",
    " don't", " it's", ",", ".", "!", "?", " (", ")", ":", ";", " -", "--", "...", "\n", "\n\n", " ", "  ", "\t",
    " caf\u00e9", " na\u00efve", " Stra\u00dfe", " \u00e9t\u00e9", "\u00c9", " se\u00f1or", " \u00e7a",
    " \u043f\u0440\u0438\u0432\u0435\u0442", " \u041c\u043e\u0441\u043a\u0432\u0430", " \u0395\u03bb\u03bb\u03ac\u03b4\u03b1",
    " \u03b1\u03b2\u03b3", "\u65e5\u672c\u8a9e", "\u4e2d\u6587", "\u3002", "\u3001", " \ud55c\uad6d\uc5b4", "\u0e44\u0e17\u0e22",
    "\U0001f600", " \U0001f44d\U0001f3fd", "\u2764\ufe0f", "\U0001f1eb\U0001f1f7", "\u200d",
    "e\u0301", "\u0301", "a\u0308\u0304", "\u0915\u094d\u0937",
    "\u2019", "\u2019s", "\u201c", "\u201d", " \u201cquoted\u201d", "\u2014", " \u2013 ", "\u00ab", "\u00bb",
    "\u00a0", "\u00a0\u00a0", " \u00a0", "\u00a0 ", "\u3000", "\u2028", "\u2029", "\u202f", "\u205f", "\u2003", "\u1680", "\u0085",
    " 2024", "\u0663\u0664", " \u0967\u0968", "\u00b2", "\u00bd", "\u2167", "\uff11\uff12", "\U0001d7d8",
    "\u00e9's", "'s\u00e9", "\u65e5'll", "\u2019's", "'\u00e9", "\u00a0's", "'s\u00a0", "\u3000'", "1's", "'s1",
]


def _scan_in_place(text: str, offset: int, size: int, after: bytes, fill: bytes = b"x") -> list[str]:
    """The scanner's pre-tokens of text placed at byte `offset` of a block, after bytes
    that are not part of it (ending in `fill`, one byte) and with `after` right behind it,
    called as the encoder does with a starts array of `size` (resuming where it stops).
    The starts array is a view into a larger one: a write past its end would show."""
    from storytok.kernels.scanner import scan_tokens
    from storytok.pretokenize.pretokenizer import scanner_classes, text_buffer
    data = text.encode("utf-8")
    before = b"\xc3\xa9'" * 20 + b"\xe2\x80\x80" * 4 + fill * (8 + offset)   # 80 + offset bytes
    buf, words = text_buffer(before + data + after)
    pos = start = len(before)
    end = start + len(data)
    guarded = np.full(size + 64, -7, np.int64)
    starts = guarded[:size]
    tokens = []
    while pos < end:
        n, resume = scan_tokens(buf, words, pos, end, scanner_classes(), starts)
        assert (guarded[size:] == -7).all(), "scan_tokens wrote past the end of starts"
        assert starts[0] == pos and (n > 0 or resume == end) and (resume == end or resume == starts[n])
        tokens += [bytes(buf[starts[k]:starts[k + 1]]).decode("utf-8") for k in range(n)]
        pos = resume
    return tokens


def _first_difference(got: list[str], want: list[str]) -> str:
    i = next((k for k, (g, w) in enumerate(zip(got, want)) if g != w), min(len(got), len(want)))
    return (f"pre-token #{i}: scanner {got[i:i + 3]!r}, regex {want[i:i + 3]!r} "
            f"(after {want[max(0, i - 3):i]!r}; counts {len(got)} / {len(want)})")


# The kinds for the exhaustive triples: one of each class and width (and a contraction tail).
EDGE_REPS = ["a", "1", "!", "'", " ", "\n", "s", "\u00e9", "\u0663", "\u00a0", "\u0301",
             "\u65e5", "\u2019", "\u3000", "\U0001f600", "\U00010437"]


def test_every_triple_of_char_kinds_across_a_block_edge():
    """Each triple of char kinds, starting at each byte from 12 before a block edge to the
    edge itself, after a run of letters; the text ends right after it, and the buffer goes
    on with an apostrophe, an 's' and a 3-byte whitespace char that must not count."""
    from storytok.kernels.scanner import scan_tokens
    from storytok.pretokenize.pretokenizer import padded_buffer, scanner_classes
    slot = 2 * BLOCK
    cases = [(e, "a" * e + x + y + z) for x, y, z in itertools.product(EDGE_REPS, repeat=3)
             for e in range(BLOCK - 12, BLOCK + 1)]
    texts = [t for _, t in cases]
    buf, words = padded_buffer(slot * len(texts))
    filler = b"'s\xe2\x80\x80 "
    buf[:] = np.frombuffer((filler * (len(buf) // len(filler) + 1))[:len(buf)], np.uint8)
    for i, t in enumerate(texts):
        data = t.encode("utf-8")
        buf[i * slot:i * slot + len(data)] = np.frombuffer(data, np.uint8)
    classes = scanner_classes()
    starts = np.empty(4096, np.int64)
    bad = []
    for i, (edge, t) in enumerate(cases):
        s, e = i * slot, i * slot + len(t.encode("utf-8"))
        n, resume = scan_tokens(buf, words, s, e, classes, starts)
        got = np.diff(starts[:n + 1]).tolist()
        want = [len(w.encode("utf-8")) for w in REF.findall(t)]
        if got != want or resume != e:
            bad.append(f"{t[edge:]!r} at block offset {edge}: "
                       f"scanner token lengths {got[-6:]}, regex {want[-6:]}")
            if len(bad) > 5:
                break
    assert not bad, "\n".join(bad)


def test_every_whitespace_char_at_every_block_position():
    """Each whitespace char (every one `regex` knows), doubled and single, before a letter,
    another whitespace char, or the end of the text, at each byte of a block."""
    parts = []
    for w in WHITESPACE:
        for v in (" ", "\u00a0", "\n", "\u3000"):
            for tail in ("x", "", "1"):
                parts.append((w, v, tail))
    for offset in range(BLOCK - 28, BLOCK - 8):  # the piece starts 12 before to 3 after a block edge
        for w, v, tail in parts:
            for t in (w + tail, w + w + tail, v + w + tail, w + v + tail, " " + w + tail):
                got = _scan_in_place("b" * offset + t, 0, 4096, b"z")
                want = REF.findall("b" * offset + t)
                assert got == want, f"{t!r} after {offset} letters: " + _first_difference(got, want)


web_text = st.lists(st.one_of(st.sampled_from(WEB_PIECES), st.sampled_from(REPS),
                              st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=10)),
                    max_size=250).map("".join)


@settings(max_examples=examples(600))
@given(web_text, st.integers(0, BLOCK - 1), st.sampled_from([32, 33, 40, 71, 72, 73, 100, 150, 4096]),
       st.sampled_from([b"", b"'s", b"x", b"\xc2\xa0", b"\xe2\x80\x99", b"  ", b"'ll" + b"y" * 90]),
       st.sampled_from([b"x", b" ", b"\n", b"'", b"1", b"!"]))
def test_hypothesis_web_text_any_offset_any_starts_size(text, offset, size, after, fill):
    """Web-like mixed-script text at every offset within a block, with starts arrays from
    smaller than one block's worth (resumes mid-block) to roomy, and various bytes right
    before and after the text (a contraction tail, a letter, a space, NBSP, a curly quote)
    that must not count."""
    want = REF.findall(text)
    got = _scan_in_place(text, offset, size, after, fill)
    if got != want:
        pytest.fail(f"offset {offset}, starts {size}, before {fill!r}, after {after!r}: " + _first_difference(got, want))


@settings(max_examples=examples(300))
@given(st.lists(st.sampled_from(REPS + WHITESPACE[:8] + ["\u2019s", "'s", "'ll", "'ve"]), max_size=200).map("".join),
       st.integers(0, BLOCK - 1), st.sampled_from([32, 40, 4096]))
def test_hypothesis_dense_edges(text, offset, size):
    """Short pieces packed densely: many tokens per block, chars of every width straddling edges."""
    want = REF.findall(text)
    got = _scan_in_place(text, offset, size, b"'s")
    if got != want:
        pytest.fail(f"offset {offset}, starts {size}: " + _first_difference(got, want))


def test_long_runs_cross_many_blocks():
    """Tokens much longer than a block: letters, digits, others and whitespace of every width."""
    for piece in ("a", "\u00e9", "\u65e5", "\U00010437", "1", "\u0663", "!", "\u2019", "\U0001f600",
                  " ", "\n", "\u00a0", "\u3000", "\u2028"):
        for count in (63, 64, 65, 127, 128, 129, 300):
            for t in (piece * count, "x" + piece * count + "y", " " + piece * count + " z", piece * count + "'s"):
                for offset in (0, 1, 31, 63):
                    got = _scan_in_place(t, offset, 4096, b"")
                    want = REF.findall(t)
                    assert got == want, f"{piece!r} * {count} at {offset}: " + _first_difference(got, want)


def test_resume_at_every_token_start():
    """Scanning anew from any start the scanner gave gives the rest of the same tokens."""
    from storytok.kernels.scanner import scan_tokens
    from storytok.pretokenize.pretokenizer import scanner_classes, text_buffer
    text = "It\u2019s caf\u00e9 time: \u65e5\u672c\u8a9e 12\u00a0\u00a0x\n\n 'll \U0001f600\u3000\u3000y'st" * 5
    data = text.encode("utf-8")
    buf, words = text_buffer(data)
    starts = np.empty(4096, np.int64)
    n, _ = scan_tokens(buf, words, 0, len(data), scanner_classes(), starts)
    all_starts = starts[:n + 1].copy()
    for k in range(n):
        m, _ = scan_tokens(buf, words, int(all_starts[k]), len(data), scanner_classes(), starts)
        assert starts[:m + 1].tolist() == all_starts[k:].tolist(), f"resuming at token {k}"


def test_portable_build_without_avx512_agrees():
    """The same kernels compiled for baseline x86-64 (the 64-byte vector compares lowered
    to SSE2, the portable start writer instead of vpcompressb) give the same pre-tokens."""
    code = textwrap.dedent("""
        import regex, sys
        from storytok.kernels import scanner
        assert not scanner._COMPRESS, "expected the portable build"
        from storytok.pretokenize.pretokenizer import scan_pretokens
        sys.path.insert(0, sys.argv[1])
        from conftest import GPT2_PAT
        from test_scanner import WEB_PIECES, REPS
        import random
        rnd = random.Random(7)
        ref = regex.compile(GPT2_PAT)
        for _ in range(300):
            t = "".join(rnd.choice(WEB_PIECES + REPS) for _ in range(rnd.randrange(0, 200)))
            assert scan_pretokens(t) == ref.findall(t), repr(t)
        print("ok")
    """)
    import tempfile
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CPU_NAME="generic", NUMBA_CACHE_DIR=cache)
        out = subprocess.run([sys.executable, "-c", code, os.path.dirname(__file__)], env=env,
                             capture_output=True, text=True, timeout=600)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-3000:]
