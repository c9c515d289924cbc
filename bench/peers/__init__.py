"""One adapter per tool. Each module's public functions are workers: `fn(params) -> dict`, run
by `python -m bench.worker` in a fresh process. They import their tool inside the function,
and no peer but `storytok` imports storytok (its Numba runtime would inflate their RSS)."""
