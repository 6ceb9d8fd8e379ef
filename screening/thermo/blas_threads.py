"""One BLAS thread for code that makes many tiny LAPACK calls.

OpenBLAS starts its threads even for a 7x5 QR (scipy's dgels): measured on the matrix screen, a
second thread doubled the CPU time of the hull engine for no gain in wall time, and under dask (one
worker per core) the threads would compete with the other workers.
"""

from __future__ import annotations

import contextlib


def one_blas_thread():
    """A context in which BLAS (OpenBLAS/MKL, numpy's and scipy's) runs on one thread."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")
