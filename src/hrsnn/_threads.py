"""Run dense LAPACK work on one thread.

On a small machine shared with other jobs, threaded eigen-solvers and Schur decompositions slow down badly
(measured at N = 1000 on 2 busy cores: a Lyapunov solve took 12–50 s threaded, 7–9 s on one thread).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import torch


@contextmanager
def single_threaded() -> Iterator[None]:
    """Limit torch's intra-op threads and the BLAS/LAPACK thread pools to 1 inside the block, then restore them."""
    previous = torch.get_num_threads()
    with ExitStack() as stack:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn, a dependency
            pass
        else:
            stack.enter_context(threadpool_limits(limits=1, user_api="blas"))
        if previous != 1:
            torch.set_num_threads(1)
            stack.callback(torch.set_num_threads, previous)
        yield
