"""One loader for tokenizer folders of every kind (storytok.bpe.load): which kind a folder is,
that every kind loads to the same tokenizer (or to outside references' ids), that a damaged
or foreign folder is one clear line and never a fallback to another kind, and that
Tokenizer.from_dir, the pipeline and the stages all go through it, with no import cycle.
"""
from __future__ import annotations

import ast
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from conftest import EOT, read_gpt2_vocab, read_text, shared_path
from pipeline_helpers import load_stage, one_error_line
from storytok import StorytokError, StorytokWarning, Tokenizer
from storytok.bpe import load
from storytok.cli import run_stage
from storytok.sources.inputs import load_tokenizer

LIB = Path(__file__).resolve().parents[1] / "lib" / "storytok"


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    from storytok import train_bpe
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StorytokWarning)
        vocab, merges = train_bpe(shared_path("fixtures", "tinystories_sample.txt"), 500, [EOT])
    tok = Tokenizer(vocab, merges, [EOT])
    d = tmp_path_factory.mktemp("tok") / "tokenizer"
    tok.save(d)
    return tok, d


def _only(src: Path, dst: Path, *names: str) -> Path:
    dst.mkdir()
    for n in names:
        shutil.copy(src / n, dst / n)
    return dst


@pytest.mark.parametrize("files,kind", [
    (("vocab.json", "merges.txt", "tokenizer.json", "tokenizer.tiktoken"), "gpt2-files"),
    (("vocab.json", "merges.txt", "tokenizer.json"), "gpt2-files"),
    (("tokenizer.json",), "hf"),
    (("tokenizer.tiktoken",), "tiktoken"),
    (("tokenizer.json", "tokenizer.tiktoken"), "hf"),
])
def test_every_kind_loads_the_same_tokenizer(saved, tmp_path, files, kind):
    tok, d = saved
    only = _only(d, tmp_path / "t", *files)
    assert load.dir_kind(only) == kind
    for again in (load.load_tokenizer_dir(only), Tokenizer.from_dir(only), load_tokenizer(only)):
        assert type(again) is Tokenizer and again.fingerprint() == tok.fingerprint()
    text = read_text(shared_path("fixtures", "tinystories_sample.txt"))
    assert again.encode(text) == tok.encode(text)


def test_hf_gpt2_tokenizer_json_gives_gpt2_ids(tmp_path):
    """GPT-2 serialized by Hugging Face `tokenizers` itself (its own tokenizer.json, merges in
    whatever form this version writes): the ids are tiktoken's gpt2 built from the same files."""
    tokenizers = pytest.importorskip("tokenizers")
    tiktoken = pytest.importorskip("tiktoken")
    from tokenizers import decoders, models, pre_tokenizers
    v, m = shared_path("fixtures", "gpt2_vocab.json"), shared_path("fixtures", "gpt2_merges.txt")
    hf = tokenizers.Tokenizer(models.BPE.from_file(str(v), str(m)))
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf.decoder = decoders.ByteLevel()
    hf.add_special_tokens([EOT])
    (tmp_path / "gpt2").mkdir()
    hf.save(str(tmp_path / "gpt2" / "tokenizer.json"))
    tok = Tokenizer.from_dir(tmp_path / "gpt2")
    ranks = read_gpt2_vocab(v)
    ranks.pop(EOT.encode())
    from conftest import GPT2_PAT
    enc = tiktoken.Encoding("gpt2_ref", pat_str=GPT2_PAT, mergeable_ranks=ranks, special_tokens={EOT: 50256})
    for name in ("tinystories_sample.txt", "german.txt", "address.txt", "corpus.en"):
        text = read_text(shared_path("fixtures", name)) + EOT + "x"
        assert tok.encode(text) == enc.encode(text, allowed_special="all") == hf.encode(text).ids


def _hf_variant(saved, tmp_path, change) -> Path:
    _, d = saved
    raw = json.loads((d / "tokenizer.json").read_text("utf-8"))
    change(raw)
    out = tmp_path / "hf"
    out.mkdir()
    (out / "tokenizer.json").write_text(json.dumps(raw), encoding="utf-8")
    return out


FOREIGN = {
    "wordpiece": (lambda r: r["model"].update(type="WordPiece"), "WordPiece model"),
    "normalizer": (lambda r: r.update(normalizer={"type": "NFC"}), "NFC normalizer"),
    "prefix_space": (lambda r: r["pre_tokenizer"].update(add_prefix_space=True), "pre-tokenizer"),
    "other_regex": (lambda r: r.update(pre_tokenizer={"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": r"\w+|\s+"}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "use_regex": False}]}), "pre-tokenizer"),
    "template": (lambda r: r.update(post_processor={"type": "TemplateProcessing"}), "TemplateProcessing"),
    "not_special": (lambda r: r["added_tokens"][0].update(special=False), "not special"),
    "suffix": (lambda r: r["model"].update(end_of_word_suffix="</w>"), "end_of_word_suffix"),
}


@pytest.mark.parametrize("case", list(FOREIGN))
def test_foreign_hf_tokenizer_json_is_refused(saved, tmp_path, case):
    change, words = FOREIGN[case]
    d = _hf_variant(saved, tmp_path, change)
    with pytest.raises(StorytokError, match=words) as e:
        Tokenizer.from_dir(d)
    assert str(d / "tokenizer.json") in str(e.value) and "\n" not in str(e.value)


def test_hf_gpt2_split_form_is_accepted(saved, tmp_path):
    """Split(GPT-2 pattern) + ByteLevel(use_regex=False) is the same pre-tokenizer, spelled out."""
    from storytok.pretokenize.pretokenizer import GPT2_PATTERN
    d = _hf_variant(saved, tmp_path, lambda r: r.update(pre_tokenizer={"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": GPT2_PATTERN}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "use_regex": False}]}))
    assert Tokenizer.from_dir(d).fingerprint() == saved[0].fingerprint()


def test_gpt2_top10k_folder_loads_as_its_kind(tmp_path):
    from storytok.bpe.gpt2_top10k import CompactTokenizer
    gpt2 = Tokenizer.from_files(shared_path("fixtures", "gpt2_vocab.json"), shared_path("fixtures", "gpt2_merges.txt"),
                                [EOT])
    tok = CompactTokenizer(gpt2, [262, 290, 50256, -1])
    tok.save(tmp_path / "c")
    assert load.dir_kind(tmp_path / "c") == "gpt2-top10k"
    for again in (Tokenizer.from_dir(tmp_path / "c"), load_tokenizer(tmp_path / "c")):
        assert isinstance(again, CompactTokenizer) and again.fingerprint() == tok.fingerprint()
        assert np.array_equal(again.gpt2_ids, tok.gpt2_ids)


# --- damaged folders: one line, never another kind ---------------------------------------------------

@pytest.mark.parametrize("damage,words", [
    ("missing", "no tokenizer directory"),
    ("empty", "no tokenizer files here"),
    ("unrelated", "no tokenizer files here"),
    ("merges_only", "vocab.json: no such vocab.json file"),   # not a fallback to tokenizer.json / .tiktoken
    ("tiktoken_corrupt", "tokenizer.tiktoken: line 3"),
    ("hf_not_json", "tokenizer.json: not valid JSON"),
])
def test_damaged_folder_is_one_clear_line(saved, tmp_path, damage, words):
    _, d = saved
    t = tmp_path / "t"
    if damage == "missing":
        pass
    elif damage == "empty":
        t.mkdir()
    elif damage == "unrelated":
        t.mkdir()
        (t / "README.md").write_text("hello")
    elif damage == "merges_only":
        _only(d, t, "merges.txt", "tokenizer.json", "tokenizer.tiktoken")
    elif damage == "tiktoken_corrupt":
        _only(d, t, "tokenizer.tiktoken")
        lines = (t / "tokenizer.tiktoken").read_text().splitlines(keepends=True)
        lines[2] = "@@@@ 2\n"
        (t / "tokenizer.tiktoken").write_text("".join(lines))
    else:
        _only(d, t, "tokenizer.json")
        (t / "tokenizer.json").write_text("<html>rate limited</html>")
    with pytest.raises(StorytokError, match=words) as e:
        Tokenizer.from_dir(t)
    assert str(t) in str(e.value) and "\n" not in str(e.value)


def test_stage_with_a_corrupt_tiktoken_only_folder(saved, tmp_path, capsys):
    _, d = saved
    t = _only(d, tmp_path / "t", "tokenizer.tiktoken")
    (t / "tokenizer.tiktoken").write_text("YQ== 0\nYQ== 1\n")
    p = tmp_path / "x.txt"
    p.write_text("A story.<|endoftext|>Another.")
    code = run_stage(load_stage("encode").main, ["--tokenizer", str(t), "--out-dir", str(tmp_path / "out"), f"train={p}"])
    line = one_error_line(code, capsys.readouterr().err)
    assert str(t / "tokenizer.tiktoken") in line and "already given" in line and "make tokenizer" in line
    assert not (tmp_path / "out").exists()


# --- one place, no cycle ------------------------------------------------------------------------------

def test_from_dir_and_the_pipeline_go_through_the_loader(saved, monkeypatch):
    _, d = saved
    calls = []
    real = load.load_tokenizer_dir
    monkeypatch.setattr(load, "load_tokenizer_dir", lambda directory: calls.append(directory) or real(directory))
    Tokenizer.from_dir(d)
    load_tokenizer(d)
    assert calls == [d, d]


def _imports(path: Path, top_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text("utf-8"))
    out = set()
    for n in (tree.body if top_level_only else ast.walk(tree)):
        if isinstance(n, ast.ImportFrom) and n.module:
            out |= {n.module} | {f"{n.module}.{a.name}" for a in n.names}
        elif isinstance(n, ast.Import):
            out |= {a.name for a in n.names}
    return out


def test_no_import_cycle():
    """Module-level imports of the package form no cycle; tokenizer.py knows no tokenizer kind
    (it reaches storytok.bpe.load only inside from_dir), and gpt2_top10k does not import the loader."""
    mods = {}
    for p in LIB.rglob("*.py"):
        parts = p.relative_to(LIB.parent).with_suffix("").parts
        mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    graph = {m: {d for d in _imports(p, True) if d in mods and d != m} for m, p in mods.items()}
    state: dict[str, int] = {}

    def visit(m, path):
        state[m] = 1
        for d in graph[m]:
            assert state.get(d) != 1, f"import cycle: {' -> '.join(path + [d])}"
            if d not in state:
                visit(d, path + [d])
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m, [m])
    tok_any = _imports(mods["storytok.bpe.tokenizer"], False)
    assert not any("gpt2_top10k" in i for i in tok_any)
    assert "storytok.bpe.load" not in _imports(mods["storytok.bpe.tokenizer"], True)
    assert not any(i.startswith("storytok.bpe.load") for i in _imports(mods["storytok.bpe.gpt2_top10k"], False))
