"""The buffer pool of the fused kernels: reuse, no aliasing, the idle limit, and its configuration."""

from __future__ import annotations

import gc
import os
import signal
import time

import pytest
import torch

from hrsnn import fused
from hrsnn._workspace import CACHE_ENV, MIN_BYTES, BufferPool, default_limit
from hrsnn.errors import ConfigError
from hrsnn.surrogates import MultiGaussian

ROWS = MIN_BYTES // 16  # (ROWS, 4) float32 = exactly MIN_BYTES; pooled maps are rounded up to 2 MiB


def test_freed_buffer_is_handed_out_again() -> None:
    pool = BufferPool(64 << 20)
    t = pool.empty((ROWS, 4), torch.float32)
    address = t.data_ptr()
    del t
    assert pool.idle_bytes == 2 << 20
    again = pool.empty((ROWS, 4), torch.float32)
    assert again.data_ptr() == address
    assert pool.idle_bytes == 0


def test_buffer_with_a_live_view_is_not_reused() -> None:
    pool = BufferPool(64 << 20)
    t = pool.empty((ROWS, 4), torch.float32)
    t.fill_(3.0)
    view = t[1:]
    del t
    assert pool.idle_bytes == 0
    other = pool.empty((ROWS, 4), torch.float32)
    other.fill_(-1.0)
    assert bool((view == 3.0).all())  # the new buffer did not alias the view's memory
    del view
    gc.collect()
    assert pool.idle_bytes == 2 << 20


def test_sizes_share_a_block_within_half_again() -> None:
    pool = BufferPool(64 << 20)
    big = pool.empty((ROWS, 16), torch.float32)  # a 4 MiB map
    address = big.data_ptr()
    del big
    small = pool.empty((ROWS, 6), torch.float64)  # 3 MiB, rounded up to 4 MiB: fits the map
    assert small.data_ptr() == address
    del small
    tiny = pool.empty((ROWS, 8), torch.float32)  # 2 MiB: the 4 MiB map would waste half; a new one
    assert tiny.data_ptr() != address


def test_idle_memory_stays_under_the_limit_oldest_first() -> None:
    pool = BufferPool(2 << 20)
    a = pool.empty((ROWS, 4), torch.float32)
    b = pool.empty((ROWS, 4), torch.float32)
    keep = b.data_ptr()
    del a, b  # a is freed first, so it is the one unmapped
    assert pool.idle_bytes == 2 << 20
    assert pool.empty((ROWS, 4), torch.float32).data_ptr() == keep


def test_zero_limit_keeps_nothing_and_release_unmaps() -> None:
    off = BufferPool(0)
    t = off.empty((ROWS, 4), torch.float32)
    del t
    assert off.idle_bytes == 0
    pool = BufferPool(64 << 20)
    ts = [pool.empty((ROWS, 4), torch.float32) for _ in range(3)]
    del ts
    assert pool.release() == 6 << 20
    assert pool.idle_bytes == 0


def test_buffers_are_not_views() -> None:
    """A custom autograd Function may return a pooled buffer, and its caller may modify that output in place."""
    t = BufferPool(64 << 20).empty((ROWS, 4), torch.float32)
    assert t._base is None and t.is_contiguous() and t.shape == (ROWS, 4)


def test_small_buffers_come_from_torch() -> None:
    pool = BufferPool(64 << 20)
    t = pool.empty((10, 3), torch.float64)
    assert t.shape == (10, 3) and t.dtype == torch.float64
    del t
    assert pool.idle_bytes == 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_is_not_blocked_by_a_lock_held_in_the_parent() -> None:
    """Fork while the pool's lock is held (as by another thread): the child still gets buffers."""
    pool = BufferPool(64 << 20)
    pool.empty((ROWS, 4), torch.float32)  # freed at once: one idle block to hand out in the child
    pool._lock.acquire()
    pid = os.fork()
    if pid == 0:  # the child: exit 0 only if it gets a buffer (no torch kernel runs: OpenMP is not fork-safe)
        os._exit(0 if pool.empty((ROWS, 4), torch.float32).shape == (ROWS, 4) else 1)
    pool._lock.release()
    deadline = time.monotonic() + 20.0
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail("the forked child blocked on the pool's lock")


def test_limit_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_ENV, "3")
    assert default_limit() == 3 << 20
    monkeypatch.setenv(CACHE_ENV, "0")
    assert default_limit() == 0
    for bad in ("-1", "lots", "nan"):
        monkeypatch.setenv(CACHE_ENV, bad)
        with pytest.raises(ConfigError, match=CACHE_ENV):
            default_limit()
    with pytest.raises(ConfigError, match="limit_bytes"):
        BufferPool(-5)


def test_fused_layer_reuses_its_buffers_between_calls() -> None:
    """A second forward+backward of a fused layer takes its (T, B, N) buffers from the memory the first freed."""
    n, steps, batch = 256, 40, 32
    torch.manual_seed(0)
    currents = torch.randn(steps, batch, n, requires_grad=True)
    weight = (torch.randn(n, n) * 0.05).requires_grad_()
    alpha = torch.full((n,), 0.9, requires_grad=True)
    rho = torch.full((n,), 0.95, requires_grad=True)
    zero = torch.zeros(batch, n)

    def call() -> torch.Tensor:
        out = fused.alif_sequence_tm(currents, weight, alpha, rho, zero, zero, zero, b0=0.1, beta=1.8,
                                     surrogate=MultiGaussian())  # fmt: skip
        out[0].sum().backward()
        currents.grad = None  # the gradient of the currents is a pooled buffer too
        return out[0].detach().clone()

    fused.BUFFERS.release()
    first = call()
    idle = fused.BUFFERS.idle_bytes
    assert idle == 5 * (2 << 20)  # spikes, membranes, traces, currents, their gradient: one 2 MiB map each
    second = call()
    assert fused.BUFFERS.idle_bytes == idle  # no new maps: the second call ran on the first call's memory
    assert torch.equal(first, second)
