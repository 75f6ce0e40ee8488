"""The event-driven input projection (hrsnn.events): same function and gradients as nn.Linear, by hand and in
float64 parity, and its dispatch."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hrsnn import _native, events
from hrsnn.errors import ConfigError
from hrsnn.events import EventLinear

pytestmark = pytest.mark.skipif(_native.kernels() is None, reason="needs the compiled kernels (a C compiler)")


def _event_ran(y: torch.Tensor) -> bool:
    """Whether the event-driven autograd node is in y's graph (within a view or two of it)."""
    fn, depth = y.grad_fn, 0
    while fn is not None and depth < 3:
        if type(fn).__name__ == "_EventLinearFunctionBackward":
            return True
        fn, depth = (fn.next_functions[0][0] if fn.next_functions else None), depth + 1
    return False


def _pair(k: int, n: int, seed: int = 0) -> tuple[EventLinear, nn.Linear]:
    torch.manual_seed(seed)
    ev = EventLinear(k, n).double()
    ref = nn.Linear(k, n).double()
    ref.load_state_dict(ev.state_dict())
    return ev, ref


def test_known_answer_by_hand() -> None:
    lin = EventLinear(3, 2).double()
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]))
        lin.bias.copy_(torch.tensor([0.5, -0.5]))
    lin.events = True
    x = torch.tensor([[0.0, 2.0, 0.0], [1.0, 0.0, -1.0]], dtype=torch.float64)
    y = lin(x)
    # row 0: b + 2 W[:, 1] = (0.5 + 4, -0.5 + 10); row 1: b + W[:, 0] - W[:, 2] = (0.5 - 2, -0.5 - 2)
    assert torch.equal(y, torch.tensor([[4.5, 9.5], [-1.5, -2.5]], dtype=torch.float64))
    g = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    y.backward(g)
    # dW = g^T x: row 0 = 1 * x_0 = (0, 2, 0); row 1 = 2 * x_1 = (2, 0, -2); db = column sums of g
    assert torch.equal(lin.weight.grad, torch.tensor([[0.0, 2.0, 0.0], [2.0, 0.0, -2.0]], dtype=torch.float64))
    assert torch.equal(lin.bias.grad, torch.tensor([1.0, 2.0], dtype=torch.float64))


@pytest.mark.parametrize("mode", [True, None])
@pytest.mark.parametrize(("k", "n"), [(7, 5), (130, 600)])
def test_matches_linear_in_float64(mode: bool | None, k: int, n: int) -> None:
    """Sparse, non-binary input, time-major view of a batch-first tensor, input gradient too."""
    ev, ref = _pair(k, n)
    ev.events = mode
    gen = torch.Generator().manual_seed(1)
    dense = torch.randn(6, 9, k, generator=gen, dtype=torch.float64)
    x = torch.where(torch.rand(6, 9, k, generator=gen) < 0.04, dense, 0.0).transpose(0, 1)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    y, y_ref = ev(x1), ref(x2)
    assert _event_ran(y)
    assert torch.allclose(y, y_ref, rtol=0, atol=1e-13)
    g = torch.randn(y.shape, generator=gen, dtype=torch.float64)
    y.backward(g)
    y_ref.backward(g)
    for a, b in ((ev.weight.grad, ref.weight.grad), (ev.bias.grad, ref.bias.grad), (x1.grad, x2.grad)):
        assert torch.allclose(a, b, rtol=0, atol=1e-12)


def test_dense_input_takes_nn_linear() -> None:
    ev, _ = _pair(20, 8)
    x = torch.randn(50, 20, dtype=torch.float64)  # no zeros
    assert not _event_ran(ev(x))
    sparse = torch.zeros(50, 20, dtype=torch.float64)
    sparse[::7, 3] = 1.0
    assert _event_ran(ev(sparse))
    ev.events = False
    assert not _event_ran(ev(sparse))


def test_weight_gradient_goes_event_driven_from_128_outputs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Narrow layers (readouts) sum the weight gradient with PyTorch's product, layers of EVENT_GRAD_MIN_OUTPUTS
    outputs and more with the compiled kernel; forcing events takes the kernel at any width. Gradients agree."""
    assert events.EVENT_GRAD_MIN_OUTPUTS == 128
    names: list[str] = []
    original = _native.Kernels.function
    monkeypatch.setattr(_native.Kernels, "function", lambda kern, name, dtype: names.append(name) or original(
        kern, name, dtype))  # fmt: skip
    x = torch.zeros(70, 30, dtype=torch.float64)
    x[::3, 4], x[1::5, 17] = 1.0, -2.5
    for n, mode, expected in ((127, None, False), (128, None, True), (5, True, True)):
        names.clear()
        ev, ref = _pair(30, n)
        ev.events = mode
        g = torch.randn(70, n, dtype=torch.float64)
        ev(x).backward(g)
        ref(x).backward(g)
        torch.testing.assert_close(ev.weight.grad, ref.weight.grad, rtol=0, atol=1e-12)
        assert ("event_linear_grad" in names) == expected, (n, mode)


def test_falls_back_without_compiled_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    ev, ref = _pair(20, 8)
    sparse = torch.zeros(10, 20, dtype=torch.float64)
    sparse[:, 2] = 1.0
    assert _event_ran(ev(sparse))
    monkeypatch.setattr(events._native, "kernels", lambda: None)
    y = ev(sparse)
    assert not _event_ran(y)
    assert torch.equal(y, ref(sparse))


def test_module_hooks_see_the_projection() -> None:
    ev, _ = _pair(20, 8)
    ev.events = True
    seen: list[tuple[int, ...]] = []
    ev.register_forward_hook(lambda m, inp, out: seen.append(tuple(out.shape)))
    ev(torch.zeros(3, 4, 20, dtype=torch.float64))
    assert seen == [(3, 4, 8)]


def test_double_backward_is_refused() -> None:
    ev, _ = _pair(6, 4)
    ev.events = True
    x = torch.zeros(5, 6, dtype=torch.float64)
    x[1, 2] = 1.0
    loss = ev(x).square().sum()
    with pytest.raises(ConfigError, match="once-differentiable"):
        torch.autograd.grad(loss, ev.weight, create_graph=True)


def test_matches_linear_in_float32() -> None:
    """The float32 kernels (a separate compiled instance): values and gradients within float32 rounding."""
    torch.manual_seed(3)
    ev, ref = EventLinear(300, 200), nn.Linear(300, 200)
    ref.load_state_dict(ev.state_dict())
    ev.events = True
    gen = torch.Generator().manual_seed(4)
    x = torch.where(torch.rand(40, 300, generator=gen) < 0.05, torch.randn(40, 300, generator=gen), 0.0)
    y, y_ref = ev(x), ref(x)
    assert _event_ran(y)
    assert torch.allclose(y, y_ref, rtol=1e-5, atol=1e-6)
    g = torch.randn(y.shape, generator=gen)
    y.backward(g)
    y_ref.backward(g)
    assert torch.allclose(ev.weight.grad, ref.weight.grad, rtol=1e-5, atol=1e-5)
    assert torch.allclose(ev.bias.grad, ref.bias.grad, rtol=1e-5, atol=1e-5)
