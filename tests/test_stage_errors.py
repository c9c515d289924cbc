"""Bad input to the stages: each one clear line on stderr, exit 1, and nothing half-written
left looking complete. Most run main() in-process (fast); a few through a real interpreter."""
from __future__ import annotations

import pytest

from pipeline_helpers import EOT, load_stage, one_error_line, run, sample
from storytok import Tokenizer, train_bpe
from storytok.cli import run_stage

GOOD = "Once upon a time there was a dog.\n<|endoftext|>\nThe end.\n<|endoftext|>\n"


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("tok") / "tokenizer"
    vocab, merges = train_bpe(str(sample("valid")), 300, [EOT])
    Tokenizer(vocab, merges, [EOT]).save(d)
    return d


@pytest.fixture(scope="module")
def stages():
    return {name: load_stage(name) for name in ("tokenizer", "encode", "stats", "demo")}


def _fails(capsys, stages, stage, *argv) -> str:
    code = run_stage(stages[stage].main, [str(a) for a in argv])
    err = capsys.readouterr().err
    return one_error_line(code, err)


def test_tokenizer_missing_input_says_make_data_or_TRAIN(capsys, stages, tmp_path):
    line = _fails(capsys, stages, "tokenizer", "--train", tmp_path / "nope.txt", "--out", tmp_path / "tok")
    assert "nope.txt" in line and "make data" in line and "TRAIN=" in line
    assert not (tmp_path / "tok").exists()


def test_tokenizer_empty_input(capsys, stages, tmp_path):
    (tmp_path / "e.txt").write_bytes(b"")
    line = _fails(capsys, stages, "tokenizer", "--train", tmp_path / "e.txt", "--out", tmp_path / "tok")
    assert "e.txt" in line and "empty" in line


def test_tokenizer_invalid_utf8_names_the_byte_offset(capsys, stages, tmp_path):
    p = tmp_path / "bad.txt"
    p.write_bytes(GOOD.encode() + b"caf\xe9\n")
    line = _fails(capsys, stages, "tokenizer", "--train", p, "--out", tmp_path / "tok", "--vocab-size", 300)
    assert "bad.txt" in line and str(len(GOOD.encode()) + 3) in line
    assert not (tmp_path / "tok").exists() and not list(tmp_path.glob("tok*"))


def test_tokenizer_vocab_over_uint16(capsys, stages, tmp_path):
    p = tmp_path / "t.txt"
    p.write_text(GOOD)
    line = _fails(capsys, stages, "tokenizer", "--train", p, "--out", tmp_path / "tok", "--vocab-size", 70000)
    assert "70,000" in line and "uint16" in line and "65536" in line


def test_encode_missing_valid_says_make_data_or_VALID(capsys, stages, tmp_path, tok_dir):
    p = tmp_path / "t.txt"
    p.write_text(GOOD)
    line = _fails(capsys, stages, "encode", "--tokenizer", tok_dir, "--out-dir", tmp_path / "out",
                  f"train={p}", f"valid={tmp_path / 'missing.txt'}")
    assert "missing.txt" in line and "make data" in line and "VALID=" in line
    assert not (tmp_path / "out").exists(), "inputs are checked before any work"


def test_encode_split_without_input(capsys, stages, tmp_path, tok_dir):
    line = _fails(capsys, stages, "encode", "--tokenizer", tok_dir, "--out-dir", tmp_path, "test=")
    assert "'test'" in line and "SPLITS" in line


def test_encode_empty_input(capsys, stages, tmp_path, tok_dir):
    (tmp_path / "e.txt").write_bytes(b"")
    line = _fails(capsys, stages, "encode", "--tokenizer", tok_dir, "--out-dir", tmp_path, f"train={tmp_path / 'e.txt'}")
    assert "e.txt" in line and "empty" in line


def test_encode_invalid_utf8_names_the_byte_offset(capsys, stages, tmp_path, tok_dir):
    p = tmp_path / "bad.txt"
    p.write_bytes(GOOD.encode() * 3 + b"\xc3(" + GOOD.encode())
    out = tmp_path / "out"
    line = _fails(capsys, stages, "encode", "--tokenizer", tok_dir, "--out-dir", out, f"train={p}")
    assert "bad.txt" in line and str(len(GOOD.encode()) * 3) in line
    assert not list((out / "parquet" / "train").glob("part-*")), "no part may look finished"
    line = _fails(capsys, stages, "stats", "--tokenizer", tok_dir, "--out-dir", out, "train")
    assert "unfinished" in line and "make encode" in line
    assert not list(out.glob("*.npy")) and not (out / "stats.json").exists()


def test_encode_missing_tokenizer_dir(capsys, stages, tmp_path):
    p = tmp_path / "t.txt"
    p.write_text(GOOD)
    line = _fails(capsys, stages, "encode", "--tokenizer", tmp_path / "none", "--out-dir", tmp_path, f"train={p}")
    assert "none" in line and "make tokenizer" in line


@pytest.mark.parametrize("damage", ["garbage_vocab", "truncated_merges", "missing_file"])
def test_encode_corrupt_tokenizer_dir(capsys, stages, tmp_path, tok_dir, damage):
    import shutil
    d = tmp_path / "tok"
    shutil.copytree(tok_dir, d)
    if damage == "garbage_vocab":
        (d / "vocab.json").write_text("{not json")
    elif damage == "truncated_merges":
        (d / "merges.txt").write_text((d / "merges.txt").read_text()[:-40] + "\u0120zz qq\n")
    else:
        (d / "vocab.json").unlink()
    p = tmp_path / "t.txt"
    p.write_text(GOOD)
    line = _fails(capsys, stages, "encode", "--tokenizer", d, "--out-dir", tmp_path / "out", f"train={p}")
    assert str(d) in line
    assert not (tmp_path / "out").exists()


def test_encode_tokenizer_over_uint16(capsys, stages, tmp_path):
    vocab = {i: bytes([i]) for i in range(256)}
    merges = []
    for a in range(256):
        for b in range(256):
            if len(merges) == 65280:
                break
            merges.append((bytes([a]), bytes([b])))
            vocab[len(vocab)] = bytes([a, b])
    tok = Tokenizer(vocab, merges, [EOT])
    assert len(tok) == 65537
    tok.save(tmp_path / "big")
    p = tmp_path / "t.txt"
    p.write_text(GOOD)
    line = _fails(capsys, stages, "encode", "--tokenizer", tmp_path / "big", "--out-dir", tmp_path / "out", f"train={p}")
    assert "65,537" in line and "uint16" in line
    assert not (tmp_path / "out").exists()


def test_stats_before_encode(capsys, stages, tmp_path, tok_dir):
    line = _fails(capsys, stages, "stats", "--tokenizer", tok_dir, "--out-dir", tmp_path, "train")
    assert "make encode" in line


def test_demo_report_before_demo(capsys, stages, tmp_path, tok_dir):
    line = _fails(capsys, stages, "demo", "report", "--dir", tmp_path, "--out-dir", tmp_path / "nothing")
    assert "make tokenizer" in line or "make demo" in line


def test_ctrl_c_is_one_line(capsys):
    def main(argv):
        raise KeyboardInterrupt
    line = one_error_line(run_stage(main, []), capsys.readouterr().err.replace("interrupted:", "error: interrupted:"))
    assert "run the same command again" in line


def test_real_process_exit_status_and_single_line(tmp_path):
    r = run("encode", "--tokenizer", tmp_path / "tok", "--out-dir", tmp_path, f"train={tmp_path / 'x.txt'}")
    line = one_error_line(r.returncode, r.stderr)
    assert "make data" in line and "TRAIN=" in line
    r = run("tokenizer", "--train", tmp_path / "x.txt", "--out", tmp_path / "tok")
    one_error_line(r.returncode, r.stderr)
