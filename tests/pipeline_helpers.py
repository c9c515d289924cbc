"""Helpers for the pipeline tests: running stage scripts, the shared samples, recounts."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
STAGES = ROOT / "stages"
SHARED = Path(__file__).resolve().parents[2] / "shared"
EOT = "<|endoftext|>"
SAMPLES = {"train": "tinystories_v1_train_sample.txt", "valid": "tinystories_v1_valid_sample.txt"}


def sample(split: str) -> Path:
    """A real TinyStories sample from ../shared/data; skips the test if it is absent."""
    p = SHARED / "data" / SAMPLES[split]
    if not p.exists():
        pytest.skip(f"shared sample not found: {p} (expected ../shared beside the checkout)")
    return p


def run(script: str, *args, timeout: float = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run stages/<script>.py in a fresh interpreter, as make does (stdout/stderr not a TTY)."""
    return subprocess.run([sys.executable, str(STAGES / f"{script}.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)


def load_stage(script: str):
    """Import stages/<script>.py as a module, to call its main() in-process (no JIT re-load)."""
    spec = importlib.util.spec_from_file_location(f"stage_{script}", STAGES / f"{script}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def one_error_line(returncode: int, stderr: str) -> str:
    """The failure contract: exit 1, exactly one line on stderr, starting 'error:', no traceback."""
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert returncode == 1, stderr
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    return lines[0]


def stories_of(text: str) -> list[str]:
    """The rows of a text: what lies between separators (N separators -> N + 1 rows)."""
    return text.split(EOT)


def is_blank(row: str) -> bool:
    return row.strip(" \t\n\r\x0b\x0c") == ""


def recount(tok, text: str) -> dict:
    """stats.json numbers recomputed the slow, obvious way: encode each story on its own."""
    rows = stories_of(text)
    lens = [len(tok.encode(r)) for r in rows]
    story = np.array([n for n, r in zip(lens, rows) if not is_blank(r)], dtype=np.int64)
    counts: dict[int, int] = {}
    for i in tok.encode(text):
        counts[i] = counts.get(i, 0) + 1
    total = sum(lens) + len(rows) - 1
    return {
        "rows": len(rows),
        "stories": int(story.size),
        "blank_rows": len(rows) - int(story.size),
        "tokens": total,
        "story_tokens": int(story.sum()),
        "bytes": len(text.encode("utf-8")),
        "mean": float(story.mean()),
        "median": float(np.median(story)),
        "p95": float(np.percentile(story, 95)),
        "max": int(story.max()),
        "over_512": float((story > 512).mean()),
        "used": len(counts),
        "never_used": len(tok) - len(counts),
        "counts": counts,
    }
