"""Reading and writing tokenizers in the formats other tools load.

vocab.json + merges.txt are GPT-2's byte-level files (tokens written through GPT-2's
byte -> unicode table), which Hugging Face's ByteLevel BPE and tiktoken's data_gym loader
read; tokenizer.json is the Hugging Face `tokenizers` file that
`tokenizers.Tokenizer.from_file` and `transformers.PreTrainedTokenizerFast` open.
Every reader names the file and what is wrong in one line.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from storytok.bpe.bytes_unicode import str_to_token, token_to_str
from storytok.errors import StorytokError


def _read_text(path, what: str) -> str:
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        raise StorytokError(f"{path}: no such {what} file (train one with `make tokenizer`, or pass the right path)") from None
    except IsADirectoryError:
        raise StorytokError(f"{path}: is a directory, expected a {what} file") from None
    except UnicodeDecodeError as e:
        raise StorytokError(f"{path}: not UTF-8 (byte {e.start}); not a {what} file") from None


def read_vocab_json(path) -> dict[int, bytes]:
    text = _read_text(path, "vocab.json")
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise StorytokError(f"{os.fspath(path)}: not valid JSON ({e.msg}, line {e.lineno}); expected a GPT-2 vocab.json") from None
    return _vocab_from_mapping(raw, os.fspath(path), "GPT-2 vocab.json")


def _vocab_from_mapping(raw, where: str, what: str) -> dict[int, bytes]:
    if not isinstance(raw, dict) or not raw:
        raise StorytokError(f"{where}: expected a non-empty JSON object mapping tokens to ids ({what})")
    vocab: dict[int, bytes] = {}
    for token, idx in raw.items():
        if not isinstance(idx, int) or isinstance(idx, bool) or idx < 0:
            raise StorytokError(f"{where}: token {token!r} has id {idx!r}; ids must be non-negative integers")
        if idx in vocab:
            raise StorytokError(f"{where}: id {idx} is given to two tokens; each id must be unique")
        try:
            vocab[idx] = str_to_token(token)
        except KeyError:
            raise StorytokError(f"{where}: token {token!r} is not in GPT-2's byte-level form; "
                                "not a byte-level BPE vocabulary") from None
    return vocab


def read_merges_txt(path) -> list[tuple[bytes, bytes]]:
    merges = []
    for lineno, line in enumerate(_read_text(path, "merges.txt").split("\n"), start=1):
        line = line.rstrip("\r")
        if not line or (lineno == 1 and line.startswith("#version")):
            continue
        parts = line.split(" ")
        if len(parts) != 2 or not parts[0] or not parts[1]:
            raise StorytokError(f"{os.fspath(path)}: line {lineno} is {line[:40]!r}; each merge line must be two tokens separated by one space")
        try:
            merges.append((str_to_token(parts[0]), str_to_token(parts[1])))
        except KeyError:
            raise StorytokError(f"{os.fspath(path)}: line {lineno} has a token not in GPT-2's byte-level form") from None
    return merges


def read_special_tokens(tokenizer_json) -> list[str]:
    """The special tokens recorded in a Hugging Face tokenizer.json (added tokens marked special)."""
    text = _read_text(tokenizer_json, "tokenizer.json")
    try:
        raw = json.loads(text)
        added = raw.get("added_tokens") or []
        return [t["content"] for t in sorted(added, key=lambda t: t["id"]) if t.get("special", False)]
    except (json.JSONDecodeError, AttributeError, KeyError, TypeError):
        raise StorytokError(f"{os.fspath(tokenizer_json)}: not a Hugging Face tokenizer.json (cannot read its added_tokens)") from None


def _is_gpt2_pre_tokenizer(pre) -> bool:
    """ByteLevel with GPT-2's regex and no prefix space, alone or as Split(GPT-2 pattern) + ByteLevel."""
    from storytok.pretokenize.pretokenizer import GPT2_PATTERN

    def byte_level(p, use_regex: bool) -> bool:
        return (isinstance(p, dict) and p.get("type") == "ByteLevel" and not p.get("add_prefix_space", True)
                and bool(p.get("use_regex", True)) == use_regex)

    if byte_level(pre, True):
        return True
    if isinstance(pre, dict) and pre.get("type") == "Sequence":
        seq = pre.get("pretokenizers") or []
        if len(seq) == 1:
            return byte_level(seq[0], True)
        if len(seq) == 2 and byte_level(seq[1], False):
            split = seq[0]
            return (isinstance(split, dict) and split.get("type") == "Split" and not split.get("invert", False)
                    and split.get("behavior") == "Isolated" and split.get("pattern") == {"Regex": GPT2_PATTERN})
    return False


def read_hf_tokenizer_json(path) -> tuple[dict[int, bytes], list[tuple[bytes, bytes]], list[str]]:
    """(vocab, merges, special tokens) of a Hugging Face tokenizer.json holding a GPT-2 style
    byte-level BPE; anything that would encode differently (a normalizer, another
    pre-tokenizer or model, added tokens that are not special, a template adding tokens) is
    refused in one line rather than loaded as a different tokenizer."""
    where = os.fspath(path)
    text = _read_text(path, "tokenizer.json")
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise StorytokError(f"{where}: not valid JSON ({e.msg}, line {e.lineno}); expected a Hugging Face tokenizer.json") from None
    model = raw.get("model") if isinstance(raw, dict) else None
    if not isinstance(model, dict):
        raise StorytokError(f"{where}: not a Hugging Face tokenizer.json (no model)")

    def foreign(what: str):
        return StorytokError(f"{where}: {what}; storytok loads GPT-2 style byte-level BPE tokenizers only")

    if model.get("type", "BPE") != "BPE":
        raise foreign(f"a {model.get('type')} model, not BPE")
    for key in ("dropout", "continuing_subword_prefix", "end_of_word_suffix", "byte_fallback", "ignore_merges"):
        if model.get(key):
            raise foreign(f"its BPE sets {key}={model.get(key)!r}")
    if raw.get("normalizer") is not None:
        raise foreign(f"it has a {(raw['normalizer'] or {}).get('type', '?')} normalizer")
    if not _is_gpt2_pre_tokenizer(raw.get("pre_tokenizer")):
        pre = raw.get("pre_tokenizer")
        raise foreign(f"its pre-tokenizer ({pre.get('type') if isinstance(pre, dict) else pre!r}) is not GPT-2's "
                      f"byte-level one")
    post = raw.get("post_processor")
    if post is not None and (not isinstance(post, dict) or post.get("type") != "ByteLevel"):
        raise foreign(f"its {post.get('type') if isinstance(post, dict) else post!r} post-processor adds or changes tokens")
    vocab = _vocab_from_mapping(model.get("vocab"), where, "the model's vocab")
    merges = []
    for k, m in enumerate(model.get("merges") or []):
        parts = m.split(" ") if isinstance(m, str) else m
        if not isinstance(parts, list) or len(parts) != 2 or not all(isinstance(p, str) and p for p in parts):
            raise StorytokError(f"{where}: merge {k} is {m!r}; each merge must be two tokens")
        try:
            merges.append((str_to_token(parts[0]), str_to_token(parts[1])))
        except KeyError:
            raise StorytokError(f"{where}: merge {k} has a token not in GPT-2's byte-level form") from None
    specials = []
    added = raw.get("added_tokens") or []
    if not isinstance(added, list):
        raise StorytokError(f"{where}: added_tokens is not a list")
    for t in sorted(added, key=lambda t: t.get("id", -1) if isinstance(t, dict) else -1):
        if not isinstance(t, dict) or not isinstance(t.get("content"), str) or not t["content"] \
                or not isinstance(t.get("id"), int) or isinstance(t.get("id"), bool) or t["id"] < 0:
            raise StorytokError(f"{where}: added token {t!r} needs a non-empty content and a non-negative id")
        s, i = t["content"], t["id"]
        if not t.get("special", False):
            raise foreign(f"added token {s!r} is not special (storytok matches special tokens only)")
        if any(t.get(k) for k in ("single_word", "lstrip", "rstrip")):
            raise foreign(f"added token {s!r} sets single_word/lstrip/rstrip")
        if i in vocab and vocab[i] != s.encode("utf-8"):
            raise StorytokError(f"{where}: added token {s!r} has id {i}, which the vocabulary gives to {vocab[i]!r}")
        vocab[i] = s.encode("utf-8")
        specials.append(s)
    return vocab, merges, specials


def _atomic_write(path: Path, text: str) -> None:
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, prefix=path.name, suffix=".tmp", delete=False) as f:
        f.write(text)
    os.replace(f.name, path)


def write_tokenizer_files(directory, vocab: dict[int, bytes], merges: list[tuple[bytes, bytes]],
                          special_ids: dict[str, int]) -> None:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    str_vocab = {token_to_str(b): i for i, b in sorted(vocab.items())}
    str_merges = [[token_to_str(a), token_to_str(b)] for a, b in merges]
    _atomic_write(directory / "vocab.json", json.dumps(str_vocab, ensure_ascii=False, indent=0) + "\n")
    _atomic_write(directory / "merges.txt", "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in str_merges))
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    hf = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [{"id": i, "content": s, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True} for s, i in sorted(special_ids.items(), key=lambda kv: kv[1])],
        "normalizer": None,
        "pre_tokenizer": byte_level,
        "post_processor": {**byte_level, "trim_offsets": False},
        "decoder": byte_level,
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": str_vocab, "merges": str_merges},
    }
    _atomic_write(directory / "tokenizer.json", json.dumps(hf, ensure_ascii=False) + "\n")
