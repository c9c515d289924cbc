"""storytok.datasets.torch: LongTensor items, DataLoader with workers, padding convention.

Skipped when PyTorch is not installed (`pip install torch==2.13.0` gives the CPU build).
"""
from __future__ import annotations

import os
import pickle
from functools import partial

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch not importable: pip install torch==2.13.0 (CPU build)",
                            exc_type=ImportError)  # a broken install skips too, with this reason

from torch.utils.data import DataLoader  # noqa: E402

from storytok import datasets as np_datasets  # noqa: E402
from storytok.datasets.torch import PackedDataset, StoryDataset, collate_stories, random_batch  # noqa: E402

EOT = 500


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    """A small split on disk: 300 stories of 0..40 tokens, <|endoftext|> between them."""
    rng = np.random.default_rng(0)
    stories = [rng.integers(0, EOT, size=rng.integers(0, 41)).tolist() for _ in range(300)]
    tokens, offsets = [], []
    for s in stories:
        offsets.append(len(tokens))
        tokens += s + [EOT]
    d = tmp_path_factory.mktemp("split")
    np.save(d / "tokens.npy", np.array(tokens, dtype=np.uint16))
    np.save(d / "offsets.npy", np.array(offsets, dtype=np.int64))
    return d / "tokens.npy", d / "offsets.npy", stories


def batches(loader):
    return [tuple(t.clone() for t in b) for b in loader]


def same_batches(a, b):
    return len(a) == len(b) and all(len(p) == len(q) and all(torch.equal(s, t) for s, t in zip(p, q))
                                    for p, q in zip(a, b))


def test_packed_items_are_long_tensors_shifted_by_one(split):
    tokens, _, _ = split
    a = np.load(tokens)
    ds = PackedDataset(tokens, block_size=32)
    assert len(ds) == (len(a) - 1) // 32
    x, y = ds[3]                       # minGPT's Trainer: x, y = dataset[i]
    assert x.dtype == y.dtype == torch.long and x.shape == y.shape == (32,)
    assert x.tolist() == a[96:128].tolist() and y.tolist() == a[97:129].tolist()


def test_story_items_are_story_pairs(split):
    tokens, offsets, stories = split
    ds = StoryDataset(tokens, offsets, max_len=25, min_len=10)
    kept = [s for s in stories if len(s) >= 10]
    assert len(ds) == len(kept)
    for (x, y), s in zip(ds, kept):
        seq = (s + [EOT])[:25]
        assert x.dtype == y.dtype == torch.long
        assert x.tolist() == seq[:-1] and y.tolist() == seq[1:]


def test_collate_pads_x_with_pad_id_and_y_with_ignore_index():
    batch = [(torch.tensor([1, 2, 3]), torch.tensor([2, 3, 4])), (torch.tensor([7]), torch.tensor([8]))]
    x, y = collate_stories(batch)
    assert x.tolist() == [[1, 2, 3], [7, 0, 0]] and y.tolist() == [[2, 3, 4], [8, -1, -1]]
    x, y, lengths = collate_stories(batch, pad_id=EOT, ignore_index=-100, return_lengths=True)
    assert x.tolist() == [[1, 2, 3], [7, EOT, EOT]] and y.tolist() == [[2, 3, 4], [8, -100, -100]]
    assert lengths.tolist() == [3, 1]
    assert ((y != -100) == (torch.arange(3) < lengths[:, None])).all()   # the two masks agree


def test_padded_loss_equals_loss_over_real_tokens(split):
    """The padding convention works with F.cross_entropy(ignore_index=-1) as minGPT calls it."""
    tokens, offsets, _ = split
    ds = StoryDataset(tokens, offsets, max_len=33, min_len=5)
    torch.manual_seed(0)
    emb = torch.nn.Embedding(EOT + 1, EOT + 1)          # a bigram model: position-independent
    items = [ds[i] for i in range(8)]
    x, y = collate_stories(items)
    logits = emb(x)
    padded = torch.nn.functional.cross_entropy(logits.view(-1, EOT + 1), y.view(-1), ignore_index=-1)
    xs, ys = torch.cat([i[0] for i in items]), torch.cat([i[1] for i in items])
    direct = torch.nn.functional.cross_entropy(emb(xs), ys)
    assert torch.allclose(padded, direct)


def test_dataloader_two_workers_matches_plain_loop_packed(split):
    tokens, _, _ = split
    ds = PackedDataset(tokens, block_size=16)
    loop = [tuple(torch.stack(t) for t in zip(*(ds[j] for j in range(i, min(i + 8, len(ds))))))
            for i in range(0, len(ds), 8)]
    workers = batches(DataLoader(ds, batch_size=8, num_workers=2))
    assert same_batches(workers, loop) and len(loop) > 4


def test_dataloader_two_workers_matches_plain_loop_stories(split):
    tokens, offsets, _ = split
    ds = StoryDataset(tokens, offsets, max_len=33)
    collate = partial(collate_stories, pad_id=EOT)
    loop = [collate([ds[j] for j in range(i, min(i + 16, len(ds)))]) for i in range(0, len(ds), 16)]
    workers = batches(DataLoader(ds, batch_size=16, num_workers=2, collate_fn=collate))
    assert same_batches(workers, loop) and len(loop) > 4
    # shuffled: the sampler runs in the main process, so a seeded generator fixes the batches
    shuffled = [batches(DataLoader(ds, batch_size=16, shuffle=True, num_workers=n, collate_fn=collate,
                                   generator=torch.Generator().manual_seed(1))) for n in (0, 2)]
    assert same_batches(*shuffled) and not same_batches(shuffled[0], loop)


def test_dataloader_spawn_workers_reopen_memmap(split):
    """spawn pickles the dataset into each worker: it must travel as a path and reopen."""
    tokens, _, _ = split
    ds = PackedDataset(np.load(tokens, mmap_mode="r"), block_size=64)
    assert len(pickle.dumps(ds)) < 2000 < os.path.getsize(tokens)
    loop = batches(DataLoader(ds, batch_size=8))
    workers = batches(DataLoader(ds, batch_size=8, num_workers=2, multiprocessing_context="spawn"))
    assert same_batches(workers, loop)


def test_random_batch_matches_numpy_version(split):
    tokens, _, _ = split
    x, y = random_batch(tokens, 4, 16, np.random.default_rng(3))
    nx, ny = np_datasets.random_batch(tokens, 4, 16, np.random.default_rng(3))
    assert x.dtype == torch.long and x.tolist() == nx.tolist() and y.tolist() == ny.tolist()
    assert (x[:, 1:] == y[:, :-1]).all()
