"""The kernel cache is dropped when any kernel source changes, not only the kernel's own file."""
from storytok import kernels


def _fake_cache(tmp_path, stamp):
    (tmp_path / "scanner.scan_tokens-300.py311.nbi").write_bytes(b"old")
    (tmp_path / "bpe_encode.encode_segments-10.py311.1.nbc").write_bytes(b"old")
    (tmp_path / "someone_else.f-1.py311.nbi").write_bytes(b"not ours")
    if stamp is not None:
        (tmp_path / kernels._STAMP).write_text(stamp)


def test_stale_stamp_drops_only_kernel_cache_files(tmp_path):
    _fake_cache(tmp_path, "an older digest")
    kernels._drop_stale_cache(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([kernels._STAMP, "someone_else.f-1.py311.nbi"])
    assert (tmp_path / kernels._STAMP).read_text() == kernels._sources_digest()


def test_missing_stamp_counts_as_stale(tmp_path):
    _fake_cache(tmp_path, None)
    kernels._drop_stale_cache(tmp_path)
    assert not (tmp_path / "scanner.scan_tokens-300.py311.nbi").exists()


def test_current_stamp_keeps_the_cache(tmp_path):
    _fake_cache(tmp_path, kernels._sources_digest())
    kernels._drop_stale_cache(tmp_path)
    assert (tmp_path / "scanner.scan_tokens-300.py311.nbi").read_bytes() == b"old"


def test_digest_covers_every_kernel_file_and_the_class_constants():
    names = {p.name for p in kernels._sources()}
    assert {"scanner.py", "bpe_encode.py", "count.py", "unicode_classes.py"} <= names


def test_the_real_cache_is_stamped():
    cache_dir = kernels._cache_dir()
    assert cache_dir is not None
    assert (cache_dir / kernels._STAMP).read_text() == kernels._sources_digest()
