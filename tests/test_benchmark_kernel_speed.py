"""benchmarks/kernel_speed.py: each installed peer's adapter against the plain loop, and why absent peers are skipped.

The peers are optional extras (not installed in CI): their tests skip when the peer does not import. Each runs a tiny
layer (B = 64, T = 20, N = 16) in float64, where every spike must equal the plain loop's and the recurrent-weight
gradient must match to 1e-8, except where the benchmark reports a convention it cannot remove.
"""

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "kernel_speed.py"
N, STEPS = 16, 20


@pytest.fixture(scope="module")
def ks():
    spec = importlib.util.spec_from_file_location("hrsnn_bench_kernel_speed", _PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module


def _require(ks, peer: str) -> None:
    pytest.importorskip(peer)
    status = ks.peer_status(peer)
    if status is not None:
        pytest.skip(f"{peer}: {status}")


def _rel_err(ks, grad: torch.Tensor, ref: torch.Tensor, p) -> float:
    g = torch.where(p.layer.mask, grad, 0.0)
    return float((g - ref).abs().max() / ref.abs().max())


@pytest.mark.parametrize("peer", ["spikingjelly", "sinabs", "spyx"])
def test_peer_matches_plain_loop_exactly(ks, peer):
    _require(ks, peer)
    p = ks.make_problem(N, STEPS, torch.float64)
    spikes, grad = ks.spikes_and_grad(peer, p)
    ref_spikes, _, ref_grad = ks.plain_reference(ks.make_problem(N, STEPS, torch.float64))
    assert 0.2 < float(ref_spikes.mean()) < 0.8  # many spikes and resets: the comparison is not vacuous
    assert torch.equal(spikes.to(torch.float64), ref_spikes)
    assert _rel_err(ks, grad, ref_grad, p) < 1e-8


def test_norse_matches_plain_loop_with_its_own_surrogate(ks):
    _require(ks, "norse")
    p = ks.make_problem(N, STEPS, torch.float64)
    spikes, grad = ks.spikes_and_grad("norse", p)
    ref_spikes, _, ref_grad = ks.plain_reference(ks.make_problem(N, STEPS, torch.float64))
    _, _, own_grad = ks.plain_reference(ks.make_problem(N, STEPS, torch.float64), ks.peer_spike_fn("norse"))
    assert torch.equal(spikes, ref_spikes)
    assert _rel_err(ks, grad, own_grad, p) < 1e-8
    assert _rel_err(ks, grad, ref_grad, p) > 1e-2  # SuperSpike is not hrsnn's surrogate: the note is needed
    entry = ks.identity_check(["norse"], N, STEPS, torch.float64)["norse"]
    assert entry["mismatches"] == 0
    assert entry["grad_rel_err"] < 1e-8
    assert entry["grad_note"] == ks.GRAD_NOTES["norse"]


def test_snntorch_spikes_match_and_its_detached_reset_is_reported(ks):
    _require(ks, "snntorch")
    entry = ks.identity_check(["snntorch"], N, STEPS, torch.float64)["snntorch"]
    assert entry["mismatches"] == 0
    assert entry["grad_rel_err"] > 1e-3  # no gradient through -b0·s_{t-1}
    assert entry["grad_note"] == ks.GRAD_NOTES["snntorch"]


def test_peer_status_says_why_a_peer_is_skipped(ks, monkeypatch, tmp_path):
    (tmp_path / "hrsnn_broken_peer.py").write_text('raise ImportError("needs libfoo")\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(ks.PEERS, "hrsnn_no_such_peer", (("hrsnn_no_such_peer", "Cell"),))
    assert ks.peer_status("hrsnn_no_such_peer") == "skipped: not installed"
    monkeypatch.setitem(ks.PEERS, "hrsnn_broken_peer", (("hrsnn_broken_peer", "Cell"),))
    assert ks.peer_status("hrsnn_broken_peer") == (
        "skipped: import of hrsnn_broken_peer failed (ImportError: needs libfoo)"
    )
    monkeypatch.setitem(ks.WRITTEN_FOR, "json", "9.9")
    monkeypatch.setitem(ks.PEERS, "json", (("json", "dumps"), ("json.decoder", "NoSuchCell")))
    assert ks.peer_status("json") == "skipped: json.decoder has no NoSuchCell (the adapter was written for json 9.9)"
    monkeypatch.setitem(ks.PEERS, "json", (("json", "dumps"), ("json.decoder", "JSONDecoder")))
    assert ks.peer_status("json") is None
