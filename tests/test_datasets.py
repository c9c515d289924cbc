"""storytok.datasets against direct slicing of arrays built here.

Every expectation comes from the story lists the test itself joined into a split (or
from plain slices of the flat array), never from the offsets logic under test.
"""
from __future__ import annotations

import pickle
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from storytok.datasets import PackedDataset, StoryDataset, random_batch
from storytok.errors import StorytokError

EOT = 9999


def make_split(stories, eot=EOT, trailing=True):
    """Join stories the way the pipeline does: tokens with eot between, and start offsets."""
    tokens, offsets = [], []
    for s in stories:
        offsets.append(len(tokens))
        tokens += list(s) + [eot]
    if not trailing:
        tokens.pop()
    return np.array(tokens, dtype=np.uint16), np.array(offsets, dtype=np.int64)


def expected_items(stories, max_len, min_len, include_eot=True, eot=EOT):
    return [(list(s) + [eot] * include_eot)[:max_len] for s in stories if len(s) >= min_len]


def save_split(tmp_path, tokens, offsets, name="valid"):
    t, o = tmp_path / f"tinystories_{name}_uint16.npy", tmp_path / f"tinystories_{name}_offsets.npy"
    np.save(t, tokens)
    np.save(o, offsets)
    return t, o


STORIES = [[5, 6, 7], list(range(100, 125)), [], [1] * 12, list(range(40, 51))]


# ------------------------------------------------------------------ StoryDataset

@pytest.mark.parametrize("trailing", [True, False])
def test_story_items_match_story_lists_and_offset_slices(tmp_path, trailing):
    tokens, offsets = make_split(STORIES, trailing=trailing)
    ds = StoryDataset(*save_split(tmp_path, tokens, offsets), max_len=16, min_len=10)
    assert len(ds) == 3                                     # 3-token and empty stories skipped
    assert [x.tolist() for x in ds] == expected_items(STORIES, 16, 10)
    # the same items by direct slicing of the flat array: separator included, truncated
    assert ds[0].tolist() == tokens[offsets[1]:offsets[1] + 16].tolist()          # truncated, no eot
    assert ds[1].tolist() == tokens[offsets[3]:offsets[4]].tolist()               # ends with eot
    assert ds[1][-1] == EOT and ds[0][-1] != EOT
    assert ds[2].tolist() == list(range(40, 51)) + [EOT]    # last story: eot appended if missing
    assert ds.eot_id == EOT
    assert all(x.dtype == np.int64 for x in ds)


def test_story_boundaries_of_max_len_and_min_len():
    stories = [list(range(1, 11))]  # exactly 10 tokens
    tokens, offsets = make_split(stories + [[3] * 9])
    assert [x.tolist() for x in StoryDataset(tokens, offsets, max_len=11, min_len=10)] == [stories[0] + [EOT]]
    assert [x.tolist() for x in StoryDataset(tokens, offsets, max_len=10, min_len=10)] == [stories[0]]
    assert len(StoryDataset(tokens, offsets, max_len=10, min_len=9)) == 2
    with pytest.raises(StorytokError, match="min_len=11"):
        StoryDataset(tokens, offsets, max_len=10, min_len=11)


def test_story_without_eot_and_negative_index():
    tokens, offsets = make_split(STORIES, trailing=False)
    ds = StoryDataset(tokens, offsets, max_len=20, min_len=0, include_eot=False)
    assert [x.tolist() for x in ds] == [s[:20] for s in STORIES]
    assert ds[-1].tolist() == STORIES[-1]
    with pytest.raises(IndexError):
        ds[len(ds)]
    with pytest.raises(IndexError):
        ds[-len(ds) - 1]


@given(
    stories=st.lists(st.lists(st.integers(0, EOT - 1), max_size=30), min_size=1, max_size=12),
    max_len=st.integers(1, 40),
    min_len=st.integers(0, 35),
    include_eot=st.booleans(),
    trailing=st.booleans(),
    give_eot=st.booleans(),
)
def test_story_dataset_property(stories, max_len, min_len, include_eot, trailing, give_eot):
    tokens, offsets = make_split(stories, trailing=trailing)
    expected = expected_items(stories, max_len, min_len, include_eot)
    kwargs = dict(max_len=max_len, min_len=min_len, include_eot=include_eot, eot_id=EOT if give_eot else None)
    if len(tokens) == 0:                        # one empty story, no separator: nothing at all
        with pytest.raises(StorytokError, match="tokens is empty"):
            StoryDataset(tokens, offsets, **kwargs)
        return
    if len(stories) == 1 and not give_eot:
        with pytest.raises(StorytokError, match="eot_id"):
            StoryDataset(tokens, offsets, **kwargs)
        return
    if not expected:
        with pytest.raises(StorytokError, match="no story"):
            StoryDataset(tokens, offsets, **kwargs)
        return
    ds = StoryDataset(tokens, offsets, **kwargs)
    assert len(ds) == len(expected)
    assert [ds[i].tolist() for i in range(len(ds))] == expected


# ------------------------------------------------------------------ PackedDataset

@pytest.mark.parametrize("n,block", [(2, 1), (10, 3), (13, 4), (12, 11), (100, 7)])
def test_packed_matches_direct_slicing(tmp_path, n, block):
    a = np.random.default_rng(n).integers(0, 65535, size=n).astype(np.uint16)
    path = tmp_path / "t.npy"
    np.save(path, a)
    ds = PackedDataset(path, block_size=block)
    assert len(ds) == (n - 1) // block
    for i in range(len(ds)):
        x, y = ds[i]
        assert x.dtype == y.dtype == np.int64 and x.shape == y.shape == (block,)
        assert x.tolist() == a[i * block:i * block + block].tolist()
        assert y.tolist() == a[i * block + 1:i * block + block + 1].tolist()
    with pytest.raises(IndexError):
        ds[len(ds)]


@given(a=st.lists(st.integers(0, 65535), min_size=1, max_size=200), block=st.integers(1, 60))
def test_packed_property(a, block):
    a = np.array(a, dtype=np.uint16)
    if len(a) < block + 1:
        with pytest.raises(StorytokError, match="larger than the data"):
            PackedDataset(a, block_size=block)
        return
    ds = PackedDataset(a, block_size=block)
    assert len(ds) == (len(a) - 1) // block
    xs = np.stack([ds[i][0] for i in range(len(ds))])
    ys = np.stack([ds[i][1] for i in range(len(ds))])
    m = len(ds) * block
    assert np.array_equal(xs.ravel(), a[:m])          # blocks tile the array from the start
    assert np.array_equal(ys.ravel(), a[1:m + 1])     # targets: the same, one token later


# ------------------------------------------------------------------ random_batch

def test_random_batch_windows_are_shifted_slices(tmp_path):
    n, block = 50, 8
    a = np.arange(1000, 1000 + n, dtype=np.uint16)  # distinct values: a window's first token is its start
    path = tmp_path / "t.npy"
    np.save(path, a)
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(60):
        x, y = random_batch(path, 4, block, rng)
        assert x.shape == y.shape == (4, block) and x.dtype == y.dtype == np.int64
        for xr, yr in zip(x, y):
            s = int(xr[0]) - 1000
            assert xr.tolist() == a[s:s + block].tolist()
            assert yr.tolist() == a[s + 1:s + block + 1].tolist()
            seen.add(s)
    assert seen == set(range(n - block))   # every start 0..N-B-1 drawn, none beyond


def test_random_batch_is_deterministic_given_seed():
    a = np.arange(300, dtype=np.uint16)
    x1, y1 = random_batch(a, 5, 16, np.random.default_rng(7))
    x2, y2 = random_batch(a, 5, 16, 7)
    assert np.array_equal(x1, x2) and np.array_equal(y1, y2)
    x3, _ = random_batch(a, 5, 16, np.random.default_rng(8))
    assert not np.array_equal(x1, x3)


def test_random_batch_exact_fit_and_too_small():
    a = np.arange(9, dtype=np.uint16)
    x, y = random_batch(a, 3, 8, 0)                    # N = B + 1: one possible window
    assert (x == np.arange(8)).all() and (y == np.arange(1, 9)).all()
    with pytest.raises(StorytokError, match="block_size 9 is larger than the data"):
        random_batch(a, 3, 9, 0)


# ------------------------------------------------------------------ memory: no copy of the split

def test_datasets_memmap_the_file_and_items_are_small_copies(tmp_path):
    # 4M tokens = 8 MB on disk, in 4 long stories, so per-story bookkeeping is tiny
    stories = [np.full(1_000_000 - 1, k, dtype=np.uint16) for k in range(4)]
    tokens = np.concatenate([np.append(s, np.uint16(EOT)) for s in stories])
    offsets = np.arange(0, 4_000_000, 1_000_000, dtype=np.int64)
    t, o = save_split(tmp_path, tokens, offsets)
    del tokens, stories
    tracemalloc.start()
    try:
        story_ds = StoryDataset(t, o, max_len=512)
        packed = PackedDataset(t, block_size=512)
        x, y = random_batch(t, 8, 512, 0)
        items = [story_ds[i] for i in range(len(story_ds))] + [packed[i][0] for i in (0, len(packed) - 1)]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000, f"{peak} bytes allocated for an 8 MB split"
    assert isinstance(story_ds.tokens, np.memmap) and isinstance(packed.tokens, np.memmap)
    assert [int(it[0]) for it in items[:4]] == [0, 1, 2, 3]
    for it in items:
        assert it.nbytes <= 513 * 8 and not np.shares_memory(it, packed.tokens)


def test_loaded_memmap_is_used_without_copy(tmp_path):
    tokens, offsets = make_split(STORIES)
    t, o = save_split(tmp_path, tokens, offsets)
    mm = np.load(t, mmap_mode="r")
    ds, packed = StoryDataset(mm, np.load(o), min_len=1), PackedDataset(mm, block_size=4)
    assert ds.tokens is mm and packed.tokens is mm
    assert np.shares_memory(ds.tokens, mm)


# ------------------------------------------------------------------ pickling (DataLoader workers)

def as_lists(item):
    return [a.tolist() for a in item] if isinstance(item, tuple) else item.tolist()


def test_pickles_as_path_not_array(tmp_path):
    tokens, offsets = make_split([list(range(1, 200))] * 50)
    t, o = save_split(tmp_path, tokens, offsets)
    for ds in (StoryDataset(t, o, max_len=64), PackedDataset(t, block_size=64)):
        blob = pickle.dumps(ds)
        assert len(blob) < 2000 < tokens.nbytes
        back = pickle.loads(blob)
        assert len(back) == len(ds) and isinstance(back.tokens, np.memmap)
        for i in (0, len(ds) // 2, len(ds) - 1):
            assert as_lists(back[i]) == as_lists(ds[i])


def test_pickles_loaded_memmap_and_memmap_slice_by_position(tmp_path):
    a = np.arange(5000, dtype=np.uint16)
    path = tmp_path / "t.npy"
    np.save(path, a)
    mm = np.load(path, mmap_mode="r")
    for view, expected in ((mm, a), (mm[1234:], a[1234:]), (mm[10:3000], a[10:3000])):
        ds = PackedDataset(view, block_size=100)
        blob = pickle.dumps(ds)
        assert len(blob) < 2000
        back = pickle.loads(blob)
        assert len(back) == (len(expected) - 1) // 100
        assert back[0][0].tolist() == expected[:100].tolist()
        assert back[len(back) - 1][1].tolist() == expected[len(back) * 100 - 99:len(back) * 100 + 1].tolist()


def test_in_memory_arrays_pickle_by_value():
    tokens, offsets = make_split(STORIES)
    ds = pickle.loads(pickle.dumps(StoryDataset(tokens, offsets, min_len=1)))
    assert [x.tolist() for x in ds] == expected_items(STORIES, 512, 1)


# ------------------------------------------------------------------ errors: one clear line

def one_line(excinfo) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg
    return msg


def test_missing_file(tmp_path):
    with pytest.raises(StorytokError) as e:
        PackedDataset(tmp_path / "nope_uint16.npy")
    assert "nope_uint16.npy" in one_line(e) and "not found" in one_line(e)
    tokens, offsets = make_split(STORIES)
    t, _ = save_split(tmp_path, tokens, offsets)
    with pytest.raises(StorytokError, match="offsets file not found"):
        StoryDataset(t, tmp_path / "missing_offsets.npy")


def test_not_an_npy_file(tmp_path):
    p = tmp_path / "garbage.npy"
    p.write_bytes(b"hello world")
    with pytest.raises(StorytokError) as e:
        PackedDataset(p)
    assert "garbage.npy" in one_line(e) and "not a readable .npy" in one_line(e)


def test_wrong_dtype_and_swapped_files(tmp_path):
    tokens, offsets = make_split(STORIES)
    t, o = save_split(tmp_path, tokens, offsets)
    with pytest.raises(StorytokError) as e:
        StoryDataset(o, t)
    assert "must be uint16, found int64" in one_line(e) and "swapped" in one_line(e)
    with pytest.raises(StorytokError, match="tokens must be uint16, found float32"):
        PackedDataset(np.zeros(100, dtype=np.float32))
    with pytest.raises(StorytokError, match="offsets must be int64, found int32"):
        StoryDataset(tokens, offsets.astype(np.int32))
    with pytest.raises(StorytokError, match="1-D"):
        PackedDataset(np.zeros((10, 10), dtype=np.uint16))
    with pytest.raises(StorytokError, match="empty"):
        random_batch(np.zeros(0, dtype=np.uint16), 1, 1)


def test_offsets_not_matching_tokens(tmp_path):
    tokens, offsets = make_split(STORIES * 3)
    other_tokens, other_offsets = make_split([s[::-1] + [7] for s in STORIES] * 2)
    cases = [
        (other_offsets, "not the separator"),                        # another split's offsets, in range
        (np.append(offsets, len(tokens) + 5), "there are"),          # runs past the tokens
        (offsets + 1, "must start at 0"),
        (np.array([0, 5, 5, 9], dtype=np.int64), "strictly increasing"),
    ]
    for bad, msg in cases:
        with pytest.raises(StorytokError) as e:
            StoryDataset(tokens, bad, min_len=0)
        assert msg in one_line(e)
    with pytest.raises(StorytokError) as e:                          # train offsets, valid tokens
        StoryDataset(*save_split(tmp_path, other_tokens, offsets), min_len=0)
    assert "tinystories_valid_offsets.npy: offsets do not match tokens" in one_line(e)
    with pytest.raises(StorytokError, match="not the separator 1234"):
        StoryDataset(tokens, offsets, eot_id=1234)


def test_block_size_larger_than_data(tmp_path):
    path = tmp_path / "small_uint16.npy"
    np.save(path, np.arange(100, dtype=np.uint16))
    with pytest.raises(StorytokError) as e:
        PackedDataset(path, block_size=100)
    assert "small_uint16.npy: block_size 100 is larger than the data" in one_line(e)
    assert len(PackedDataset(path, block_size=99)) == 1
    with pytest.raises(StorytokError, match="block_size must be >= 1"):
        PackedDataset(path, block_size=0)


def test_importing_storytok_datasets_does_not_import_torch():
    code = "import sys, storytok, storytok.datasets; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
