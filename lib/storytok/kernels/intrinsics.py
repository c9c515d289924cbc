"""Memory instructions Numba does not offer, as @intrinsic functions emitting LLVM IR.
The one module of them: every kernel takes its intrinsics from here.

prefetch(a, i): the merge loop visits cells in the order of an occurrence list, and
counting adds records to a table far larger than the caches; both know where they will
read a few steps ahead, and each access alone would wait ~100 ns on memory. This asks the
CPU to start loading the cache line of a[i] now (llvm.prefetch: a hint, never a fault).

load_u64(buf, p): the 8 bytes at any byte offset in one unaligned load, where Numba would
need two aligned word loads and shifts; the counting loop builds every pre-token's key
from it. load8u(arr, byte_offset) is the same load at a byte offset into an array of any
type, as an int64 (the encoder's keys and span-table compares).

load_acquire, publish, claim, atomic_add: the encoder's one table shared by all threads
(kernels.encode_cache) is filled while others read it. A slot is claimed by a
compare-and-swap, written, then published by a release store of its key; readers load
the key with acquire, so they never see a half-written slot.
"""
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def prefetch(typingctx, arr, idx):
    """Hint that arr[idx] (1-d array, integer index) will be read soon."""
    if not isinstance(arr, types.Array) or not isinstance(idx, types.Integer):
        return None
    sig = types.void(arr, idx)

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        index = context.cast(builder, args[1], signature.args[1], types.intp)
        ptr = builder.gep(ary.data, [index])
        i8p = builder.bitcast(ptr, ir.IntType(8).as_pointer())
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p.type, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        builder.call(fn, [i8p, i32(0), i32(3), i32(1)])   # read, keep in all cache levels, data
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def load_u64(typingctx, buf, pos):
    """The 8 bytes buf[pos:pos + 8] as one little-endian uint64 (buf: 1-d uint8 array with
    at least 8 bytes from pos on): a single unaligned load, where two aligned word loads and
    shifts would otherwise be needed."""
    if not isinstance(buf, types.Array) or buf.dtype != types.uint8 or not isinstance(pos, types.Integer):
        return None
    sig = types.uint64(buf, pos)

    return sig, _unaligned_load8


def _unaligned_load8(context, builder, signature, args):
    """The 8 bytes at byte offset args[1] from the start of array args[0]'s data."""
    ary = context.make_array(signature.args[0])(context, builder, args[0])
    index = context.cast(builder, args[1], signature.args[1], types.intp)
    i8p = ir.IntType(8).as_pointer()
    ptr = builder.gep(builder.bitcast(ary.data, i8p), [index])
    return builder.load(builder.bitcast(ptr, ir.IntType(64).as_pointer()), align=1)


@intrinsic
def load8u(typingctx, arr, byte_offset):
    """The 8 bytes at byte_offset from the start of arr's data (any dtype), as an int64
    (little-endian), by one unaligned load. No bounds check: the caller guarantees the
    bytes exist."""
    if not isinstance(arr, types.Array) or not isinstance(byte_offset, types.Integer):
        return None
    return types.int64(arr, byte_offset), _unaligned_load8


def _item_pointer(context, builder, aryty, ary_arg, idx, idxty):
    ary = context.make_array(aryty)(context, builder, ary_arg)
    return builder.gep(ary.data, [context.cast(builder, idx, idxty, types.intp)])


@intrinsic
def load_acquire(typingctx, arr, idx):
    """arr[idx] (int64), loaded so that no later load of the thread moves before it."""
    if not isinstance(arr, types.Array) or not isinstance(idx, types.Integer):
        return None
    sig = types.int64(arr, idx)

    def codegen(context, builder, signature, args):
        ptr = _item_pointer(context, builder, signature.args[0], args[0], args[1], signature.args[1])
        return builder.load_atomic(ptr, "acquire", 8)

    return sig, codegen


@intrinsic
def publish(typingctx, arr, idx, value):
    """arr[idx] = value (int64), stored after every earlier store of the thread is visible."""
    if not isinstance(arr, types.Array) or not isinstance(idx, types.Integer):
        return None
    sig = types.void(arr, idx, value)

    def codegen(context, builder, signature, args):
        ptr = _item_pointer(context, builder, signature.args[0], args[0], args[1], signature.args[1])
        builder.store_atomic(args[2], ptr, "release", 8)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def claim(typingctx, arr, idx, expected, value):
    """Atomically: if arr[idx] == expected, set it to value. True if this thread did."""
    if not isinstance(arr, types.Array) or not isinstance(idx, types.Integer):
        return None
    sig = types.boolean(arr, idx, expected, value)

    def codegen(context, builder, signature, args):
        ptr = _item_pointer(context, builder, signature.args[0], args[0], args[1], signature.args[1])
        pair = builder.cmpxchg(ptr, args[2], args[3], "acq_rel", "monotonic")
        return builder.extract_value(pair, 1)

    return sig, codegen


@intrinsic
def atomic_add(typingctx, arr, idx, value):
    """arr[idx] += value, atomically (int64)."""
    if not isinstance(arr, types.Array) or not isinstance(idx, types.Integer):
        return None
    sig = types.void(arr, idx, value)

    def codegen(context, builder, signature, args):
        ptr = _item_pointer(context, builder, signature.args[0], args[0], args[1], signature.args[1])
        builder.atomic_rmw("add", ptr, args[2], "monotonic")
        return context.get_dummy_value()

    return sig, codegen
