"""Reused memory for the large (T, B, N) buffers of the fused kernels.

A fresh multi-megabyte buffer costs the OS a page fault and a zero-filled page for every 4 KiB (or 2 MiB with
transparent huge pages) the first time it is written, and PyTorch's CPU allocator returns such buffers to the OS when
they are freed, so every forward+backward call pays that again: 10–15 % of a pruned N = 4096 ALIF layer's pass
(``perf``: ``clear_page_erms``). :class:`BufferPool` keeps the memory of freed buffers mapped and hands it out again.

How a buffer comes back: each tensor handed out is a view of a fresh :class:`memoryview` of a pooled anonymous
memory map; the tensor's storage holds that memoryview, and when the storage is freed (the last tensor or view of it
is gone) the memoryview dies and a finalizer puts the map back on the idle list. Nothing is returned while any view
of the buffer lives, so a reused buffer is never aliased. Idle maps beyond ``limit_bytes`` are unmapped, oldest first.

Tensors from the pool are ordinary CPU tensors except that their storage cannot be resized (``resize_`` and ``out=``
arguments of a different size raise).
"""

from __future__ import annotations

import collections
import contextlib
import math
import mmap
import os
import threading
import weakref

import torch
from torch import Tensor

from hrsnn.errors import ConfigError

__all__ = ["CACHE_ENV", "MIN_BYTES", "BufferPool", "default_limit"]

CACHE_ENV = "HRSNN_BUFFER_CACHE_MIB"
"""Environment variable: the most idle memory, in MiB, that the fused kernels' pool keeps mapped (0 turns the pool
off)."""

MIN_BYTES = 1 << 20
"""Buffers smaller than this come from PyTorch's allocator (which reuses small blocks itself)."""

_ALIGN = 1 << 21
"""Maps are sized in multiples of 2 MiB (the huge-page size) so that close sizes share blocks."""


def default_limit() -> int:
    """The idle-memory limit in bytes: ``$HRSNN_BUFFER_CACHE_MIB`` when set, else the smaller of 2 GiB and an eighth
    of the physical memory (1 GiB where that is unknown)."""
    raw = os.environ.get(CACHE_ENV, "").strip()
    if raw:
        try:
            mib = float(raw)
        except ValueError:
            mib = -1.0
        if not math.isfinite(mib) or mib < 0:
            raise ConfigError(CACHE_ENV, raw, "must be a number of MiB >= 0 (0 turns the buffer pool off)")
        return int(mib * (1 << 20))
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        return 1 << 30
    return min(2 << 30, physical // 8)


class BufferPool:
    """Uninitialised CPU tensors whose memory is reused once every view of them is gone (see the module).

    Buffers of at least :data:`MIN_BYTES` are anonymous memory maps advised for transparent huge pages (Linux), so
    that even a fresh one costs one page fault per 2 MiB instead of per 4 KiB (filling a new (250, 64, 4096) float32
    buffer took 50–85 ms instead of 185–300 ms on a 2-core Xeon VM).

    Args:
        limit_bytes: the most memory kept mapped while idle; 0 keeps nothing (each buffer is unmapped when its
            tensors die).
    """

    def __init__(self, limit_bytes: int) -> None:
        if isinstance(limit_bytes, bool) or not isinstance(limit_bytes, int) or limit_bytes < 0:
            raise ConfigError("limit_bytes", limit_bytes, "must be an int >= 0")
        self.limit_bytes = limit_bytes
        self._idle: list[mmap.mmap] = []  # oldest first
        self._returned: collections.deque[mmap.mmap] = collections.deque()  # appended by finalizers, lock-free
        self._lock = threading.Lock()
        if hasattr(os, "register_at_fork"):  # a forked child may inherit the lock held by another thread
            ref = weakref.ref(self)
            os.register_at_fork(after_in_child=lambda: _after_fork(ref))

    def empty(self, shape: tuple[int, ...], dtype: torch.dtype) -> Tensor:
        """An uninitialised contiguous CPU tensor of ``shape`` and ``dtype``."""
        size = math.prod(shape) * dtype.itemsize
        if size < MIN_BYTES:
            return torch.empty(shape, dtype=dtype)
        block = self._take(size)
        view = memoryview(block)
        weakref.finalize(view, self._give_back, block)
        flat = torch.frombuffer(view, dtype=dtype, count=math.prod(shape))
        return torch.empty(0, dtype=dtype).set_(flat.untyped_storage(), 0, shape)  # not a view: in-place ops allowed

    @property
    def idle_bytes(self) -> int:
        """Memory kept mapped for reuse now."""
        with self._lock:
            self._collect()
            return sum(len(b) for b in self._idle)

    def release(self) -> int:
        """Unmap every idle block; returns the bytes released."""
        with self._lock:
            self._collect()
            freed = sum(len(b) for b in self._idle)
            for block in self._idle:
                block.close()
            self._idle.clear()
        return freed

    def _give_back(self, block: mmap.mmap) -> None:
        """Finalizer of a handed-out view: queue its block for reuse (or let it be unmapped when the pool keeps
        nothing), and trim the idle list now unless another thread holds the pool."""
        if self.limit_bytes == 0:
            return
        self._returned.append(block)
        if self._lock.acquire(blocking=False):
            try:
                self._collect()
            finally:
                self._lock.release()

    def _take(self, size: int) -> mmap.mmap:
        """The smallest idle block of at least ``size`` bytes rounded up to 2 MiB and at most 1.5 times that, else a
        new map."""
        size = -(-size // _ALIGN) * _ALIGN
        with self._lock:
            self._collect()
            fits = [b for b in self._idle if size <= len(b) <= size + size // 2]
            if fits:
                block = min(fits, key=len)
                self._idle.remove(block)
                return block
        block = mmap.mmap(-1, size)
        if hasattr(mmap, "MADV_HUGEPAGE"):
            with contextlib.suppress(OSError):  # refused (THP off): 4 KiB pages
                block.madvise(mmap.MADV_HUGEPAGE)
        return block

    def _collect(self) -> None:
        """Move the blocks whose tensors died to the idle list; unmap the oldest beyond the limit (lock held)."""
        while self._returned:
            self._idle.append(self._returned.popleft())
        total = sum(len(b) for b in self._idle)
        while self._idle and total > self.limit_bytes:
            block = self._idle.pop(0)
            total -= len(block)
            block.close()


def _after_fork(ref: weakref.ReferenceType[BufferPool]) -> None:
    """In a forked child: a fresh lock (the parent's may have been held by a thread that does not exist here)."""
    pool = ref()
    if pool is not None:
        pool._lock = threading.Lock()
