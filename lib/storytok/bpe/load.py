"""Loading a tokenizer directory of any kind: the one place that decides what a folder holds.

`Tokenizer.from_dir`, `storytok.sources.inputs.load_tokenizer` (and through it every stage)
come here. The kind is decided by the files present, first match wins:

    tokenizer_kind.json            the kind it names (gpt2-top10k: storytok.bpe.gpt2_top10k)
    vocab.json and/or merges.txt   GPT-2 byte-level files, as storytok saves them (and GPT-2's own);
                                   the special tokens come from tokenizer.json's added tokens
    tokenizer.json                 a Hugging Face tokenizer.json alone (a GPT-2 style byte-level BPE)
    tokenizer.tiktoken             a tiktoken rank file alone; <|endoftext|> is the special
                                   token, with the id after the last rank (tiktoken's gpt2 convention)

A folder where one of vocab.json/merges.txt is missing is an error, not a fallback to the
next kind: a damaged folder must not load as another tokenizer. storytok's own folders
hold several of these files (save writes vocab.json, merges.txt, tokenizer.json and
tokenizer.tiktoken); the GPT-2 files are what is read, as before, so loading and the
fingerprint do not depend on which extra files a folder has.

Dependencies run one way: this module imports tokenizer.py and gpt2_top10k.py; neither
imports it at module level (Tokenizer.from_dir reaches it from inside the method).
"""
from __future__ import annotations

from pathlib import Path

from storytok.bpe import gpt2_files, tiktoken_files
from storytok.bpe.gpt2_top10k import KIND as GPT2_TOP10K, KIND_FILE, CompactTokenizer, read_kind
from storytok.bpe.tokenizer import Tokenizer
from storytok.errors import StorytokError
from storytok.sources.inputs import EOT

GPT2_NAMES = ("vocab.json", "merges.txt")
HF_NAME = "tokenizer.json"
TIKTOKEN_NAME = tiktoken_files.FILE_NAME
EXPECTED = "vocab.json + merges.txt + tokenizer.json, a tokenizer.json, a tokenizer.tiktoken, or a gpt2-top10k folder"


def dir_kind(directory) -> str:
    """Which kind of tokenizer folder this is: "gpt2-top10k", "gpt2-files", "hf" or "tiktoken"."""
    directory = Path(directory)
    if not directory.is_dir():
        raise StorytokError(f"{directory}: no tokenizer directory (run `make tokenizer` first)")
    if (directory / KIND_FILE).exists() and read_kind(directory) == GPT2_TOP10K:
        return GPT2_TOP10K
    if any((directory / n).exists() for n in GPT2_NAMES):
        return "gpt2-files"
    if (directory / HF_NAME).exists():
        return "hf"
    if (directory / TIKTOKEN_NAME).exists():
        return "tiktoken"
    raise StorytokError(f"{directory}: no tokenizer files here (expected {EXPECTED})")


def load_tokenizer_dir(directory):
    """The tokenizer in `directory` (a Tokenizer, or a CompactTokenizer for gpt2-top10k);
    one StorytokError line naming the file for a missing, corrupt or foreign folder."""
    directory = Path(directory)
    kind = dir_kind(directory)
    if kind == GPT2_TOP10K:
        return CompactTokenizer.from_dir(directory)
    if kind == "gpt2-files":
        specials = gpt2_files.read_special_tokens(directory / HF_NAME)
        return Tokenizer.from_files(directory / "vocab.json", directory / "merges.txt", specials)
    if kind == "hf":
        path = directory / HF_NAME
        vocab, merges, specials = gpt2_files.read_hf_tokenizer_json(path)
    else:
        path = directory / TIKTOKEN_NAME
        vocab, merges, specials = tiktoken_files.read_tiktoken(path, [EOT])
    try:
        return Tokenizer(vocab, merges, specials)
    except StorytokError as e:
        raise StorytokError(f"{path}: {e}") from None
