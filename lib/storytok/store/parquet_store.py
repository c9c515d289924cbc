"""Encoded documents as Parquet parts plus a manifest, written so that encoding can resume.

Layout of one split (`<out>/parquet/<split>/`):

    part-00000.parquet, part-00001.parquet, ...   one row per document, in input order
    _manifest.json                                what the parts are, and whether they are all
    .lock                                         held by the run writing the split (store.lock)

The directory reads as one dataset (`pyarrow.parquet.read_table(dir)`, `polars.scan_parquet(
f"{dir}/*.parquet")`, DuckDB `read_parquet('dir/*.parquet')`): the manifest's leading "_"
and the leading "." of parts still being written keep them out of dataset discovery.

Schema of every part (zstd, row groups of ROW_GROUP_ROWS rows):

    tokens   list<uint16>  not null   the document's token ids, without the <|endoftext|> separator
    n_bytes  int32         not null   the document's length in UTF-8 bytes (separator excluded)

With a gpt2-top10k tokenizer (storytok.bpe.gpt2_top10k: GPT-2's BPE restricted to its most
common tokens) one more column keeps what `<|unk|>` replaced, so nothing is lost:

    unk_gpt2_ids  list<uint16>  not null   the GPT-2 id of each <|unk|> in `tokens`, in order

and n_bytes counts the text the unks stand for (from the GPT-2 tokens, known at encode time).

A row is one document: in a .txt input whatever lies between two `<|endoftext|>`
separators (so a file with N separators has N + 1 rows; in TinyStories the last is a lone
"\\n"), in JSONL a line, in Parquet a row. The documents come from
storytok.sources.split, each followed by the separator id, so the encoder's output is cut
into rows at every separator, whatever the input kind. Joining the rows with the separator
id gives the documents joined by `<|endoftext|>`: for one .txt file, the file itself, which
is what makes the flat arrays decode back to it byte for byte.

Why a manifest: encoding 2 GB takes minutes and may be interrupted. A part is written
under a temporary name and renamed when complete; only then is it recorded in the
manifest, together with the input position where it ends (file, offset, line). A re-run
keeps the recorded parts and reads the input on from there (which reproduces the chunks
of an uninterrupted run). The manifest also records what the parts were made from
(tokenizer fingerprint, every input file's path, size and mtime, the text field, chunk
size): if any of that changed, the old parts are deleted and encoding starts clean, so
parts of two tokenizers or two inputs are never mixed. Files in the directory that the
manifest does not list (leftovers of a killed run) are deleted. One run at a time writes
a split (store.lock); a second is refused.
"""
from __future__ import annotations

import hashlib
import json
import os
import queue
from collections import deque
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from storytok.bpe.batch import encode_chunks
from storytok.errors import StorytokError
from storytok.fsutil import TMP_SUFFIX, os_error, read_json, remove_quietly, tmp_path, write_json_atomic
from storytok.kernels.stories import last_index, split_rows
from storytok.parallel import resolve_workers
from storytok.progress import ProgressBar
from storytok.sources.inputs import EOT
from storytok.sources.split import START, Source
from storytok.store.lock import split_lock

FORMAT = 2
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
        old = read_json(split_dir / MANIFEST)
        if isinstance(old, dict) and old.get("format") != FORMAT:
            raise StorytokError(f"{split_dir}: encoded by an older storytok (manifest format {old.get('format')}); "
                                f"run `make encode` again")
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


def manifest_text_bytes(m: dict) -> int:
    """Bytes of the split's documents joined by the separator: what its flat array decodes to
    (for one .txt file, the file's size). Parts count a separator after every document;
    the last one is not in the flat array."""
    total = sum(p["text_bytes"] for p in m["parts"])
    return total - m["separator_bytes"] if total else 0


@dataclass
class EncodeReport:
    split: str
    input: str                 # the input, described (a file, or "N files (first ... last)")
    input_bytes: int           # bytes of the input files on disk
    files: int = 1
    rows: int = 0              # rows (documents) in all parts
    tokens: int = 0            # document tokens in all parts (separators not counted)
    parts: int = 0
    kept_parts: int = 0        # parts from an earlier run that were kept
    encoded_bytes: int = 0     # text bytes this run read from the input (documents; .txt: with their separators)
    bad_docs: int = 0          # null or missing texts read as empty documents (skip_bad_docs), all parts
    up_to_date: bool = False   # nothing to do: a finished run with the same inputs
    started_clean_because: str | None = None


def encode_split(tok, source, split_dir: Path, *, split: str, field: str = "text", skip_bad_docs: bool = False,
                 workers: int | None = None, chunk_bytes: int = DEFAULT_CHUNK_BYTES,
                 part_bytes: int = DEFAULT_PART_BYTES, progress: bool = True) -> EncodeReport:
    """Encode `source` (a path, glob, directory or list of them, or a resolved Source) with
    `tok` into Parquet parts under `split_dir`, resuming if possible. Refused (StorytokError)
    while another run writes the same split."""
    src = source if isinstance(source, Source) else Source.of(source, field=field, skip_bad_docs=skip_bad_docs)
    split_dir = Path(split_dir)
    with split_lock(split_dir, f"encode {split}"):
        return _encode_locked(tok, src, split_dir, split, workers, chunk_bytes, part_bytes, progress)


def _encode_locked(tok, src: Source, split_dir: Path, split: str, workers, chunk_bytes: int, part_bytes: int,
                   progress: bool) -> EncodeReport:
    eot = tok.special_ids[EOT]
    unk = unk_id_of(tok)
    schema = schema_for(tok)
    base_tok = tok if unk is None else tok.gpt2     # gpt2-top10k: encode with GPT-2, then map ids
    sep_len = len(EOT.encode("utf-8"))
    want = {
        "format": FORMAT,
        "split": split,
        "inputs": src.identity(),
        "field": src.field,
        "skip_bad_docs": bool(src.skip_bad_docs),
        "tokenizer": {"fingerprint": tok.fingerprint(), "vocab_size": len(tok), "eot_id": int(eot)},
        "chunk_bytes": int(chunk_bytes),
        "separator_bytes": sep_len,
        "schema": {f.name: "int32" if f.name == "n_bytes" else "list<uint16>" for f in schema},
    }
    if unk is not None:
        want["tokenizer"]["unk_id"] = int(unk)
    report = EncodeReport(split, src.describe(), src.input_bytes, files=len(src.files))

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
    elif (split_dir / MANIFEST).exists():
        report.started_clean_because = "the manifest is from an older storytok or unreadable"
    manifest = dict(want, parts=parts, complete=False)  # `parts` is shared: appending records a part
    _write_manifest(split_dir, manifest)  # first, so stale parts are never listed
    _remove_unlisted(split_dir, parts)
    report.kept_parts = len(parts)

    start = tuple(parts[-1]["end"]) if parts else START
    n_threads = resolve_workers(workers)
    bar = ProgressBar(report.input_bytes, f"encode {split}", unit="bytes", enabled=progress)
    layout = _RowLayout.of(tok)
    part: _Part | None = None
    position = start
    writing: deque = deque()               # finished parts whose writers are still at work, in order
    carry = np.empty(0, dtype=np.uint16)   # tokens of a document whose separator is still to come
    carry_base = carry                      # their GPT-2 ids (gpt2-top10k), else the same array

    def record_finished(block: bool) -> None:
        """Append parts to the manifest in order, as their writers finish."""
        while writing and (block or writing[0].future.done()):
            parts.append(writing[0].future.result())   # a writer's error is raised here, its part still queued
            writing.popleft()
            _write_manifest(split_dir, manifest)

    def hand_over(p: _Part) -> None:
        p.finish()
        writing.append(p)
        if len(writing) >= n_threads:      # bounded: at most n_threads parts being written
            writing[0].future.result()
        record_finished(block=False)

    pool = ThreadPoolExecutor(max_workers=n_threads, thread_name_prefix="storytok-parquet")
    try:
        with bar:
            bar.update(src.disk_before(start[0]))
            chunks = src.chunks(base_tok._matcher, chunk_bytes=chunk_bytes, start=start)
            for piece in encode_chunks(base_tok, chunks, sep_id=base_tok.special_ids[EOT], workers=workers):
                c = piece.chunk
                if part is not None and part.text_bytes >= part_bytes and carry.size == 0:
                    hand_over(part)
                    part = None
                if part is None:
                    part = _Part(split_dir / part_name(len(parts) + len(writing)), position, want, schema, layout)
                    part.start(pool)
                base = _as_uint16(piece.tokens, c.path)
                tokens = base if unk is None else tok.from_gpt2(base)
                if carry.size:
                    tokens = np.concatenate([carry, tokens])
                    base = tokens if unk is None else np.concatenate([carry_base, base])
                cut = last_index(tokens, layout.eot) + 1   # rows up to the last separator are complete
                part.add(tokens[:cut], base[:cut])
                carry, carry_base = tokens[cut:], base[cut:]
                position = part.end = c.position
                # the input's own text (documents, and special tokens inside .txt text), and the
                # separators the documents that end here are followed by
                text, ended = (c.length, int(c.ends_doc)) if c.seg is None else (int((c.seg[1] - c.seg[0]).sum()), c.docs)
                part.text_bytes += text + sep_len * ended
                part.bad_docs += c.bad_docs
                report.encoded_bytes += text
                bar.update(src.disk_before(c.file) + c.disk_pos)
            if carry.size:
                raise RuntimeError("storytok bug: the input ended inside a document (no separator after it)")
            if part is not None:
                hand_over(part)
                part = None
            record_finished(block=True)
            if not sum(p["rows"] for p in parts):
                raise StorytokError(f"{report.input}: no documents in the input (only blank lines?); "
                                    f"nothing to encode")
            manifest["complete"] = True
            _write_manifest(split_dir, manifest)
    finally:
        if part is not None:   # an error while filling it: its writer drops the temporary file
            part.abort()
        if writing:  # an error: record the parts written before the first failure, drop the rest
            wait([p.future for p in writing])
            while writing and writing[0].future.exception() is None:
                parts.append(writing.popleft().future.result())
                try:
                    _write_manifest(split_dir, manifest)
                except StorytokError:
                    break
        pool.shutdown(wait=True)
        if writing or part is not None:
            _remove_unlisted(split_dir, parts)
    _count(report, parts)
    return report


def _write_manifest(split_dir: Path, manifest: dict) -> None:
    try:
        write_json_atomic(split_dir / MANIFEST, manifest)
    except OSError as e:
        remove_quietly(tmp_path(split_dir / MANIFEST))
        raise os_error(e, split_dir / MANIFEST, "finished parts are kept; free space (or fix permissions) and "
                                                "run `make encode` again to resume") from None


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
    """One Parquet part, written by a writer thread while the main thread fills it.

    The main thread hands over complete rows piece by piece (`add`, one encoded chunk's
    rows at a time); the writer turns each piece into Arrow columns and writes row groups of
    exactly ROW_GROUP_ROWS rows (the rest waits for the next piece), under a temporary name
    renamed into place by `finish`. Splitting rows, Arrow conversion, dictionary encoding
    and zstd run off the main thread, and memory holds a few pieces per part, whatever the
    part size.
    """

    QUEUE = 3
    _DONE, _ABORT = object(), object()

    def __init__(self, final: Path, start: tuple, want: dict, schema: pa.Schema, layout: _RowLayout):
        self.final = final
        self.tmp = tmp_path(final.with_name("." + final.name))  # hidden from dataset readers
        self.start_pos = self.end = tuple(start)
        self.text_bytes = 0
        self.bad_docs = 0
        meta = {"storytok.split": want["split"], "storytok.tokenizer_fingerprint": want["tokenizer"]["fingerprint"],
                "storytok.eot_id": str(want["tokenizer"]["eot_id"])}
        if "unk_id" in want["tokenizer"]:
            meta["storytok.unk_id"] = str(want["tokenizer"]["unk_id"])
        self.schema = schema.with_metadata(meta)
        self.layout = layout
        self._queue: queue.Queue = queue.Queue(maxsize=self.QUEUE)
        self._aborted = False
        self.future = None

    def start(self, pool: ThreadPoolExecutor) -> None:
        self.future = pool.submit(self._write)

    def add(self, tokens: np.ndarray, base: np.ndarray) -> None:
        """Rows, each ending with a separator; `base` are the ids byte lengths are counted on
        (GPT-2's for gpt2-top10k, else `tokens` itself). Waits while the writer is behind;
        raises the writer's error if it failed."""
        if tokens.size:
            self._put((tokens, base))

    def finish(self) -> None:
        """No more rows: the writer completes the file; `future` gives its manifest entry."""
        self._put(self._DONE)

    def abort(self) -> None:
        """Give up on this part: the writer removes its temporary file."""
        self._aborted = True
        try:
            self._queue.put_nowait(self._ABORT)
        except queue.Full:
            pass   # the writer sees the flag at its next piece
        if self.future.cancel():
            remove_quietly(self.tmp)

    def _put(self, item) -> None:
        while True:
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                if self.future.done():
                    self.future.result()   # the writer's error
                    raise RuntimeError("storytok bug: a part writer stopped early")

    def _write(self) -> dict:
        writer = None
        rows = tokens = 0
        pending = None      # rows not yet written: fewer than a row group
        try:
            writer = pq.ParquetWriter(self.tmp, self.schema, compression="zstd")
            while True:
                item = self._queue.get()
                if item is self._ABORT or self._aborted:
                    raise _Aborted
                if item is self._DONE:
                    break
                table = pa.Table.from_arrays(self._columns(*item), schema=self.schema)
                rows += table.num_rows
                tokens += len(table.column(0).chunk(0).values)
                pending = table if pending is None else pa.concat_tables([pending, table])
                full = pending.num_rows // ROW_GROUP_ROWS * ROW_GROUP_ROWS
                if full:
                    write_rows(writer, pending.slice(0, full), self.final)
                    pending = pending.slice(full)
            if pending is not None and pending.num_rows:
                write_rows(writer, pending, self.final)
            writer.close()
            writer = None
            with open(self.tmp, "rb") as f:
                os.fsync(f.fileno())
            os.replace(self.tmp, self.final)
        except OSError as e:
            self._drop(writer)
            raise os_error(e, self.final, "finished parts are kept; free space (or fix permissions) and run "
                                          "`make encode` again to resume") from None
        except BaseException:
            self._drop(writer)
            raise
        return {"file": self.final.name, "start": list(self.start_pos), "end": list(self.end), "rows": rows,
                "tokens": tokens, "text_bytes": self.text_bytes, "bad_docs": self.bad_docs,
                "file_bytes": self.final.stat().st_size}

    def _drop(self, writer) -> None:
        self._aborted = True
        while True:   # unblock a main thread waiting to hand over a piece
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        if writer is not None:
            try:
                writer.close()
            except (OSError, pa.ArrowException):
                pass
        remove_quietly(self.tmp)

    def _columns(self, tokens: np.ndarray, base: np.ndarray) -> list[pa.Array]:
        lay = self.layout
        v, o, nb, _ = split_rows(tokens, lay.eot, lay.row_lengths, False)
        columns = [pa.ListArray.from_arrays(pa.array(o.astype(np.int32)), pa.array(v, pa.uint16())),
                   pa.array(nb.astype(np.int32))]
        if lay.unk is not None:
            bv, _, nb, _ = split_rows(base, lay.base_eot, lay.base_lengths, False)
            columns[1] = pa.array(nb.astype(np.int32))
            is_unk = v == lay.unk
            unk_cum = np.concatenate([[0], np.cumsum(is_unk, dtype=np.int64)])
            columns.append(pa.ListArray.from_arrays(pa.array(unk_cum[o].astype(np.int32)),
                                                    pa.array(bv[is_unk].astype(np.uint16), pa.uint16())))
        return columns


class _Aborted(Exception):
    """The main thread gave the part up (an error elsewhere)."""


def write_rows(writer: pq.ParquetWriter, table: pa.Table, part: Path) -> None:
    """Write whole row groups of a part; a name of its own so tests can make the disk fill up."""
    writer.write_table(table, row_group_size=ROW_GROUP_ROWS)


def _as_uint16(tokens: np.ndarray, input_path) -> np.ndarray:
    if tokens.dtype == np.uint16:
        return tokens
    if tokens.size and int(tokens.max()) > 0xFFFF:
        raise StorytokError(f"{input_path}: token id {int(tokens.max())} does not fit uint16")
    return tokens.astype(np.uint16)


def _why_not_resumable(old: dict, want: dict) -> str | None:
    if old.get("tokenizer", {}).get("fingerprint") != want["tokenizer"]["fingerprint"]:
        return "the tokenizer changed"
    if old.get("split") != want["split"]:
        return "the directory held another split"
    o, w = old.get("inputs", []), want["inputs"]
    if [x.get("path") for x in o] != [x["path"] for x in w]:
        return "the input files changed (" + _list_change(o, w) + ")"
    for a, b in zip(o, w):
        if (a.get("size"), a.get("mtime_ns")) != (b["size"], b["mtime_ns"]):
            return f"the input file {b['path']} changed (size or modification time)"
    if old.get("chunk_bytes") != want["chunk_bytes"]:
        return "the chunk size changed"
    if old.get("field") != want["field"] and any(x["kind"] != "txt" for x in w):
        return f"the text field changed ({old.get('field')!r} -> {want['field']!r})"
    if old.get("skip_bad_docs") and not want["skip_bad_docs"]:
        return "the earlier run skipped bad documents (SKIP_BAD_DOCS=1) and this one does not"
    return None


def _list_change(old: list[dict], new: list[dict]) -> str:
    a, b = [x.get("path") for x in old], [x["path"] for x in new]
    added, removed = [p for p in b if p not in a], [p for p in a if p not in b]
    if added:
        return f"{len(added)} added, e.g. {added[0]}"
    if removed:
        return f"{len(removed)} removed, e.g. {removed[0]}"
    return "another order"


def _valid_prefix(split_dir: Path, parts: list[dict]) -> list[dict]:
    """The recorded parts up to the first one that is missing, changed or out of sequence."""
    kept, expect = [], list(START)
    for i, p in enumerate(parts):
        f = split_dir / str(p.get("file"))
        if (p.get("file") != part_name(i) or p.get("start") != expect or not f.exists()
                or f.stat().st_size != p.get("file_bytes")):
            break
        kept.append(p)
        expect = p["end"]
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
    report.bad_docs = sum(p.get("bad_docs", 0) for p in parts)
