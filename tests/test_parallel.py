"""ordered_map: results in input order, errors in their place, bounded, and no thread left behind."""
from __future__ import annotations

import random
import threading
import time

import pytest

from storytok.parallel import ordered_map


def _slow_square(x: int) -> int:
    time.sleep(random.random() / 500)
    return x * x


@pytest.mark.parametrize("workers", [1, 2, 3, 8])
def test_results_come_in_input_order(workers):
    assert list(ordered_map(_slow_square, range(200), workers)) == [x * x for x in range(200)]


def test_empty_input():
    assert list(ordered_map(_slow_square, [], 2)) == []


def test_an_error_in_fn_comes_after_the_results_before_it():
    def fn(x):
        if x == 7:
            raise ValueError("bad item 7")
        return _slow_square(x)
    got = []
    with pytest.raises(ValueError, match="bad item 7"):
        for r in ordered_map(fn, range(50), 3):
            got.append(r)
    assert got == [x * x for x in range(7)]


def test_an_error_in_the_items_comes_after_the_results_before_it():
    def items():
        yield from range(5)
        raise OSError("read failed")
    got = []
    with pytest.raises(OSError, match="read failed"):
        for r in ordered_map(_slow_square, items(), 2):
            got.append(r)
    assert got == [x * x for x in range(5)]


def test_in_flight_items_are_bounded_and_threads_end_when_the_consumer_stops():
    pulled = []

    def items():
        for i in range(10_000):
            pulled.append(i)
            yield i
    before = threading.active_count()
    gen = ordered_map(_slow_square, items(), 2)
    first = [next(gen) for _ in range(3)]
    time.sleep(0.05)
    assert first == [0, 1, 4]
    assert len(pulled) <= 3 + 2 + 1, "at most workers + 1 items beyond what was consumed"
    gen.close()
    assert threading.active_count() == before
