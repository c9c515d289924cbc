"""Training-side views of the encoded splits, zero-copy over the `.npy` outputs.

    tokens  = encoded_datasets/tinystories_train_uint16.npy   # every token, <|endoftext|> between stories
    offsets = encoded_datasets/tinystories_train_offsets.npy  # int64 start of each story

    StoryDataset(tokens, offsets)   one item per story (the TinyStories paper's scheme)
    PackedDataset(tokens)           fixed blocks over the flat array, items (x, y)
    random_batch(tokens, 32, 512)   nanoGPT-style random windows, (x, y)

A split is opened with `np.load(path, mmap_mode="r")`: the OS pages in only the
tokens an item touches, so a 1 GB split costs no RAM, and DataLoader workers share
the page cache instead of holding copies. Items are small int64 copies (what
embedding layers and cross-entropy want), never views into the file.

Datasets pickle as a way to reopen their files (path, or file + byte position of a
memmap), never as the array, so a worker started with spawn/forkserver reopens the
memmap instead of receiving the whole split through a pipe. Plain in-memory arrays
are pickled by value: they were already in memory.

NumPy only on purpose: `storytok.datasets.torch` wraps these for PyTorch.
"""
from __future__ import annotations

import mmap
import operator
import os

import numpy as np

from storytok.errors import StorytokError

TOKENS_DTYPE = np.dtype(np.uint16)
OFFSETS_DTYPE = np.dtype(np.int64)
# Separator checks read one token per sampled story boundary; sampling keeps opening a
# 2M-story split from paging in the whole token file, and still catches offsets that
# belong to another split or another tokenizer.
BOUNDARY_SAMPLE = 1024

__all__ = ["StoryDataset", "PackedDataset", "random_batch"]


# ---------------------------------------------------------------------------- arrays

def _open_array(src, dtype, what: str) -> np.ndarray:
    """A path is opened as a read-only memmap; an array is used as is (no copy).

    src may also be a ("memmap", file, position, shape, dtype) recipe from `_reopener`.
    `what` names the array in error messages ("tokens", "offsets").
    """
    dtype, name = np.dtype(dtype), _name(src, what)
    if isinstance(src, tuple) and src[:1] == ("memmap",):
        _, filename, position, shape, dt = src
        if not os.path.isfile(filename):
            raise StorytokError(f"{filename}: {what} file not found (moved since the dataset was made?)")
        arr = np.memmap(filename, dtype=np.dtype(dt), mode="r", offset=position, shape=shape)
    elif isinstance(src, (str, os.PathLike)):
        if not os.path.isfile(name):
            raise StorytokError(f"{name}: {what} file not found (write it with `make stats`)")
        try:
            arr = np.load(name, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError) as e:
            raise StorytokError(f"{name}: not a readable .npy {what} file ({str(e).splitlines()[0]})") from None
    elif isinstance(src, np.ndarray):
        arr = src
    else:
        raise StorytokError(f"{what}: expected a .npy path or a numpy array, got {type(src).__name__}")
    if arr.dtype != dtype:
        swapped = {arr.dtype, dtype} == {TOKENS_DTYPE, OFFSETS_DTYPE}
        raise StorytokError(f"{name}: {what} must be {dtype}, found {arr.dtype}"
                            + (" (tokens and offsets swapped?)" if swapped else ""))
    if arr.ndim != 1:
        raise StorytokError(f"{name}: {what} must be 1-D, found shape {arr.shape}")
    if arr.size == 0:
        raise StorytokError(f"{name}: {what} is empty")
    return arr


def _reopener(src):
    """What to pickle instead of the array: a path, a memmap's (file, position), or the array."""
    if isinstance(src, (str, os.PathLike)):
        return os.path.abspath(os.fspath(src))
    mm = getattr(src, "_mmap", None)
    if isinstance(src, np.memmap) and mm is not None and src.filename and src.flags.c_contiguous:
        # A slice of a memmap keeps its parent's `offset`, so find where its first element
        # really sits: distance from the start of the mapping, plus where the mapping starts
        # (np.memmap maps from `offset` rounded down to the allocation granularity).
        mapping_start = src.offset - src.offset % mmap.ALLOCATIONGRANULARITY
        position = mapping_start + src.ctypes.data - np.frombuffer(mm, dtype=np.uint8).ctypes.data
        return ("memmap", src.filename, position, src.shape, src.dtype.str)
    return src


def _name(src, what: str) -> str:
    if isinstance(src, tuple) and src[:1] == ("memmap",):
        return src[1]
    if isinstance(src, (str, os.PathLike)):
        return os.fspath(src)
    return f"{what} array"


class _Mapped:
    """Base for datasets over memmapped arrays: pickles how to reopen them, not their data.

    Subclasses keep their settings as plain attributes and build everything that comes
    from the arrays in `_open(*sources)`; `_derived` names those attributes, `_sources`
    the attributes holding the reopen recipes.
    """

    _derived: tuple[str, ...] = ()
    _sources: tuple[str, ...] = ()

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k not in self._derived}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._open(*(state[k] for k in self._sources))

    def _open(self, *sources):
        raise NotImplementedError

    def _index(self, i) -> int:
        i = operator.index(i)
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"index {i} out of range for {type(self).__name__} of length {n}")
        return i


# ---------------------------------------------------------------------------- datasets

class StoryDataset(_Mapped):
    """One item per story: a 1-D int64 array of at most `max_len` tokens.

    The item is the story followed by its `<|endoftext|>` (include_eot=True), so a model
    trained on items learns where stories end, which is how the TinyStories models stop
    generating. A story longer than `max_len` is cut to its first `max_len` tokens and then
    does not end with the separator (it did not end there). The last story of a split may
    have no separator in the file; it gets one appended, so every item looks alike.

    `min_len` counts story tokens only (separator excluded): shorter stories are skipped,
    which drops empty and junk stories.

    For next-token training take x = item[:-1], y = item[1:] (the torch adapter does), so
    a model with context T wants max_len=T+1.

    eot_id: the separator id. By default it is read from the file (the token just before
    the second story); checking it at sampled boundaries catches offsets of another split.
    """

    _derived = ("tokens", "starts", "ends", "eot_id")
    _sources = ("_tokens_src", "_offsets_src")

    def __init__(self, tokens_npy, offsets_npy, max_len: int = 512, min_len: int = 10,
                 include_eot: bool = True, eot_id: int | None = None):
        if max_len < 1 or min_len < 0:
            raise StorytokError(f"StoryDataset: need max_len >= 1 and min_len >= 0, got {max_len}, {min_len}")
        self.max_len, self.min_len, self.include_eot = int(max_len), int(min_len), bool(include_eot)
        self._eot_arg = None if eot_id is None else int(eot_id)
        self._tokens_src, self._offsets_src = _reopener(tokens_npy), _reopener(offsets_npy)
        self._open(tokens_npy, offsets_npy)

    def _open(self, tokens_src, offsets_src):
        self.tokens = tokens = _open_array(tokens_src, TOKENS_DTYPE, "tokens")
        offsets = _open_array(offsets_src, OFFSETS_DTYPE, "offsets")  # 8 bytes a story: read it all
        name = _name(offsets_src, "offsets")
        self.eot_id = _check_offsets(tokens, offsets, self._eot_arg, name)
        n_tok = len(tokens)
        ends = np.empty(len(offsets), dtype=np.int64)   # one past each story's last token
        ends[:-1] = offsets[1:] - 1
        ends[-1] = n_tok - 1 if offsets[-1] < n_tok and tokens[-1] == self.eot_id else n_tok
        keep = (ends - offsets) >= self.min_len
        self.starts, self.ends = np.asarray(offsets[keep]), ends[keep]
        if len(self.starts) == 0:
            raise StorytokError(f"{name}: no story has at least min_len={self.min_len} tokens "
                                f"({len(offsets)} stories)")

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i) -> np.ndarray:
        i = self._index(i)
        start, end = int(self.starts[i]), int(self.ends[i])
        n = min(end - start, self.max_len)
        total = min(end - start + self.include_eot, self.max_len)
        item = np.empty(total, dtype=np.int64)
        item[:n] = self.tokens[start:start + n]
        if total > n:  # room left for the separator: the story ended
            item[n] = self.eot_id
        return item


class PackedDataset(_Mapped):
    """Fixed blocks over the flat array, stories joined by `<|endoftext|>` as in the file.

    Item i is (x, y) = (a[iB : iB+B], a[iB+1 : iB+B+1]): blocks do not overlap and y is x
    shifted by one, so every token is a target once per epoch. Blocks ignore story
    boundaries on purpose: no padding, no wasted compute (GPT-2's scheme).
    len = (N - 1) // B; the tail that does not fill a block is dropped.
    """

    _derived = ("tokens",)
    _sources = ("_tokens_src",)

    def __init__(self, tokens_npy, block_size: int = 512):
        if block_size < 1:
            raise StorytokError(f"PackedDataset: block_size must be >= 1, got {block_size}")
        self.block_size = int(block_size)
        self._tokens_src = _reopener(tokens_npy)
        self._open(tokens_npy)

    def _open(self, tokens_src):
        self.tokens = _open_array(tokens_src, TOKENS_DTYPE, "tokens")
        _check_fits(self.tokens, self.block_size, _name(tokens_src, "tokens"))

    def __len__(self) -> int:
        return (len(self.tokens) - 1) // self.block_size

    def __getitem__(self, i) -> tuple[np.ndarray, np.ndarray]:
        start = self._index(i) * self.block_size
        chunk = np.array(self.tokens[start:start + self.block_size + 1], dtype=np.int64)
        return chunk[:-1], chunk[1:]


def random_batch(tokens_npy, batch_size: int, block_size: int, rng=None) -> tuple[np.ndarray, np.ndarray]:
    """nanoGPT's get_batch: `batch_size` windows at uniform random starts, as (x, y) int64.

    x[r] = a[s : s+B], y[r] = a[s+1 : s+B+1] with s in [0, N-B-1]. Windows may overlap
    and cross story boundaries. rng: a np.random.Generator (or a seed for one). A path is
    reopened on every call, like nanoGPT, so a long loop never accumulates mapped pages.
    """
    if block_size < 1 or batch_size < 1:
        raise StorytokError(f"random_batch: need batch_size >= 1 and block_size >= 1, "
                            f"got {batch_size}, {block_size}")
    tokens = _open_array(tokens_npy, TOKENS_DTYPE, "tokens")
    _check_fits(tokens, block_size, _name(tokens_npy, "tokens"))
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    starts = rng.integers(0, len(tokens) - block_size, size=batch_size)
    windows = np.empty((batch_size, block_size + 1), dtype=np.int64)
    for row, s in enumerate(starts):   # contiguous reads, no fancy indexing over the memmap
        windows[row] = tokens[s:s + block_size + 1]
    return np.ascontiguousarray(windows[:, :-1]), np.ascontiguousarray(windows[:, 1:])


# ---------------------------------------------------------------------------- checks

def _check_fits(tokens, block_size: int, name: str):
    if len(tokens) < block_size + 1:
        raise StorytokError(f"{name}: block_size {block_size} is larger than the data: "
                            f"a block needs {block_size + 1} tokens, there are {len(tokens)}")


def _check_offsets(tokens, offsets, eot_id, name: str) -> int:
    """Validate offsets against tokens and return the separator id.

    Offsets must start at 0, increase strictly (every story but the last ends with its
    separator, so even an empty story takes one token) and stay within the tokens. The
    token before each story start must be the separator: checked at up to
    BOUNDARY_SAMPLE boundaries spread over the split, first and last included.
    """
    n_tok = len(tokens)
    if offsets[0] != 0:
        raise StorytokError(f"{name}: offsets must start at 0, found {offsets[0]} (not an offsets file?)")
    if len(offsets) > 1 and not np.all(offsets[1:] > offsets[:-1]):
        raise StorytokError(f"{name}: offsets are not strictly increasing (corrupt, or not an offsets file)")
    if offsets[-1] > n_tok:
        raise StorytokError(f"{name}: offsets do not match tokens: the last story starts at {offsets[-1]} "
                            f"but there are {n_tok} tokens (offsets of another split?)")
    if len(offsets) == 1:
        if eot_id is None:
            raise StorytokError(f"{name}: only one story, so the <|endoftext|> id cannot be read from "
                                f"the data; pass eot_id=")
        return eot_id
    n_bounds = len(offsets) - 1
    sample = np.unique(np.linspace(1, n_bounds, num=min(BOUNDARY_SAMPLE, n_bounds)).round().astype(np.int64))
    before = np.asarray(tokens[offsets[sample] - 1])
    eot = int(before[0]) if eot_id is None else eot_id
    bad = np.flatnonzero(before != eot)
    if len(bad):
        k, got = int(sample[bad[0]]), int(before[bad[0]])
        raise StorytokError(f"{name}: offsets do not match tokens: the token before story {k} is {got}, "
                            f"not the separator {eot} (offsets of another split, or wrong eot_id?)")
    return eot
