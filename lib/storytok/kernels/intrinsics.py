"""Two memory instructions Numba does not offer, as @intrinsic functions emitting LLVM IR.

prefetch(a, i): the merge loop visits cells in the order of an occurrence list, and
counting adds records to a table far larger than the caches; both know where they will
read a few steps ahead, and each access alone would wait ~100 ns on memory. This asks the
CPU to start loading the cache line of a[i] now (llvm.prefetch: a hint, never a fault).

load_u64(buf, p): the 8 bytes at any byte offset in one unaligned load, where Numba would
need two aligned word loads and shifts; the counting loop builds every pre-token's key
from it.
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

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        index = context.cast(builder, args[1], signature.args[1], types.intp)
        ptr = builder.gep(ary.data, [index])
        p64 = builder.bitcast(ptr, ir.IntType(64).as_pointer())
        value = builder.load(p64, align=1)
        return value

    return sig, codegen
