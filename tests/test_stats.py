"""stats.json against a direct recount, and the flat arrays on awkward inputs (blank rows,
back-to-back separators, no trailing separator, stories longer than an encoding chunk)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline_helpers import EOT, is_blank, recount, sample, stories_of
from storytok import Tokenizer, train_bpe
from storytok.store.flatten import build_arrays_and_stats, offsets_path, tokens_path
from storytok.store.parquet_store import encode_split


@pytest.fixture(scope="module")
def tok():
    vocab, merges = train_bpe(str(sample("valid")), 600, [EOT])
    return Tokenizer(vocab, merges, [EOT])


def _pipeline(tok, text_path, out, split="valid", **kw):
    encode_split(tok, text_path, out / "parquet" / split, split=split, progress=False, **kw)
    return build_arrays_and_stats(tok, out / "tokenizer", out, [split], progress=False)


def test_stats_json_matches_a_direct_recount(tok, tmp_path):
    path = sample("valid")
    r = _pipeline(tok, path, tmp_path)
    s = json.loads((tmp_path / "stats.json").read_text())["splits"]["valid"]
    assert s == r.stats["splits"]["valid"]
    want = recount(tok, path.read_text(encoding="utf-8"))
    for key in ("rows", "stories", "blank_rows", "tokens", "story_tokens", "bytes"):
        assert s[key] == want[key], key
    assert s["separator_tokens"] == want["rows"] - 1
    assert s["bytes_per_token"] == pytest.approx(want["bytes"] / want["tokens"])
    assert s["tokens_per_story"] == pytest.approx({k: want[k] for k in ("mean", "median", "p95", "max")})
    assert s["share_over_512_tokens"] == pytest.approx(want["over_512"])
    assert s["vocab"]["used"] == want["used"] and s["vocab"]["never_used"] == want["never_used"]
    assert s["vocab"]["size"] == len(tok)
    counts = want["counts"]
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:len(s["top_tokens"])]
    assert [(t["id"], t["count"]) for t in s["top_tokens"]] == top
    assert all(t["text"] == tok.decode([t["id"]]) for t in s["top_tokens"])
    lengths = tok.token_byte_lengths()
    longest = max((lengths[i], -i) for i in counts if i != tok.special_ids[EOT])
    assert s["longest_token_used"]["id"] == -longest[1] and s["longest_token_used"]["bytes"] == longest[0]
    assert r.stats["tokenizer"]["fingerprint"] == tok.fingerprint()


LONG_STORY = "\n".join(f"Line {i} of a very long story about a cat named Tom." for i in range(4000))
CASES = {
    "tinystories_layout": "One.\n<|endoftext|>\nTwo.\n<|endoftext|>\n",
    "no_trailing_separator": "One.<|endoftext|>Two.",
    "ends_with_separator": "One.\n<|endoftext|>",
    "back_to_back_separators": "A<|endoftext|><|endoftext|>B<|endoftext|>\n\n<|endoftext|>  \t",
    "starts_with_separator": "<|endoftext|>Hello there.",
    "only_text": "Just one story, no separator at all.\n",
    "unicode": "Ünïcödé 😀 story.\n<|endoftext|>\n中文故事。\n<|endoftext|>\n",
    "story_longer_than_a_chunk": f"Short.\n<|endoftext|>\n{LONG_STORY}\n<|endoftext|>\n"
                                 + "A tiny story.\n<|endoftext|>\n" * 6000,
}


@pytest.mark.parametrize("name", list(CASES))
def test_arrays_round_trip_on_awkward_inputs(tok, tmp_path, name):
    text = CASES[name]
    path = tmp_path / "in.txt"
    path.write_text(text, encoding="utf-8", newline="")
    r = _pipeline(tok, path, tmp_path, chunk_bytes=1 << 16, part_bytes=1 << 16)
    if name == "story_longer_than_a_chunk":  # the long story spans chunks, never two parts
        parts = json.loads((tmp_path / "parquet" / "valid" / "_manifest.json").read_text())["parts"]
        assert len(parts) >= 2 and parts[0]["rows"] >= 2 and parts[0]["end"][1] > len(LONG_STORY)
    arr = np.load(tokens_path(tmp_path, "valid"), mmap_mode="r")
    off = np.load(offsets_path(tmp_path, "valid"), mmap_mode="r")
    assert tok.decode_bytes(np.asarray(arr)) == path.read_bytes()
    rows = stories_of(text)
    assert len(off) == len(rows)
    ends = np.append(off[1:] - 1, len(arr))
    assert [tok.decode(arr[a:b]) for a, b in zip(off, ends)] == rows
    s = r.stats["splits"]["valid"]
    assert s["blank_rows"] == sum(is_blank(x) for x in rows)
    assert s["stories"] == sum(not is_blank(x) for x in rows)
    assert s["tokens"] == len(arr) == len(tok.encode(text))


def test_stats_json_keeps_other_splits_but_not_those_of_another_tokenizer(tok, tmp_path):
    a = tmp_path / "a.txt"
    a.write_text("Hi.\n<|endoftext|>\nYo.\n", encoding="utf-8")
    encode_split(tok, a, tmp_path / "parquet" / "train", split="train", progress=False)
    encode_split(tok, a, tmp_path / "parquet" / "valid", split="valid", progress=False)
    build_arrays_and_stats(tok, tmp_path / "tok", tmp_path, ["train"], progress=False)
    r = build_arrays_and_stats(tok, tmp_path / "tok", tmp_path, ["valid"], progress=False)
    assert list(r.stats["splits"]) == ["valid", "train"]
    assert r.rebuilt == ["valid"]
    r = build_arrays_and_stats(tok, tmp_path / "tok", tmp_path, ["train", "valid"], progress=False)
    assert r.up_to_date == ["train", "valid"] and not r.rebuilt

    vocab, merges = train_bpe(str(a), 258, [EOT])
    tok2 = Tokenizer(vocab, merges, [EOT])
    rep = encode_split(tok2, a, tmp_path / "parquet" / "valid", split="valid", progress=False)
    assert rep.started_clean_because == "the tokenizer changed"
    r = build_arrays_and_stats(tok2, tmp_path / "tok", tmp_path, ["valid"], progress=False)
    assert list(r.stats["splits"]) == ["valid"], "train's entry described arrays of the old tokenizer"
