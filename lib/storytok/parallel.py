"""Running nogil Numba kernels on all cores with plain threads.

The kernels release the GIL, so threads share one address space and no data is copied
between processes; ordered_map keeps results in input order with a bounded window so
memory stays proportional to the number of workers, never to the input.
"""
from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def resolve_workers(workers: int | None) -> int:
    if workers is None or workers <= 0:
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return workers


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[R]:
    """fn over items on `workers` threads, yielded in input order, at most workers + 1 in flight."""
    if workers <= 1:
        for item in items:
            yield fn(item)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        window: deque = deque()
        for item in items:
            window.append(pool.submit(fn, item))
            if len(window) > workers:
                yield window.popleft().result()
        while window:
            yield window.popleft().result()


class PerThread:
    """Lazily built per-thread mutable state (a kernel's tables), collectable at the end."""

    def __init__(self, factory: Callable[[], object]):
        self._factory = factory
        self._local = threading.local()
        self._all: list = []
        self._lock = threading.Lock()

    def get(self):
        state = getattr(self._local, "state", None)
        if state is None:
            state = self._factory()
            self._local.state = state
            with self._lock:
                self._all.append(state)
        return state

    def all(self) -> list:
        return list(self._all)
