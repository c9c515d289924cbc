"""GPT-2's reversible byte <-> printable-unicode mapping.

vocab.json and merges.txt store tokens as strings, so every byte needs a visible,
whitespace-free character; this is the table GPT-2, tiktoken's `data_gym` loader and
Hugging Face's ByteLevel use, which is what lets those tools read our files.
"""
from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    n = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(printable, chars)}


@lru_cache(maxsize=1)
def unicode_to_bytes() -> dict[str, int]:
    return {c: b for b, c in bytes_to_unicode().items()}


def token_to_str(token: bytes) -> str:
    table = bytes_to_unicode()
    return "".join(table[b] for b in token)


def str_to_token(text: str) -> bytes:
    """Inverse of token_to_str; raises KeyError on a character outside the mapping."""
    table = unicode_to_bytes()
    return bytes(table[c] for c in text)
