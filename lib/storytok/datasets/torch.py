"""PyTorch adapters for `storytok.datasets` (pip install 'storytok[torch]').

    from torch.utils.data import DataLoader
    from storytok.datasets.torch import PackedDataset, StoryDataset, collate_stories

    train = PackedDataset("encoded_datasets/tinystories_train_uint16.npy", block_size=512)
    for x, y in DataLoader(train, batch_size=32, shuffle=True, num_workers=2): ...

    stories = StoryDataset(tokens_npy, offsets_npy, max_len=513)
    for x, y in DataLoader(stories, batch_size=32, collate_fn=collate_stories): ...

Every item is `(x, y)` LongTensors with y = x shifted by one: minGPT's Trainer convention
(`x, y = batch`), so both datasets plug into it unchanged.

Padding convention for stories (collate_stories): batches are right-padded, x with
`pad_id` and y with `ignore_index` (-1, what minGPT and nanoGPT pass to
F.cross_entropy). So the loss needs no mask at all, the mask when you want one is
`y != ignore_index`, and with causal attention pad positions never influence real ones;
`return_lengths=True` adds the lengths for models that want an attention mask.

Worker processes: datasets pickle as paths (or a memmap's file and position), and each
worker reopens the memmap, so num_workers > 0 works with fork, spawn and forkserver
without copying the split. This module is the only one that imports torch; `import
storytok` never does.
"""
from __future__ import annotations

try:
    import torch
    from torch.utils.data import Dataset
except ImportError as e:  # pragma: no cover - exercised only without torch
    raise ImportError("storytok.datasets.torch needs PyTorch: pip install 'storytok[torch]' "
                      "(or `make setup-torch` for the CPU build)") from e

from storytok import datasets

__all__ = ["StoryDataset", "PackedDataset", "collate_stories", "random_batch"]


class StoryDataset(Dataset):
    """One story per item as (x, y) = (story[:-1], story[1:]), LongTensors.

    `story` is `storytok.datasets.StoryDataset`'s item (story + <|endoftext|>, at most
    max_len tokens), so x and y hold at most max_len - 1 tokens: use max_len=T+1 for a
    model with context T. Lengths differ: batch with `collate_stories`.
    """

    def __init__(self, tokens_npy, offsets_npy, max_len: int = 512, min_len: int = 10,
                 include_eot: bool = True, eot_id: int | None = None):
        self.stories = datasets.StoryDataset(tokens_npy, offsets_npy, max_len=max_len, min_len=min_len,
                                             include_eot=include_eot, eot_id=eot_id)

    @property
    def eot_id(self) -> int:
        return self.stories.eot_id

    def __len__(self) -> int:
        return len(self.stories)

    def __getitem__(self, i):
        story = torch.from_numpy(self.stories[i])
        return story[:-1], story[1:]


class PackedDataset(Dataset):
    """Fixed blocks (x, y) of `block_size` LongTensors; the default collate stacks them."""

    def __init__(self, tokens_npy, block_size: int = 512):
        self.blocks = datasets.PackedDataset(tokens_npy, block_size=block_size)

    def __len__(self) -> int:
        return len(self.blocks)

    def __getitem__(self, i):
        x, y = self.blocks[i]
        return torch.from_numpy(x), torch.from_numpy(y)


def collate_stories(batch, pad_id: int = 0, ignore_index: int = -1, return_lengths: bool = False):
    """Right-pad a list of (x, y) to the longest: x with pad_id, y with ignore_index.

    Returns (x, y), or (x, y, lengths) with return_lengths. pad_id only has to be a valid
    id (0 by default; the eot id reads better when decoding), since the targets there are
    ignored. Bind options with functools.partial, which DataLoader workers can pickle.
    """
    xs, ys = zip(*batch)
    lengths = torch.tensor([len(x) for x in xs], dtype=torch.long)
    width = int(lengths.max())
    x = torch.full((len(xs), width), pad_id, dtype=torch.long)
    y = torch.full((len(xs), width), ignore_index, dtype=torch.long)
    for row, (xi, yi) in enumerate(batch):
        x[row, :len(xi)] = xi
        y[row, :len(yi)] = yi
    return (x, y, lengths) if return_lengths else (x, y)


def random_batch(tokens_npy, batch_size: int, block_size: int, rng=None, device="cpu"):
    """`storytok.datasets.random_batch` as LongTensors on `device` (pinned, async copy to CUDA)."""
    x, y = (torch.from_numpy(a) for a in datasets.random_batch(tokens_npy, batch_size, block_size, rng))
    if torch.device(device).type == "cuda":
        return x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
    return x.to(device), y.to(device)
