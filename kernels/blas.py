"""Matrix products on blocks, by BLAS, callable from the kernels.

A wide layer's products (W1 X_b, D1 X_b^T, ...) run at the machine's GEMM speed only
with register tiling and cache blocking that LLVM does not produce from plain loops
(measured: 40-60 GFLOP/s with the loops, against 92 with BLAS, 784-128-10 float64, two
threads; see config.WIDE_MIN). numba's own ``np.dot`` calls BLAS too, but only on
contiguous arrays and without accumulation; ``gemm`` here calls the same entry point
numba uses (``numba_xxgemm`` in numba's helper library, which forwards to SciPy's
``cython_blas`` ``dgemm``/``sgemm``) with any leading dimension and ``beta``, so a block
of samples is a view of X (row stride m, no copy) and a gradient sum accumulates in
place. The call is looked up by name when the kernel is linked, so the on-disk cache
keeps working.

The helpers take row-major (C-order) 2-D views whose rows may be spaced apart (a column
slice of a C-contiguous array) but whose elements within a row are contiguous; B of mm
and mm_nt may instead be column-major (a sample-major mini-batch: _operand):

    mm(C, A, B, beta)      C = A B   + beta C     A (r, k), B (k, n), C (r, n)
    mm_nt(C, A, B, beta)   C = A B^T + beta C     A (r, k), B (n, k), C (r, n)
    mm_tn(C, A, B, beta)   C = A^T B + beta C     A (k, r), B (k, n), C (r, n)

A row-major matrix with row stride s is, to BLAS (column-major), its transpose with
leading dimension s; so C = A B is computed as C^T = B^T A^T. BLAS runs one thread per
call here: the kernels call it from their own threads, one block each, and
``fusedmlp._compiled`` limits SciPy's OpenBLAS to one thread while they run. Leading
dimensions are C ints: row strides must stay below 2^31 elements (the caller checks).

Under ``NUMBA_DISABLE_JIT=1`` the helpers are NumPy one-liners.
"""

from numba import types
from numba.core import config as _numba_config

from .config import jit

_inner = jit()
_N, _T = ord("n"), ord("t")


if not _numba_config.DISABLE_JIT:
    from llvmlite import ir
    from numba.core import cgutils
    from numba.extending import intrinsic
    from numba.np.linalg import ensure_blas, get_blas_kind

    @intrinsic
    def _gemm(typingctx, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
        """Column-major c[m, n] = alpha op(a)[m, k] op(b)[k, n] + beta c; status (0 ok)."""
        dtype = c.dtype
        sig = types.int32(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)

        def codegen(context, builder, sig, args):
            ensure_blas()
            char = ir.IntType(8)
            void_p = char.as_pointer()
            intp = context.get_value_type(types.intp)
            fnty = ir.FunctionType(
                ir.IntType(32),
                [char, char, char, intp, intp, intp, void_p, void_p, intp, void_p, intp]
                + [void_p, void_p, intp],
            )
            fn = cgutils.get_or_insert_function(builder.module, fnty, "numba_xxgemm")
            tys = sig.args

            def as_intp(i):
                return context.cast(builder, args[i], tys[i], types.intp)

            def as_char(i):
                return builder.trunc(as_intp(i), char)

            def scalar(i):  # alpha, beta: passed by address, in c's dtype
                slot = cgutils.alloca_once(builder, context.get_value_type(dtype))
                builder.store(context.cast(builder, args[i], tys[i], dtype), slot)
                return builder.bitcast(slot, void_p)

            def data(i):
                arr = context.make_array(tys[i])(context, builder, args[i])
                return builder.bitcast(arr.data, void_p)

            kind = ir.Constant(char, ord(get_blas_kind(dtype)))
            call = (kind, as_char(0), as_char(1), as_intp(2), as_intp(3), as_intp(4))
            call += (scalar(5), data(6), as_intp(7), data(8), as_intp(9))
            call += (scalar(10), data(11), as_intp(12))
            return builder.call(fn, call)

        return sig, codegen

    @_inner
    def _ld(M):
        """Leading dimension of a row-major view: its row stride in elements (>= 1)."""
        return max(M.strides[0] // M.itemsize, M.shape[1], 1)

    @_inner
    def _operand(M, op):
        """(op, leading dimension) for B given as M: a row-major view (op as given), or
        a column-major one (elements contiguous down a column: the sample-major data of
        a mini-batch, kernels/train.py), which BLAS reads as the transpose, so op flips
        and the column stride is the leading dimension."""
        if M.strides[1] == M.itemsize or M.shape[1] == 1:
            return op, _ld(M)
        return _N + _T - op, max(M.strides[1] // M.itemsize, M.shape[0], 1)

    @_inner
    def mm(C, A, B, beta):
        """C = A B + beta C (row-major views; B may be column-major)."""
        r, k = A.shape
        n = B.shape[1]
        op, ldb = _operand(B, _N)
        return _gemm(op, _N, n, r, k, 1.0, B, ldb, A, _ld(A), beta, C, _ld(C))

    @_inner
    def mm_nt(C, A, B, beta):
        """C = A B^T + beta C (row-major views; B may be column-major)."""
        r, k = A.shape
        n = B.shape[0]
        op, ldb = _operand(B, _T)
        return _gemm(op, _N, n, r, k, 1.0, B, ldb, A, _ld(A), beta, C, _ld(C))

    @_inner
    def mm_tn(C, A, B, beta):
        """C = A^T B + beta C (row-major views)."""
        k, r = A.shape
        n = B.shape[1]
        return _gemm(_N, _T, n, r, k, 1.0, B, _ld(B), A, _ld(A), beta, C, _ld(C))

else:  # plain Python: the same results up to rounding; beta 0 ignores C, as BLAS does

    def mm(C, A, B, beta):
        C[...] = A @ B if beta == 0 else A @ B + beta * C
        return 0

    def mm_nt(C, A, B, beta):
        C[...] = A @ B.T if beta == 0 else A @ B.T + beta * C
        return 0

    def mm_tn(C, A, B, beta):
        C[...] = A.T @ B if beta == 0 else A.T @ B + beta * C
        return 0


__all__ = ["mm", "mm_nt", "mm_tn"]
