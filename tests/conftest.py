"""Shared test helpers: the `shared/` reference material, GPT-2 byte mapping, hypothesis profiles.

The shared directory (`../shared` beside the checkout) holds the outside references the
suite proves storytok against (GPT-2's files, CS336's reference merges, TinyStories
samples). It is not copied into the repo; tests that need it skip with a clear reason when
it is absent.

Hypothesis profiles: "ci" (default, quick tier) and "deep" (many more examples); pick with
`HYPOTHESIS_PROFILE=deep pytest ...`.
"""
from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path

import pytest
import regex
from hypothesis import HealthCheck, settings, strategies as st

SHARED = Path(__file__).resolve().parents[2] / "shared"
FIXTURES = SHARED / "fixtures"
DATA = SHARED / "data"
EOT = "<|endoftext|>"

# The GPT-2 pre-tokenization pattern, verbatim from design.md (and GPT-2's encoder.py).
GPT2_PAT = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

settings.register_profile(
    "ci", max_examples=200, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "deep", max_examples=5000, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
settings.load_profile(PROFILE)


def examples(n: int) -> int:
    """max_examples for a test whose quick-tier count is n; the deep profile runs 20x more."""
    return n * 20 if PROFILE == "deep" else n


def shared_path(*parts: str) -> Path:
    """Path inside ../shared; skips the calling test if it is not there."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"shared reference material not found: {p} (expected ../shared beside the checkout)")
    return p


@pytest.fixture(scope="session")
def shared() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"shared reference directory not found at {SHARED} (expected ../shared beside the checkout)")
    return SHARED


# --- GPT-2's byte <-> unicode mapping (from openai/gpt-2 encoder.py), written out here so the
# tests do not depend on the implementation's copy of it.
@lru_cache(maxsize=None)
def bytes_to_unicode() -> dict[int, str]:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


@lru_cache(maxsize=None)
def unicode_to_bytes() -> dict[str, int]:
    return {v: k for k, v in bytes_to_unicode().items()}


def decode_gpt2_token(s: str) -> bytes:
    u2b = unicode_to_bytes()
    return bytes(u2b[c] for c in s)


def encode_gpt2_token(b: bytes) -> str:
    b2u = bytes_to_unicode()
    return "".join(b2u[x] for x in b)


def read_gpt2_merges(path: Path) -> list[tuple[bytes, bytes]]:
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#version"):
                continue
            a, b = line.split(" ")
            out.append((decode_gpt2_token(a), decode_gpt2_token(b)))
    return out


def read_gpt2_vocab(path: Path) -> dict[bytes, int]:
    with open(path, encoding="utf-8") as f:
        raw = json.load(f)
    return {decode_gpt2_token(k): v for k, v in raw.items()}


def fixture_texts() -> list[Path]:
    """Every text fixture and sample the suite runs over (names only; may not exist)."""
    names = ["address.txt", "german.txt", "tinystories_sample.txt", "corpus.en"]
    return [FIXTURES / n for n in names] + [DATA / "tinystories_v1_train_sample.txt",
                                           DATA / "tinystories_v1_valid_sample.txt"]


def read_text(path: Path) -> str:
    """Exact file text: bytes decoded as UTF-8, no newline translation."""
    return path.read_bytes().decode("utf-8")


# --- text strategies shared by the pre-tokenizer, GPT-2 and round-trip tests -------------------

# Every code point `regex` calls \s (enumerated from regex itself, not hand-listed).
WHITESPACE = [chr(c) for c in range(0x110000)
              if not 0xD800 <= c <= 0xDFFF and regex.match(r"\s", chr(c))]

CONTRACTIONS = [a + b for a in ("'", "\u2019") for b in
                ("s", "S", "d", "D", "m", "M", "t", "T", "ll", "LL", "Ll", "lL", "ve", "VE", "Ve", "vE",
                 "re", "RE", "Re", "rE", "", "x", "l", "v", "r")]
SCRIPTS = ["hello", "World", "Straße", "ÆØÅ", "привет", "Ελλάδα", "שלום", "مرحبا", "नमस्ते", "中文字符",
           "日本語かなカナ", "한국어", "ไทย", "ქართული", "Ꭰ", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "𐐷", "ǅ", "ʰ", "ª", "ㄅ"]
DIGITS = ["0", "123", "٣٤٥", "۷", "४२", "০", "๓", "²³", "½", "Ⅻ", "𝟘𝟙", "〇", "⑴", "１２", "𐒠", "፲"]
PUNCT = ["!", "?!", "...", "—", "“", "”", "«»", "(", ")", "[]", "{}", "@#$%^&*", "\\", "/", "_", "-", "–",
         "、", "。", "¿", "¡", "§", "©", "€", "+", "=", "<", ">", "|", "`", "~", "\"", "'"]
EMOJI = ["😀", "👍🏽", "👨‍👩‍👧‍👦", "❤️", "☺︎", "🏳️‍🌈", "🇫🇷", "1️⃣", "🫠", "\u200d", "\ufe0f", "\U000e0067"]
COMBINING = ["e\u0301", "\u0301", "a\u0308\u0304", "\u20dd", "\u0e31", "क्ष", "\u093f", "\u05b7", "\u200c", "\u0345"]
SPECIALISH = ["<|endoftext|>", "<|endof", "endoftext|>", "<|", "|>"]

fragment = st.one_of(
    st.sampled_from(WHITESPACE),
    st.lists(st.sampled_from(WHITESPACE), min_size=2, max_size=40).map("".join),   # long mixed runs
    st.tuples(st.sampled_from([" ", "\n", "\t", "\u00a0", "\u3000", "\r\n"]), st.integers(2, 300)).map(
        lambda t: t[0] * t[1]),                                                   # long uniform runs
    st.sampled_from(SCRIPTS + DIGITS + PUNCT).map(lambda s: s * 17),               # long words
    st.sampled_from(["\r\n", "\n\n", " \n", "\n ", "\t\t", "  ", "   ", "\r\n\r\n", " \t\n"]),
    st.sampled_from(CONTRACTIONS),
    st.sampled_from(SCRIPTS),
    st.sampled_from(DIGITS),
    st.sampled_from(PUNCT),
    st.sampled_from(EMOJI),
    st.sampled_from(COMBINING),
    st.sampled_from(SPECIALISH),
    st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=("Cs",)),
    st.characters(min_codepoint=0, max_codepoint=0x2FFF, exclude_categories=("Cs",)),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=8),
)
mixed_text = st.lists(fragment, max_size=60).map("".join)
