"""Running nogil Numba kernels on all cores with plain threads.

The kernels release the GIL, so threads share one address space and no data is copied
between processes; ordered_map keeps results in input order with a bounded window so
memory stays proportional to the number of workers, never to the input.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def resolve_workers(workers: int | None) -> int:
    if workers is None or workers <= 0:
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return workers


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[R]:
    """fn over items on `workers` threads, yielded in input order, at most workers + 1 in flight.

    The workers also pull the items (one at a time, under a lock), so producing them (reading
    a file chunk, say) runs on the worker threads too: exactly `workers` threads are busy,
    not workers + a producer competing for the same cores. An exception from the items or
    from fn is raised here, in order, once the results before it have been yielded.
    """
    if workers <= 1:
        for item in items:
            yield fn(item)
        return
    source = iter(items)
    pull = threading.Lock()
    done = threading.Condition()
    slots = threading.Semaphore(workers + 1)  # taken when an item is pulled, given back when its result is yielded
    results: dict[int, tuple[bool, object]] = {}
    state = {"next": 0, "end": None, "stop": False}

    def work() -> None:
        while True:
            slots.acquire()
            with pull:
                if state["end"] is not None or state["stop"]:
                    slots.release()
                    return
                index = state["next"]
                try:
                    item = next(source)
                except StopIteration:
                    state["end"] = index
                    slots.release()
                    with done:
                        done.notify_all()
                    return
                except BaseException as e:  # the producer failed: report it at this position
                    state["end"] = index + 1
                    with done:
                        results[index] = (False, e)
                        done.notify_all()
                    return
                state["next"] = index + 1
            try:
                outcome = (True, fn(item))
            except BaseException as e:
                outcome = (False, e)
            with done:
                results[index] = outcome
                done.notify_all()

    threads = [threading.Thread(target=work, daemon=True, name=f"storytok-worker-{k}") for k in range(workers)]
    for t in threads:
        t.start()
    try:
        index = 0
        while True:
            with done:
                while index not in results and (state["end"] is None or index < state["end"]):
                    done.wait()
                if index not in results:
                    return
                ok, value = results.pop(index)
            slots.release()
            if not ok:
                raise value
            yield value
            index += 1
    finally:
        state["stop"] = True
        for _ in threads:
            slots.release()   # wake workers blocked on a slot so they see `stop`
        for t in threads:
            t.join()


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
