"""What a split's input names: a file, a glob, a directory, or several of these -> files.

Users hold corpora as one text file (TinyStories), as shards (`owt/*.jsonl.zst`), or as a
Hugging Face folder of Parquet files. All of these resolve to one list of files, each
with the kind its extension names, before any work starts, so a typo or an unreadable
shard is reported at once instead of an hour into a run. The list is what the manifest
records (path, size, mtime): a changed, added or removed shard is noticed on resume.

Order: a glob's matches and a directory's files (recursive; hidden names, names starting
with "_" and files of no known kind, such as a README, skipped) are taken in sorted order;
several items keep the order they were given in. A file named explicitly must be of a
known kind.
"""
from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

from storytok.errors import StorytokError

KINDS = {".txt": "txt", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
COMPRESSIONS = {".gz": "gzip", ".zst": "zstd"}
ACCEPTED = ".txt, .jsonl, .ndjson or .parquet, optionally compressed as .gz or .zst (not .parquet, which is compressed inside)"


@dataclass(frozen=True)
class InputFile:
    """One input file: its path, kind (txt, jsonl, parquet), compression (None, gzip, zstd),
    and the size and mtime that identify this version of it."""
    path: str
    kind: str
    compression: str | None
    size: int
    mtime_ns: int

    def identity(self) -> dict:
        return {"path": str(Path(self.path).resolve()), "kind": self.kind, "size": self.size,
                "mtime_ns": self.mtime_ns}

    @property
    def name(self) -> str:
        return os.path.basename(self.path)


def kind_of(path, unknown_as_text: bool = False) -> tuple[str, str | None]:
    """(kind, compression) from the file name, or a one-line StorytokError naming what is
    accepted. With unknown_as_text a name of no known kind is plain text (train_bpe reads
    any file it is given as text, as it always has: CS336's corpus.en)."""
    name = os.path.basename(os.fspath(path)).lower()
    stem, ext = os.path.splitext(name)
    compression = COMPRESSIONS.get(ext)
    if compression is not None:
        stem, ext = os.path.splitext(stem)
    kind = KINDS.get(ext)
    if kind == "parquet" and compression is not None:
        raise StorytokError(f"{os.fspath(path)}: a compressed Parquet file is not read (Parquet compresses its "
                            f"columns inside); decompress it to .parquet")
    if kind is None and unknown_as_text:
        return "txt", compression
    if kind is None:
        shown = "".join(Path(name).suffixes[-2:]) or "no extension"
        raise StorytokError(f"{os.fspath(path)}: unknown input kind ({shown}); inputs must be {ACCEPTED} "
                            f"(rename a text file to .txt)")
    return kind, compression


def _file(path: str, unknown_as_text: bool = False) -> InputFile:
    kind, compression = kind_of(path, unknown_as_text)
    try:
        st = os.stat(path)
    except OSError as e:
        raise StorytokError(f"{path}: cannot read it ({e.strerror})") from None
    if not os.access(path, os.R_OK):
        raise StorytokError(f"{path}: permission denied; make it readable or pass another file")
    if st.st_size == 0 and (kind == "txt" or compression):   # an empty JSONL file holds no documents: fine
        raise StorytokError(f"{path}: file is empty; expected " + (
            "UTF-8 text with stories separated by <|endoftext|>" if kind == "txt" else f"{compression} data"))
    return InputFile(path, kind, compression, st.st_size, st.st_mtime_ns)


def _known(name: str) -> bool:
    try:
        kind_of(name)
        return True
    except StorytokError:
        return False


def _walk(directory: str) -> list[str]:
    """Files of a known kind under a directory, recursively, hidden names skipped, sorted."""
    found = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = [d for d in dirs if not d.startswith((".", "_"))]
        found += [os.path.join(root, f) for f in files if not f.startswith((".", "_")) and _known(f)]
    return sorted(found)


def _expand(item: str) -> list[str]:
    if glob.has_magic(item):
        matches = sorted(glob.glob(item, recursive=True))
        if not matches:
            raise StorytokError(f"{item}: no file matches this pattern; check the path (quote it so the shell "
                                f"does not expand it)")
        out = []
        for m in matches:
            out += _walk(m) if os.path.isdir(m) else [m] if _known(m) else []
        if not out:
            raise StorytokError(f"{item}: matches {len(matches)} file(s) but none of a known kind "
                                f"(e.g. {matches[0]}); inputs must be {ACCEPTED}")
        return out
    if os.path.isdir(item):
        files = _walk(item)
        if not files:
            raise StorytokError(f"{item}: directory holds no input files; inputs must be {ACCEPTED}")
        return files
    if not os.path.exists(item):
        raise StorytokError(f"{item}: no such file (run `make data`, or pass the path of a text file)")
    return [item]


def as_items(spec) -> list[str]:
    """The items a spec names: one path / glob / directory (str or PathLike) or a list of them."""
    if isinstance(spec, (str, os.PathLike)):
        return [os.fspath(spec)]
    if isinstance(spec, (list, tuple)):
        items = []
        for x in spec:
            if not isinstance(x, (str, os.PathLike)):
                raise StorytokError(f"an input list holds {type(x).__name__} {x!r}; it must list paths, "
                                    f"globs or directories")
            items.append(os.fspath(x))
        if not items:
            raise StorytokError("the input list is empty; name at least one file, glob or directory")
        return items
    raise StorytokError(f"cannot read input from a {type(spec).__name__}; pass a path, glob, directory or a list of them")


def resolve(spec, unknown_as_text: bool = False) -> list[InputFile]:
    """Every input file `spec` names, in order, each checked (known kind, readable, non-empty).
    A file named twice is an error (its documents would be encoded twice). With
    unknown_as_text, a file named explicitly with no known extension is read as text."""
    files: list[InputFile] = []
    seen: dict[str, str] = {}
    for item in as_items(spec):
        for path in _expand(item):
            real = os.path.realpath(path)
            if real in seen:
                raise StorytokError(f"{path}: named twice in the input ({seen[real]!r} and {item!r}); each file "
                                    f"may appear once")
            seen[real] = item
            files.append(_file(path, unknown_as_text and path == item))
    return files


def describe(files: list[InputFile]) -> str:
    """A short name for a list of inputs: the file, or 'N files (first ... last)'."""
    if len(files) == 1:
        return files[0].path
    return f"{len(files)} files ({files[0].path} ... {files[-1].path})"
