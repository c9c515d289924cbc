"""Growing kernel arrays: the one policy every growable buffer in the kernels follows."""
import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def grown(a, used, need):
    """a itself if it holds `need` elements; else a new array of max(need, 2 * len(a))
    with a[:used] copied over. Doubling keeps appends amortised O(1).

    The copy is a loop, not a slice assignment: LLVM makes either a memcpy, but a slice
    assignment costs Numba ~0.3 s more to compile for each dtype this is used with."""
    if need <= a.shape[0]:
        return a
    out = np.empty(max(need, 2 * a.shape[0]), a.dtype)
    for i in range(used):
        out[i] = a[i]
    return out
