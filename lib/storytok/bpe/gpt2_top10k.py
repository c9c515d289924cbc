"""The TinyStories paper's tokenizer: GPT-2's BPE restricted to its 10,000 most common tokens.

Eldan & Li (2023) trained the TinyStories models with the GPT-Neo tokenizer (the same
byte-level BPE as GPT-2), keeping only the 10K most frequent tokens. `CompactTokenizer` is
that tokenizer. Text is encoded with the full GPT-2 BPE (storytok's kernels; the ids are
tiktoken's `gpt2` ids), and every GPT-2 id then goes through a lookup array to a compact id
in 0..V-1 (V = `vocab_size`, 10,000 by default), so ids fit uint16 and an embedding table
has V rows. A GPT-2 token outside the kept set becomes `<|unk|>`.

Compact ids (V = vocab_size):

    0 .. V-3   the V-2 most frequent ordinary GPT-2 tokens of the counted text, most frequent
               first; equal counts go to the lower GPT-2 id first. If the counted text uses
               fewer distinct tokens than that, the remaining slots go to tokens it never
               used, in GPT-2 id order (so the 256 single bytes first): V is always exact.
    V-2        <|endoftext|>  always kept, whatever its count (it separates the stories)
    V-1        <|unk|>        every GPT-2 token that is not kept

The counted text is the train file encoded with the full GPT-2 BPE: all of it, or only its
first N stories (`sample_stories`: the text before the N-th `<|endoftext|>`). Counting is a
np.bincount per encoded chunk.

`<|endoftext|>` is the only special token matched in text (`special_tokens`), as in GPT-2;
`<|unk|>` is an id, not text: the literal text "<|unk|>" encodes as ordinary GPT-2 tokens.
`special_ids` holds both. Decoding shows each `<|unk|>` as the visible marker "<|unk|>"
(UNK_MARKER); `decode(ids, unk_gpt2_ids=...)` gives the exact text back when the GPT-2 ids
the unks stand for are known (the Parquet column `unk_gpt2_ids` keeps them).
`token_byte_lengths()` is 0 for `<|unk|>`: its text is not determined by the id.

Tokenizer folder (written by `save`, loaded by `CompactTokenizer.from_dir`, and by
`Tokenizer.from_dir` through storytok.bpe.load):

    tokenizer_kind.json   {"kind": "gpt2-top10k", "format": 1}: tells the loader which kind this is
                          (folders without it are plain byte-level BPE folders)
    vocab.json            GPT-2's vocabulary (50,257 tokens), GPT-2 byte-level format
    merges.txt            GPT-2's 50,000 merges, GPT-2 byte-level format
    kept_ids.json         the compact vocabulary:
                            gpt2_ids   list of V: the GPT-2 id of compact id i (null for <|unk|>)
                            counts     list of V: each kept token's count in the counted text
                                       (for <|unk|>: all the tokens that were not kept)
                            vocab_size, eot_id, unk_id, unk_token, base_special_tokens,
                            gpt2_fingerprint (checked on load: vocab.json/merges.txt unchanged),
                            counted    what was counted (input, stories, bytes, GPT-2 tokens,
                                       distinct GPT-2 tokens, share of tokens and bytes kept)
    training.json         what it was built from, so `make tokenizer` can skip a rebuild
                          (written by storytok.bpe.tokenizer_store)

There is deliberately no tokenizer.json and no tokenizer.tiktoken: vocab.json + merges.txt
loaded by another tool are the full GPT-2 tokenizer, not this one, and `to_tiktoken` refuses
(tiktoken cannot express the renumbering or <|unk|>). Outside storytok, compact id i is GPT-2 id
`gpt2_ids[i]` (decode those with any GPT-2 tokenizer).
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from storytok.bpe import tiktoken_files
from storytok.bpe.bytes_unicode import token_to_str
from storytok.errors import StorytokError
from storytok.sources.inputs import EOT
from storytok.bpe.tokenizer import EncodedChunk, Tokenizer

KIND = "gpt2-top10k"
KINDS = ("bpe", KIND)
KIND_FILE = "tokenizer_kind.json"
KEPT_FILE = "kept_ids.json"
FORMAT = 1
UNK = "<|unk|>"
UNK_MARKER = UNK                 # what decode shows for an <|unk|>
DEFAULT_VOCAB_SIZE = 10_000
GPT2_FILES = ("vocab.json", "merges.txt")
GPT2_FILE_NAMES = (GPT2_FILES, ("encoder.json", "vocab.bpe"), ("gpt2_vocab.json", "gpt2_merges.txt"))
GPT2_URL_ENV = "STORYTOK_GPT2_URL"
GPT2_BASE_URL = "https://huggingface.co/openai-community/gpt2/resolve/main"
DECODE_BLOCK = 1 << 20


def gpt2_base_url(override: str | None = None) -> str:
    """Where `make data` fetches GPT-2's files: the flag, else $STORYTOK_GPT2_URL, else Hugging Face."""
    return (override or os.environ.get(GPT2_URL_ENV) or GPT2_BASE_URL).rstrip("/")


# ---- the tokenizer -----------------------------------------------------------------------

@dataclass
class CompactChunk(EncodedChunk):
    """An EncodedChunk of compact ids, with the GPT-2 ids they were mapped from (same length)."""
    gpt2_tokens: np.ndarray | None = None


class CompactTokenizer:
    """GPT-2's BPE, then a lookup array from GPT-2 ids to compact ids (unknown -> <|unk|>).

    The same API as `Tokenizer` for everything the pipeline uses. `gpt2` is the full GPT-2
    Tokenizer; `gpt2_ids[i]` the GPT-2 id of compact id i (-1 for <|unk|>).
    """
    kind = KIND

    def __init__(self, gpt2: Tokenizer, gpt2_ids, counts=None, counted: dict | None = None):
        self.gpt2 = gpt2
        ids = np.asarray(gpt2_ids, dtype=np.int64)
        base_lengths = gpt2.token_byte_lengths()
        n_base = base_lengths.size
        if ids.ndim != 1 or not 2 <= ids.size <= 1 << 16:
            raise StorytokError(f"the kept-id list has {ids.size:,} entries; it must have 2..65,536 (uint16 ids)")
        unk = np.flatnonzero(ids < 0)
        if unk.size != 1:
            raise StorytokError(f"the kept-id list has {unk.size} unknown-token entries (null); it must have exactly one")
        known = ids[ids >= 0]
        if known.max(initial=0) >= n_base or not np.isin(known, list(gpt2.vocab)).all():
            bad = int(known[(known >= n_base) | ~np.isin(known, list(gpt2.vocab))][0])
            raise StorytokError(f"the kept-id list names GPT-2 id {bad}, which is not in the GPT-2 vocabulary")
        if np.unique(known).size != known.size:
            raise StorytokError("the kept-id list names a GPT-2 id twice; each kept token must appear once")
        self.gpt2_ids = ids
        self.unk_id = int(unk[0])
        self._to_compact = np.full(n_base, self.unk_id, dtype=np.uint16)
        self._to_compact[known] = np.flatnonzero(ids >= 0).astype(np.uint16)
        self.special_tokens = list(gpt2.special_tokens)   # matched in text: <|endoftext|>
        self.special_ids: dict[str, int] = {}
        for s in self.special_tokens:
            g = gpt2.special_ids[s]
            if self._to_compact[g] == self.unk_id:
                raise StorytokError(f"the kept-id list lacks the special token {s} (GPT-2 id {g}); it must be kept")
            self.special_ids[s] = int(self._to_compact[g])
        self.special_ids[UNK] = self.unk_id
        self.eot_id = self.special_ids.get(EOT)
        self.counts = None if counts is None else np.asarray(counts, dtype=np.int64)
        self.counted = counted or {}
        self.vocab = {i: gpt2.vocab[int(g)] for i, g in enumerate(ids) if g >= 0}
        self.vocab[self.unk_id] = UNK_MARKER.encode("utf-8")
        self.merges = gpt2.merges
        self._tok_len = np.where(ids >= 0, base_lengths[np.maximum(ids, 0)], 0).astype(np.int64)
        # decode tables: like the token lengths, except <|unk|> shows its marker
        dec_len = self._tok_len.copy()
        dec_len[self.unk_id] = len(self.vocab[self.unk_id])
        self._dec_len = dec_len
        self._dec_off = np.zeros(ids.size, np.int64)
        np.cumsum(dec_len[:-1], out=self._dec_off[1:])
        self._dec_bytes = np.frombuffer(b"".join(self.vocab[i] for i in range(ids.size)), np.uint8)
        self._fingerprint: str | None = None

    # ---- files ---------------------------------------------------------------------------
    @classmethod
    def from_dir(cls, directory) -> "CompactTokenizer":
        """A folder written by `save` (see the module docstring for its files)."""
        directory = Path(directory)
        if not directory.is_dir():
            raise StorytokError(f"{directory}: no tokenizer directory (run `make tokenizer KIND={KIND}` first)")
        kind = read_kind(directory)
        if kind != KIND:
            raise StorytokError(f"{directory}: a {kind} tokenizer folder, not a {KIND} one "
                                f"(it has no {KIND_FILE} naming {KIND})")
        kept_path = directory / KEPT_FILE
        meta = _read_json(kept_path, "kept-id list")
        try:
            if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                raise ValueError(f"format {meta.get('format') if isinstance(meta, dict) else None!r}, expected {FORMAT}")
            gpt2_ids = [-1 if g is None else _int(g) for g in meta["gpt2_ids"]]
            counts = meta.get("counts")
            if counts is not None:
                counts = np.array([_int(c) for c in counts], dtype=np.int64)
                if counts.size != len(gpt2_ids):
                    raise ValueError("counts and gpt2_ids differ in length")
            specials = [str(s) for s in meta["base_special_tokens"]]
            want_fp = str(meta["gpt2_fingerprint"])
        except (KeyError, TypeError, ValueError) as e:
            why = f"no {e} entry" if isinstance(e, KeyError) else str(e)
            raise StorytokError(f"{kept_path}: not a storytok kept-id list ({why})") from None
        gpt2 = Tokenizer.from_files(directory / "vocab.json", directory / "merges.txt", specials)
        if gpt2.fingerprint() != want_fp:
            raise StorytokError(f"{directory}: vocab.json/merges.txt are not the GPT-2 files this tokenizer was "
                                f"built with (changed since)")
        try:
            tok = cls(gpt2, gpt2_ids, counts, meta.get("counted"))
        except StorytokError as e:
            raise StorytokError(f"{kept_path}: {e}") from None
        if (meta.get("vocab_size"), meta.get("unk_id"), meta.get("eot_id")) != (len(tok), tok.unk_id, tok.eot_id):
            raise StorytokError(f"{kept_path}: vocab_size/unk_id/eot_id disagree with gpt2_ids")
        return tok

    def save(self, directory) -> None:
        """Write the tokenizer folder; tokenizer_kind.json goes last, so a half-written folder
        does not load as this kind."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        g = self.gpt2
        vocab = {token_to_str(b): i for i, b in sorted(g.vocab.items())}
        _write(directory / "vocab.json", json.dumps(vocab, ensure_ascii=False) + "\n")
        _write(directory / "merges.txt", "#version: 0.2\n" + "".join(f"{token_to_str(a)} {token_to_str(b)}\n"
                                                                    for a, b in g.merges))
        meta = {
            "format": FORMAT,
            "kind": KIND,
            "vocab_size": len(self),
            "eot_id": self.eot_id,
            "unk_id": self.unk_id,
            "unk_token": UNK,
            "unk_marker": UNK_MARKER,
            "base_special_tokens": list(g.special_tokens),
            "gpt2_fingerprint": g.fingerprint(),
            "order": "ids 0..V-3: most frequent first (ties: lower GPT-2 id); then <|endoftext|>, <|unk|>",
            "counted": self.counted,
            "gpt2_ids": [None if x < 0 else int(x) for x in self.gpt2_ids],
            "counts": None if self.counts is None else [int(c) for c in self.counts],
        }
        _write(directory / KEPT_FILE, json.dumps(meta, ensure_ascii=False, indent=1) + "\n")
        _write(directory / KIND_FILE, json.dumps({"kind": KIND, "format": FORMAT}) + "\n")

    def to_tiktoken(self):
        """Refused in one line: compact ids renumber GPT-2's and <|unk|> stands for many tokens,
        which a tiktoken rank file cannot express (export self.gpt2 and map with gpt2_ids)."""
        return tiktoken_files.to_encoding(self)

    def __len__(self) -> int:
        return int(self.gpt2_ids.size)

    def fingerprint(self) -> str:
        """sha256 of the kind, the GPT-2 BPE and the kept-id list: names this exact tokenizer."""
        if self._fingerprint is None:
            h = hashlib.sha256(f"{KIND}\x00{UNK}\x00".encode())
            h.update(self.gpt2.fingerprint().encode())
            h.update(self.gpt2_ids.astype("<i8").tobytes())
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    def token_byte_lengths(self) -> np.ndarray:
        """GPT-2 byte length of every kept id; 0 for <|unk|> (its text depends on which token it replaced)."""
        return self._tok_len.copy()

    def token_dtype(self) -> np.dtype:
        return np.dtype(np.uint16)

    def is_kept(self, gpt2_ids) -> np.ndarray:
        """Boolean mask: which GPT-2 ids have a compact id of their own."""
        return self._to_compact[np.asarray(gpt2_ids, dtype=np.int64)] != self.unk_id

    def from_gpt2(self, gpt2_ids) -> np.ndarray:
        """Compact ids (uint16) of GPT-2 ids; tokens not kept give <|unk|>."""
        return self._to_compact[np.asarray(gpt2_ids, dtype=np.int64)]

    def to_gpt2(self, ids, unk_gpt2_ids=None) -> np.ndarray:
        """GPT-2 ids (int64) of compact ids; <|unk|> gives -1, or, with `unk_gpt2_ids` (the
        GPT-2 ids the unks stand for, in order), the token it replaced."""
        ids = np.asarray(ids, dtype=np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= len(self)):
            raise StorytokError(f"cannot map id {int(ids[(ids < 0) | (ids >= len(self))][0])}: not in the "
                                f"{len(self):,}-token vocabulary")
        out = self.gpt2_ids[ids]
        if unk_gpt2_ids is not None:
            where = ids == self.unk_id
            unk = np.asarray(unk_gpt2_ids, dtype=np.int64).ravel()
            if unk.size != int(where.sum()):
                raise StorytokError(f"{int(where.sum())} <|unk|> tokens but {unk.size} GPT-2 ids given for them")
            out[where] = unk
        return out

    # ---- encoding ------------------------------------------------------------------------
    def encode_with_gpt2(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """(compact ids as uint16, the GPT-2 ids they come from)."""
        g = self.gpt2.encode_to_numpy(text, dtype=np.int64)
        return self._to_compact[g], g

    def encode(self, text: str) -> list[int]:
        return self.encode_with_gpt2(text)[0].tolist()

    def encode_to_numpy(self, text: str, dtype=np.uint16) -> np.ndarray:
        dtype = np.dtype(dtype)
        if np.issubdtype(dtype, np.integer) and len(self) - 1 > np.iinfo(dtype).max:
            raise StorytokError(f"ids go up to {len(self) - 1}, which does not fit {dtype.name}")
        return self.encode_with_gpt2(text)[0].astype(dtype, copy=False)

    def encode_iterable(self, iterable: Iterable[str]) -> Iterator[int]:
        lut = self._to_compact
        for i in self.gpt2.encode_iterable(iterable):
            yield int(lut[i])

    def encode_file(self, path, *, workers: int | None = None, chunk_bytes: int | None = None,
                    start_byte: int = 0, progress: bool = False) -> Iterator[CompactChunk]:
        """GPT-2's encode_file, chunk by chunk in file order, each chunk's ids mapped to compact
        ids (`tokens`, uint16) with the GPT-2 ids kept alongside (`gpt2_tokens`)."""
        kw = {} if chunk_bytes is None else {"chunk_bytes": chunk_bytes}
        for c in self.gpt2.encode_file(path, workers=workers, start_byte=start_byte, progress=progress, **kw):
            yield CompactChunk(c.byte_start, c.byte_end, self._to_compact[c.tokens], c.tokens)

    # ---- decoding ------------------------------------------------------------------------
    def decode_bytes(self, ids, unk_gpt2_ids=None) -> bytes:
        """Token bytes, each <|unk|> shown as UNK_MARKER; with `unk_gpt2_ids` (the GPT-2 ids
        the unks stand for, in order) the exact text instead."""
        if unk_gpt2_ids is not None:
            return self.gpt2.decode_bytes(self.to_gpt2(ids, unk_gpt2_ids))
        ids = np.asarray(ids).ravel()
        if ids.size and (ids.min() < 0 or ids.max() >= len(self)):
            bad = ids[(ids < 0) | (ids >= len(self))][0]
            raise StorytokError(f"cannot decode id {int(bad)}: not in the {len(self):,}-token vocabulary")
        out = bytearray()
        for k in range(0, ids.size, DECODE_BLOCK):
            block = ids[k:k + DECODE_BLOCK].astype(np.int64)
            lens = self._dec_len[block]
            starts = np.zeros(block.size, np.int64)
            np.cumsum(lens[:-1], out=starts[1:])
            gather = np.repeat(self._dec_off[block] - starts, lens) + np.arange(lens.sum())
            out += self._dec_bytes[gather].tobytes()
        return bytes(out)

    def decode(self, ids, unk_gpt2_ids=None) -> str:
        return self.decode_bytes(ids, unk_gpt2_ids).decode("utf-8", errors="replace")

    def __repr__(self) -> str:
        return f"CompactTokenizer({KIND}, {len(self):,} ids, unk_id={self.unk_id}, eot_id={self.eot_id})"


# ---- building ----------------------------------------------------------------------------

def gpt2_paths(gpt2_dir) -> tuple[Path, Path]:
    """GPT-2's vocabulary and merges in GPT2_DIR, or one clear line saying what is missing.

    The names Hugging Face uses (vocab.json, merges.txt) come first; OpenAI's originals
    (encoder.json, vocab.bpe) and the shared fixtures' (gpt2_vocab.json, gpt2_merges.txt)
    are accepted too.
    """
    d = Path(gpt2_dir)
    if not d.is_dir():
        raise StorytokError(f"{d}: no such directory; {_gpt2_hint(d)}")
    for names in GPT2_FILE_NAMES:
        paths = tuple(d / name for name in names)
        if any(p.exists() for p in paths):
            for p in paths:
                if not p.is_file():
                    raise StorytokError(f"{p}: missing; {_gpt2_hint(d)}")
            return paths
    raise StorytokError(f"{d / GPT2_FILES[0]}: missing; {_gpt2_hint(d)}")


def _gpt2_hint(d: Path) -> str:
    return (f"GPT2_DIR={d} must hold GPT-2's vocab.json and merges.txt "
            f"(`make data KIND={KIND}` downloads them into GPT2_DIR, default data/gpt2)")


def gpt2_files_sha256(gpt2_dir) -> dict[str, str]:
    vocab, merges = gpt2_paths(gpt2_dir)
    return {"vocab": hashlib.sha256(vocab.read_bytes()).hexdigest(),
            "merges": hashlib.sha256(merges.read_bytes()).hexdigest()}


def load_gpt2(gpt2_dir) -> Tokenizer:
    """GPT-2's byte-level BPE (with <|endoftext|>) from GPT2_DIR; errors name the file and the fix."""
    d = Path(gpt2_dir)
    vocab, merges = gpt2_paths(d)
    try:
        return Tokenizer.from_files(vocab, merges, [EOT])
    except StorytokError as e:
        msg = str(e)
        msg = msg if str(d) in msg else f"{d}: {msg}"
        raise StorytokError(f"{msg}; {_gpt2_hint(d)}") from None


@dataclass
class CountResult:
    counts: np.ndarray     # per GPT-2 id, over the counted text (separators included)
    rows: int              # rows (stories) counted: separators + 1, or sample_stories
    bytes: int             # bytes of the counted text
    tokens: int            # GPT-2 tokens of the counted text
    whole_file: bool       # False when sample_stories stopped the count early


def count_gpt2_tokens(gpt2: Tokenizer, path, *, sample_stories: int | None = None, workers: int | None = None,
                      progress: bool = False) -> CountResult:
    """GPT-2 token frequencies of `path` (all of it, or its first `sample_stories` stories)."""
    eot = gpt2.special_ids[EOT]
    counts = np.zeros(gpt2.token_byte_lengths().size, np.int64)
    seps = 0
    kw = {}
    if sample_stories is not None:   # small chunks: read little more than the sample
        kw["chunk_bytes"] = int(min(16 << 20, max(1 << 20, sample_stories * 2048)))
    whole = True
    for chunk in gpt2.encode_file(path, workers=workers, progress=progress, **kw):
        toks = chunk.tokens
        if sample_stories is not None:
            where = np.flatnonzero(toks == eot)
            if seps + where.size >= sample_stories:
                toks = toks[:where[sample_stories - seps - 1]]   # up to the N-th separator, excluded
                counts += np.bincount(toks, minlength=counts.size)
                seps = sample_stories - 1
                whole = False
                break
            seps += where.size
        else:
            seps += int(np.count_nonzero(toks == eot))
        counts += np.bincount(toks, minlength=counts.size)
    lengths = gpt2.token_byte_lengths()
    return CountResult(counts, seps + 1, int(counts @ lengths), int(counts.sum()), whole)


def check_compact_vocab_size(vocab_size: int, gpt2: Tokenizer | None = None) -> None:
    """V = kept ordinary tokens + <|endoftext|> + <|unk|>: at least 3, fits uint16, and at most
    what the GPT-2 vocabulary offers."""
    if vocab_size < 3:
        raise StorytokError(f"VOCAB_SIZE={vocab_size} is too small for {KIND}: it counts <|endoftext|>, "
                            f"<|unk|> and at least one kept token (the paper's size is {DEFAULT_VOCAB_SIZE:,})")
    if vocab_size > 1 << 16:
        raise StorytokError(f"VOCAB_SIZE={vocab_size:,} does not fit the uint16 token arrays (at most 65,536)")
    if gpt2 is not None:
        ordinary = len(gpt2.vocab) - len(gpt2.special_ids)
        if vocab_size - 2 > ordinary:
            raise StorytokError(f"VOCAB_SIZE={vocab_size:,} asks for {vocab_size - 2:,} kept tokens but the "
                                f"GPT-2 vocabulary has {ordinary:,} ordinary tokens; choose "
                                f"VOCAB_SIZE<={ordinary + 2:,}")


def select_kept(counts: np.ndarray, vocab_size: int, gpt2: Tokenizer) -> np.ndarray:
    """The compact vocabulary as GPT-2 ids (see the module docstring for the order)."""
    check_compact_vocab_size(vocab_size, gpt2)
    specials = np.array(sorted(gpt2.special_ids.values()), np.int64)
    cand = np.array(sorted(gpt2.vocab), np.int64)
    cand = cand[~np.isin(cand, specials)]
    order = cand[np.lexsort((cand, -counts[cand]))][:vocab_size - 2]
    return np.concatenate([order, [gpt2.special_ids[EOT], -1]]).astype(np.int64)


def build(gpt2: Tokenizer, train_path, vocab_size: int = DEFAULT_VOCAB_SIZE, *, sample_stories: int | None = None,
          workers: int | None = None, progress: bool = False) -> CompactTokenizer:
    """Count GPT-2 tokens of the train text and keep the most frequent (the paper's tokenizer)."""
    check_compact_vocab_size(vocab_size, gpt2)
    if sample_stories is not None and sample_stories < 1:
        raise StorytokError(f"SAMPLE_STORIES={sample_stories} must be a positive number of stories")
    c = count_gpt2_tokens(gpt2, train_path, sample_stories=sample_stories, workers=workers, progress=progress)
    gpt2_ids = select_kept(c.counts, vocab_size, gpt2)
    kept = gpt2_ids[gpt2_ids >= 0]
    lengths = gpt2.token_byte_lengths()
    kept_tokens = int(c.counts[kept].sum())
    kept_bytes = int(c.counts[kept] @ lengths[kept])
    counted = {
        "input": str(Path(train_path).resolve()),
        "sample_stories": sample_stories,
        "whole_file": c.whole_file,
        "rows": c.rows,
        "bytes": c.bytes,
        "gpt2_tokens": c.tokens,
        "distinct_gpt2_tokens": int(np.count_nonzero(c.counts)),
        "unk_tokens": c.tokens - kept_tokens,
        "unk_rate": (c.tokens - kept_tokens) / max(c.tokens, 1),
        "kept_bytes_share": kept_bytes / max(c.bytes, 1),
        "kept_never_seen": int(np.count_nonzero(c.counts[kept] == 0)),
    }
    counts = np.append(c.counts[kept], c.tokens - kept_tokens)   # <|unk|>'s count: everything else
    return CompactTokenizer(gpt2, gpt2_ids, counts, counted)


# ---- the folder kind (storytok.bpe.load decides kinds; this file owns tokenizer_kind.json) --

def read_kind(directory) -> str:
    """The kind of a tokenizer folder: what tokenizer_kind.json names, "bpe" without one."""
    p = Path(directory) / KIND_FILE
    if not p.exists():
        return "bpe"
    raw = _read_json(p, "tokenizer kind")
    kind = raw.get("kind") if isinstance(raw, dict) else None
    if kind not in KINDS:
        raise StorytokError(f"{p}: unknown tokenizer kind {kind!r}; this storytok reads {' and '.join(KINDS)} "
                            f"(made by a newer storytok?)")
    return kind


# ---- small helpers -----------------------------------------------------------------------

def _int(x) -> int:
    if not isinstance(x, int) or isinstance(x, bool) or x < 0:
        raise ValueError(f"{x!r} is not a non-negative integer")
    return x


def _read_json(path: Path, what: str):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise StorytokError(f"{path}: missing {what} file") from None
    except (OSError, ValueError) as e:
        raise StorytokError(f"{path}: not a readable {what} file ({' '.join(str(e).split())[:80]})") from None


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".partial")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
