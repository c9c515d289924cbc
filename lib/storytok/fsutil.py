"""Write outputs so that an interrupted run never leaves something that looks finished.

Every pipeline output is written under a temporary name in the same directory and renamed
into place only when complete: a rename within one filesystem is atomic, so a reader (or a
re-run deciding what to keep) sees either the old file, the new one, or no file, never half
of one. Temporary names carry the suffix below so a later run can find and delete leftovers
of a run that was killed (`kill -9` cannot be caught, so cleanup happens on the next start).
"""
from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

TMP_SUFFIX = ".partial"


def tmp_path(final: Path) -> Path:
    """The temporary name `final` is written under until it is complete."""
    final = Path(final)
    return final.with_name(final.name + TMP_SUFFIX)


def write_json_atomic(path: Path, obj) -> None:
    """Write `obj` as JSON to `path` via a temporary file, fsync, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path(path)
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_json(path: Path):
    """The JSON in `path`, or None when the file is missing or unreadable (treated as absent)."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def remove_quietly(path: Path) -> None:
    """Delete a file or directory tree if it exists."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def replace_dir(tmp_dir: Path, final_dir: Path) -> None:
    """Move the finished `tmp_dir` to `final_dir`, replacing what was there.

    The old directory is first renamed aside, so at every moment `final_dir` is either the
    complete old one, absent, or the complete new one.
    """
    tmp_dir, final_dir = Path(tmp_dir), Path(final_dir)
    old = final_dir.with_name(final_dir.name + ".old" + TMP_SUFFIX)
    remove_quietly(old)
    if final_dir.exists():
        os.replace(final_dir, old)
    os.replace(tmp_dir, final_dir)
    remove_quietly(old)


def os_reason(e: OSError) -> str:
    """What an operating-system error says, in a few words (pyarrow's OSErrors carry no
    errno attribute, only the text, so both are looked at)."""
    text = " ".join(str(e).split())
    no = e.errno
    if no is None:
        for code in (errno.ENOSPC, errno.EACCES, errno.EROFS, errno.EDQUOT, errno.EIO):
            if f"errno {code}]" in text.lower() or os.strerror(code).lower() in text.lower():
                no = code
                break
    if no == errno.ENOSPC:
        return "no space left on the device: the disk is full"
    if no == errno.EDQUOT:
        return "disk quota exceeded"
    if no in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if no == errno.EROFS:
        return "read-only file system"
    return e.strerror or text or type(e).__name__


def os_error(e: OSError, path, todo: str):
    """One line (a StorytokError) for an OSError while writing `path`: the path, what the
    system said, what to do."""
    from storytok.errors import StorytokError
    return StorytokError(f"{path}: cannot write it ({os_reason(e)}); {todo}")
