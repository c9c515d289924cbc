"""Encoded stories as Parquet parts plus a manifest, written so that encoding can resume.

Layout of one split (`<out>/parquet/<split>/`):

    part-00000.parquet, part-00001.parquet, ...   one row per story, in file order
    _manifest.json                                what the parts are, and whether they are all

The directory reads as one dataset (`pyarrow.parquet.read_table(dir)`, `polars.scan_parquet(
f"{dir}/*.parquet")`, DuckDB `read_parquet('dir/*.parquet')`): the manifest's leading "_"
and the leading "." of parts still being written keep them out of dataset discovery.

Schema of every part (zstd, row groups of ROW_GROUP_ROWS stories):

    tokens   list<uint16>  not null   the story's token ids, without the <|endoftext|> separator
    n_bytes  int32         not null   the story's length in UTF-8 bytes (separator excluded)

With a gpt2-top10k tokenizer (storytok.bpe.gpt2_top10k: GPT-2's BPE restricted to its most
common tokens) one more column keeps what `<|unk|>` replaced, so nothing is lost:

    unk_gpt2_ids  list<uint16>  not null   the GPT-2 id of each <|unk|> in `tokens`, in order

and n_bytes counts the text the unks stand for (from the GPT-2 tokens, known at encode time).

A "story" (row) is whatever lies between two `<|endoftext|>` separators of the input, so
an input with N separators has N + 1 rows; the text after the last separator (in
TinyStories a lone "\\n") is the last row. Joining the rows with the separator id gives the
token stream of the whole file, which is what makes the flat arrays decode back to the
input byte for byte.

Why a manifest: encoding 2 GB takes minutes and may be interrupted. A part is written
under a temporary name and renamed when complete; only then is it recorded in the
manifest, together with the byte range of the input it covers. A re-run keeps the
recorded parts and asks the tokenizer to continue at the byte where the last one ended
(`encode_file(start_byte=...)`, which reproduces the chunks of an uninterrupted run). The
manifest also records what the parts were made from (tokenizer fingerprint, input size and
mtime, chunk size): if any of that changed, the old parts are deleted and encoding starts
clean, so parts of two tokenizers or two inputs are never mixed. Files in the directory
that the manifest does not list (leftovers of a killed run) are deleted.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from storytok.errors import StorytokError
from storytok.fsutil import TMP_SUFFIX, read_json, remove_quietly, tmp_path, write_json_atomic
from storytok.sources.inputs import EOT
from storytok.kernels.stories import last_index, split_rows
from storytok.parallel import resolve_workers
from storytok.progress import ProgressBar

FORMAT = 1
MANIFEST = "_manifest.json"   # "_" and "." names are skipped by pyarrow/polars/DuckDB dataset discovery
ROW_GROUP_ROWS = 4096
DEFAULT_CHUNK_BYTES = 16 << 20
DEFAULT_PART_BYTES = 64 << 20
SCHEMA = pa.schema([
    pa.field("tokens", pa.list_(pa.field("item", pa.uint16(), nullable=False)), nullable=False),
    pa.field("n_bytes", pa.int32(), nullable=False),
])
UNK_COLUMN = "unk_gpt2_ids"
SCHEMA_WITH_UNK = SCHEMA.append(
    pa.field(UNK_COLUMN, pa.list_(pa.field("item", pa.uint16(), nullable=False)), nullable=False))


def unk_id_of(tok) -> int | None:
    """The `<|unk|>` id of a tokenizer that maps unknown tokens to one (gpt2-top10k), else None.
    Such a tokenizer's encode_file chunks carry `gpt2_tokens`, the ids `tokens` were mapped from."""
    return getattr(tok, "unk_id", None)


def schema_for(tok) -> pa.Schema:
    return SCHEMA if unk_id_of(tok) is None else SCHEMA_WITH_UNK


def part_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


def input_identity(path: Path) -> dict:
    st = Path(path).stat()
    return {"path": str(Path(path).resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def read_manifest(split_dir: Path) -> dict | None:
    """The manifest of a split directory, or None if there is none (or it is unreadable)."""
    m = read_json(Path(split_dir) / MANIFEST)
    return m if isinstance(m, dict) and m.get("format") == FORMAT else None


def manifest_digest(manifest: dict) -> str:
    """A short identity of a finished split's parts, used by stats to know it is up to date."""
    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:16]


def finished_manifest(split_dir: Path, fingerprint: str | None = None) -> dict:
    """The manifest of a completely encoded split, checked against the files on disk.

    Raises StorytokError saying what to run when the split is missing, unfinished, made
    with another tokenizer (if `fingerprint` is given) or its part files were tampered with.
    """
    split_dir = Path(split_dir)
    m = read_manifest(split_dir)
    if m is None:
        raise StorytokError(f"{split_dir}: no encoded split here; run `make encode` first")
    if not m.get("complete"):
        raise StorytokError(f"{split_dir}: encoding of this split is unfinished (interrupted?); "
                            f"run `make encode` again to finish it")
    if fingerprint is not None and m["tokenizer"]["fingerprint"] != fingerprint:
        raise StorytokError(f"{split_dir}: these parts were encoded with another tokenizer than the "
                            f"current one; run `make encode` again")
    for p in m["parts"]:
        f = split_dir / p["file"]
        if not f.exists() or f.stat().st_size != p["file_bytes"]:
            raise StorytokError(f"{f}: missing or changed since it was written; run `make encode` again")
    return m


@dataclass
class EncodeReport:
    split: str
    input: Path
    input_bytes: int
    rows: int = 0              # rows (text between separators) in all parts
    tokens: int = 0            # story tokens in all parts (separators not counted)
    parts: int = 0
    kept_parts: int = 0        # parts from an earlier run that were kept
    encoded_bytes: int = 0     # input bytes encoded by this run
    up_to_date: bool = False   # nothing to do: a finished run with the same inputs
    started_clean_because: str | None = None


def encode_split(tok, input_path: Path, split_dir: Path, *, split: str, workers: int | None = None,
                 chunk_bytes: int = DEFAULT_CHUNK_BYTES, part_bytes: int = DEFAULT_PART_BYTES,
                 progress: bool = True) -> EncodeReport:
    """Encode `input_path` with `tok` into Parquet parts under `split_dir`, resuming if possible."""
    input_path, split_dir = Path(input_path), Path(split_dir)
    split_dir.mkdir(parents=True, exist_ok=True)
    eot = tok.special_ids[EOT]
    unk = unk_id_of(tok)
    schema = schema_for(tok)
    want = {
        "format": FORMAT,
        "split": split,
        "input": input_identity(input_path),
        "tokenizer": {"fingerprint": tok.fingerprint(), "vocab_size": len(tok), "eot_id": int(eot)},
        "chunk_bytes": int(chunk_bytes),
        "schema": {f.name: "int32" if f.name == "n_bytes" else "list<uint16>" for f in schema},
    }
    if unk is not None:
        want["tokenizer"]["unk_id"] = int(unk)
    report = EncodeReport(split, input_path, want["input"]["size"])

    old = read_manifest(split_dir)
    parts: list[dict] = []
    if old is not None:
        reason = _why_not_resumable(old, want)
        if reason is None:
            parts = _valid_prefix(split_dir, old["parts"])
            if old.get("complete") and len(parts) == len(old["parts"]):
                _remove_unlisted(split_dir, parts)
                report.up_to_date = True
                _count(report, parts)
                return report
        else:
            report.started_clean_because = reason
    manifest = dict(want, parts=parts, complete=False)  # `parts` is shared: appending records a part
    write_json_atomic(split_dir / MANIFEST, manifest)  # first, so stale parts are never listed
    _remove_unlisted(split_dir, parts)
    report.kept_parts = len(parts)

    start = parts[-1]["byte_end"] if parts else 0
    n_threads = resolve_workers(workers)
    bar = ProgressBar(report.input_bytes, f"encode {split}", unit="bytes", enabled=progress)
    layout = _RowLayout.of(tok)
    part: _Part | None = None
    writing: deque = deque()               # parts handed to the writer threads, in order
    carry = np.empty(0, dtype=np.uint16)   # tokens of a story whose separator is still to come
    carry_base = carry                      # their GPT-2 ids (gpt2-top10k), else the same array

    def record_finished(block: bool) -> None:
        """Append parts to the manifest in order, as their writers finish."""
        while writing and (block or writing[0].done()):
            parts.append(writing[0].result())   # a writer's error is raised here, its part still queued
            writing.popleft()
            write_json_atomic(split_dir / MANIFEST, manifest)

    def hand_over(p: _Part) -> None:
        writing.append(pool.submit(p.write))
        if len(writing) > n_threads:       # bounded: at most n_threads parts in memory
            writing[0].result()
        record_finished(block=False)

    pool = ThreadPoolExecutor(max_workers=n_threads, thread_name_prefix="storytok-parquet")
    try:
        with bar:
            bar.update(start)
            chunks = tok.encode_file(input_path, workers=workers, chunk_bytes=chunk_bytes,
                                     start_byte=start) if start < report.input_bytes else ()
            for chunk in chunks:
                if part is not None and part.byte_end - part.byte_start >= part_bytes and carry.size == 0:
                    hand_over(part)
                    part = None
                if part is None:
                    part = _Part(split_dir / part_name(len(parts) + len(writing)), chunk.byte_start, want, schema, layout)
                tokens = _as_uint16(chunk.tokens, input_path)
                base = tokens if layout.unk is None else _as_uint16(chunk.gpt2_tokens, input_path)
                if carry.size:
                    tokens = np.concatenate([carry, tokens])
                    base = tokens if layout.unk is None else np.concatenate([carry_base, base])
                cut = last_index(tokens, layout.eot) + 1   # rows up to the last separator are complete
                part.add(tokens[:cut], base[:cut])
                carry, carry_base = tokens[cut:], base[cut:]
                part.byte_end = chunk.byte_end
                report.encoded_bytes += chunk.byte_end - chunk.byte_start
                bar.update(chunk.byte_end)
            # The text after the last separator is the last story (empty if the file ends with one).
            if part is None:
                part = _Part(split_dir / part_name(len(parts) + len(writing)), start, want, schema, layout)
                part.byte_end = report.input_bytes
            part.add(carry, carry_base, final=True)
            hand_over(part)
            part = None
            record_finished(block=True)
            manifest["complete"] = True
            write_json_atomic(split_dir / MANIFEST, manifest)
    finally:
        if writing:  # an error: record the parts written before the first failure, drop the rest
            wait(list(writing))
            while writing and writing[0].exception() is None:
                parts.append(writing.popleft().result())
                write_json_atomic(split_dir / MANIFEST, manifest)
            _remove_unlisted(split_dir, parts)
        pool.shutdown(wait=True)
    _count(report, parts)
    return report


@dataclass
class _RowLayout:
    """How a tokenizer's chunks become rows: the separator id, and where n_bytes comes from.

    n_bytes comes from the tokens the text was encoded to: GPT-2's for gpt2-top10k, where an
    <|unk|> stands for a GPT-2 token whose length only the encoder knows."""
    eot: int
    unk: int | None
    base_eot: int
    base_lengths: np.ndarray          # byte length per id of the tokens n_bytes is counted on
    row_lengths: np.ndarray           # the same for the row's own ids: base_lengths, or zeros if
                                      # n_bytes comes from the GPT-2 ids instead

    @classmethod
    def of(cls, tok) -> "_RowLayout":
        unk = unk_id_of(tok)
        eot = int(tok.special_ids[EOT])
        if unk is None:
            lengths = tok.token_byte_lengths()
            return cls(eot, None, eot, lengths, lengths)
        return cls(eot, int(unk), int(tok.gpt2.special_ids[EOT]), tok.gpt2.token_byte_lengths(),
                   np.zeros(len(tok), np.int64))


class _Part:
    """One Parquet part: complete rows gathered on the main thread, then turned into a file
    in one go by a writer thread (`write`), under a temporary name until it is complete.

    Splitting rows, Arrow conversion, dictionary encoding and zstd all happen in `write`,
    off the main thread, so parts are written in parallel with each other and with encoding.
    """

    def __init__(self, final: Path, byte_start: int, want: dict, schema: pa.Schema, layout: _RowLayout):
        self.final = final
        self.tmp = tmp_path(final.with_name("." + final.name))  # hidden from dataset readers
        self.byte_start = self.byte_end = int(byte_start)
        meta = {"storytok.split": want["split"], "storytok.tokenizer_fingerprint": want["tokenizer"]["fingerprint"],
                "storytok.eot_id": str(want["tokenizer"]["eot_id"])}
        if "unk_id" in want["tokenizer"]:
            meta["storytok.unk_id"] = str(want["tokenizer"]["unk_id"])
        self.schema = schema.with_metadata(meta)
        self.layout = layout
        self._pieces: list[tuple[np.ndarray, np.ndarray, bool]] = []

    def add(self, tokens: np.ndarray, base: np.ndarray, final: bool = False) -> None:
        """Rows ending with a separator (or, with `final`, the file's last row); `base` are the
        ids byte lengths are counted on (GPT-2's for gpt2-top10k, else `tokens` itself)."""
        if tokens.size or final:
            self._pieces.append((tokens, base, final))

    def _columns(self) -> list[pa.Array]:
        lay = self.layout
        values, offsets, n_bytes, unk_ids, unk_offsets = [], [[0]], [], [], [[0]]
        n_values = n_unks = 0
        for tokens, base, final in self._pieces:
            v, o, nb, _ = split_rows(tokens, lay.eot, lay.row_lengths, final)
            if lay.unk is not None:
                bv, _, nb, _ = split_rows(base, lay.base_eot, lay.base_lengths, final)
                is_unk = v == lay.unk
                unk_ids.append(bv[is_unk])
                unk_cum = np.concatenate([[0], np.cumsum(is_unk, dtype=np.int64)])
                unk_offsets.append(n_unks + unk_cum[o[1:]])
                n_unks += int(unk_cum[-1])
            offsets.append(n_values + o[1:])
            n_values += v.size
            values.append(v)
            n_bytes.append(nb)
        concat = lambda xs, dtype: np.concatenate([np.asarray(x, dtype=dtype).ravel() for x in xs])
        off = concat(offsets, np.int64)
        self.rows, self.tokens = off.size - 1, int(off[-1])
        columns = [pa.ListArray.from_arrays(pa.array(off.astype(np.int32)), pa.array(concat(values, np.uint16))),
                   pa.array(concat(n_bytes, np.int64).astype(np.int32))]
        if lay.unk is not None:
            columns.append(pa.ListArray.from_arrays(pa.array(concat(unk_offsets, np.int64).astype(np.int32)),
                                                    pa.array(concat(unk_ids, np.uint16))))
        return columns

    def write(self) -> dict:
        """Write, fsync and rename into place; return the manifest entry of this part."""
        try:
            table = pa.Table.from_arrays(self._columns(), schema=self.schema)
            self._pieces = []
            pq.write_table(table, self.tmp, row_group_size=ROW_GROUP_ROWS, compression="zstd")
            with open(self.tmp, "rb") as f:
                os.fsync(f.fileno())
            os.replace(self.tmp, self.final)
        except BaseException:
            remove_quietly(self.tmp)
            raise
        return {"file": self.final.name, "byte_start": self.byte_start, "byte_end": self.byte_end,
                "rows": self.rows, "tokens": self.tokens, "file_bytes": self.final.stat().st_size}


def _as_uint16(tokens: np.ndarray, input_path: Path) -> np.ndarray:
    if tokens.dtype == np.uint16:
        return tokens
    if tokens.size and int(tokens.max()) > 0xFFFF:
        raise StorytokError(f"{input_path}: token id {int(tokens.max())} does not fit uint16")
    return tokens.astype(np.uint16)


def _why_not_resumable(old: dict, want: dict) -> str | None:
    if old.get("tokenizer", {}).get("fingerprint") != want["tokenizer"]["fingerprint"]:
        return "the tokenizer changed"
    o, w = old.get("input", {}), want["input"]
    if (o.get("size"), o.get("mtime_ns")) != (w["size"], w["mtime_ns"]):
        return "the input file changed (size or modification time)"
    if old.get("chunk_bytes") != want["chunk_bytes"]:
        return "the chunk size changed"
    if old.get("split") != want["split"]:
        return "the directory held another split"
    return None


def _valid_prefix(split_dir: Path, parts: list[dict]) -> list[dict]:
    """The recorded parts up to the first one that is missing, changed or out of sequence."""
    kept, expect = [], 0
    for i, p in enumerate(parts):
        f = split_dir / str(p.get("file"))
        if (p.get("file") != part_name(i) or p.get("byte_start") != expect or not f.exists()
                or f.stat().st_size != p.get("file_bytes")):
            break
        kept.append(p)
        expect = p["byte_end"]
    return kept


def _remove_unlisted(split_dir: Path, parts: list[dict]) -> None:
    listed = {p["file"] for p in parts} | {MANIFEST}
    for f in split_dir.iterdir():
        if f.name not in listed and (f.name.startswith("part-") or f.name.endswith(TMP_SUFFIX)):
            remove_quietly(f)


def _count(report: EncodeReport, parts: list[dict]) -> None:
    report.parts = len(parts)
    report.rows = sum(p["rows"] for p in parts)
    report.tokens = sum(p["tokens"] for p in parts)
