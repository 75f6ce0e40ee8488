"""Run dense LAPACK work on one thread.

On a small machine shared with other jobs, threaded eigen-solvers and Schur decompositions slow down badly
(measured at N = 1000 on 2 busy cores: a Lyapunov solve took 12–50 s threaded, 7–9 s on one thread).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING

import torch

from hrsnn.classical import ClassicalRNN

if TYPE_CHECKING:
    from hrsnn.network import RSNN

SMALL_LAYER = 512
"""Networks whose largest layer has fewer neurons than this run on one intra-op thread by default."""


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


def auto_threads(model: RSNN | ClassicalRNN) -> int:
    """Intra-op threads for running ``model``: 1 when its largest layer has fewer than :data:`SMALL_LAYER` neurons
    (or hidden units, for a classical RNN) (thread synchronisation then costs more than it gains: ``hrsnn lyapunov``
    on 200 neurons took 86 s with the default threads and 6 s with one, on a busy 2-core machine; an LSTM epoch was
    25–75× slower on two threads), else torch's present setting."""
    if isinstance(model, ClassicalRNN):
        largest = max(model.config.hidden_sizes)
    else:
        largest = max(layer.size for layer in model.layers)
    return 1 if largest < SMALL_LAYER else max(1, torch.get_num_threads())
