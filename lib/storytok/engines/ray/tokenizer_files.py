"""A tokenizer directory carried to the workers, and loaded once per worker process.

A tokenizer folder is a few files of some hundred KB to a few MB. Shipping its bytes with
the job (one object in Ray's object store) means the workers need not see the driver's
disk: the folder may be local to the machine running `make encode`. Each worker writes
the files into a private temporary folder once, loads them with the one loader every
stage uses (storytok.bpe.load), checks the fingerprint against the driver's, and keeps the
Tokenizer for every later task of the job: its kernels loaded, its pre-token cache warm.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from storytok.errors import StorytokError

MAX_FILE_BYTES = 256 << 20


@dataclass(frozen=True)
class TokenizerFiles:
    """The regular files of a tokenizer directory, by name (hidden names skipped)."""
    source: str                       # where they were read, for messages
    files: tuple[tuple[str, bytes], ...]
    fingerprint: str = ""             # the tokenizer's own fingerprint (checked on load), "" to skip

    @classmethod
    def read(cls, directory, fingerprint: str = "") -> "TokenizerFiles":
        directory = Path(directory)
        if not directory.is_dir():
            raise StorytokError(f"{directory}: no tokenizer directory (run `make tokenizer` first)")
        files = []
        for p in sorted(directory.iterdir()):
            if p.name.startswith(".") or not p.is_file():
                continue
            if p.stat().st_size > MAX_FILE_BYTES:
                continue   # not a tokenizer file
            files.append((p.name, p.read_bytes()))
        if not files:
            raise StorytokError(f"{directory}: no tokenizer files here (run `make tokenizer` first)")
        return cls(str(directory), tuple(files), fingerprint)

    @property
    def key(self) -> str:
        h = hashlib.sha256()
        for name, data in self.files:
            h.update(name.encode() + b"\0" + len(data).to_bytes(8, "little") + data)
        return h.hexdigest()

    def load(self, pipeline: bool = True):
        """The tokenizer these files hold (a fresh object), checked against the fingerprint.
        pipeline=True adds the pipeline's checks (an <|endoftext|> special, ids that fit
        uint16: storytok.sources.inputs.load_tokenizer); False loads any tokenizer folder."""
        from storytok.bpe.load import load_tokenizer_dir
        from storytok.sources.inputs import load_tokenizer

        tmp = Path(tempfile.mkdtemp(prefix="storytok-tokenizer-"))
        try:
            for name, data in self.files:
                (tmp / name).write_bytes(data)
            tok = load_tokenizer(tmp) if pipeline else load_tokenizer_dir(tmp)
        except StorytokError as e:
            raise StorytokError(str(e).replace(str(tmp), self.source)) from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if self.fingerprint and tok.fingerprint() != self.fingerprint:
            raise StorytokError(f"{self.source}: the tokenizer loaded on a Ray worker (pid {os.getpid()}) differs "
                                f"from the driver's; a storytok version mismatch between the nodes?")
        return tok


_cache: dict[str, object] = {}
_lock = threading.Lock()


def worker_tokenizer(files: TokenizerFiles):
    """The tokenizer of `files`, loaded once per process and reused by every later task."""
    key = files.key
    with _lock:
        tok = _cache.get(key)
        if tok is None:
            tok = files.load()
            _cache.clear()   # one job's tokenizer at a time: a worker serves one job
            _cache[key] = tok
        return tok
