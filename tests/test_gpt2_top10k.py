"""The TinyStories paper's tokenizer (KIND=gpt2-top10k): GPT-2's BPE restricted to its most
common tokens, checked against tiktoken's `gpt2` (built offline from ../shared/fixtures) on the
real samples in ../shared/data, through the stage scripts exactly as `make` runs them.

The kept set is counted on the first 300 train stories, so both splits hold some <|unk|>.
"""
from __future__ import annotations

import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import GPT2_PAT, read_gpt2_vocab, shared_path
from pipeline_helpers import EOT, ROOT, is_blank, load_stage, one_error_line, recount, run, sample, stories_of
from storytok import Tokenizer
from storytok.cli import run_stage

tiktoken = pytest.importorskip("tiktoken")

SAMPLE_STORIES = 300
V = 10_000
UNK = "<|unk|>"


@lru_cache(maxsize=None)
def gpt2_dir():
    shared_path("fixtures", "gpt2_vocab.json")
    return shared_path("fixtures")


@lru_cache(maxsize=None)
def tt():
    """tiktoken's gpt2 encoding, built from the same files (no network)."""
    ranks = read_gpt2_vocab(gpt2_dir() / "gpt2_vocab.json")
    ranks.pop(EOT.encode())
    return tiktoken.Encoding(name="gpt2_top10k_ref", pat_str=GPT2_PAT, mergeable_ranks=ranks,
                             special_tokens={EOT: 50256})


def tt_encode(text: str) -> np.ndarray:
    return np.array(tt().encode(text, allowed_special={EOT}, disallowed_special=()), dtype=np.int64)


def gpt2_len(i: int) -> int:
    return len(tt().decode_single_token_bytes(int(i)))


@pytest.fixture(scope="module")
def e2e(tmp_path_factory):
    """tokenizer -> encode -> stats with KIND=gpt2-top10k, small chunks and parts so there are several."""
    out = tmp_path_factory.mktemp("gpt2top10k")
    inputs = {s: sample(s) for s in ("train", "valid")}
    r = run("tokenizer", "--kind", "gpt2-top10k", "--gpt2-dir", gpt2_dir(), "--sample-stories", SAMPLE_STORIES,
            "--train", inputs["train"], "--vocab-size", V, "--out", out / "tokenizer")
    assert r.returncode == 0, r.stderr
    tok_stdout = r.stdout
    r = run("encode", "--tokenizer", out / "tokenizer", "--out-dir", out, "--chunk-bytes", 100_000,
            "--part-bytes", 400_000, *(f"{s}={p}" for s, p in inputs.items()))
    assert r.returncode == 0, r.stderr
    r = run("stats", "--tokenizer", out / "tokenizer", "--out-dir", out, "train", "valid")
    assert r.returncode == 0, r.stderr
    kept = json.loads((out / "tokenizer" / "kept_ids.json").read_text())
    gpt2_ids = np.array([-1 if g is None else g for g in kept["gpt2_ids"]], dtype=np.int64)
    lut = np.full(50257, V - 1, dtype=np.int64)        # GPT-2 id -> compact id, read from the file itself
    lut[gpt2_ids[gpt2_ids >= 0]] = np.flatnonzero(gpt2_ids >= 0)
    return {"out": out, "inputs": inputs, "tok": Tokenizer.from_dir(out / "tokenizer"), "gpt2_ids": gpt2_ids,
            "lut": lut, "stats": json.loads((out / "stats.json").read_text()), "tok_stdout": tok_stdout,
            "stats_stdout": r.stdout}


def _arrays(e2e, split):
    arr = np.load(e2e["out"] / f"tinystories_{split}_uint16.npy", mmap_mode="r")
    off = np.load(e2e["out"] / f"tinystories_{split}_offsets.npy", mmap_mode="r")
    return np.asarray(arr), np.asarray(off), np.append(off[1:] - 1, len(arr))


# --- the vocabulary -------------------------------------------------------------------------------

def test_layout_of_the_compact_ids(e2e):
    tok, ids = e2e["tok"], e2e["gpt2_ids"]
    assert type(tok).__name__ == "CompactTokenizer" and len(tok) == V == ids.size
    assert tok.special_ids == {EOT: V - 2, UNK: V - 1} and tok.special_tokens == [EOT]
    assert ids[V - 2] == 50256 and ids[V - 1] == -1
    assert np.unique(ids[:V - 2]).size == V - 2 and ids[:V - 2].min() >= 0 and 50256 not in ids[:V - 2]


def test_kept_tokens_are_the_most_frequent_of_the_counted_stories(e2e):
    text = e2e["inputs"]["train"].read_text(encoding="utf-8")
    counted = EOT.join(stories_of(text)[:SAMPLE_STORIES])        # the text before the 300th separator
    counts = np.bincount(tt_encode(counted), minlength=50257)
    ordinary = np.delete(np.arange(50257), 50256)
    want = ordinary[np.lexsort((ordinary, -counts[ordinary]))][:V - 2]   # most frequent, ties: lower id
    assert np.array_equal(e2e["gpt2_ids"][:V - 2], want)
    kept = json.loads((e2e["out"] / "tokenizer" / "kept_ids.json").read_text())
    assert kept["counts"][:V - 1] == counts[e2e["gpt2_ids"][:V - 1]].tolist()
    c = kept["counted"]
    assert c["rows"] == SAMPLE_STORIES and c["gpt2_tokens"] == counts.sum() and not c["whole_file"]
    assert c["bytes"] == len(counted.encode()) and c["distinct_gpt2_tokens"] == np.count_nonzero(counts)


# --- ids, decoding --------------------------------------------------------------------------------

@pytest.mark.parametrize("split", ["train", "valid"])
def test_every_id_is_below_10000_in_arrays_and_parquet(e2e, split):
    arr, _, _ = _arrays(e2e, split)
    assert arr.dtype == np.uint16 and arr.max() < V
    t = pq.read_table(e2e["out"] / "parquet" / split)
    assert t.column("tokens").combine_chunks().flatten().to_numpy().max() < V


@pytest.mark.parametrize("split", ["train", "valid"])
def test_ids_are_gpt2_ids_through_the_kept_list_and_known_tokens_decode_to_gpt2_text(e2e, split):
    tok, lut, unk = e2e["tok"], e2e["lut"], V - 1
    arr, off, ends = _arrays(e2e, split)
    rows = stories_of(e2e["inputs"][split].read_text(encoding="utf-8"))
    assert len(off) == len(rows)
    token_bytes = lru_cache(maxsize=None)(tt().decode_single_token_bytes)
    pairs = set()
    with_unk = 0
    for i, row in enumerate(rows):
        ref = tt_encode(row)
        got = arr[off[i]:ends[i]]
        assert np.array_equal(got, lut[ref]), f"story {i}: ids differ from GPT-2's mapped through kept_ids.json"
        if not (got == unk).any():
            assert tok.decode(got) == tt().decode(ref.tolist()) == row
        else:
            with_unk += 1
            pairs.update(zip(got.tolist(), ref.tolist()))
            want = b"".join(UNK.encode() if c == unk else token_bytes(g) for c, g in zip(got.tolist(), ref.tolist()))
            assert tok.decode_bytes(got) == want      # each unknown token shows as the visible marker
    assert 0 < with_unk < len(rows), "the samples should hold stories with and without <|unk|>"
    for c, g in pairs:                                # per token: every known token is GPT-2's token
        assert c == unk or tok.decode_bytes([c]) == token_bytes(g)


@pytest.mark.parametrize("split", ["train", "valid"])
def test_parquet_keeps_what_each_unk_replaced_so_rows_decode_exactly(e2e, split):
    tok = e2e["tok"]
    t = pq.read_table(e2e["out"] / "parquet" / split)
    assert t.schema.field("unk_gpt2_ids").type == pa.list_(pa.field("item", pa.uint16(), nullable=False))
    assert t.schema.metadata[b"storytok.unk_id"] == str(V - 1).encode()
    rows = stories_of(e2e["inputs"][split].read_text(encoding="utf-8"))
    for row, tokens, unk_ids, n_bytes in zip(rows, t.column("tokens").to_pylist(), t.column("unk_gpt2_ids").to_pylist(),
                                             t.column("n_bytes").to_pylist()):
        assert tok.decode(tokens, unk_gpt2_ids=unk_ids) == row
        assert unk_ids == [int(g) for g in tt_encode(row) if e2e["lut"][g] == V - 1]
        assert n_bytes == len(row.encode())


# --- stats.json -----------------------------------------------------------------------------------

@pytest.mark.parametrize("split", ["train", "valid"])
def test_stats_unk_rate_coverage_and_distinct_gpt2_tokens_equal_a_direct_recount(e2e, split):
    text = e2e["inputs"][split].read_text(encoding="utf-8")
    ref = tt_encode(text)                                   # the whole file, separators included
    unknown = ref[e2e["lut"][ref] == V - 1]
    unk_bytes = sum(gpt2_len(g) for g in unknown)
    n_bytes = len(text.encode())
    s = e2e["stats"]["splits"][split]
    assert s["unk"]["tokens"] == unknown.size > 0
    assert s["unk"]["rate"] == pytest.approx(unknown.size / ref.size) and s["tokens"] == ref.size
    assert s["unk"]["bytes"] == unk_bytes and s["unk"]["id"] == V - 1
    assert s["unk"]["byte_share"] == pytest.approx(unk_bytes / n_bytes)
    assert s["kept_bytes_share"] == pytest.approx(1 - unk_bytes / n_bytes)
    assert s["gpt2_tokens_used"] == {"distinct": np.unique(ref).size, "unknown": np.unique(unknown).size,
                                     "kept": np.unique(ref).size - np.unique(unknown).size}
    want = recount(e2e["tok"], text)                        # the numbers every tokenizer kind reports
    for key in ("rows", "stories", "blank_rows", "tokens", "story_tokens", "bytes"):
        assert s[key] == want[key], key
    assert s["vocab"]["used"] == want["used"]


def test_stats_json_and_table_name_the_kind(e2e):
    t = e2e["stats"]["tokenizer"]
    assert t["kind"] == "gpt2-top10k" and t["vocab_size"] == V and t["special_ids"] == {EOT: V - 2, UNK: V - 1}
    assert t["counted"]["rows"] == SAMPLE_STORIES and "unk" in e2e["stats"]["definitions"]
    assert "<|unk|> rate" in e2e["stats_stdout"] and "gpt2-top10k" in e2e["stats_stdout"]
    assert "<|endoftext|> = 9998, <|unk|> = 9999" in e2e["tok_stdout"]


# --- the tokenizer folder -------------------------------------------------------------------------

def test_from_dir_round_trips(e2e, tmp_path):
    from storytok.bpe.gpt2_top10k import CompactTokenizer

    tok = e2e["tok"]
    d = e2e["out"] / "tokenizer"
    assert sorted(p.name for p in d.iterdir()) == ["kept_ids.json", "merges.txt", "tokenizer_kind.json",
                                                   "training.json", "vocab.json"]
    assert json.loads((d / "tokenizer_kind.json").read_text()) == {"kind": "gpt2-top10k", "format": 1}
    tok.save(tmp_path / "again")
    for again in (Tokenizer.from_dir(tmp_path / "again"), CompactTokenizer.from_dir(d)):
        assert isinstance(again, CompactTokenizer)
        assert again.fingerprint() == tok.fingerprint()
        assert np.array_equal(again.gpt2_ids, tok.gpt2_ids)
    # the GPT-2 files it saves are GPT-2's: they load as the full GPT-2 tokenizer, ids as tiktoken's
    full = Tokenizer.from_files(tmp_path / "again" / "vocab.json", tmp_path / "again" / "merges.txt", [EOT])
    text = e2e["inputs"]["valid"].read_text(encoding="utf-8")[:20_000]
    assert full.encode(text) == tt_encode(text).tolist()


def test_every_encode_entry_point_agrees(e2e, tmp_path):
    tok = e2e["tok"]
    text = e2e["inputs"]["valid"].read_text(encoding="utf-8")[:200_000]
    want = e2e["lut"][tt_encode(text)]
    assert tok.encode(text) == want.tolist()
    assert np.array_equal(tok.encode_to_numpy(text), want) and tok.encode_to_numpy(text).dtype == np.uint16
    assert list(tok.encode_iterable([text[:777], text[777:]])) == want.tolist()
    p = tmp_path / "t.txt"
    p.write_bytes(text.encode())
    chunks = list(tok.encode_file(p, workers=2, chunk_bytes=8192))
    assert len(chunks) > 1 and np.array_equal(np.concatenate([c.tokens for c in chunks]), want)
    assert np.array_equal(np.concatenate([c.gpt2_tokens for c in chunks]), tt_encode(text))
    assert tok.encode("<|unk|>") != [V - 1], "<|unk|> is an id, not text: the literal encodes as GPT-2 tokens"


def test_bpe_folders_still_load_as_plain_tokenizers(e2e, tmp_path):
    from storytok.bpe.gpt2_top10k import CompactTokenizer
    from storytok.errors import StorytokError

    full = e2e["tok"].gpt2
    full.save(tmp_path / "bpe")
    again = Tokenizer.from_dir(tmp_path / "bpe")
    assert type(again) is Tokenizer and again.fingerprint() == full.fingerprint()
    with pytest.raises(StorytokError, match="not a gpt2-top10k"):
        CompactTokenizer.from_dir(tmp_path / "bpe")


# --- the stage: up to date, settings, errors -------------------------------------------------------

@pytest.fixture(scope="module")
def tokenizer_stage():
    return load_stage("tokenizer")


def _stage(capsys, stage, *argv) -> tuple[int, str, str]:
    code = run_stage(stage.main, [str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_rerun_is_up_to_date_and_other_settings_rebuild(capsys, tokenizer_stage, tmp_path):
    train = sample("train")
    args = ["--kind", "gpt2-top10k", "--gpt2-dir", gpt2_dir(), "--train", train, "--out", tmp_path / "tok",
            "--workers", 2, "--vocab-size", 500]
    code, out, err = _stage(capsys, tokenizer_stage, *args, "--sample-stories", 50)
    assert code == 0, err
    fp = Tokenizer.from_dir(tmp_path / "tok").fingerprint()
    code, out, err = _stage(capsys, tokenizer_stage, *args, "--sample-stories", 50)
    assert code == 0 and "up to date" in out
    code, out, err = _stage(capsys, tokenizer_stage, *args, "--sample-stories", 60)
    assert code == 0 and "up to date" not in out
    tok = Tokenizer.from_dir(tmp_path / "tok")
    assert len(tok) == 500 and tok.unk_id == 499 and tok.fingerprint() != fp
    # the bpe kind with the same file and size is another tokenizer: it must not count as up to date
    code, out, err = _stage(capsys, tokenizer_stage, "--kind", "bpe", "--train", train, "--out", tmp_path / "tok",
                            "--vocab-size", 500, "--workers", 2)
    assert code == 0 and "up to date" not in out
    assert type(Tokenizer.from_dir(tmp_path / "tok")) is Tokenizer


def _bad_gpt2_dir(tmp_path, damage):
    d = tmp_path / "gpt2"
    if damage == "missing_dir":
        return d
    d.mkdir()
    shutil.copy(gpt2_dir() / "gpt2_vocab.json", d / "vocab.json")
    shutil.copy(gpt2_dir() / "gpt2_merges.txt", d / "merges.txt")
    if damage == "missing_merges":
        (d / "merges.txt").unlink()
    elif damage == "vocab_not_json":
        (d / "vocab.json").write_text("<!DOCTYPE html><html>Rate limited</html>")
    elif damage == "truncated_vocab":
        (d / "vocab.json").write_text((d / "vocab.json").read_text(encoding="utf-8")[:400_000], encoding="utf-8")
    elif damage == "vocab_missing_tokens":
        vocab = json.loads((d / "vocab.json").read_text(encoding="utf-8"))
        (d / "vocab.json").write_text(json.dumps(dict(list(vocab.items())[:20_000])), encoding="utf-8")
    elif damage == "merges_garbage":
        (d / "merges.txt").write_text("#version: 0.2\nthis line has three\n", encoding="utf-8")
    return d


@pytest.mark.parametrize("damage", ["missing_dir", "missing_merges", "vocab_not_json", "truncated_vocab",
                                    "vocab_missing_tokens", "merges_garbage"])
def test_bad_gpt2_dir_is_one_clear_line(capsys, tokenizer_stage, tmp_path, damage):
    d = _bad_gpt2_dir(tmp_path, damage)
    code, out, err = _stage(capsys, tokenizer_stage, "--kind", "gpt2-top10k", "--gpt2-dir", d,
                            "--train", sample("train"), "--out", tmp_path / "tok")
    line = one_error_line(code, err)
    assert str(d) in line and "GPT2_DIR" in line and "make data KIND=gpt2-top10k" in line
    assert not (tmp_path / "tok").exists() and not list(tmp_path.glob("tok*"))


def test_bad_gpt2_dir_through_a_real_process(tmp_path):
    r = run("tokenizer", "--kind", "gpt2-top10k", "--gpt2-dir", tmp_path / "nowhere", "--train", sample("train"),
            "--out", tmp_path / "tok")
    line = one_error_line(r.returncode, r.stderr)
    assert "nowhere" in line and "no such directory" in line


@pytest.mark.parametrize("argv,words", [
    (["--kind", "gpt2-top10k", "--vocab-size", "50259"], ["VOCAB_SIZE=50,259", "VOCAB_SIZE<=50,258"]),
    (["--kind", "gpt2-top10k", "--vocab-size", "70000"], ["uint16"]),
    (["--kind", "gpt2-top10k", "--sample-stories", "0"], ["SAMPLE_STORIES=0"]),
    (["--kind", "bpe", "--sample-stories", "10"], ["SAMPLE_STORIES", "gpt2-top10k only"]),
    (["--kind", "gpt2-10k"], ["KIND=gpt2-10k", "bpe or gpt2-top10k"]),
])
def test_bad_settings_are_one_clear_line(capsys, tokenizer_stage, tmp_path, argv, words):
    code, out, err = _stage(capsys, tokenizer_stage, *argv, "--gpt2-dir", gpt2_dir(), "--train", sample("train"),
                            "--out", tmp_path / "tok")
    line = one_error_line(code, err)
    assert all(w in line for w in words), line
    assert not (tmp_path / "tok").exists()


def test_corrupt_tokenizer_folder_is_one_clear_line(e2e, capsys, tmp_path):
    encode = load_stage("encode")
    p = tmp_path / "t.txt"
    p.write_text("A story.\n<|endoftext|>\nAnother.\n", encoding="utf-8")
    for damage in ("kind", "kept", "swapped_vocab"):
        d = tmp_path / damage
        shutil.copytree(e2e["out"] / "tokenizer", d)
        if damage == "kind":
            (d / "tokenizer_kind.json").write_text('{"kind": "gpt5-top3"}')
        elif damage == "kept":
            (d / "kept_ids.json").write_text('{"format": 1, "gpt2_ids": [1, 1]}')
        else:   # a vocab.json of other GPT-2-format tokens: not the one the kept ids refer to
            vocab = json.loads((d / "vocab.json").read_text(encoding="utf-8"))
            a, b = list(vocab)[300], list(vocab)[301]
            vocab[a], vocab[b] = vocab[b], vocab[a]
            (d / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
        code, out, err = _stage(capsys, encode, "--tokenizer", d, "--out-dir", tmp_path / "out", f"train={p}")
        line = one_error_line(code, err)
        assert str(d) in line and "make tokenizer" in line, line
    assert not (tmp_path / "out").exists()


# --- Makefile and make data -----------------------------------------------------------------------

def test_make_passes_kind_gpt2_dir_and_sample_stories():
    if shutil.which("make") is None:
        pytest.skip("make not installed")

    def dry(*args):
        r = subprocess.run(["make", "-n", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        return [ln for ln in r.stdout.splitlines() if "stages/" in ln]

    line = dry("tokenizer", "KIND=gpt2-top10k", "GPT2_DIR=/x/gpt2", "SAMPLE_STORIES=7")[-1]
    assert "stages/tokenizer.py --kind gpt2-top10k --gpt2-dir /x/gpt2 --sample-stories 7" in line
    assert "--sample-stories" not in dry("tokenizer")[-1] and "--kind bpe" in dry("tokenizer")[-1]
    assert dry("data", "KIND=gpt2-top10k", "GPT2_DIR=/x/gpt2")[-1].endswith("--gpt2 --gpt2-dir /x/gpt2")
    assert "--gpt2" not in dry("data")[-1]


def test_make_data_fetches_gpt2_files(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    for name in ("TinyStoriesV2-GPT4-train.txt", "TinyStoriesV2-GPT4-valid.txt"):
        (served / name).write_text("Once.\n<|endoftext|>\n")
    shutil.copy(gpt2_dir() / "gpt2_vocab.json", served / "vocab.json")
    shutil.copy(gpt2_dir() / "gpt2_merges.txt", served / "merges.txt")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(served), **kw)

        def log_message(self, *a):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{httpd.server_address[1]}"
        env = dict(os.environ, STORYTOK_DATA_URL=base, STORYTOK_GPT2_URL=base)
        r = subprocess.run([sys.executable, str(ROOT / "stages" / "data.py"), "--out-dir", str(tmp_path / "data"),
                            "--gpt2", "--gpt2-dir", str(tmp_path / "data" / "gpt2")],
                           capture_output=True, text=True, env=env, timeout=120)
    finally:
        httpd.shutdown()
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "data" / "gpt2" / "vocab.json").read_bytes() == (served / "vocab.json").read_bytes()
    assert (tmp_path / "data" / "gpt2" / "merges.txt").read_bytes() == (served / "merges.txt").read_bytes()
    from storytok.bpe.gpt2_top10k import load_gpt2
    assert len(load_gpt2(tmp_path / "data" / "gpt2")) == 50257


# --- awkward inputs, in-process -------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_tok():
    """A 400-id compact tokenizer counted on 100 stories: plenty of <|unk|>."""
    from storytok.bpe.gpt2_top10k import build, load_gpt2
    return build(load_gpt2(gpt2_dir()), sample("train"), 400, sample_stories=100, workers=2)


def _whitespace_unk(tok) -> str:
    """A whitespace-only text whose GPT-2 tokens are not kept (a blank row made of <|unk|>)."""
    for ws in ("\t\t\t\t\t\t", "\r\n\r\n\r\n", " " * 13, "\n" * 9, "\x0b\x0c"):
        if tok.unk_id in tok.encode(ws):
            return ws
    pytest.skip("no whitespace run outside this small vocabulary")


def test_awkward_inputs_round_trip_through_the_unk_column(small_tok, tmp_path):
    from storytok.store.flatten import build_arrays_and_stats, tokens_path
    from storytok.store.parquet_store import encode_split

    tok = small_tok
    ws = _whitespace_unk(tok)
    long_story = "\n".join(f"Line {i}: the zebra quibbled with a xylophone." for i in range(3000))
    text = (f"Short.\n{EOT}\n{long_story}\n{EOT}{ws}{EOT}{EOT}Ünïcödé 😀 story.\n{EOT}\n"
            + "A tiny story about a jaguar.\n<|endoftext|>\n" * 3000)
    path = tmp_path / "in.txt"
    path.write_text(text, encoding="utf-8", newline="")
    rep = encode_split(tok, path, tmp_path / "parquet" / "valid", split="valid", progress=False,
                       chunk_bytes=1 << 16, part_bytes=1 << 16)
    assert rep.parts >= 2
    r = build_arrays_and_stats(tok, tmp_path / "tok", tmp_path, ["valid"], progress=False)
    t = pq.read_table(tmp_path / "parquet" / "valid")
    rows = stories_of(text)
    got = [tok.decode(a, unk_gpt2_ids=u) for a, u in zip(t.column("tokens").to_pylist(),
                                                          t.column("unk_gpt2_ids").to_pylist())]
    assert got == rows
    arr = np.load(tokens_path(tmp_path, "valid"))
    ref = tt_encode(text)
    assert np.array_equal(arr, tok.from_gpt2(ref))
    s = r.stats["splits"]["valid"]
    assert s["blank_rows"] == sum(is_blank(x) for x in rows), "a row of unknown whitespace is still blank"
    assert s["unk"]["tokens"] == int((arr == tok.unk_id).sum()) > 0
    assert s["unk"]["bytes"] == sum(gpt2_len(g) for g in ref[~tok.is_kept(ref)])
    assert s["bytes"] == len(text.encode())
