"""Numba kernels: plain functions over NumPy arrays, compiled once and cached on disk.

Python objects stay out of here; the modules one level up (pretokenize, bpe, store) turn
bytes and dicts into the arrays these functions take.

Numba checks a cached kernel against its own source file only: a kernel whose callee in
another file changed (the scanner inside the encoder, say) would load stale machine code.
So the cache of this folder is stamped with a hash of every file the kernels are built
from, and dropped whole when that hash changes (one recompile, then cached again).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

_HERE = Path(__file__).resolve().parent
_STAMP = "storytok-kernels.sha256"


def _sources() -> list[Path]:
    """Every file whose code or constants end up compiled into a kernel."""
    return sorted(_HERE.glob("*.py")) + [_HERE.parent / "pretokenize" / "unicode_classes.py"]


def _sources_digest() -> str:
    import numba

    h = hashlib.sha256(numba.__version__.encode())
    for path in _sources():
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def _cache_probe():
    """A function of this folder, so Numba's own locator says where this folder's cache is."""


def _cache_dir() -> Path | None:
    try:
        from numba.core.caching import FunctionCache

        return Path(FunctionCache(_cache_probe).cache_path)
    except Exception:   # no usable cache location: Numba compiles in memory, nothing can be stale
        return None


def _drop_stale_cache(cache_dir: Path | None) -> None:
    if cache_dir is None:
        return
    digest = _sources_digest()
    stamp = cache_dir / _STAMP
    try:
        if stamp.read_text() == digest:
            return
    except OSError:
        pass
    modules = {p.stem for p in _sources() if p.parent == _HERE}
    try:
        for f in cache_dir.iterdir():
            if f.suffix in (".nbi", ".nbc") and f.name.split(".", 1)[0] in modules:
                f.unlink(missing_ok=True)
        tmp = stamp.with_name(f"{_STAMP}.{digest[:12]}.tmp")
        tmp.write_text(digest)
        tmp.replace(stamp)
    except OSError:     # a read-only cache: Numba itself will not write there either
        pass


_drop_stale_cache(_cache_dir())
