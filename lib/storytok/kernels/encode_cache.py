"""The encoder's cache of short pre-tokens: bytes -> ids in one 64-byte cache line per probe.

Web text has millions of distinct pre-tokens, so the cache outgrows every CPU cache and
a lookup is a random memory access; what matters is that it costs one line, and that the
line is already on its way when the probe runs. Hence:

* A slot is 32 bytes, four int64: k0 (bytes 0-7 of the pre-token), k1 (bytes 8-14 with the
  length in the top byte, so a real key never has k1 == 0 and k1 == 0 marks an empty
  slot), val and ext (the ids). Slots 2p and 2p+1 form pair p, one aligned 64-byte line
  (the table is page-aligned). Keys are pre-tokens of at most 15 bytes (99% of web text's,
  all of TinyStories'); longer ones go to a span table (`bpe_encode`).
* Up to four ids are stored in the slot itself (1-2 for nearly every pre-token):
  val = count (bits 0-2) | mark (bit 7) | id0 << 8 | id1 << 32, ext = id2 | id3 << 32.
  Count 0 means "more than four ids: look in the span table". Ids are < 2**21.
* Linear probing from the home pair (the top bits of a multiplicative hash): a hit in the
  home line costs one compare of two slots; inserts take the first empty slot of the walk.
* Software prefetch (`prefetch`): the encoder hashes a block of pre-tokens and prefetches
  their lines before it probes any of them.
* One table serves all threads (so a word missed by one is a hit for the others, and the
  budget buys one big table rather than several small ones). While they encode, threads
  only read slots, set marks, and fill empty slots: a slot is claimed by a compare-and-swap
  of its k1 (0 -> BUSY), written, then published by storing the real k1 last (`claim`,
  `publish`); readers load k1 first (`load_acquire`), so they see a slot either empty,
  busy (skipped) or complete. A slot once published never changes while anyone reads.
  Growing and sweeping move entries, so they run only when no thread is inside the
  encoder (the Python side pauses them: `tab[PAUSE]`, `bpe.cache_budget.CachePool`).
* When full (3/4 load at the largest size the budget allows), `cache_sweep` keeps the
  entries hit since the previous sweep (a one-bit clock: `mark`) and deletes the rest in
  place (backward-shift deletion, so no tombstones and no second table); if more than half
  of the limit survives, the working set does not fit and the table is wiped.

`tab` holds the shared table's state, `ts` one thread's counters and span-table state.
(bpe_encode's kernels bake these constants in when they compile, and Numba's disk cache
does not notice a change made here: after changing one, touch bpe_encode.py.)
"""
import numpy as np
from numba import njit

from storytok.kernels.intrinsics import load8u, load_acquire

K0, K1, VAL, EXT = 0, 1, 2, 3
SLOT = 4                      # int64 per slot
SLOT_BYTES = 32
MAX_SHORT = 15                # longest pre-token keyed in the table
MAX_INLINE = 4                # ids stored in a slot
MARK = 0x80                   # val bit: hit since the last sweep (when == tab[EPOCH])
BUSY = -1                     # k1 of a slot being written (no real key has length byte 0xFF)
ID_LIMIT = 1 << 21            # ids and merge ranks must stay below this

# tab: the shared table's state (read-mostly fields in one cache line, the counter every
# insert updates in the next, so that inserts do not make other threads' reads miss)
LIMIT = 0          # entries at which a miss stops the encoder to ask for room; -1: never insert
SHIFT = 1          # 64 - log2(pairs)
EPOCH = 2          # the mark value that means "hit since the last sweep" (0 or MARK)
PAUSE = 3          # set while a thread waits to grow or sweep the table: encoders return soon
SWEEPS = 4
WIPES = 5
GROWS = 6
ENTRIES = 8        # entries in the table
TAB_SIZE = 16

# ts: one thread's state
LONG_ON = 0        # 1 if the span table for long pre-tokens may take entries
LONG_IDS_USED = 1  # ids used in the span table's id array
STOP = 2           # set when a miss found the table at its limit (the encoder returned for room)
HITS = 3
MISSES = 4
LONG_HITS = 5
LONG_MISSES = 6
LONG_RESETS = 7
TS_SIZE = 8

_U = np.uint64      # index type: unsigned indices skip Numba's negative-index wraparound code
# masks of a key's bytes by length & 15: bytes 0-7 (all 8 from length 8 on), bytes 8-14
_MASK_LO = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [(1 << 64) - 1] * 8, dtype=np.uint64)
_MASK_HI = np.array([0] * 9 + [(1 << (8 * (k - 8))) - 1 for k in range(9, 16)], dtype=np.uint64)
_M1 = np.int64(-7046029254386353131)  # 0x9E3779B97F4A7C15
_M2 = np.int64(-4417276706812531889)  # 0xC2B2AE3D27D4EB4F


@njit(cache=True, nogil=True, inline="always")
def short_key(words, i, n):
    """(k0, k1) of the pre-token of n bytes at byte i (meaningful for n <= MAX_SHORT only):
    bytes 0-7, and bytes 8-14 with n in the top byte. words is the text as uint64 with 16
    bytes of padding; two unaligned loads, no loop, no branch."""
    m = _U(n & 15)
    return load8u(words, i) & np.int64(_MASK_LO[m]), (load8u(words, i + 8) & np.int64(_MASK_HI[m])) | (n << 56)


@njit(cache=True, nogil=True, inline="always")
def home_offset(k0, k1, shift, pair_mask):
    """Offset in the table (int64 units) of the key's home pair: top bits of a multiplicative hash,
    which every bit of both words reaches."""
    h = ((k0 * _M1) ^ k1) * _M2
    return ((h >> shift) & pair_mask) << 3


@njit(cache=True, nogil=True, inline="always")
def pack_ids(parts, m, unhit):
    """(val, ext) of ids parts[:m], 1 <= m <= MAX_INLINE, not yet hit (mark = unhit)."""
    val = m | unhit | (parts[0] << 8)
    ext = np.int64(0)
    if m > 1:
        val |= parts[1] << 32
    if m > 2:
        ext = parts[2]
    if m > 3:
        ext |= parts[3] << 32
    return val, ext


@njit(cache=True, nogil=True, inline="always")
def cache_find(table, k0, k1, o):
    """Offset of the slot holding (k0, k1), walking from offset o (a home pair);
    -(offset + 1) of the first empty slot if absent. Busy slots are walked past."""
    mask = table.shape[0] - 1
    while True:
        x = load_acquire(table, o + K1)
        if x == k1 and table[o + K0] == k0:
            return o
        if x == 0:
            return -(o + 1)
        o = (o + SLOT) & mask


@njit(cache=True, nogil=True)
def cache_rehash(old, new, shift):
    """Insert every entry of `old` into the empty table `new` (its shift given)."""
    mask = new.shape[0] - 1
    pair_mask = (new.shape[0] >> 3) - 1
    for o in range(0, old.shape[0], SLOT):
        k1 = old[o + K1]
        if k1 != 0:
            q = home_offset(old[o + K0], k1, shift, pair_mask)
            while new[q + K1] != 0:
                q = (q + SLOT) & mask
            for w in range(SLOT):
                new[q + w] = old[o + w]


@njit(cache=True, nogil=True, inline="always")
def _delete(table, i, shift):
    """Empty slot i, moving later entries of its run back so that every entry stays reachable
    from its home without empty slots in between (Knuth's algorithm R)."""
    mask = table.shape[0] - 1
    pair_mask = (table.shape[0] >> 3) - 1
    j = i
    while True:
        j = (j + SLOT) & mask
        if table[j + K1] == 0:
            break
        home = home_offset(table[j + K0], table[j + K1], shift, pair_mask)
        if i <= j:
            stays = i < home <= j
        else:
            stays = home > i or home <= j
        if stays:
            continue
        for w in range(SLOT):
            table[i + w] = table[j + w]
        i = j
    for w in range(SLOT):
        table[i + w] = 0


@njit(cache=True, nogil=True)
def cache_sweep(table, tab):
    """Make room in a full table: delete the entries not hit since the last sweep (or since
    they were inserted), then start a new epoch. If more than half the limit is still in
    use, wipe the table. Returns the number of entries deleted. No thread may be encoding."""
    ts = tab
    epoch = ts[EPOCH]
    shift = ts[SHIFT]
    before = ts[ENTRIES]
    removed = 0
    for o in range(0, table.shape[0], SLOT):
        while table[o + K1] != 0 and (table[o + VAL] & MARK) != epoch:
            _delete(table, o, shift)
            removed += 1
    ts[ENTRIES] = before - removed
    ts[EPOCH] = epoch ^ MARK
    ts[SWEEPS] += 1
    if 2 * ts[ENTRIES] > ts[LIMIT]:
        for o in range(table.shape[0]):
            table[o] = 0
        ts[ENTRIES] = 0
        ts[WIPES] += 1
        return before
    return removed
