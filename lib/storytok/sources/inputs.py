"""Checks on what the user hands the pipeline, with messages that say what to do next.

The core raises precise errors (byte offsets of bad UTF-8, corrupt tokenizer files); what
it cannot know is how the user got here. These checks run before any work starts, so a
missing download or an untrained tokenizer is reported in the user's terms (`make data`,
`TRAIN=...`, `make tokenizer`) instead of as a bare "file not found" half-way through.
"""
from __future__ import annotations

from pathlib import Path

from storytok.sources.chunks import check_text_file
from storytok.errors import StorytokError

EOT = "<|endoftext|>"
UINT16_TOKENS = 1 << 16


def check_text_input(path: Path, variable: str) -> Path:
    """`path` must be a non-empty file (the core's check); the message adds which Make
    variable (TRAIN, VALID) names it, so the user knows what to change."""
    try:
        check_text_file(path)
    except StorytokError as e:
        raise StorytokError(f"{e}; pass {variable}=/path/to/file.txt (or try `make demo`)") from None
    return Path(path)


def check_source(spec, variable: str, *, field: str = "text", skip_bad_docs: bool = False):
    """The input a Make variable (TRAIN, VALID) names, resolved and checked up front
    (storytok.sources.split.Source: files, globs, directories, any kind); a problem is
    reported with the variable to change."""
    from storytok.sources.split import Source

    if not spec:
        raise StorytokError(f"{variable} is empty; pass {variable}=/path/to/file.txt (or a glob, a directory, "
                            f".jsonl / .parquet files; or try `make demo`)")
    try:
        src = Source.of(spec, field=field, skip_bad_docs=skip_bad_docs)
        src.check()
    except StorytokError as e:
        raise StorytokError(f"{e}; pass {variable}=... (a file, glob or directory; or try `make demo`)") from None
    return src


def check_vocab_size(vocab_size: int) -> None:
    """The pipeline stores tokens as uint16, so ids must stay below 65,536."""
    if vocab_size > UINT16_TOKENS:
        raise StorytokError(f"VOCAB_SIZE={vocab_size:,} does not fit the uint16 token arrays "
                            f"(at most {UINT16_TOKENS:,} tokens); choose VOCAB_SIZE<={UINT16_TOKENS}")


def load_tokenizer(directory: Path):
    """The pipeline's tokenizer from `directory` (any kind storytok.bpe.load reads): must
    exist, load, have `<|endoftext|>` as a special token (it separates stories) and fit uint16."""
    from storytok.bpe.load import load_tokenizer_dir   # imports the kernels: only when a stage needs them

    directory = Path(directory)
    if not directory.is_dir() or not any(directory.iterdir()):
        raise StorytokError(f"{directory}: no tokenizer here; run `make tokenizer` first "
                            f"(or pass the directory that holds vocab.json, merges.txt, tokenizer.json)")
    try:
        tok = load_tokenizer_dir(directory)
    except StorytokError as e:
        raise StorytokError(f"{e}; retrain it with `make tokenizer`") from None
    if EOT not in tok.special_ids:
        raise StorytokError(f"{directory}: this tokenizer has no {EOT} special token, which separates "
                            f"stories; retrain it with `make tokenizer`")
    if len(tok) > UINT16_TOKENS:
        raise StorytokError(f"{directory}: {len(tok):,} tokens do not fit uint16 arrays (at most "
                            f"{UINT16_TOKENS:,}); retrain with VOCAB_SIZE<={UINT16_TOKENS}")
    return tok
