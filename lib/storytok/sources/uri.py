"""Inputs named by URI (`s3://bucket/owt/*.jsonl.zst`, `gs://...`, `file:///data/x.txt`).

Corpora on a cluster live on object storage more often than on a shared disk. pyarrow's
filesystem layer already reads them (S3, GCS, HDFS, local), with the same file objects the
readers take for local paths, so a URI needs only three things here: listing what it names
(a file, a directory prefix, or a glob in its last parts), the size and modification time
that identify a version of a file (recorded in the manifest, as for local files), and
opening it. Paths without a scheme never come here: they keep the plain `os` calls.
"""
from __future__ import annotations

import fnmatch
import glob
import re

import pyarrow as pa
import pyarrow.fs as pafs

from storytok.errors import StorytokError

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_uri(path) -> bool:
    """A string with a scheme (`s3://`, `file://`, ...): read through pyarrow's filesystems."""
    return isinstance(path, str) and bool(_SCHEME.match(path))


def filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """(filesystem, path inside it) of a URI; one line when pyarrow cannot reach it."""
    try:
        return pafs.FileSystem.from_uri(uri)
    except (pa.ArrowException, OSError, ValueError) as e:
        raise StorytokError(f"{uri}: cannot open this location ({_reason(e)}); check the URI and the credentials "
                            f"(for s3://, AWS_* variables or ~/.aws)") from None


def _join(uri: str, inner_root: str, inner: str) -> str:
    """The URI of `inner`, a path inside the filesystem of `uri` (whose own path is inner_root):
    the URI's text before its path ("s3://", "hdfs://host:8020", "file://") + inner."""
    at = uri.rfind(inner_root) if inner_root else -1
    prefix = uri[:at] if at > 0 else uri.split("://", 1)[0] + "://"
    return prefix + inner


def info(uri: str) -> pafs.FileInfo:
    fs, path = filesystem(uri)
    try:
        return fs.get_file_info(path)
    except (pa.ArrowException, OSError) as e:
        raise StorytokError(f"{uri}: cannot read it ({_reason(e)})") from None


def expand(item: str, known) -> list[tuple[str, int, int]]:
    """(uri, size, mtime_ns) of every file `item` names: a file, a directory (recursive,
    hidden and "_" names skipped, only names `known(name)` accepts), or a glob; sorted."""
    fs, path = filesystem(item)
    magic = glob.has_magic(path)
    base = path
    if magic:   # list from the last directory before the first wildcard
        parts = path.split("/")
        first = next(i for i, p in enumerate(parts) if glob.has_magic(p))
        base = "/".join(parts[:first]) or "/"
    try:
        top = fs.get_file_info(base)
        if not magic and top.type == pafs.FileType.File:
            return [(item, top.size, top.mtime_ns or 0)]
        if top.type == pafs.FileType.NotFound:
            if magic:
                raise StorytokError(f"{item}: no file matches this pattern; check the URI")
            raise StorytokError(f"{item}: no such file or directory")
        listing = fs.get_file_info(pafs.FileSelector(base, recursive=True))
    except (pa.ArrowException, OSError) as e:
        raise StorytokError(f"{item}: cannot list it ({_reason(e)})") from None
    out = []
    for f in listing:
        if f.type != pafs.FileType.File:
            continue
        rel = f.path[len(base):].lstrip("/")
        if any(p.startswith((".", "_")) for p in rel.split("/")):
            continue
        if magic and not fnmatch.fnmatchcase(f.path, path):
            continue
        if not known(f.base_name):
            continue
        out.append((_join(item, path, f.path), f.size, f.mtime_ns or 0))
    if not out:
        what = "no file matches this pattern" if magic else "directory holds no input files"
        raise StorytokError(f"{item}: {what} of a known kind")
    return sorted(out)


def open_input(uri: str) -> pa.NativeFile:
    """A random-access file of the URI (seekable: Parquet footers, resuming plain text)."""
    fs, path = filesystem(uri)
    try:
        return fs.open_input_file(path)
    except (pa.ArrowException, OSError) as e:
        raise StorytokError(f"{uri}: cannot open it ({_reason(e)})") from None


def _reason(e: Exception) -> str:
    return " ".join((str(e) or type(e).__name__).split())
