"""Round trips and streaming: decode(encode(s)) == s, encode_iterable == encode for any chunking,
encode_to_numpy == encode, and bounded memory while streaming.

The memory tests run in a subprocess so their limits and measurements see only the streaming.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from conftest import EOT, WHITESPACE, examples, mixed_text, read_text, shared_path

HERE = Path(__file__).resolve().parent


@lru_cache(maxsize=None)
def gpt2_tok(specials: bool):
    from storytok import Tokenizer
    return Tokenizer.from_files(shared_path("fixtures", "gpt2_vocab.json"), shared_path("fixtures", "gpt2_merges.txt"),
                                special_tokens=[EOT] if specials else None)


@lru_cache(maxsize=None)
def small_tok():
    """A storytok-trained tokenizer (few merges: exercises byte fallback on most text), with
    two overlapping specials."""
    import warnings
    from storytok import Tokenizer, train_bpe
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vocab, merges = train_bpe(shared_path("fixtures", "corpus.en"), 400, [EOT, EOT + EOT])
    return Tokenizer(vocab, merges, special_tokens=[EOT, EOT + EOT])


TOKS = {"gpt2+eot": lambda: gpt2_tok(True), "gpt2": lambda: gpt2_tok(False), "small": small_tok}

any_text = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=("Cs",)), max_size=200)
with_specials = st.lists(st.one_of(mixed_text, any_text, st.sampled_from([EOT, EOT + EOT, "<|endof", "<|", "|>"])),
                         max_size=10).map("".join)


# --- decode(encode(s)) == s -------------------------------------------------------------------------

@pytest.mark.parametrize("name", TOKS)
@settings(max_examples=examples(300))
@given(text=st.one_of(any_text, mixed_text, with_specials))
def test_decode_encode_roundtrip(name, text):
    tok = TOKS[name]()
    assert tok.decode(tok.encode(text)) == text


@pytest.mark.parametrize("name", TOKS)
def test_roundtrip_fixture_files(name):
    tok = TOKS[name]()
    for f in ["address.txt", "german.txt", "tinystories_sample.txt", "corpus.en"]:
        text = read_text(shared_path("fixtures", f))
        assert tok.decode(tok.encode(text)) == text, f


def test_empty():
    for tok in (gpt2_tok(True), gpt2_tok(False), small_tok()):
        assert tok.encode("") == []
        assert tok.decode([]) == ""
        assert list(tok.encode_iterable([])) == []
        assert list(tok.encode_iterable(["", "", ""])) == []
        assert tok.encode_to_numpy("").shape == (0,)


# --- encode_iterable == encode ------------------------------------------------------------------------

def chunked(text: str, cuts: list[int]) -> list[str]:
    cuts = sorted({min(max(c, 0), len(text)) for c in cuts})
    bounds = [0] + cuts + [len(text)]
    return [text[a:b] for a, b in zip(bounds, bounds[1:])]


@st.composite
def text_and_chunks(draw):
    text = draw(st.one_of(with_specials, mixed_text))
    n = len(text)
    cuts = draw(st.lists(st.integers(0, n), max_size=max(1, min(n, 30))))
    chunks = chunked(text, cuts)
    if draw(st.booleans()):  # sprinkle empty chunks
        chunks = [c for ch in chunks for c in (ch, "")]
    return text, chunks


@pytest.mark.parametrize("name", TOKS)
@settings(max_examples=examples(300))
@given(tc=text_and_chunks())
def test_encode_iterable_any_chunking(name, tc):
    text, chunks = tc
    tok = TOKS[name]()
    assert list(tok.encode_iterable(iter(chunks))) == tok.encode(text)


TRICKY = ["a  \n\n  b", "x" + "\u3000" * 5 + "y", "hi " + EOT + " there", EOT + EOT + EOT, "it's  \r\n\r\n 'S",
          "x\u00a0\u00a0 \t\n\u2028\u0085\u1680 z", "  ", " \n", "1 234  5", "<|endoftext|<|endoftext|>>",
          "a" + " " * 10, " " * 10 + "a", "\n" * 5, "héllo wörld 👨‍👩‍👧 ok"]


@pytest.mark.parametrize("name", TOKS)
@pytest.mark.parametrize("text", TRICKY)
def test_encode_iterable_every_single_and_double_cut(name, text):
    """Every cut position (inside whitespace runs, inside specials, between a space and a word),
    every pair of cut positions, and one chunk per character."""
    tok = TOKS[name]()
    want = tok.encode(text)
    n = len(text)
    for i in range(n + 1):
        assert list(tok.encode_iterable([text[:i], text[i:]])) == want, f"cut at {i}: {text[:i]!r} | {text[i:]!r}"
    for i in range(n + 1):
        for j in range(i, n + 1):
            assert list(tok.encode_iterable(chunked(text, [i, j]))) == want, f"cuts {i},{j}"
    assert list(tok.encode_iterable(list(text))) == want


def test_encode_iterable_file_lines_equals_encode():
    tok = gpt2_tok(True)
    path = shared_path("fixtures", "tinystories_sample.txt")
    with open(path, encoding="utf-8", newline="") as f:
        got = list(tok.encode_iterable(f))
    assert got == tok.encode(read_text(path))


def test_encode_iterable_sample_in_random_chunks():
    import random
    tok = gpt2_tok(True)
    text = read_text(shared_path("data", "tinystories_v1_valid_sample.txt"))
    rng = random.Random(1)
    cuts = rng.sample(range(len(text)), 3000)
    assert list(tok.encode_iterable(chunked(text, cuts))) == tok.encode(text)


def test_encode_iterable_is_lazy():
    """Ids come out before the input is exhausted (streaming, not collect-then-encode)."""
    tok = gpt2_tok(True)
    consumed = []

    def gen():
        for i in range(10_000):
            consumed.append(i)
            yield f"line {i} of a story.\n" + (EOT if i % 10 == 9 else "")
        raise AssertionError("input fully consumed before the first id was produced")

    it = tok.encode_iterable(gen())
    next(it)
    assert len(consumed) < 10_000


# --- encode_to_numpy ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", TOKS)
@settings(max_examples=examples(150))
@given(text=st.one_of(with_specials, mixed_text))
def test_encode_to_numpy_equals_encode(name, text):
    tok = TOKS[name]()
    arr = tok.encode_to_numpy(text)
    assert isinstance(arr, np.ndarray) and arr.dtype == np.uint16 and arr.ndim == 1
    assert arr.tolist() == tok.encode(text)


@pytest.mark.parametrize("dtype", [np.uint16, np.int32, np.uint32, np.int64])
def test_encode_to_numpy_dtypes_on_samples(dtype):
    tok = gpt2_tok(True)
    for p in [shared_path("fixtures", "tinystories_sample.txt"), shared_path("data", "tinystories_v1_valid_sample.txt")]:
        text = read_text(p)
        arr = tok.encode_to_numpy(text, dtype=dtype)
        assert arr.dtype == np.dtype(dtype)
        assert arr.tolist() == tok.encode(text)


# --- memory ----------------------------------------------------------------------------------------------

def _run_child(code: str, timeout: float = 300) -> str:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(HERE) + os.pathsep + env.get("PYTHONPATH", "")
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                       timeout=timeout, env=env, cwd=HERE)
    assert r.returncode == 0, f"child failed (rc={r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r.stdout


_CHILD_SETUP = """
import gc, os, resource, sys
import psutil
from storytok import Tokenizer
VOCAB, MERGES, SAMPLE = sys.argv[1:4] if len(sys.argv) > 3 else (None, None, None)
"""


def test_encode_iterable_address_space_bounded():
    """CS336-style: after imports, tokenizer construction and one warm-up, cap the address space
    (RLIMIT_AS) at its current size + 1 MB and stream tinystories_sample.txt line by line from an
    open file. Any growth beyond 1 MB of *address space* (not only RSS) raises MemoryError.

    The cap is relative to the measured address space rather than to RSS (as CS336 does): Numba's
    LLVM and NumPy reserve hundreds of MB of virtual space up front, so RSS + 1 MB would sit far
    below what is already mapped. The warm-up runs the same code path once so that lazy JIT
    compilation / cache loading is not counted as streaming memory."""
    vocab = shared_path("fixtures", "gpt2_vocab.json")
    merges = shared_path("fixtures", "gpt2_merges.txt")
    sample = shared_path("fixtures", "tinystories_sample.txt")
    out = _run_child(f"""
        import gc, resource, psutil
        from storytok import Tokenizer
        tok = Tokenizer.from_files({str(vocab)!r}, {str(merges)!r}, special_tokens=["<|endoftext|>"])
        with open({str(sample)!r}, encoding="utf-8", newline="") as f:
            warm = list(tok.encode_iterable(f))           # warm-up: JIT/cache, encoding cache
        with open({str(sample)!r}, encoding="utf-8", newline="") as f:
            text = f.read()
        assert warm == tok.encode(text)
        n_expected = len(warm)
        del warm, text
        gc.collect()
        proc = psutil.Process()
        base_vms = proc.memory_info().vms
        resource.setrlimit(resource.RLIMIT_AS, (base_vms + 1_000_000, resource.RLIM_INFINITY))
        try:                                              # the cap is real: 4 MB more cannot be had
            bytearray(4_000_000)
            raise SystemExit("RLIMIT_AS did not take effect")
        except MemoryError:
            pass
        n = 0
        with open({str(sample)!r}, encoding="utf-8", newline="") as f:
            for _ in tok.encode_iterable(f):
                n += 1
        resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        assert n == n_expected, (n, n_expected)
        print("OK", base_vms, proc.memory_info().vms - base_vms)
    """)
    assert out.startswith("OK")


_BIG_STREAM_CHILD = """
    import gc, psutil, sys, time
    from storytok import Tokenizer
    tok = Tokenizer.from_files({vocab!r}, {merges!r}, special_tokens=["<|endoftext|>"])
    with open({sample!r}, encoding="utf-8", newline="") as f:
        lines = f.readlines()
    list(tok.encode_iterable(lines))                      # warm-up
    gc.collect()
    proc = psutil.Process()
    base = proc.memory_info().rss
    peak = base
    TOTAL = {mb} * 1_000_000
    def gen():
        global peak
        made = 0
        i = 0
        while made < TOTAL:
            line = lines[i % len(lines)]
            if {every} and i % {every} == 0:     # a never-seen pre-token (a new number)
                line = f"{{i}} " + line
            made += len(line)
            i += 1
            if i % 2000 == 0:
                peak = max(peak, proc.memory_info().rss)
            yield line
    n = 0
    t = time.perf_counter()
    for _ in tok.encode_iterable(gen()):
        n += 1
    peak = max(peak, proc.memory_info().rss)
    print("OK", n, (peak - base) / 1e6, time.perf_counter() - t)
"""


@pytest.mark.parametrize("mb,every", [
    (5, 0),                                       # natural text, repeated: nothing new to remember
    (5, 1),                                       # every line starts with a never-seen number
    pytest.param(50, 7, marks=pytest.mark.slow),  # 50 MB, one line in 7 with a new number
])
def test_encode_iterable_big_stream_rss_bounded(mb, every):
    """A generator yielding `mb` MB of text lines must not grow RSS by more than 5 MB
    (design.md: streaming memory is bounded by the largest chunk, never by the total input).
    With `every` > 0, one line in `every` starts with a number never seen before, so any
    per-pre-token state that is never evicted (e.g. an unbounded pre-token -> ids cache)
    grows with the input and shows here."""
    out = _run_child(_BIG_STREAM_CHILD.format(
        vocab=str(shared_path("fixtures", "gpt2_vocab.json")), merges=str(shared_path("fixtures", "gpt2_merges.txt")),
        sample=str(shared_path("fixtures", "tinystories_sample.txt")), mb=mb, every=every), timeout=900)
    _, n, growth_mb, secs = out.split()
    assert int(n) > mb * 150_000
    assert float(growth_mb) <= 5.0, (f"RSS grew by {float(growth_mb):.1f} MB while streaming {mb} MB "
                                     f"(new number every {every} lines; {secs} s)")


_BLANK_LINES_CHILD = """
import sys, time
from storytok import Tokenizer
tok = Tokenizer.from_files(sys.argv[1], sys.argv[2], special_tokens=["<|endoftext|>"])
n = int(sys.argv[3])
list(tok.encode_iterable(["warm up\\n"]))
def lines():
    yield "Once upon a time.\\n"
    for _ in range(n):
        yield "\\n"
    yield "The end.\\n"
t = time.perf_counter()
got = list(tok.encode_iterable(lines()))
dt = time.perf_counter() - t
assert got == tok.encode("Once upon a time.\\n" + "\\n" * n + "The end.\\n")
print(dt)
"""


def test_encode_iterable_long_whitespace_run_across_many_chunks():
    """A file with 200,000 blank lines read line by line: one whitespace run spread over 200,000
    chunks. The run cannot be cut before it ends, but buffering it must stay linear: allow 10 s
    (encode() on the joined text takes milliseconds)."""
    v, m = shared_path("fixtures", "gpt2_vocab.json"), shared_path("fixtures", "gpt2_merges.txt")
    try:
        r = subprocess.run([sys.executable, "-c", _BLANK_LINES_CHILD, str(v), str(m), "200000"],
                           capture_output=True, text=True, timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail("encode_iterable over 200,000 blank lines took more than 10 s (quadratic buffering?)")
    assert r.returncode == 0, r.stderr[-2000:]
