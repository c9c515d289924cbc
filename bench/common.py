"""What every worker shares: the clock, reading a corpus as blocks or stories, hashing ids.

Workers import this module and their own tool, nothing else of the harness: it uses only the
standard library and NumPy, and never storytok (peer workers must not load its kernels).

Ids are compared across tools in two forms:

- the *stream*: the uint16 ids of the whole file, separator ids included (storytok's
  `encode_file`, tiktoken with `allowed_special`, HF on stories ending in the separator,
  `encode_to_numpy` of the whole text). sha1 over the concatenated ids, so how a tool
  chunks its output does not matter.
- the *documents*: the non-empty documents' ids without the separator, and their lengths.
  Every tool gives it: a stream is cut at the separator id (never produced inside a
  document, since a special token is matched before pre-tokenizing), gigatoken and the
  `encode_batch` APIs return one array per document. Empty documents are dropped, as
  gigatoken's `TextFileSource` drops them.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import time
from pathlib import Path

import numpy as np

EOT = "<|endoftext|>"
MB = 1_000_000
BLOCK_BYTES = 2 << 20             # peers read the file in blocks cut after <|endoftext|>
PIECE_BYTES = 512 << 10           # ... and tiktoken encodes it in pieces of about this size
# The GPT-2 pre-tokenizer pattern (design.md, "Semantics"), for the peers that take a pattern string.
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def size_text(nbytes: int) -> str:
    """4.0 GB, 400 MB, 1.5 MB, 256 KB: a file size as the report writes it."""
    if nbytes >= 1e9:
        return f"{nbytes / 1e9:.1f} GB"
    if nbytes >= 1e7:
        return f"{nbytes / MB:,.0f} MB"
    if nbytes >= 1e5:
        return f"{nbytes / MB:.1f} MB"
    return f"{nbytes / 1e3:.0f} KB"


class Clock:
    """Accumulates a timed region: wall (perf_counter) and CPU of all threads (process_time)."""

    def __init__(self):
        self.seconds = 0.0
        self.cpu = 0.0

    def __enter__(self):
        self._t, self._c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.seconds += time.perf_counter() - self._t
        self.cpu += time.process_time() - self._c

    def result(self, **more) -> dict:
        return {"seconds": self.seconds, "cpu_seconds": self.cpu, **more}


# ---- reading a corpus -------------------------------------------------------------------------

def blocks(path, block_bytes: int = BLOCK_BYTES):
    """The file as str blocks, each ending right after an <|endoftext|> (the last may not)."""
    eot = EOT.encode()
    with open(path, "rb") as f:
        pending = b""
        while True:
            more = f.read(block_bytes)
            data = pending + more
            if not more:
                if data:
                    yield data.decode("utf-8")
                return
            cut = data.rfind(eot)
            if cut < 0:
                pending = data
                continue
            cut += len(eot)
            yield data[:cut].decode("utf-8")
            pending = data[cut:]


def pieces(block: str, piece_chars: int) -> list[str]:
    """block split into pieces of about piece_chars, each cut right after an <|endoftext|>."""
    out, pos = [], 0
    while pos < len(block):
        cut = block.find(EOT, pos + piece_chars)
        end = len(block) if cut < 0 else cut + len(EOT)
        out.append(block[pos:end])
        pos = end
    return out


def stories(block: str, keep_special: bool) -> list[str]:
    """The documents of a block: with their separator (keep_special) or without it, and then
    without empty ones (what a caller of encode_batch / encode_ordinary_batch passes)."""
    parts = block.split(EOT)
    if keep_special:
        last = parts.pop()
        out = [p + EOT for p in parts]
        if last:
            out.append(last)
        return out
    return [p for p in parts if p]


def read_text(path) -> str:
    """The file's text exactly: bytes decoded as UTF-8. Not Path.read_text, which opens in text
    mode and turns "\r\n" and "\r" into "\n" (web text has them: the ids would differ)."""
    return Path(path).read_bytes().decode("utf-8")


def read_stories(path) -> list[str]:
    """All documents of a file, without separators and without empty ones."""
    return [s for b in blocks(path) for s in stories(b, keep_special=False)]


def special_id(tokenizer_dir, token: str = EOT) -> int:
    """The id of a special token in a tokenizer directory's tokenizer.json (HF format)."""
    data = json.loads((Path(tokenizer_dir) / "tokenizer.json").read_text(encoding="utf-8"))
    for t in data.get("added_tokens", []):
        if t["content"] == token:
            return int(t["id"])
    raise ValueError(f"{tokenizer_dir}/tokenizer.json has no special token {token!r}")


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character map (what vocab.json and merges.txt are written in)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def read_vocab(tokenizer_dir) -> dict[int, bytes]:
    """vocab.json of a tokenizer directory as {id: token bytes}."""
    u2b = {c: b for b, c in bytes_to_unicode().items()}
    data = json.loads((Path(tokenizer_dir) / "vocab.json").read_text(encoding="utf-8"))
    return {int(i): bytes(u2b[ch] for ch in tok) for tok, i in data.items()}


# ---- hashing ids ------------------------------------------------------------------------------

def _u16(ids) -> np.ndarray:
    a = np.asarray(ids)
    if a.dtype != np.uint16:
        if a.size and (a.min() < 0 or a.max() > 0xFFFF):
            raise ValueError("ids do not fit uint16: the bench compares vocabularies of at most 65,536 tokens")
        a = a.astype(np.uint16)
    return np.ascontiguousarray(a)


class IdHasher:
    """The two fingerprints of a tool's output (see the module docstring): `stream`, when the tool
    produces the whole file's ids, and `docs`, always. Neither depends on how output is chunked."""

    def __init__(self, sep: int):
        self.sep = sep
        self._stream = hashlib.sha1()
        self._stream_n = 0
        self._has_stream = False
        self._ids = hashlib.sha1()
        self._lens = hashlib.sha1()
        self._docs = 0
        self._doc_tokens = 0
        self._open = 0      # tokens of the document a stream chunk left open

    def add_stream(self, ids) -> None:
        """Part of the whole-file stream (separator ids included), in order."""
        a = _u16(ids)
        self._has_stream = True
        self._stream.update(memoryview(a).cast("B"))
        self._stream_n += a.size
        cuts = np.flatnonzero(a == self.sep)
        if cuts.size == 0:
            self._ids.update(memoryview(a).cast("B"))
            self._open += a.size
            return
        self._ids.update(memoryview(a[a != self.sep]).cast("B"))
        lens = np.diff(cuts, prepend=-1) - 1     # tokens before each separator, since the previous one
        lens[0] += self._open
        self._add_lens(lens)
        self._open = a.size - int(cuts[-1]) - 1

    def add_doc(self, ids) -> None:
        """One document's ids (no separator in it)."""
        a = _u16(ids)
        if a.size:
            self._ids.update(memoryview(a).cast("B"))
            self._add_lens(np.array([a.size], np.int64))

    def add_docs(self, docs, batch_tokens: int = 1 << 22) -> None:
        """Many documents given as sequences of Python ints (tiktoken's lists), in batches."""
        it = iter(docs)
        while True:
            batch = list(itertools.islice(it, 4096))
            if not batch:
                return
            lens = np.fromiter((len(d) for d in batch), np.int64, count=len(batch))
            flat = np.fromiter(itertools.chain.from_iterable(batch), np.int64, count=int(lens.sum()))
            self._ids.update(memoryview(_u16(flat)).cast("B"))
            self._add_lens(lens)

    def add_offsets(self, flat, offsets) -> None:
        """Documents as rows of one flat array with offsets (len = rows + 1): Arrow and awkward
        lists. A row may hold the separator itself (a story stored with its <|endoftext|>):
        documents end at every separator and at every row end."""
        offsets = np.asarray(offsets, np.int64)
        body = _u16(np.asarray(flat)[offsets[0]:offsets[-1]])
        is_sep = body == self.sep
        if not is_sep.any():
            self._ids.update(memoryview(body).cast("B"))
            self._add_lens(np.diff(offsets))
            return
        self._ids.update(memoryview(body[~is_sep]).cast("B"))
        kept = np.zeros(body.size + 1, np.int64)
        np.cumsum(~is_sep, out=kept[1:])
        ends = np.union1d(np.flatnonzero(is_sep) + 1, offsets[1:] - offsets[0])
        self._add_lens(np.diff(kept[ends], prepend=0))

    def _add_lens(self, lens: np.ndarray) -> None:
        lens = np.asarray(lens, np.int64)
        lens = lens[lens > 0]
        if lens.size:
            self._lens.update(memoryview(np.ascontiguousarray(lens)).cast("B"))
            self._docs += int(lens.size)
            self._doc_tokens += int(lens.sum())

    def result(self) -> dict:
        if self._open:
            self._add_lens(np.array([self._open], np.int64))
            self._open = 0
        out = {"docs": self._docs, "doc_tokens": self._doc_tokens,
               "docs_hash": hashlib.sha1(self._ids.digest() + self._lens.digest()).hexdigest()[:32]}
        if self._has_stream:
            out.update(ids_hash=self._stream.hexdigest()[:32], tokens=self._stream_n)
        return out


def learned_tokens(tokens: list[bytes], out) -> None:
    """The tokens a trainer made, in creation order (hex), for the parent to compare."""
    if out:
        Path(out).write_text(json.dumps([t.hex() for t in tokens]))


def peak_rss_self() -> int | None:
    """This process's peak RSS (VmHWM), in bytes.

    Not getrusage/wait4's ru_maxrss: on Linux a child's ru_maxrss starts from its parent's
    RSS at fork (the pre-exec image is counted), so a big parent inflates every child.
    VmHWM belongs to the process image after exec: the tool and its runtime only.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None
