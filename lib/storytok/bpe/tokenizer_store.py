"""Train the pipeline's tokenizer into a directory: atomically, and only when needed.

Training on the full train file takes minutes, and `make all` or `make demo` run again
should not redo it. Next to the files `Tokenizer.save` writes, the directory gets a
`training.json` recording what it was trained from (input size and mtime, vocab size,
special tokens); when those still match, training is skipped (a folder trained before
`save` wrote tokenizer.tiktoken gets that file added; nothing else changes).

The directory is assembled under a temporary name and swapped in whole, so a run killed
during training or saving leaves the previous tokenizer (or none), never a mix of old
and new files that would load as a different tokenizer.

Two kinds (`make tokenizer KIND=...`): `bpe` trains storytok's own BPE (train_into_dir);
`gpt2-top10k` counts GPT-2 tokens on the train text and keeps the most frequent, the
TinyStories paper's tokenizer (build_gpt2_top10k_into_dir, storytok.bpe.gpt2_top10k). The
record names the kind, so switching kinds always rebuilds.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from storytok.bpe import tiktoken_files
from storytok.errors import StorytokError
from storytok.fsutil import read_json, remove_quietly, replace_dir, tmp_path, write_json_atomic
from storytok.sources.inputs import EOT, check_text_input, check_vocab_size
from storytok.store.parquet_store import input_identity

TRAINING_RECORD = "training.json"


KINDS = ("bpe", "gpt2-top10k")


@dataclass
class TrainReport:
    directory: Path
    tokenizer: object
    requested_vocab: int
    seconds: float = 0.0
    input_bytes: int = 0
    up_to_date: bool = False
    notes: list[str] = field(default_factory=list)   # warnings from training, one line each
    kind: str = "bpe"
    load_seconds: float = 0.0   # gpt2-top10k: of `seconds`, reading GPT-2's files (the rest is counting)


def _record(train_path: Path, vocab_size: int, kind: str = "bpe", **extra) -> dict:
    ident = input_identity(train_path)
    return {"kind": kind, "input": ident["path"], "input_size": ident["size"], "input_mtime_ns": ident["mtime_ns"],
            "vocab_size": int(vocab_size), "special_tokens": [EOT], **extra}


def _same_training(old: dict | None, new: dict) -> bool:
    """Same kind, input (size + mtime) and settings; records written before kinds existed are bpe."""
    if not isinstance(old, dict):
        return False
    old = {"kind": "bpe", **old}
    return all(old.get(k) == v for k, v in new.items() if k != "input")


def train_into_dir(train_path, vocab_size: int, directory: Path, *, workers: int | None = None,
                   force: bool = False, progress: bool = True, field: str = "text",
                   skip_bad_docs: bool = False) -> TrainReport:
    """Train a byte-level BPE with `<|endoftext|>` on `train_path` (a file, glob, directory or
    list of them, any input kind: storytok.sources) and save it to `directory`."""
    from storytok import Tokenizer, train_bpe
    from storytok.sources.inputs import check_source, load_tokenizer

    check_vocab_size(vocab_size)
    source = check_source(train_path, "TRAIN", field=field, skip_bad_docs=skip_bad_docs)
    directory = Path(directory)
    record = {"kind": "bpe", "inputs": source.identity(), "vocab_size": int(vocab_size), "special_tokens": [EOT]}
    if any(f.kind != "txt" for f in source.files):
        record["field"] = field
    if not force and _same_training(read_json(directory / TRAINING_RECORD), record):
        tok = load_tokenizer(directory)
        if not (directory / tiktoken_files.FILE_NAME).exists():   # trained before save wrote it
            tiktoken_files.save_rank_file(directory, tok)
        return TrainReport(directory, tok, vocab_size, input_bytes=source.input_bytes, up_to_date=True)

    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        vocab, merges = train_bpe(source, vocab_size, [EOT], workers=workers, progress=progress)
    tok = Tokenizer(vocab, merges, special_tokens=[EOT])
    tmp = tmp_path(directory)
    remove_quietly(tmp)
    tok.save(tmp)
    write_json_atomic(tmp / TRAINING_RECORD, dict(record, reached_vocab_size=len(tok), merges=len(merges)))
    replace_dir(tmp, directory)
    report = TrainReport(directory, tok, vocab_size, seconds=time.perf_counter() - t0,
                         input_bytes=source.input_bytes)
    report.notes = [" ".join(str(w.message).split()) for w in caught]
    return report


def build_gpt2_top10k_into_dir(train_path: Path, gpt2_dir: Path, vocab_size: int, directory: Path, *,
                               sample_stories: int | None = None, workers: int | None = None,
                               force: bool = False, progress: bool = True) -> TrainReport:
    """The TinyStories paper's tokenizer: GPT-2's BPE restricted to the `vocab_size` - 2 GPT-2
    tokens most frequent in `train_path` (or its first `sample_stories` stories), plus
    `<|endoftext|>` and `<|unk|>`; saved to `directory` (format: storytok.bpe.gpt2_top10k)."""
    from storytok.bpe import gpt2_top10k as g
    from storytok.sources.inputs import load_tokenizer

    g.check_compact_vocab_size(vocab_size)
    if sample_stories is not None and sample_stories < 1:
        raise StorytokError(f"SAMPLE_STORIES={sample_stories} must be a positive number of stories")
    train_path = check_text_input(Path(train_path), "TRAIN")
    directory = Path(directory)
    record = _record(train_path, vocab_size, g.KIND, special_tokens=[EOT, g.UNK], sample_stories=sample_stories,
                     gpt2_sha256=g.gpt2_files_sha256(gpt2_dir))
    if not force and _same_training(read_json(directory / TRAINING_RECORD), record):
        tok = load_tokenizer(directory)
        return TrainReport(directory, tok, vocab_size, input_bytes=record["input_size"], up_to_date=True, kind=g.KIND)

    t0 = time.perf_counter()
    gpt2 = g.load_gpt2(gpt2_dir)
    loaded = time.perf_counter() - t0
    tok = g.build(gpt2, train_path, vocab_size, sample_stories=sample_stories, workers=workers, progress=progress)
    tmp = tmp_path(directory)
    remove_quietly(tmp)
    tok.save(tmp)
    write_json_atomic(tmp / TRAINING_RECORD, dict(record, gpt2_dir=str(Path(gpt2_dir).resolve())))
    replace_dir(tmp, directory)
    report = TrainReport(directory, tok, vocab_size, seconds=time.perf_counter() - t0,
                         input_bytes=record["input_size"], kind=g.KIND, load_seconds=loaded)
    c = tok.counted
    if sample_stories is not None and c["whole_file"]:
        report.notes.append(f"{train_path} has only {c['rows']:,} rows, fewer than SAMPLE_STORIES={sample_stories:,}; "
                            f"counted all of it")
    if c["kept_never_seen"]:
        report.notes.append(f"the counted text uses only {c['distinct_gpt2_tokens']:,} distinct GPT-2 tokens, so "
                            f"{c['kept_never_seen']:,} kept tokens never occur in it (filled in GPT-2 id order)")
    return report
