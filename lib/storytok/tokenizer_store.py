"""Train the pipeline's tokenizer into a directory: atomically, and only when needed.

Training on the full train file takes minutes, and `make all` or `make demo` run again
should not redo it. Next to the files `Tokenizer.save` writes, the directory gets a
`training.json` recording what it was trained from (input size and mtime, vocab size,
special tokens); when those still match, training is skipped.

The directory is assembled under a temporary name and swapped in whole, so a run killed
during training or saving leaves the previous tokenizer (or none), never a mix of old
and new files that would load as a different tokenizer.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from storytok.fsutil import read_json, remove_quietly, replace_dir, tmp_path, write_json_atomic
from storytok.inputs import EOT, check_text_input, check_vocab_size
from storytok.parquet_store import input_identity

TRAINING_RECORD = "training.json"


@dataclass
class TrainReport:
    directory: Path
    tokenizer: object
    requested_vocab: int
    seconds: float = 0.0
    input_bytes: int = 0
    up_to_date: bool = False
    notes: list[str] = field(default_factory=list)   # warnings from training, one line each


def _record(train_path: Path, vocab_size: int) -> dict:
    ident = input_identity(train_path)
    return {"input": ident["path"], "input_size": ident["size"], "input_mtime_ns": ident["mtime_ns"],
            "vocab_size": int(vocab_size), "special_tokens": [EOT]}


def _same_training(old: dict | None, new: dict) -> bool:
    keys = ("input_size", "input_mtime_ns", "vocab_size", "special_tokens")
    return isinstance(old, dict) and all(old.get(k) == new[k] for k in keys)


def train_into_dir(train_path: Path, vocab_size: int, directory: Path, *, workers: int | None = None,
                   force: bool = False, progress: bool = True) -> TrainReport:
    """Train a byte-level BPE with `<|endoftext|>` on `train_path` and save it to `directory`."""
    from storytok import Tokenizer, train_bpe
    from storytok.inputs import load_tokenizer

    check_vocab_size(vocab_size)
    train_path = check_text_input(Path(train_path), "TRAIN")
    directory = Path(directory)
    record = _record(train_path, vocab_size)
    if not force and _same_training(read_json(directory / TRAINING_RECORD), record):
        tok = load_tokenizer(directory)
        return TrainReport(directory, tok, vocab_size, input_bytes=record["input_size"], up_to_date=True)

    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        vocab, merges = train_bpe(str(train_path), vocab_size, [EOT], workers=workers, progress=progress)
    tok = Tokenizer(vocab, merges, special_tokens=[EOT])
    tmp = tmp_path(directory)
    remove_quietly(tmp)
    tok.save(tmp)
    write_json_atomic(tmp / TRAINING_RECORD, dict(record, reached_vocab_size=len(tok), merges=len(merges)))
    replace_dir(tmp, directory)
    report = TrainReport(directory, tok, vocab_size, seconds=time.perf_counter() - t0,
                         input_bytes=record["input_size"])
    report.notes = [" ".join(str(w.message).split()) for w in caught]
    return report
