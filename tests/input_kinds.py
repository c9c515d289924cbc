"""Writing the same documents as every input kind storytok reads, for the input tests.

Each writer is the plain, obvious way to make such a file (Python's json, gzip; pyarrow
only for Parquet and zstd), independent of storytok's readers.
"""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

EOT = "<|endoftext|>"
KINDS = ["txt", "txt.gz", "jsonl", "jsonl.zst", "parquet"]


def shards(docs: list, n: int) -> list[list]:
    """docs cut into n consecutive shards (some may be empty when docs are few)."""
    k, r = divmod(len(docs), n)
    out, i = [], 0
    for s in range(n):
        j = i + k + (1 if s < r else 0)
        out.append(docs[i:j])
        i = j
    return out


def write_kind(docs: list, path: Path, kind: str, field: str = "text", extra: bool = True) -> Path:
    """docs as one file of `kind` at path (an extension is added). .txt joins them with the
    separator (so they must not contain it); JSONL writes one object per line, with other
    fields around the text; Parquet writes a string column with an id column before it."""
    path = Path(str(path) + "." + kind)
    if kind.startswith("txt"):
        data = EOT.join(docs).encode("utf-8")
    elif kind.startswith("jsonl"):
        lines = [json.dumps({"id": i, field: d, "meta": {"n": len(d or "")}} if extra else {field: d},
                            ensure_ascii=(i % 2 == 0)) for i, d in enumerate(docs)]
        data = "".join(line + "\n" for line in lines).encode("utf-8")
    else:
        table = pa.table({"id": pa.array(range(len(docs)), pa.int64()), field: pa.array(docs, pa.string())})
        pq.write_table(table, path, row_group_size=max(1, len(docs) // 3 or 1))
        return path
    if kind.endswith(".gz"):
        data = gzip.compress(data)
    elif kind.endswith(".zst"):
        with pa.CompressedOutputStream(str(path), "zstd") as f:
            f.write(data)
        return path
    path.write_bytes(data)
    return path


def write_shards(docs: list, directory: Path, kind: str, n: int, field: str = "text") -> list[Path]:
    """docs as n shard files of `kind` in directory, named so sorted order is document order.
    A .txt shard cannot hold zero documents (an empty file is an error; one empty document
    is an empty string), so .txt shards are never empty."""
    directory.mkdir(parents=True, exist_ok=True)
    parts = shards(docs, n)
    if kind.startswith("txt"):   # no .txt shard may be empty text: an empty shard joins its neighbour
        if not EOT.join(docs):
            raise ValueError("the documents join to no text: no .txt file can hold them")
        merged: list[list] = []
        for p in parts:
            if not p:
                continue
            if merged and not EOT.join(merged[-1]):
                merged[-1] += p
            else:
                merged.append(list(p))
        if not EOT.join(merged[-1]):
            last = merged.pop()
            merged[-1] += last
        parts = merged
    return [write_kind(p, directory / f"shard-{i:03d}", kind, field) for i, p in enumerate(parts)]
