"""Thread counts: dense LAPACK work on one thread, and the intra-op threads for running a model.

On a small machine shared with other jobs, threaded eigen-solvers and Schur decompositions slow down badly
(measured at N = 1000 on 2 busy cores: a Lyapunov solve took 12–50 s threaded, 7–9 s on one thread).

The fused spiking kernels (one recurrent LIF layer, B = 64, T = 100, forward + backward, best of 3 in a fresh
process per cell, 2-core Xeon VM, ``python benchmarks/thread_choice.py``; entries: the faster thread count and its
speed-up under OpenMP's ACTIVE / PASSIVE wait policy, "≈" within 1.1×):

- idle machine: N = 64: ≈ / 1: 1.3×; N = 128: 2: 1.2× / 1: 1.2×; N = 512: 2: 1.5× / 1.4×; N = 2048: 2: 1.9× / 1.8×
- one busy core: N = 64: 1: 2.9× / 1.2×; N = 128: 1: 1.7× / ≈; N = 512: 1: 1.4× / 1.3×; N = 2048: 1: 1.3× / ≈
- two busy cores: N = 64: 1: 1.9× / 1.2×; N = 128: 1: 78× / ≈; N = 512: 1: 1.2× / 1.4×; N = 2048: 1: 1.2× / 2: 1.4×

(an earlier, noisier run of the same measurement flipped cells within 1.4× of parity, at N = 128 and at N = 2048
under PASSIVE, and agreed everywhere else).

Hence :func:`auto_threads`: one thread below :data:`SMALL_LAYER` neurons, and above it as many threads as the
machine has idle cores (CPU count minus the 1-minute load average), at most torch's setting.
"""

from __future__ import annotations

import os
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


def idle_cores() -> float:
    """CPU count minus the 1-minute load average (the CPU count where the platform reports no load)."""
    cpus = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # pragma: no cover - platforms without getloadavg (Windows)
        return float(cpus)
    return cpus - load


def auto_threads(model: RSNN | ClassicalRNN) -> int:
    """Intra-op threads for running ``model`` (module docstring): 1 when its largest layer has fewer than
    :data:`SMALL_LAYER` neurons (or hidden units, for a classical RNN), else torch's present setting capped at the
    machine's idle cores (at least 1), because threads that share a busy core slow the kernels down (above: up to
    1.4× at N = 512 and 78× at N = 128 with spinning OpenMP threads; ``hrsnn lyapunov`` on 200 neurons took 86 s
    with the default threads and 6 s with one, and an LSTM epoch was 25–75× slower on two threads, both on a busy
    2-core machine)."""
    if isinstance(model, ClassicalRNN):
        largest = max(model.config.hidden_sizes)
    else:
        largest = max(layer.size for layer in model.layers)
    if largest < SMALL_LAYER:
        return 1
    return max(1, min(torch.get_num_threads(), round(idle_cores())))
