"""The encoder's caches and the memory budget they share (Python side of `kernels.encode_cache`).

A `CachePool` (one per Tokenizer) owns the table of short pre-tokens that all encoding
threads share, and hands out `EncodeState`s, one per thread while it encodes: a span table
for long pre-tokens (bounded, reset when full), counters and an output buffer. States are
reused by whichever thread encodes next, so caches stay warm across calls.

Budget: every byte of cache is reserved from the pool first, so all threads together never
hold more than `budget` bytes of cache, whatever the input, counting the moment the table
grows (old and new tables both live). Each state's span table takes a fixed share
(`long_share`: a quarter of the budget split by the cores, at most 32 MB) when the state
is made; the shared table starts small (`START_SLOTS`) and doubles while the pool grants
the doubled size; when it cannot, it is swept (kernels.encode_cache.cache_sweep: keep what
was hit since the previous sweep). With the default 256 MB on 2 cores: two span tables of
32 MB and a table of up to 128 MB (4M slots, 3M pre-tokens). A budget of 0 turns caching
off (every pre-token is encoded from scratch).

Threads read and fill the table concurrently (the kernels' claim/publish protocol), but
growing and sweeping move entries: `make_room` sets tab[PAUSE], waits until no thread is
inside the encoder (they return at their next block of pre-tokens and wait in `enter`),
changes the table, and lets them go on.

Large tables are anonymous private mappings aligned to 2 MiB and advised MADV_HUGEPAGE: a
probe is a random access, and with 4 KiB pages nearly every one would also miss the TLB.
"""
from __future__ import annotations

import mmap
import os
import threading

import numpy as np

from storytok.kernels import encode_cache as kc
from storytok.kernels.encode_cache import cache_rehash, cache_sweep
from storytok.kernels.spantable import ROW_WIDTH

DEFAULT_CACHE_BYTES = 256 << 20
START_SLOTS = 1 << 12          # 128 KB: a first table small enough for a short text
MIN_SLOTS = 4                  # two pairs: the smallest table the kernels handle
LONG_SHARE_MAX = 32 << 20      # a state's span table: budget / (4 x cores), up to 32 MB,
LONG_SHARE_MIN = 4 << 10       # ... while the span tables together hold at most budget / 4
_HUGE_PAGE = 2 << 20
_PRIVATE = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS


def alloc_table(n_slots: int) -> np.ndarray:
    """Zeroed int64 table of n_slots slots, page-aligned (so each pair is one cache line);
    from 2 MiB on, aligned to huge pages and advised to use them before first touch."""
    nbytes = n_slots * kc.SLOT_BYTES
    if nbytes < _HUGE_PAGE:
        return np.frombuffer(mmap.mmap(-1, nbytes, flags=_PRIVATE), np.int64)
    mm = mmap.mmap(-1, nbytes + _HUGE_PAGE, flags=_PRIVATE)  # private: shared anonymous memory gets no huge pages
    raw = np.frombuffer(mm, np.uint8)
    off = -raw.ctypes.data % _HUGE_PAGE
    if hasattr(mmap, "MADV_HUGEPAGE"):
        try:
            mm.madvise(mmap.MADV_HUGEPAGE, off, nbytes)
        except OSError:
            pass
    return raw[off:off + nbytes].view(np.int64)


def long_share(budget: int) -> int:
    """Bytes reserved for one state's span table (0: long pre-tokens are not cached): a
    quarter of the budget shared by as many states as there are cores, up to 32 MB each."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    share = min(budget // (4 * cores), LONG_SHARE_MAX)
    return share if share >= LONG_SHARE_MIN else 0


class EncodeState:
    """One thread's part while it encodes (see the module docstring); `ts` holds its counters
    and span-table state (kernels.encode_cache: HITS, MISSES, LONG_*, STOP)."""

    def __init__(self, pool: "CachePool"):
        self.ts = np.zeros(kc.TS_SIZE, np.int64)
        self.out = np.empty(0, np.uint16)
        self.granted = 0
        share = long_share(pool.budget)
        if share and pool.reserve_long(share):
            self.granted = share
            # fixed arrays (the kernels never grow them): rows take half the share (at most
            # half full), the key arena a quarter, the ids a quarter
            rows = 2
            while 2 * rows * ROW_WIDTH * 8 <= share // 2:
                rows *= 2
            self.ts[kc.LONG_ON] = 1
            self.lrows = np.zeros((rows, ROW_WIDTH), np.int64)
            self.larena = np.zeros(share // 4 + 8, np.uint8)  # + slack for 8-byte compares
            self.lids = np.zeros(share // 32, np.int64)
        else:
            self.lrows = np.zeros((2, ROW_WIDTH), np.int64)
            self.larena = np.zeros(64 + 8, np.uint8)
            self.lids = np.zeros(8, np.int64)
        self.lmeta = np.zeros(2, np.int64)

    def output(self, n: int, dtype) -> np.ndarray:
        """The reused output buffer, with room for n ids plus the kernel's slack."""
        if self.out.size < n + 8 or self.out.dtype != dtype:
            self.out = np.empty(max(n, 1) + 8, dtype)
        return self.out


class CachePool:
    """The shared table, the states of one Tokenizer, and the bytes they may hold together."""

    def __init__(self, budget: int):
        if budget < 0:
            raise ValueError("cache_bytes must be >= 0")
        self.budget = int(budget)
        self.used = 0
        self.long_used = 0
        self._cond = threading.Condition()
        self._free: list[EncodeState] = []
        self._all: list[EncodeState] = []
        self._active = 0        # threads inside the encoder
        self._changing = False  # a thread is growing or sweeping the table
        self.generation = 0     # bumped by every grow or sweep
        self.tab = np.zeros(kc.TAB_SIZE, np.int64)
        n = START_SLOTS
        while n >= MIN_SLOTS and not self.reserve(n * kc.SLOT_BYTES):
            n //= 2
        if n >= MIN_SLOTS:
            self._set_table(alloc_table(n))
        else:  # nothing granted: a table of one empty pair that never takes an entry
            self.table = np.zeros(2 * kc.SLOT, np.int64)
            self.tab[kc.SHIFT] = 63
            self.tab[kc.LIMIT] = -1

    # ---- bytes ------------------------------------------------------------------------
    def reserve(self, n: int) -> bool:
        with self._cond:
            if self.used + n > self.budget:
                return False
            self.used += n
            return True

    def give_back(self, n: int) -> None:
        with self._cond:
            self.used -= n

    def reserve_long(self, n: int) -> bool:
        """reserve() for a state's span table, while those together stay within budget / 4
        (more threads than cores encode long pre-tokens without a cache)."""
        with self._cond:
            if self.long_used + n > self.budget // 4 or self.used + n > self.budget:
                return False
            self.used += n
            self.long_used += n
            return True

    # ---- states -----------------------------------------------------------------------
    def acquire(self) -> EncodeState:
        """A state no other thread is using: the most recently released one, or a new one."""
        with self._cond:
            if self._free:
                return self._free.pop()
        state = EncodeState(self)
        with self._cond:
            self._all.append(state)
        return state

    def release(self, state: EncodeState) -> None:
        with self._cond:
            self._free.append(state)

    # ---- the shared table -------------------------------------------------------------
    def _set_table(self, table: np.ndarray) -> None:
        self.table = table
        n_slots = table.shape[0] // kc.SLOT
        self.tab[kc.SHIFT] = 64 - (n_slots // 2).bit_length() + 1
        self.tab[kc.LIMIT] = n_slots * 3 // 4

    def slots(self) -> int:
        return self.table.shape[0] // kc.SLOT if self.tab[kc.LIMIT] >= 0 else 0

    def enter(self) -> tuple[np.ndarray, np.ndarray, int]:
        """Before an encoder call: wait while the table is being changed, then count this
        thread in. Returns (table, tab, generation) to call with."""
        with self._cond:
            while self._changing:
                self._cond.wait()
            self._active += 1
            return self.table, self.tab, self.generation

    def leave(self) -> None:
        with self._cond:
            self._active -= 1
            if self._active == 0:
                self._cond.notify_all()

    def make_room(self, generation: int) -> None:
        """The table reached its limit (seen by a thread that called with `generation`, and
        is no longer inside the encoder): unless another thread already made room, pause the
        others, then double the table if the pool grants the bytes, else sweep it."""
        with self._cond:
            if self.generation != generation:
                return
            if self._changing:  # another thread is at it: it makes the room
                while self._changing:
                    self._cond.wait()
                return
            self._changing = True
            self.tab[kc.PAUSE] = 1
            while self._active:
                self._cond.wait()
        try:
            n = self.table.shape[0] // kc.SLOT
            if self.reserve(2 * n * kc.SLOT_BYTES):
                new = alloc_table(2 * n)
                cache_rehash(self.table, new, 64 - n.bit_length() + 1)  # the new table has n pairs
                self._set_table(new)
                self.give_back(n * kc.SLOT_BYTES)
                self.tab[kc.GROWS] += 1
            else:
                cache_sweep(self.table, self.tab)
        finally:
            with self._cond:
                self.generation += 1
                self.tab[kc.PAUSE] = 0
                self._changing = False
                self._cond.notify_all()

    def stats(self) -> dict[str, int]:
        """Counters summed over the states, the table's, and the bytes reserved."""
        names = ("HITS", "MISSES", "LONG_HITS", "LONG_MISSES", "LONG_RESETS")
        with self._cond:
            states = list(self._all)
            out = {name.lower(): int(sum(s.ts[getattr(kc, name)] for s in states)) for name in names}
            for name in ("ENTRIES", "SWEEPS", "WIPES", "GROWS"):
                out[name.lower()] = int(self.tab[getattr(kc, name)])
            out["slots"] = self.slots()
            out["states"] = len(states)
            out["reserved_bytes"] = self.used
            out["budget_bytes"] = self.budget
        return out
