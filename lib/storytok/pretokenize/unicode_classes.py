"""Per-code-point classes (letter / number / whitespace / other) taken from `regex` itself.

The Numba scanner must agree with the GPT-2 pattern as the `regex` package runs it, on
every code point. Rather than trusting a hand-written Unicode table, we ask `regex` which
code points match `\\p{L}`, `\\p{N}` and `\\s`, and cache the answer on disk keyed by the
`regex` version, so the scanner and the reference can never disagree.
"""
from __future__ import annotations

import os
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np
import regex

OTHER, LETTER, NUMBER, SPACE = 0, 1, 2, 3
N_CODE_POINTS = 0x110000


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "storytok"


def build_class_table() -> np.ndarray:
    """Ask `regex` for the class of every code point (surrogates stay OTHER: never in valid UTF-8)."""
    code_points = np.array([c for c in range(N_CODE_POINTS) if not 0xD800 <= c <= 0xDFFF], dtype=np.int64)
    text = "".join(map(chr, code_points))
    table = np.full(N_CODE_POINTS, OTHER, dtype=np.uint8)
    for cls, pattern in ((LETTER, r"\p{L}"), (NUMBER, r"\p{N}"), (SPACE, r"\s")):
        hits = code_points[[m.start() for m in regex.finditer(pattern, text)]]
        if (table[hits] != OTHER).any():
            raise RuntimeError(f"regex {regex.__version__}: classes overlap for {pattern}; the scanner assumes they are disjoint")
        table[hits] = cls
    return table


@lru_cache(maxsize=1)
def class_table() -> np.ndarray:
    path = _cache_dir() / f"classes-regex-{regex.__version__}.npy"
    try:
        table = np.load(path)
        if table.shape == (N_CODE_POINTS,) and table.dtype == np.uint8:
            return table
    except (OSError, ValueError):
        pass
    table = build_class_table()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as f:
            np.save(f, table)
        os.replace(f.name, path)
    except OSError:
        pass  # a read-only home only costs the 0.4 s rebuild next time
    return table
