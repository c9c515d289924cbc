"""Parquet parts -> the flat arrays training code memory-maps, streamed in small pieces.

    <name>_<split>_uint16.npy    every token of the split, `<|endoftext|>` between stories
    <name>_<split>_offsets.npy   int64, index of each story's first token in the above

(name: NAME, `tinystories` by default.) The flat array is the split's documents joined by
the separator: story 0, separator, story 1, separator, ..., last story. For one .txt input
`tok.decode(array)` is the input text byte for byte, and a model trained on windows of it
sees stories separated exactly as in the text. offsets has one entry per
Parquet row (story), in order; story i is `tokens[offsets[i] : offsets[i+1] - 1]` (the -1
drops the separator) and the last story runs to the end of the array.

A split of TinyStories train is ~600M tokens, more than we want in memory at once. The
lengths are known up front (the manifest counts rows and tokens), so each .npy header is
written first and the data is appended one Parquet row group at a time. Files are written
under a temporary name and renamed only when the byte count matches the header.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from storytok.store.corpus_stats import StatsAccumulator, definitions, tokenizer_summary
from storytok.errors import StorytokError
from storytok.fsutil import os_error, read_json, remove_quietly, tmp_path, write_json_atomic
from storytok.store.lock import split_lock
from storytok.sources.inputs import EOT
from storytok.kernels.stories import flatten_rows
from storytok.parallel import ordered_map, resolve_workers
from storytok.store.parquet_store import UNK_COLUMN, finished_manifest, manifest_digest, unk_id_of
from storytok.progress import ProgressBar


DEFAULT_NAME = "tinystories"


def check_name(name: str) -> str:
    """NAME becomes part of file names: letters, digits, '-', '_' and '.' only."""
    if not name or not all(c.isalnum() or c in "-_." for c in name) or name.startswith("."):
        raise StorytokError(f"NAME={name!r}: use letters, digits, '-', '_' or '.' (it names the output files, "
                            f"e.g. {DEFAULT_NAME}_train_uint16.npy)")
    return name


def tokens_path(out_dir: Path, split: str, name: str = DEFAULT_NAME) -> Path:
    return Path(out_dir) / f"{name}_{split}_uint16.npy"


def offsets_path(out_dir: Path, split: str, name: str = DEFAULT_NAME) -> Path:
    return Path(out_dir) / f"{name}_{split}_offsets.npy"


class NpyStreamWriter:
    """A 1-D .npy file of known length, written header first and then piece by piece."""

    def __init__(self, path: Path, dtype, length: int):
        self.path = Path(path)
        self.tmp = tmp_path(self.path)
        self.dtype = np.dtype(dtype).newbyteorder("<")
        self.length = int(length)
        self.written = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._f = open(self.tmp, "wb")
            np.lib.format.write_array_header_1_0(self._f, {
                "descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": (self.length,)})
        except OSError as e:
            self._f = None
            remove_quietly(self.tmp)
            raise os_error(e, self.path, "free space (or fix permissions) and run `make stats` again") from None

    def write(self, piece: np.ndarray) -> None:
        piece = np.ascontiguousarray(piece, dtype=self.dtype)
        if self.written + piece.size > self.length:
            raise StorytokError(f"{self.path}: more data than the {self.length:,} elements announced; "
                                f"the Parquet parts disagree with their manifest, run `make encode` again")
        try:
            self._f.write(memoryview(piece).cast("B"))
        except OSError as e:
            raise os_error(e, self.path, "free space and run `make stats` again") from None
        self.written += piece.size

    def finish(self) -> None:
        if self.written != self.length:
            raise StorytokError(f"{self.path}: got {self.written:,} elements, expected {self.length:,}; "
                                f"the Parquet parts disagree with their manifest, run `make encode` again")
        try:
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()
            os.replace(self.tmp, self.path)
        except OSError as e:
            raise os_error(e, self.path, "free space and run `make stats` again") from None

    def abort(self) -> None:
        if self._f is not None:
            try:
                self._f.close()
            except OSError:
                pass
        remove_quietly(self.tmp)


@dataclass
class _RowGroup:
    """One Parquet row group as NumPy arrays: rows are values[offsets[r]:offsets[r+1]]."""
    values: np.ndarray
    offsets: np.ndarray
    n_bytes: np.ndarray
    unk_gpt2: np.ndarray | None


def _read_row_group(task: tuple[Path, pq.FileMetaData, int, list[str]]) -> _RowGroup:
    path, metadata, g, columns = task
    table = pq.ParquetFile(path, metadata=metadata).read_row_group(g, columns=columns)
    col = table.column("tokens").combine_chunks()
    unk = (table.column(UNK_COLUMN).combine_chunks().flatten().to_numpy(zero_copy_only=False)
           if UNK_COLUMN in columns else None)
    return _RowGroup(col.values.to_numpy(zero_copy_only=False), col.offsets.to_numpy(zero_copy_only=False),
                     table.column("n_bytes").to_numpy(), unk)


def flatten_split(tok, split_dir: Path, out_dir: Path, split: str, *, progress: bool = True,
                  workers: int | None = None, name: str = DEFAULT_NAME) -> StatsAccumulator:
    """Write the flat token and offsets arrays of one encoded split; return its statistics.

    Row groups are read and decoded on `workers` threads (pyarrow works without the GIL),
    in order; one kernel pass per row group writes the flat tokens and counts them.
    Raises StorytokError if the split is not completely encoded with `tok`.
    """
    split_dir = Path(split_dir)
    manifest = finished_manifest(split_dir, tok.fingerprint())
    eot = tok.special_ids[EOT]
    rows = sum(p["rows"] for p in manifest["parts"])
    flat_len = sum(p["tokens"] for p in manifest["parts"]) + rows - 1  # a separator between stories
    acc = StatsAccumulator(tok, manifest)
    unk = unk_id_of(tok)
    columns = ["tokens", "n_bytes"] + ([UNK_COLUMN] if unk is not None else [])
    metadata = {part["file"]: pq.read_metadata(split_dir / part["file"]) for part in manifest["parts"]}
    tasks = [(split_dir / name, md, g, columns) for name, md in metadata.items() for g in range(md.num_row_groups)]
    tokens_out = NpyStreamWriter(tokens_path(out_dir, split, name), np.uint16, flat_len)
    try:
        offsets_out = NpyStreamWriter(offsets_path(out_dir, split, name), np.int64, rows)
    except BaseException:
        tokens_out.abort()
        raise
    pos = 0            # elements written to the flat array so far
    first = True       # the split's first story gets no separator in front
    try:
        with ProgressBar(rows, f"flatten {split}", unit="stories", enabled=progress) as bar:
            for group in ordered_map(_read_row_group, tasks, resolve_workers(workers)):
                n_rows = group.offsets.size - 1
                out = np.empty(group.values.size + n_rows, np.uint16)
                unk_ws = acc.unk_whitespace(group.values, group.unk_gpt2)
                # A separator in front of every story but the split's very first.
                n, row_pos, row_text = flatten_rows(group.values, group.offsets, eot, not first, acc.is_ws,
                                                    -1 if unk is None else unk, unk_ws, out, acc.counts)
                tokens_out.write(out[:n])
                offsets_out.write(pos + row_pos)
                acc.add(np.diff(group.offsets), row_text, group.n_bytes, n, group.unk_gpt2)
                pos += n
                first = first and n_rows == 0
                bar.advance(n_rows)
        tokens_out.finish()
        offsets_out.finish()
    except BaseException:
        tokens_out.abort()
        offsets_out.abort()
        raise
    return acc


STATS_FILE = "stats.json"


@dataclass
class FlattenReport:
    stats: dict
    stats_path: Path
    rebuilt: list[str]        # splits whose arrays were written by this run
    up_to_date: list[str]     # splits whose arrays were already current
    tokens_written: int


def _current(entry: dict | None, digest: str, out_dir: Path, split: str, name: str) -> bool:
    """Do stats.json's entry and the arrays on disk still describe this exact encoding?"""
    if not entry or entry.get("source") != digest:
        return False
    files = entry.get("files", {})
    if files.get("tokens") != tokens_path(out_dir, split, name).name:
        return False
    for key, path in (("tokens_bytes", tokens_path(out_dir, split, name)),
                      ("offsets_bytes", offsets_path(out_dir, split, name))):
        if not path.exists() or path.stat().st_size != files.get(key):
            return False
    return True


def build_arrays_and_stats(tok, tokenizer_dir: Path, out_dir: Path, splits: list[str], *,
                           progress: bool = True, name: str = DEFAULT_NAME) -> FlattenReport:
    """For each split: flat arrays from its Parquet parts (skipped when already current),
    then stats.json for all of them. Entries of other splits already in stats.json are kept
    while they were made with the same tokenizer. Each split is locked while its arrays are
    written (a run encoding it, or another stats run, is refused), and stats.json is
    updated under a lock of its own."""
    out_dir = Path(out_dir)
    check_name(name)
    stats_path = out_dir / STATS_FILE
    rebuilt, current, written = [], [], 0
    built: dict[str, dict] = {}
    for split in splits:
        split_dir = out_dir / "parquet" / split
        finished_manifest(split_dir, tok.fingerprint())
        with split_lock(split_dir, f"stats {split}"):
            digest = manifest_digest(finished_manifest(split_dir, tok.fingerprint()))
            old = read_json(stats_path) or {}
            same_tok = old.get("tokenizer", {}).get("fingerprint") == tok.fingerprint()
            if same_tok and _current(old.get("splits", {}).get(split), digest, out_dir, split, name):
                current.append(split)
                continue
            entry = flatten_split(tok, split_dir, out_dir, split, progress=progress, name=name).result()
        entry["source"] = digest
        entry["files"] = {"tokens": tokens_path(out_dir, split, name).name,
                          "offsets": offsets_path(out_dir, split, name).name,
                          "tokens_bytes": tokens_path(out_dir, split, name).stat().st_size,
                          "offsets_bytes": offsets_path(out_dir, split, name).stat().st_size}
        built[split] = entry
        rebuilt.append(split)
        written += entry["tokens"]
    with _stats_lock(out_dir):
        old = read_json(stats_path) or {}
        same_tok = old.get("tokenizer", {}).get("fingerprint") == tok.fingerprint()
        entries = dict(old.get("splits", {})) if same_tok else {}
        entries.update(built)
        stats = {"format": 1, "tokenizer": tokenizer_summary(tok, tokenizer_dir), "definitions": definitions(tok),
                 "splits": {s: entries[s] for s in sorted(entries, key=lambda s: (s not in splits, s))}}
        try:
            write_json_atomic(stats_path, stats)
        except OSError as e:
            remove_quietly(tmp_path(stats_path))
            raise os_error(e, stats_path, "free space and run `make stats` again") from None
    return FlattenReport(stats, stats_path, rebuilt, current, written)


@contextmanager
def _stats_lock(out_dir: Path):
    """stats.json is read, updated and written by whichever stats run gets here: one at a time."""
    import fcntl
    path = Path(out_dir) / ".stats.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def decodes_to_file(tok, tokens_npy: Path, text_path: Path, block: int = 1 << 20) -> bool:
    """Does decoding the flat array give `text_path` back byte for byte? Checked in blocks of
    `block` tokens (token bytes concatenate, so any split works), in bounded memory."""
    arr = np.load(tokens_npy, mmap_mode="r")
    with open(text_path, "rb") as f:
        for k in range(0, arr.size, block):
            got = tok.decode_bytes(np.asarray(arr[k:k + block]))
            if f.read(len(got)) != got:
                return False
        return f.read(1) == b""
