"""The encoder's caches and the memory budget they share (Python side of `kernels.encode_cache`).

Each encoding thread works on an `EncodeState`: a table of short pre-tokens (grows by
doubling, from `START_SLOTS`), a span table for long ones (bounded, reset when full) and an
output buffer. States are kept in a `CachePool` per Tokenizer and handed to whichever thread
encodes next, so caches stay warm across calls and threads without being shared while in use.

Budget: every byte of every state's caches is reserved from the pool first, so all
threads together never hold more than `budget` bytes of cache, whatever the input, counting
the moment a table grows (old and new tables both live). A state's span-table share is
fixed when the state is made (`long_share`); its short table grows while the pool grants
the doubled size and is swept (kernels.encode_cache.cache_sweep) when it cannot grow.
A budget of 0 turns caching off (every pre-token is encoded from scratch).

Large tables are anonymous mappings aligned to 2 MiB and advised MADV_HUGEPAGE: a probe is
a random access, and with 4 KiB pages nearly every one would also miss the TLB.
"""
from __future__ import annotations

import mmap
import threading

import numpy as np

from storytok.kernels import encode_cache as kc
from storytok.kernels.encode_cache import cache_rehash, cache_sweep
from storytok.kernels.spantable import ROW_WIDTH

DEFAULT_CACHE_BYTES = 256 << 20
START_SLOTS = 1 << 12          # 128 KB: a first table small enough for a short text
MIN_SLOTS = 4                  # two pairs: the smallest table the kernels handle
LONG_SHARE_DIVISOR = 8         # the span table of each state may use budget / 8 ...
LONG_SHARE_MAX = 32 << 20      # ... up to 32 MB
LONG_SHARE_MIN = 4 << 10
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
    """Bytes reserved for one state's span table (0: long pre-tokens are not cached)."""
    share = min(budget // LONG_SHARE_DIVISOR, LONG_SHARE_MAX)
    return share if share >= LONG_SHARE_MIN else 0


class EncodeState:
    """One thread's caches while it encodes (see the module docstring); `ts` holds the
    kernels' counters (kernels.encode_cache: ENTRIES, LIMIT, ... , HITS, MISSES, SWEEPS)."""

    def __init__(self, pool: "CachePool"):
        self.pool = pool
        self.ts = np.zeros(kc.TS_SIZE, np.int64)
        self.out = np.empty(0, np.uint16)
        self.granted = 0
        share = long_share(pool.budget)
        if share and pool.reserve(share):
            self.granted += share
            # fixed arrays (the kernels never grow them): rows take half the share (at most
            # half full), the key arena a quarter, the ids a quarter
            rows = 2
            while 2 * rows * ROW_WIDTH * 8 <= share // 2:
                rows *= 2
            self.ts[kc.LONG_ON] = 1
            self.lrows = np.zeros((rows, ROW_WIDTH), np.int64)
            self.larena = np.zeros(share // 4, np.uint8)
            self.lids = np.zeros(share // 32, np.int64)
        else:
            self.lrows = np.zeros((2, ROW_WIDTH), np.int64)
            self.larena = np.zeros(64, np.uint8)
            self.lids = np.zeros(8, np.int64)
        self.lmeta = np.zeros(2, np.int64)
        n = START_SLOTS
        while n >= MIN_SLOTS and not pool.reserve(n * kc.SLOT_BYTES):
            n //= 2
        if n >= MIN_SLOTS:
            self.granted += n * kc.SLOT_BYTES
            self._set_table(alloc_table(n))
        else:  # nothing granted: a table of one empty pair that never takes an entry
            self.table = np.zeros(2 * kc.SLOT, np.int64)
            self.ts[kc.SHIFT] = 63
            self.ts[kc.LIMIT] = -1

    def _set_table(self, table: np.ndarray) -> None:
        self.table = table
        n_slots = table.shape[0] // kc.SLOT
        self.ts[kc.SHIFT] = 64 - (n_slots // 2).bit_length() + 1
        self.ts[kc.LIMIT] = n_slots * 3 // 4

    def slots(self) -> int:
        return self.table.shape[0] // kc.SLOT

    def make_room(self) -> None:
        """The table reached its limit: double it if the pool grants the bytes, else sweep it."""
        n = self.slots()
        if self.pool.reserve(2 * n * kc.SLOT_BYTES):
            new = alloc_table(2 * n)
            old = self.table
            shift = 64 - n.bit_length() + 1  # pairs of the new table: n
            cache_rehash(old, new, shift)
            self._set_table(new)
            del old
            self.pool.give_back(n * kc.SLOT_BYTES)
            self.granted += n * kc.SLOT_BYTES
            self.ts[kc.GROWS] += 1
        else:
            cache_sweep(self.table, self.ts)

    def output(self, n: int, dtype) -> np.ndarray:
        """The reused output buffer, with room for n ids plus the kernel's slack."""
        if self.out.size < n + 8 or self.out.dtype != dtype:
            self.out = np.empty(max(n, 1) + 8, dtype)
        return self.out

    def stats(self) -> dict[str, int]:
        names = ("ENTRIES", "HITS", "MISSES", "LONG_HITS", "LONG_MISSES", "SWEEPS", "WIPES", "LONG_RESETS", "GROWS")
        out = {name.lower(): int(self.ts[getattr(kc, name)]) for name in names}
        out["slots"] = self.slots() if self.ts[kc.LIMIT] >= 0 else 0
        out["granted_bytes"] = self.granted
        return out


class CachePool:
    """The states of one Tokenizer and the bytes they may hold together (see module docstring)."""

    def __init__(self, budget: int):
        if budget < 0:
            raise ValueError("cache_bytes must be >= 0")
        self.budget = int(budget)
        self.used = 0
        self._lock = threading.Lock()
        self._free: list[EncodeState] = []
        self._all: list[EncodeState] = []

    def reserve(self, n: int) -> bool:
        with self._lock:
            if self.used + n > self.budget:
                return False
            self.used += n
            return True

    def give_back(self, n: int) -> None:
        with self._lock:
            self.used -= n

    def acquire(self) -> EncodeState:
        """A state no other thread is using: the most recently released one (warmest), or a new one."""
        with self._lock:
            if self._free:
                return self._free.pop()
        state = EncodeState(self)
        with self._lock:
            self._all.append(state)
        return state

    def release(self, state: EncodeState) -> None:
        with self._lock:
            self._free.append(state)

    def stats(self) -> dict[str, int]:
        """Counters summed over the states, plus the bytes reserved and the number of states."""
        total: dict[str, int] = {}
        with self._lock:
            states = list(self._all)
        for s in states:
            for key, value in s.stats().items():
                total[key] = total.get(key, 0) + value
        total["states"] = len(states)
        total["reserved_bytes"] = self.used
        total["budget_bytes"] = self.budget
        return total
