"""The compiled kernels (hrsnn._native): build and cache, fallback without a compiler, and exactness of every path."""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hrsnn import _native
from hrsnn import fused as fused_module
from hrsnn.fused import Recurrence, alif_sequence_tm, lif_hard_sequence_tm
from hrsnn.neurons import ALIFState, alif_step, lif_hard_reset_step
from hrsnn.surrogates import MultiGaussian, Triangle

needs_native = pytest.mark.skipif(
    _native.kernels() is None, reason="compiled kernels unavailable (no working C compiler, or HRSNN_NATIVE=0)"
)


@pytest.fixture
def fresh_loader(monkeypatch):
    """A loader that has not tried yet (the real library is reloaded afterwards)."""
    monkeypatch.delenv(_native.ENV_SWITCH, raising=False)
    _native._load.cache_clear()
    yield
    _native._load.cache_clear()


class _Calls:
    """Counts the compiled functions called (to prove that a test ran the compiled path)."""

    def __init__(self, monkeypatch) -> None:
        self.names: list[str] = []
        original = _native.Kernels.function

        def function(kernels, name, dtype):
            self.names.append(name)
            return original(kernels, name, dtype)

        monkeypatch.setattr(_native.Kernels, "function", function)


def test_switch_off_gives_the_pytorch_path(monkeypatch):
    monkeypatch.setenv(_native.ENV_SWITCH, "0")
    assert _native.kernels() is None
    assert Recurrence(torch.eye(8, dtype=torch.float64), True).native is None


@pytest.mark.parametrize("compiler", ["missing", "failing"])
def test_without_a_working_compiler_one_warning_and_the_pytorch_path(
    compiler, fresh_loader, monkeypatch, caplog, tmp_path
):
    """No compiler on PATH, or one that fails: kernels() is None after one logged warning (not an error), and the
    kernels run on PyTorch ops with the reference's results. A failing compiler leaves a note per flag set, and a
    later build does not run it again."""
    monkeypatch.setenv(_native.ENV_CACHE, str(tmp_path))
    if compiler == "missing":
        monkeypatch.setenv("CC", "hrsnn-no-such-compiler")
    else:
        failing = shutil.which("false")
        if failing is None:
            pytest.skip("no 'false' program to stand in for a failing compiler")
        monkeypatch.setenv("CC", failing)
    with caplog.at_level(logging.WARNING, logger="hrsnn._native"):
        assert _native.kernels() is None
        assert _native.kernels() is None
        currents, weight, alpha, rho, u0, s0, eta0 = _case(torch.float64, n=12, batch=3, steps=15, density=0.5)
        spikes = alif_sequence_tm(currents, weight, alpha, rho, u0, s0, eta0, b0=0.02, beta=1.8,
                                  surrogate=MultiGaussian(), sparse=True)[0]  # fmt: skip
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "PyTorch path" in warnings[0].getMessage()
    ref = _reference_alif(currents, weight, alpha, rho, (u0, s0, eta0), beta=1.8, surrogate=MultiGaussian())[0]
    assert torch.equal(spikes, ref) and ref.sum() > 0
    left = sorted(p.suffix for p in tmp_path.iterdir())
    if compiler == "missing":
        assert left == []
        return
    assert left == [".failed"] * 3  # no library, no temporary file
    runs, run = [], _native._run

    def recorded(cmd):
        runs.append(cmd)
        return run(cmd)

    monkeypatch.setattr(_native, "_run", recorded)
    with pytest.raises(_native.NativeBuildError, match="failed before"):
        _native.build(tmp_path)
    assert runs and all("--version" in cmd for cmd in runs)  # the compiler was only asked its version


@needs_native
def test_a_library_of_another_calling_convention_is_refused(fresh_loader, monkeypatch, caplog):
    monkeypatch.setattr(_native, "ABI", _native.ABI + 1)
    with caplog.at_level(logging.WARNING, logger="hrsnn._native"):
        assert _native.kernels() is None
    assert "calling convention" in caplog.text


@needs_native
@pytest.mark.slow
def test_concurrent_builds_leave_one_library_that_later_builds_reuse(tmp_path):
    """Two processes compiling into the same empty folder at once: both get the same loadable library and no
    temporary file is left behind (each writes its own temporary name and renames it into place); a later build
    finds it and compiles nothing."""
    code = (
        "import ctypes, sys; from pathlib import Path; from hrsnn._native import build; "
        "p = build(Path(sys.argv[1])); ctypes.CDLL(str(p)); print(p)"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    paths = {p.communicate(timeout=300)[0].strip() for p in procs}
    assert all(p.returncode == 0 for p in procs)
    assert len(paths) == 1
    library = Path(paths.pop())
    assert [p.name for p in tmp_path.iterdir()] == [library.name]
    stamp = library.stat().st_mtime_ns
    assert _native.build(tmp_path) == library and library.stat().st_mtime_ns == stamp


@needs_native
def test_csr_of_the_transpose_by_hand():
    """W (3 x 3, row = target) with a mask that keeps one zero weight: the CSR of Wᵀ lists, per source, its targets
    in order; the by-target list points back into it."""
    w = torch.tensor([[0.0, 2.0, 0.0], [3.0, 0.0, 4.0], [0.0, 5.0, 0.0]], dtype=torch.float64)
    mask = torch.tensor([[True, True, False], [True, False, True], [False, True, False]])
    ptr, idx, val, row_ptr, cols, pos = Recurrence(w, True, mask).native_csr
    assert ptr.tolist() == [0, 2, 4, 5]  # source 0 -> targets 0 (w = 0, kept by the mask), 1; source 1 -> 0, 2; ...
    assert idx.tolist() == [0, 1, 0, 2, 1] and val.tolist() == [0.0, 3.0, 2.0, 5.0, 4.0]
    assert row_ptr.tolist() == [0, 2, 4, 5] and cols.tolist() == [0, 1, 0, 2, 1] and pos.tolist() == [0, 2, 1, 4, 3]
    ptr, idx, val = Recurrence(w, True).native_csr[:3]  # no mask: W's nonzeros
    assert ptr.tolist() == [0, 1, 3, 4] and idx.tolist() == [1, 0, 2, 1] and val.tolist() == [3.0, 2.0, 5.0, 4.0]


@needs_native
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(("n", "batch", "density"), [(300, 70, 0.1), (129, 64, 0.4), (70, 5, 1.0)])
def test_compiled_products_equal_dense_products(dtype, n, batch, density, monkeypatch):
    """Spike-driven forward product (CSR and dense rows, spikes not all 0/1), tiled backward product (several tiles,
    a partial last tile, batches beyond and below one register block) and the weight gradient on the synapses, each
    against the dense product in float64."""
    calls = _Calls(monkeypatch)
    g = torch.Generator().manual_seed(n)
    mask = torch.rand(n, n, generator=g) < density
    w = torch.randn(n, n, generator=g, dtype=torch.float64) * mask
    s = (torch.rand(4, batch, n, generator=g) < 0.1).double()
    s[0, 0, :4] = torch.tensor([0.5, -2.0, 3.0, 1.0])
    grads = torch.randn(4, batch, n, generator=g, dtype=torch.float64)
    c = torch.randn(batch, n, generator=g, dtype=torch.float64)
    tol = 1e-12 if dtype == torch.float64 else 2e-4
    for sparse in (True, False):
        rec = Recurrence(w.to(dtype), sparse, mask, events=True)
        out = torch.empty(batch, n, dtype=dtype)
        got = rec.add_into(out, c.to(dtype), s[0].to(dtype))
        torch.testing.assert_close(got.double(), c + s[0] @ w.t(), rtol=tol, atol=tol)
        acc = c.to(dtype).clone()
        got = rec.add_transposed_(acc, grads[0].to(dtype))
        torch.testing.assert_close(got.double(), c + grads[0] @ w, rtol=tol, atol=tol)
        got = rec.weight_grad(grads.to(dtype), s.to(dtype))
        expected = torch.einsum("tbj,tbi->ji", grads, s)
        torch.testing.assert_close(got.double() * mask, expected * mask, rtol=tol, atol=tol * 10)
        if sparse and bool((~mask).any()):
            assert float(got[~mask].abs().max()) == 0.0
    assert {"event_matmul", "csr_matmul_t", "csr_weight_grad", "event_linear_grad"} <= set(calls.names)


@needs_native
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(("rows", "k", "n"), [(150, 70, 300), (64, 130, 37), (7, 3, 129), (200, 64, 128)])
def test_event_weight_gradient_kernel_against_the_dense_product(dtype, rows, k, n):
    """gwt = x^T g from the nonzeros of x: several chunks of 64 rows and a partial one, inputs beyond one mask
    word, blocks of columns plus a remainder (or only a remainder, split by inputs across threads), spikes (all
    nonzeros 1) and real values; the same bits at 1, 2 and 3 threads (the summation order is fixed)."""
    gen = torch.Generator().manual_seed(rows + k + n)
    g = torch.randn(rows, n, generator=gen, dtype=torch.float64)
    spikes = (torch.rand(rows, k, generator=gen) < 0.2).double()
    spikes[:, 0] = 0.0  # an input that never fires: its row of gwt is exactly 0
    values = spikes * torch.randn(rows, k, generator=gen, dtype=torch.float64)
    run = _native.kernels().function("event_linear_grad", dtype)
    tol = 1e-12 if dtype == torch.float64 else 1e-4
    for x in (spikes, values):
        results = []
        for threads in (1, 2, 3):
            out = torch.full((k, n), float("nan"), dtype=dtype)
            xd, gd = x.to(dtype), g.to(dtype)
            assert run(rows, k, n, xd.data_ptr(), gd.data_ptr(), out.data_ptr(), threads) == 0
            results.append(out)
        torch.testing.assert_close(results[0].double(), x.t() @ g, rtol=tol, atol=tol)
        assert float(results[0][0].abs().max()) == 0.0
        assert all(torch.equal(results[0], other) for other in results[1:])


@needs_native
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(("m", "k", "n"), [(13, 100, 100), (8, 300, 33), (1, 1, 1), (70, 129, 40), (64, 520, 512)])
def test_panel_product_against_float64_by_hand(dtype, m, k, n):
    """pack_panels + panel_matmul: c = c0 + a B with B read as stored and as a transpose, rows not a multiple of
    the 8-row block, columns past the last full panel, depths beyond one block of 256, a's rows apart by more than
    K; c0 given, aliased with c, or absent (c += a B); the same bits at 1, 2 and 3 threads."""
    fn = _native.kernels().function
    gen = torch.Generator().manual_seed(m + k + n)
    a_full = torch.randn(m, k + 3, generator=gen, dtype=torch.float64)  # rows k + 3 apart
    b = torch.randn(k, n, generator=gen, dtype=torch.float64)
    c0 = torch.randn(m, n, generator=gen, dtype=torch.float64)
    a = a_full[:, :k]
    expected = c0 + a @ b
    tol = 1e-12 if dtype == torch.float64 else 2e-5 * k**0.5
    size = fn("packed_size", dtype)(k, n)
    assert size == -(-n // (2 * (64 // (dtype.itemsize)))) * 2 * (64 // dtype.itemsize) * k
    ad, c0d = a_full.to(dtype), c0.to(dtype)
    stored, transposed = b.to(dtype).contiguous(), b.t().to(dtype).contiguous()
    for source, strides in ((stored, (n, 1)), (transposed, (1, k))):
        packed = torch.full((size,), float("nan"), dtype=dtype)
        fn("pack_panels", dtype)(k, n, source.data_ptr(), *strides, packed.data_ptr(), 2)
        results = []
        for threads in (1, 2, 3):
            out = torch.full((m, n), float("nan"), dtype=dtype)
            fn("panel_matmul", dtype)(m, n, k, ad.data_ptr(), k + 3, packed.data_ptr(), c0d.data_ptr(),
                                      out.data_ptr(), threads)  # fmt: skip
            results.append(out)
        torch.testing.assert_close(results[0].double(), expected, rtol=tol, atol=tol)
        assert all(torch.equal(results[0], other) for other in results[1:])
        aliased = c0d.clone()
        fn("panel_matmul", dtype)(m, n, k, ad.data_ptr(), k + 3, packed.data_ptr(), aliased.data_ptr(),
                                  aliased.data_ptr(), 2)  # fmt: skip
        assert torch.equal(aliased, results[0])
        added = c0d.clone()
        fn("panel_matmul", dtype)(m, n, k, ad.data_ptr(), k + 3, packed.data_ptr(), None, added.data_ptr(), 2)
        assert torch.equal(added, results[0])


@needs_native
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_dense_products_run_on_the_packed_panels(dtype, monkeypatch):
    """A dense W with the compiled kernels: c + s Wᵀ, acc + g W and βx + g W come from panel_matmul on W packed
    once per call (entries outside the mask read as 0), Wᵀ's panels dropped when the forward is done."""
    calls = _Calls(monkeypatch)
    gen = torch.Generator().manual_seed(11)
    n, batch = 77, 19
    mask = torch.rand(n, n, generator=gen) < 0.6
    w = torch.randn(n, n, generator=gen, dtype=torch.float64)
    s = (torch.rand(batch, n, generator=gen) < 0.5).double()
    g = torch.randn(batch, n, generator=gen, dtype=torch.float64)
    c = torch.randn(batch, n, generator=gen, dtype=torch.float64)
    wm = w * mask
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    rec = Recurrence(w.to(dtype), False, mask, events=False)
    got = rec.add_into(torch.empty(batch, n, dtype=dtype), c.to(dtype), s.to(dtype))
    torch.testing.assert_close(got.double(), c + s @ wm.t(), rtol=tol, atol=tol)
    got = rec.add_transposed_(c.to(dtype).clone(), g.to(dtype))  # in place
    torch.testing.assert_close(got.double(), c + g @ wm, rtol=tol, atol=tol)
    got = rec.scaled_add_transposed(torch.empty(batch, n, dtype=dtype), c.to(dtype), -0.3, g.to(dtype))
    torch.testing.assert_close(got.double(), -0.3 * c + g @ wm, rtol=tol, atol=tol)
    assert calls.names.count("panel_matmul") == 3 and calls.names.count("pack_panels") == 2
    assert "panels_t" in rec.__dict__
    rec.forward_done()
    assert "panels_t" not in rec.__dict__ and "panels" in rec.__dict__


@needs_native
def test_dense_weight_gradient_goes_event_driven_by_size_and_rate(monkeypatch):
    """Dense W with the compiled kernels: spikes at most NATIVE_EVENT_RATE_GRAD take the event kernel from
    NATIVE_EVENT_GRAD_MIN_SIZE neurons; more spikes, or a smaller layer, take PyTorch's product."""
    assert (fused_module.NATIVE_EVENT_RATE_GRAD, fused_module.NATIVE_EVENT_GRAD_MIN_SIZE) == (0.2, 128)
    gen = torch.Generator().manual_seed(3)
    for n, rate, expected in ((128, 0.15, True), (128, 0.3, False), (127, 0.15, False)):
        calls = _Calls(monkeypatch)
        s = (torch.rand(40, n, generator=gen) < rate).double()
        g = torch.randn(40, n, generator=gen, dtype=torch.float64)
        got = Recurrence(torch.randn(n, n, dtype=torch.float64), False).weight_grad(g, s)
        torch.testing.assert_close(got, g.t() @ s, rtol=1e-12, atol=1e-12)
        assert ("event_linear_grad" in calls.names) == expected, (n, rate)


def _case(dtype, *, n, batch, steps, density, seed=0, rho_one=False, scale=0.6):
    g = torch.Generator().manual_seed(seed)
    currents = torch.rand(steps, batch, n, generator=g, dtype=torch.float64) * scale
    mask = torch.rand(n, n, generator=g) < density
    weight = torch.randn(n, n, generator=g, dtype=torch.float64) * 0.4 * mask
    alpha = torch.rand(n, generator=g, dtype=torch.float64) * 0.5 + 0.4
    rho = torch.rand(n, generator=g, dtype=torch.float64) * 0.2 + 0.75
    rho = torch.ones_like(rho) if rho_one else rho
    u0 = torch.rand(batch, n, generator=g, dtype=torch.float64) * 0.05
    s0 = (torch.rand(batch, n, generator=g) < 0.2).double()
    eta0 = torch.full((batch, n), 0.02, dtype=torch.float64)
    return [t.to(dtype).requires_grad_() for t in (currents, weight, alpha, rho, u0, s0, eta0)]


def _reference_alif(currents, weight, alpha, rho, state, *, beta, surrogate, b0=0.02):
    state = ALIFState(*state)
    spikes, membranes = [], []
    for c in currents.unbind(0):
        s, state = alif_step(c + state.s @ weight.t(), state, alpha, rho, b0=b0, beta=beta, surrogate=surrogate)
        spikes.append(s)
        membranes.append(state.u)
    return torch.stack(spikes), torch.stack(membranes), state.u, state.eta


@needs_native
@pytest.mark.parametrize("beta", [1.8, 0.0])
@pytest.mark.parametrize(("sparse", "events", "density"), [(True, None, 0.1), (True, True, 0.3), (True, False, 0.05),
                                                             (False, True, 0.5), (False, None, 1.0)])  # fmt: skip
def test_compiled_kernel_matches_step_loop_in_float64(beta, sparse, events, density, monkeypatch):
    """Random heterogeneous τ, ALIF and LIF, sparse and dense W, spike-driven products forced on, off and chosen by
    the spike count, batches beyond one register block: spikes identical to the step loop, membranes to 1e-12 and
    every gradient (loss on spikes, membranes and the final u and η; a sum of spikes arrives as an expanded gradient)
    to 1e-10 relative; the compiled path is the one that ran."""
    monkeypatch.setattr(fused_module, "NATIVE_EVENT_MIN_SIZE", 0)
    calls = _Calls(monkeypatch)
    sg = MultiGaussian()
    b0 = 0.02 if beta else 0.3  # LIF: a higher threshold for a comparable firing rate
    args = _case(torch.float64, n=90, batch=40, steps=20, density=density, seed=int(10 * density), rho_one=beta == 0)
    currents, weight, alpha, rho, u0, s0, eta0 = args
    ref = _reference_alif(currents, weight, alpha, rho, (u0, s0, eta0), beta=beta, surrogate=sg, b0=b0)
    mask = weight.detach() != 0
    out = alif_sequence_tm(currents, weight, alpha, rho, u0, s0, eta0, b0=b0, beta=beta, surrogate=sg,
                           sparse=sparse, events=events, mask=mask)  # fmt: skip
    spikes, membranes, _, u, eta = out
    assert 50 < ref[0].sum() < 0.5 * ref[0].numel()
    assert torch.equal(spikes, ref[0])
    torch.testing.assert_close(membranes, ref[1], rtol=0, atol=1e-12)
    g = torch.Generator().manual_seed(1)
    w_m = torch.randn(membranes.shape, generator=g, dtype=torch.float64)
    w_u, w_e = torch.randn(2, *u.shape, generator=g, dtype=torch.float64)
    leaves = [currents, weight, alpha, rho, u0, s0, eta0]
    g_ref = torch.autograd.grad(ref[0].sum() + (w_m * ref[1]).sum() + (w_u * ref[2]).sum() + (w_e * ref[3]).sum(),
                                leaves)  # fmt: skip
    g_new = torch.autograd.grad(spikes.sum() + (w_m * membranes).sum() + (w_u * u).sum() + (w_e * eta).sum(), leaves)
    for name, gr, gn in zip(["c", "W", "alpha", "rho", "u0", "s0", "eta0"], g_ref, g_new, strict=True):
        if name == "W":
            gr, gn = gr * mask, gn * mask
        assert float((gn - gr).abs().max()) <= 1e-10 * max(float(gr.abs().max()), 1e-12), name
    assert {"alif_forward_loop", "alif_backward_loop"} <= set(calls.names)
    assert not sparse or "csr_transpose" in calls.names


@needs_native
@pytest.mark.parametrize("sparse", [True, False])
def test_compiled_kernel_in_float32_agrees_with_float64(sparse, monkeypatch):
    """float32 on the compiled path: the same spikes as the float64 step loop on a short sequence, gradients to
    float32 rounding."""
    calls = _Calls(monkeypatch)
    sg = Triangle()
    args32 = _case(torch.float32, n=100, batch=70, steps=12, density=0.2, seed=3)
    args64 = [a.detach().double().requires_grad_() for a in args32]
    ref = _reference_alif(*args64[:4], tuple(args64[4:]), beta=1.8, surrogate=sg)
    out = alif_sequence_tm(*args32, b0=0.02, beta=1.8, surrogate=sg, sparse=sparse, events=True,
                           mask=args32[1].detach() != 0)  # fmt: skip
    assert torch.equal(out[0].double(), ref[0]) and ref[0].sum() > 50
    mask = args64[1].detach() != 0
    g_ref = torch.autograd.grad((ref[1] * ref[1]).sum(), args64[:3])
    g_new = torch.autograd.grad((out[1] * out[1]).sum(), args32[:3])
    for gr, gn in zip(g_ref, g_new, strict=True):
        if gr.shape == mask.shape:
            gr, gn = gr * mask, gn * mask
        assert float((gn.double() - gr).abs().max()) <= 1e-4 * float(gr.abs().max())
    assert "alif_backward_loop" in calls.names


@needs_native
def test_hard_reset_lif_uses_the_compiled_products(monkeypatch):
    """The hard-reset LIF with a sparse W on the compiled products (spike-driven forward, tiled backward, weight
    gradient on the synapses) against its step loop in float64."""
    calls = _Calls(monkeypatch)
    sg = MultiGaussian()
    currents, weight, alpha, _, u0, s0, _ = _case(torch.float64, n=80, batch=40, steps=15, density=0.2, scale=1.0)
    mask = weight.detach() != 0
    state, spikes_ref, mem_ref = ALIFState(u0, s0, torch.zeros_like(u0)), [], []
    for c in currents.unbind(0):
        s, state = lif_hard_reset_step(c + state.s @ weight.t(), state, alpha, threshold=0.5, surrogate=sg)
        spikes_ref.append(s)
        mem_ref.append(state.u)
    ref = (torch.stack(spikes_ref), torch.stack(mem_ref))
    out = lif_hard_sequence_tm(currents, weight, alpha, u0, s0, threshold=0.5, surrogate=sg, sparse=True, mask=mask,
                               events=True)  # fmt: skip
    assert torch.equal(out[0], ref[0]) and 20 < ref[0].sum() < 0.5 * ref[0].numel()
    leaves = [currents, weight, alpha, u0, s0]
    g_ref = torch.autograd.grad((ref[1] * ref[1]).sum() + ref[0].sum(), leaves)
    g_new = torch.autograd.grad((out[1] * out[1]).sum() + out[0].sum(), leaves)
    for gr, gn in zip(g_ref, g_new, strict=True):
        if gr.shape == mask.shape:
            gr, gn = gr * mask, gn * mask
        torch.testing.assert_close(gn, gr, rtol=1e-10, atol=1e-12)
    assert {"event_matmul", "csr_matmul_t", "csr_weight_grad"} <= set(calls.names)


@needs_native
def test_forward_event_limit_follows_the_measured_rate(monkeypatch):
    """The compiled forward loop adds the CSR entries or rows of Wᵀ of the neurons that fired while a step's spikes
    are at most event_limit (the measured fraction of B·N), else the dense product; a small layer only when
    forced."""
    w = torch.randn(16, 16, dtype=torch.float64)
    assert Recurrence(w, False).event_limit(4) == -1  # 16 < NATIVE_EVENT_MIN_SIZE
    assert Recurrence(w, True, events=True).event_limit(4) == 64
    assert Recurrence(w, True, events=False).event_limit(4) == -1
    monkeypatch.setattr(fused_module, "NATIVE_EVENT_MIN_SIZE", 16)
    dense, sparse = Recurrence(w, False), Recurrence(w, True)
    assert dense.event_limit(4) == int(fused_module.NATIVE_EVENT_RATE_MAX * 64)  # 0.25 sqrt(512 / 16) = 1.41: cap
    assert sparse.event_limit(4) == int(fused_module.NATIVE_EVENT_RATE_SPARSE * 64)
    big = Recurrence(torch.zeros(2048, 2048), False)  # 0.25 sqrt(512 / 2048) = 0.125 of the 4 x 2048 spikes
    assert big.event_limit(4) == 1024


@needs_native
@pytest.mark.parametrize("sparse", [True, False])
def test_forward_loop_switches_product_by_spike_count(sparse, monkeypatch):
    """Steps whose spikes cross the limit both ways inside one sequence (a dense W's panels or a sparse W's PyTorch
    CSR product, where the compiled loop hands the step back): the same spikes and gradients as the step loop."""
    calls = _Calls(monkeypatch)
    currents, weight, alpha, rho, u0, s0, eta0 = _case(torch.float64, n=64, batch=8, steps=30, density=0.3, seed=4)
    with torch.no_grad():
        currents[10:20] *= 0.2  # a lull in the middle
    limits, handed_back = [], []
    original, add_into = Recurrence.event_limit, Recurrence.add_into
    monkeypatch.setattr(Recurrence, "add_into", lambda rec, *a: handed_back.append(1) or add_into(rec, *a))

    def event_limit(rec, batch):
        limits.append(original(rec, batch))
        return 60  # ~12 % of the 8 x 64 entries
    monkeypatch.setattr(Recurrence, "event_limit", event_limit)
    monkeypatch.setattr(fused_module, "NATIVE_EVENT_MIN_SIZE", 16)  # spike-driven products allowed at N = 64
    sg = MultiGaussian()
    ref = _reference_alif(currents, weight, alpha, rho, (u0, s0, eta0), beta=1.8, surrogate=sg)
    out = alif_sequence_tm(currents, weight, alpha, rho, u0, s0, eta0, b0=0.02, beta=1.8, surrogate=sg,
                           sparse=sparse, events=None)  # fmt: skip
    assert torch.equal(out[0], ref[0])
    per_step = torch.cat((s0.detach()[None], ref[0][:-1])).sum((1, 2))  # the spikes of s_{t-1} at each step t
    assert bool((per_step <= 60).any()) and bool((per_step > 60).any())
    leaves = [currents, weight, alpha, rho]
    g_ref = torch.autograd.grad((ref[1] ** 2).sum() + ref[0].sum(), leaves)
    g_new = torch.autograd.grad((out[1] ** 2).sum() + out[0].sum(), leaves)
    synapses = weight.detach() != 0  # a sparse W's gradient lives on its synapses only
    g_ref = (g_ref[0], g_ref[1] * synapses if sparse else g_ref[1], *g_ref[2:])
    for gr, gn in zip(g_ref, g_new, strict=True):
        torch.testing.assert_close(gn, gr, rtol=1e-10, atol=1e-12)
    assert limits
    # a sparse W's steps over the limit are handed back to PyTorch's CSR product; a dense W's stay in the loop
    assert len(handed_back) == (int((per_step > 60).sum()) if sparse else 0)
    assert calls.names.count("pack_panels") == (0 if sparse else 2)


def test_native_env_switch_reaches_subprocesses():
    """HRSNN_NATIVE=0 in the environment of a fresh process: no compilation is attempted at all."""
    env = dict(os.environ, **{_native.ENV_SWITCH: "0", "CC": "hrsnn-no-such-compiler"})
    code = "import hrsnn._native as n; assert n.kernels() is None; print(n._load.cache_info().misses)"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "0" and "warning" not in done.stderr.lower()


@needs_native
def test_products_on_tensors_the_kernels_do_not_take_fall_back_to_pytorch():
    """A non-contiguous current (the hard-reset LIF adds a step of its input through Recurrence.add_into): the
    spike-driven product of a sparse W runs on PyTorch ops (Wᵀ made when first needed), with the same values."""
    g = torch.Generator().manual_seed(5)
    w = torch.randn(40, 40, generator=g, dtype=torch.float64) * (torch.rand(40, 40, generator=g) < 0.3)
    rec = Recurrence(w, True, events=True)
    s = (torch.rand(6, 40, generator=g) < 0.2).double()
    c = torch.randn(40, 6, generator=g, dtype=torch.float64).t()  # not contiguous
    out = torch.empty(6, 40, dtype=torch.float64)
    torch.testing.assert_close(rec.add_into(out, c, s), c + s @ w.t(), rtol=1e-13, atol=1e-13)


@dataclasses.dataclass(frozen=True)
class _Halved(MultiGaussian):
    """A surrogate class the compiled kernels do not know: half the multi-Gaussian, no in-place form."""

    def derivative(self, v: torch.Tensor) -> torch.Tensor:
        return 0.5 * super().derivative(v)

    derivative_ = None  # type: ignore[assignment]


@needs_native
def test_a_surrogate_the_kernels_do_not_know_is_evaluated_with_pytorch(monkeypatch):
    """Another surrogate class (here half the multi-Gaussian): its derivative comes from its own method in blocks of
    steps while the rest of the backward step stays compiled; gradients equal the step loop's."""
    calls = _Calls(monkeypatch)
    sg = _Halved()
    currents, weight, alpha, rho, u0, s0, eta0 = _case(torch.float64, n=50, batch=6, steps=15, density=0.3)
    ref = _reference_alif(currents, weight, alpha, rho, (u0, s0, eta0), beta=1.8, surrogate=sg)
    out = alif_sequence_tm(currents, weight, alpha, rho, u0, s0, eta0, b0=0.02, beta=1.8, surrogate=sg)
    assert torch.equal(out[0], ref[0]) and ref[0].sum() > 20
    leaves = [currents, weight, alpha, rho]
    g_ref = torch.autograd.grad((ref[1] ** 2).sum(), leaves)
    g_new = torch.autograd.grad((out[1] ** 2).sum(), leaves)
    for gr, gn in zip(g_ref, g_new, strict=True):
        torch.testing.assert_close(gn, gr, rtol=1e-10, atol=1e-12)
    assert "alif_backward_loop" in calls.names


@pytest.mark.parametrize("sparse", [True, False])
def test_a_weight_of_another_dtype_than_the_currents_is_refused_as_on_pytorch(sparse):
    """float32 currents with a float64 W: the compiled kernels do not take the pair (they would read the weights in
    the wrong precision); the PyTorch ops refuse it."""
    currents, weight, alpha, rho, u0, s0, eta0 = _case(torch.float32, n=20, batch=3, steps=5, density=0.3)
    with pytest.raises(RuntimeError, match="dtype|scalar type"):
        alif_sequence_tm(currents, weight.detach().double(), alpha, rho, u0, s0, eta0, b0=0.02, beta=1.8,
                         surrogate=MultiGaussian(), sparse=sparse, events=True)  # fmt: skip


@needs_native
def test_two_threads_give_the_one_thread_results_bit_for_bit():
    """Every compiled kernel splits work so that each sum runs in the same order whatever the thread count (samples
    for the forward step and the update, output rows for the sparse product, sources for the weight gradient):
    two and three threads reproduce one thread's spikes, membranes and gradients exactly."""
    sg = MultiGaussian()
    args = _case(torch.float64, n=150, batch=70, steps=12, density=0.1, seed=9)
    results = []
    previous = torch.get_num_threads()
    try:
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            out = alif_sequence_tm(*args, b0=0.02, beta=1.8, surrogate=sg, sparse=True, events=True,
                                   mask=args[1].detach() != 0)  # fmt: skip
            grads = torch.autograd.grad(out[0].sum() + (out[1] ** 2).sum(), args)
            results.append((out[0], out[1], *grads))
    finally:
        torch.set_num_threads(previous)
    assert results[0][0].sum() > 50
    for one, *others in zip(*results, strict=True):
        assert all(torch.equal(one, other) for other in others)


def _sparse_run(args, mask, synapses, *, weight=None, hard=False):
    """Spikes, membranes and every gradient of one sparse compiled ALIF (or hard-reset LIF) call."""
    currents, w, alpha, rho, u0, s0, eta0 = args
    w = w if weight is None else weight
    if hard:
        out = lif_hard_sequence_tm(currents, w, alpha, u0, s0, threshold=0.3, surrogate=MultiGaussian(), sparse=True,
                                   events=True, mask=mask, synapse_cache=synapses)  # fmt: skip
        spikes, membranes, leaves = out[0], out[1], [currents, w, alpha, u0]
    else:
        out = alif_sequence_tm(currents, w, alpha, rho, u0, s0, eta0, b0=0.02, beta=1.8, surrogate=MultiGaussian(),
                               sparse=True, events=True, mask=mask, synapse_cache=synapses)  # fmt: skip
        spikes, membranes, leaves = out[0], out[1], [currents, w, alpha, rho]
    grads = torch.autograd.grad(spikes.sum() + (membranes * membranes).sum(), leaves)
    return (spikes.detach(), membranes.detach(), *grads)


def _assert_same(a, b):
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)


@needs_native
@pytest.mark.parametrize("hard", [False, True])
def test_synapse_cache_keeps_the_structures_and_follows_w_and_the_mask(hard, monkeypatch):
    """With a SynapseCache, a call with the pattern it holds sorts nothing (no csr_transpose, no csr_tile) and gives
    the cache-less results bit for bit; a W changed in place, through .data or replaced is followed; a mask changed
    in place (even through .data, unseen by its version counter), or a new mask, rebuilds the structures."""
    calls = _Calls(monkeypatch)
    args = _case(torch.float64, n=120, batch=33, steps=15, density=0.15, seed=11)
    weight = args[1]
    mask = weight.detach() != 0
    cache = fused_module.SynapseCache()

    def check(builds: bool, *, mask=mask, weight=None):
        before = calls.names.count("csr_transpose"), calls.names.count("csr_tile")
        got = _sparse_run(args, mask, cache, weight=weight, hard=hard)
        after = calls.names.count("csr_transpose"), calls.names.count("csr_tile")
        assert (after != before) == builds, (before, after)
        _assert_same(got, _sparse_run(args, mask, None, weight=weight, hard=hard))
        assert got[0].sum() > 30

    check(builds=True)
    check(builds=False)
    with torch.no_grad():  # an optimiser step: W changes in place
        weight.mul_(1.3)
    check(builds=False)
    weight.data[mask] *= 0.5  # no version bump: only values gathered at every call can see this
    check(builds=False)
    other = torch.randn(weight.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 0.4 * mask
    check(builds=False, weight=other.requires_grad_())
    mask.data[0, :60] = ~mask[0, :60]
    check(builds=True)
    check(builds=False)
    new_mask = mask.clone()
    new_mask[5] = False
    check(builds=True, mask=new_mask)


@needs_native
def test_a_call_whose_mask_was_replaced_before_its_backward_builds_its_own(monkeypatch):
    """Two forward passes on one cache with different masks, then the first one's backward: its gradients are the
    cache-less ones (the cache's generation moved on, so it builds its own tiles)."""
    args = _case(torch.float64, n=100, batch=20, steps=12, density=0.2, seed=5)
    currents, weight, alpha, rho, u0, s0, eta0 = args
    mask_a = weight.detach() != 0
    mask_b = mask_a.clone()
    mask_b[:, :30] = False
    cache = fused_module.SynapseCache()

    def forward(mask, synapses):
        out = alif_sequence_tm(currents, weight, alpha, rho, u0, s0, eta0, b0=0.02, beta=1.8, surrogate=MultiGaussian(),
                               sparse=True, events=True, mask=mask, synapse_cache=synapses)  # fmt: skip
        return out[0]

    first = forward(mask_a, cache)
    forward(mask_b, cache)
    got = torch.autograd.grad(first.sum(), [weight, alpha])
    expected = torch.autograd.grad(forward(mask_a, None).sum(), [weight, alpha])
    _assert_same(got, expected)


def test_copies_of_a_layer_start_with_an_empty_synapse_cache():
    import copy
    import pickle

    cache = fused_module.SynapseCache()
    cache.follow(torch.rand(8, 8) < 0.5)
    assert cache.generation == 1 and cache.count() > 0
    for twin in (copy.deepcopy(cache), pickle.loads(pickle.dumps(cache))):
        assert twin.generation == 0 and twin._pattern is None


@needs_native
def test_a_pruned_layer_sorts_its_pattern_once_across_training_steps(monkeypatch):
    """A pruned layer (CSR path) passes its SynapseCache: over three training steps with an optimiser changing W,
    the pattern is sorted once, and the next step's gradient equals the same layer's without a cache."""
    from hrsnn.connectivity import ConnectivitySpec
    from hrsnn.network import RSNN, LayerConfig, NeuronConfig, RSNNConfig

    monkeypatch.setattr(fused_module, "NATIVE_SPARSE_MIN_SIZE", 64)
    conn = ConnectivitySpec(kind="erdos_renyi", p=0.1)
    cfg = RSNNConfig(n_inputs=20, n_outputs=3, layers=(LayerConfig(size=96, neuron=NeuronConfig(kind="alif"),
                                                                   connectivity=conn),))  # fmt: skip
    layer = RSNN(cfg, seed=3).layers[0].double()
    x = (torch.rand(6, 30, 20, generator=torch.Generator().manual_seed(1)) < 0.3).double() * 4
    optimiser = torch.optim.SGD(layer.parameters(), lr=0.05)
    calls = _Calls(monkeypatch)

    def step():
        optimiser.zero_grad()
        out = layer(x, layer.initial_state(6, "zeros", None, None))
        (out.spikes.sum() + out.state.u.square().sum()).backward()
        return layer.weight_rec.grad.clone()

    for _ in range(3):
        step()
        optimiser.step()
    assert calls.names.count("csr_transpose") == 1 and calls.names.count("alif_backward_loop") > 0
    cached = step()
    layer.synapse_cache = None
    assert torch.equal(step(), cached) and float(cached.abs().max()) > 0
    assert calls.names.count("csr_transpose") == 2
