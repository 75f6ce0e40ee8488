r"""Event-driven input projection: a linear layer whose cost grows with the number of nonzero inputs.

Spiking inputs (SHD, SSC, encoded ECG, the spikes of a previous layer) are mostly zeros, yet a dense product
:math:`y = x W^\top + b` multiplies every one. :class:`EventLinear` is an :class:`torch.nn.Linear` (same parameters,
state dict and hooks) whose product, on the CPU with the compiled kernels of :mod:`hrsnn._native`, adds for each row
of x only the columns of W of its nonzero entries, and whose weight gradient :math:`\bar W = \bar y^\top x` likewise
sums only over them (for layers of at least :data:`EVENT_GRAD_MIN_OUTPUTS` outputs):

.. math::

    y_{r} = b + \sum_{i:\,x_{ri}\neq 0} x_{ri} W_{:,i},\qquad
    \bar W_{:,i} = \sum_{r:\,x_{ri}\neq 0} x_{ri}\,\bar y_{r},\qquad \bar b = \sum_r \bar y_r,\qquad
    \bar x = \bar y W.

This is the same function as ``nn.Linear`` for any x (not only binary), exact up to summation order. It is used when
at most :data:`EVENT_RATE` of the entries of x are nonzero; otherwise, off the CPU, for other dtypes, or without a C
compiler, the layer is plain ``nn.Linear``. The backward is written by hand and is once-differentiable: a double
backward (``create_graph=True``) raises :class:`~hrsnn.errors.ConfigError` (set ``layer.events = False``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from hrsnn import _native
from hrsnn.errors import ConfigError
from hrsnn.fused import BUFFERS

__all__ = ["EVENT_GRAD_MIN_OUTPUTS", "EVENT_RATE", "EventLinear"]

EVENT_RATE = 0.1
"""Inputs with at most this fraction of nonzero entries take the event-driven product. Measured
(``benchmarks/event_products.py --sections input``; R = 16,000 rows,
2 threads, 2-core Xeon VM; dense time / event time of the forward): K = 128 inputs, N = 4096 outputs: 6.6, 4.1,
3.0, 1.8 at rates 0.02, 0.05, 0.1, 0.2; K = 128, N = 512: 5.5, 3.9, 2.8, 1.05; K = 700, N = 128: 3.7, 2.6, 1.6,
1.2."""

EVENT_GRAD_MIN_OUTPUTS = 128
"""Of those, layers with at least this many outputs N also take the event-driven weight gradient (the compiled
kernel holds blocks of 128 float32 outputs in registers; narrower layers run a scalar loop), else PyTorch's dense
product. Measured (``benchmarks/event_products.py --sections grad``; R = 16,000 rows, 2 threads; dense time / event
time at rates 0.1, 0.2): K = 64, N = 64: 0.91, 0.67; K = 128, N = 128: 1.87, 1.41; K = 700, N = 128: 1.27, 1.51;
K = 128, N = 512: 1.51, 1.28; K = 512, N = 512: 1.94, 2.05; K = 128, N = 4096: 2.23, 1.60. Forward+backward of the
layer (``--sections input``; forward alone in :data:`EVENT_RATE`) at rate 0.1: 2.32 (K = 128, N = 4096), 1.56
(N = 512), 1.69 (K = 700, N = 128)."""


class _EventLinearFunction(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        x: Tensor,
        weight: Tensor,
        bias: Tensor | None,
        native: _native.Kernels,
        grad_events: bool,
        shape: tuple[int, ...],
    ) -> Tensor:
        """x: the input's rows (R, K), contiguous; returns the output in ``shape`` (its rows: (..., N))."""
        rows, k = x.shape
        n = weight.shape[0]
        wt = weight.t().contiguous()
        out = BUFFERS.empty(shape, x.dtype)
        b = bias.contiguous() if bias is not None else None
        native.function("event_linear", x.dtype)(
            rows, k, n, x.data_ptr(), wt.data_ptr(), b.data_ptr() if b is not None else None, out.data_ptr(),
            torch.get_num_threads(),
        )  # fmt: skip
        ctx.save_for_backward(x, weight)
        ctx.native, ctx.has_bias, ctx.grad_events = native, bias is not None, grad_events
        return out

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        if torch.is_grad_enabled():
            raise ConfigError(
                "events", True, "the event-driven input projection is once-differentiable (no double backward); "
                "set layer.input.events = False to use nn.Linear",
            )  # fmt: skip
        x, weight = ctx.saved_tensors
        g = g.reshape(-1, g.shape[-1]).contiguous()
        g_x = g @ weight if ctx.needs_input_grad[0] else None
        g_w = None
        if ctx.needs_input_grad[1] and not ctx.grad_events:
            g_w = g.t() @ x
        elif ctx.needs_input_grad[1]:
            rows, k = x.shape
            n = weight.shape[0]
            gwt = g.new_empty(k, n)
            if ctx.native.function("event_linear_grad", g.dtype)(
                rows, k, n, x.data_ptr(), g.data_ptr(), gwt.data_ptr(), torch.get_num_threads()
            ):
                raise MemoryError(f"no memory for the event lists of an input projection of {rows} rows x {k} inputs")
            g_w = gwt.t().contiguous()
        g_b = g.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return g_x, g_w, g_b, None, None, None


class EventLinear(nn.Linear):
    """:class:`torch.nn.Linear` with an event-driven product for sparse inputs (see the module).

    Attributes:
        events: True forces the event-driven product and weight gradient wherever they can run (CPU, float32/float64,
            compiled kernels), False never uses them, None (default) decides by the input's nonzero fraction
            (:data:`EVENT_RATE`; the weight gradient for layers of at least :data:`EVENT_GRAD_MIN_OUTPUTS` outputs).
    """

    events: bool | None = None

    def forward(self, x: Tensor) -> Tensor:
        native = self._native_for(x)
        if native is None:
            return super().forward(x)
        x2 = x.reshape(-1, x.shape[-1]).contiguous()
        nonzero = int(torch.count_nonzero(x2)) if self.events is None else 0
        if nonzero > EVENT_RATE * x2.numel():
            return super().forward(x)
        grad_events = self.events is True or self.out_features >= EVENT_GRAD_MIN_OUTPUTS
        return _EventLinearFunction.apply(
            x2, self.weight, self.bias, native, grad_events, (*x.shape[:-1], self.out_features)
        )

    def _native_for(self, x: Tensor) -> _native.Kernels | None:
        if self.events is False or x.dim() < 2 or x.shape[-1] == 0 or x.numel() == 0:
            return None
        params = [self.weight] + ([self.bias] if self.bias is not None else [])
        if x.dtype not in (torch.float32, torch.float64) or any(
            t.device.type != "cpu" or t.dtype != x.dtype for t in [x, *params]
        ):
            return None
        return _native.kernels()
