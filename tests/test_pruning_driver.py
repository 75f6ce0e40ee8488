"""The LNP driver: history, stopping rules, revert on instability, reproducibility and checkpoint resume."""

from __future__ import annotations

import itertools

import pytest
import torch
from _helpers import small_world_rsnn

from hrsnn.errors import ConfigError
from hrsnn.network import RSNN
from hrsnn.pruning import LNPConfig, lnp_prune
from hrsnn.pruning import lnp as lnp_module
from hrsnn.stats import Estimate


def _exponents(model: RSNN) -> torch.Tensor:
    """Cheap stand-in: exponents that depend on τ and on the recurrent input strength of every neuron."""
    layer = model.layers[0]
    drive = (layer.weight_rec.detach() * layer.mask).abs().sum(1)
    return -1.0 / layer.tau_m.tau.detach() + 0.01 * drive


def _stable(model: RSNN) -> Estimate:
    return Estimate(-0.05, 0.002, 4)


def _gains(model: RSNN) -> torch.Tensor:
    """Cheap stand-in for the driven gains φ'(h_i) of step 1's rate model: positive, different per neuron."""
    return 0.05 * model.layers[0].tau_m.tau.detach() / 20.0


FAST = dict(betweenness_backend="brandes", bo_sampler="tpe", bo_startup=2, bo_trials=4, keep_fraction=0.9, q_node=0.05)


def _run(config, seed=0, **kw):
    return lnp_prune(
        small_world_rsnn(), config, exponents_fn=_exponents, lambda_max_fn=_stable,
        gains_fn=_gains, generator=torch.Generator().manual_seed(seed), progress=False, **kw,
    )  # fmt: skip


def test_driver_history_and_surviving_neurons():
    model = small_world_rsnn()
    before = model.layers[0].weight_rec.detach().clone()
    result = lnp_prune(
        model, LNPConfig(k_max=3, **FAST), exponents_fn=_exponents, lambda_max_fn=_stable,
        gains_fn=_gains, generator=torch.Generator().manual_seed(0), progress=False,
    )  # fmt: skip
    assert torch.equal(model.layers[0].weight_rec.detach(), before)  # the input model is untouched
    history = result.history
    assert [e.iteration for e in history] == [0, 1, 2, 3]
    assert history[0].neurons == 30 and history[0].synapses == 180 and history[0].note == "dense start"
    assert all(a.neurons >= b.neurons for a, b in itertools.pairwise(history))
    assert history[-1].neurons == result.model.layers[0].size == result.kept_neurons.numel()
    assert history[-1].synapses == result.model.synapse_counts()["layers.0.recurrent"]
    assert bool((result.kept_neurons.diff() > 0).all())
    torch.testing.assert_close(
        result.model.layers[0].input.weight, model.layers[0].input.weight[result.kept_neurons], rtol=0, atol=0
    )
    assert all(e.lambda_max == -0.05 and e.mean_ipr is not None for e in history)
    # λ_max is a constant here, so no BO trial beats the current τ beyond noise: τ stays
    assert "tau kept" in history[1].note and history[1].details["bo_moved"] == 0.0
    assert history[1].details["bo_spread"] == 0.0 and history[1].details["lambda_max_sem"] == 0.002


def test_driver_is_reproducible_for_a_seed():
    a = _run(LNPConfig(k_max=2, **FAST), seed=3)
    b = _run(LNPConfig(k_max=2, **FAST), seed=3)
    assert torch.equal(a.model.layers[0].mask, b.model.layers[0].mask)
    assert torch.equal(a.model.layers[0].weight_rec, b.model.layers[0].weight_rec)
    assert torch.equal(a.model.layers[0].tau_m.tau, b.model.layers[0].tau_m.tau)


def test_unstable_iteration_is_reverted_and_stops():
    values = iter([Estimate(-0.1, 0.01, 4), Estimate(-0.1, 0.01, 4), Estimate(0.3, 0.01, 4)])

    def lambda_max(model):
        return next(values)

    config = LNPConfig(k_max=5, tune_timescales=False, **{k: v for k, v in FAST.items() if not k.startswith("bo")})
    result = lnp_prune(
        small_world_rsnn(), config, exponents_fn=_exponents, lambda_max_fn=lambda_max,
        gains_fn=_gains, generator=torch.Generator().manual_seed(0), progress=False,
    )  # fmt: skip
    one = _run(LNPConfig(k_max=1, tune_timescales=False, **{k: v for k, v in FAST.items() if not k.startswith("bo")}))
    assert [e.iteration for e in result.history] == [0, 1, 2]
    assert "reverted" in result.history[2].note and "0.3 ± 0.01 over 4" in result.history[2].note
    rejected = {"rejected_lambda_max": 0.3, "rejected_lambda_max_sem": 0.01, "rejected_lambda_max_n": 4}
    assert result.history[2].details == rejected
    assert result.history[2].neurons == result.history[1].neurons
    assert torch.equal(result.model.layers[0].mask, one.model.layers[0].mask)


def test_stops_after_c_stop_unchanged_iterations_and_at_target_sparsity():
    idle = LNPConfig(
        k_max=10, c_stop=2, prune_synapses=False, prune_neurons=False, delocalise=False, tune_timescales=False
    )
    result = _run(idle)
    assert len(result.history) == 3 and "no change" in result.history[-1].note
    target = _run(LNPConfig(k_max=10, target_neuron_sparsity=0.1, tune_timescales=False, betweenness_backend="brandes"))
    assert target.history[-1].neurons <= 27 and target.history[-2].neurons > 27
    assert "target neuron sparsity" in target.history[-1].note


def test_checkpoint_resume_equals_an_uninterrupted_run(tmp_path):
    path = tmp_path / "lnp.safetensors"
    first = _run(LNPConfig(k_max=3, **FAST), checkpoint_path=path)
    assert len(first.history) == 4 and path.exists()
    resumed = _run(LNPConfig(k_max=5, **FAST), seed=99, checkpoint_path=path)  # generator state comes from the file
    straight = _run(LNPConfig(k_max=5, **FAST))
    assert [e.iteration for e in resumed.history] == [0, 1, 2, 3, 4, 5]
    assert [(e.neurons, e.synapses) for e in resumed.history] == [(e.neurons, e.synapses) for e in straight.history]
    assert torch.equal(resumed.kept_neurons, straight.kept_neurons)
    for name in ("mask", "weight_rec"):
        assert torch.equal(getattr(resumed.model.layers[0], name), getattr(straight.model.layers[0], name))
    assert torch.equal(resumed.model.layers[0].tau_m.tau, straight.model.layers[0].tau_m.tau)
    torch.testing.assert_close(resumed.model.readout.input.weight, straight.model.readout.input.weight, rtol=0, atol=0)
    with pytest.raises(ConfigError) as info:
        lnp_prune(
            small_world_rsnn(n=20), LNPConfig(k_max=6, **FAST), exponents_fn=_exponents, lambda_max_fn=_stable,
            gains_fn=_gains, generator=torch.Generator(), checkpoint_path=path, progress=False,
        )  # fmt: skip
    assert info.value.field == "checkpoint_path"


def test_custom_timescale_objective_and_spectrum_objective():
    seen = []

    def objective(model):
        tau = model.layers[0].tau_m.tau.detach()
        seen.append(float(tau.mean()))
        return (float(tau.mean()) - 25.0) ** 2

    result = _run(LNPConfig(k_max=1, **FAST), timescale_objective=objective)
    assert len(seen) == 1 + 4  # the current τ, then one per BO trial
    assert abs(float(result.model.layers[0].tau_m.tau.detach().mean()) - 25.0) == pytest.approx(
        min(abs(m - 25.0) for m in seen), abs=1e-4
    )
    spectra = []

    def spectrum(model):
        spectra.append(model.layers[0].size)
        return torch.tensor([-0.01, -0.02, -0.03])

    _run(LNPConfig(k_max=1, **FAST), spectrum_fn=spectrum)
    assert spectra[0] == 30 and len(spectra) == 1 + 1 + 4  # the dense reference, the current τ, one per BO trial


def test_bad_callables_and_config_are_rejected():
    with pytest.raises(ConfigError) as info:
        _run({"k_max": 1})
    assert info.value.field == "config"
    with pytest.raises(ConfigError) as info:
        lnp_prune(
            small_world_rsnn(), LNPConfig(k_max=1, **FAST), exponents_fn=lambda m: torch.zeros(3),
            lambda_max_fn=_stable, gains_fn=_gains, generator=torch.Generator(), progress=False,
        )  # fmt: skip
    assert info.value.field == "exponents_fn"
    with pytest.raises(ConfigError) as info:  # λ_max must come with its noise: a bare float is refused
        lnp_prune(
            small_world_rsnn(), LNPConfig(k_max=1, **FAST), exponents_fn=_exponents, lambda_max_fn=lambda m: -0.05,
            gains_fn=_gains, generator=torch.Generator(), progress=False,
        )  # fmt: skip
    assert info.value.field == "lambda_max_fn" and "Estimate" in info.value.reason


def _bar_totals(monkeypatch) -> list[tuple[float | None, int]]:
    """Record (total, n) of every LNP progress bar when it opens and when it closes."""
    seen: list[tuple[float | None, int]] = []

    class Recorder(lnp_module.tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            seen.append((self.total, self.n))

        def close(self):
            if not self.disable:
                seen.append((self.total, self.n))
            super().close()

    monkeypatch.setattr(lnp_module, "tqdm", Recorder)
    return seen


def test_progress_bar_total_is_the_iterations_the_stopping_rules_allow(monkeypatch, capsys):
    seen = _bar_totals(monkeypatch)
    plain = {k: v for k, v in FAST.items() if not k.startswith("bo")}
    # q_node = 0.05 removes ⌈0.05 N⌉ neurons per iteration: 30 → 28 → 26 → 24 = (1 − 0.2)·30, so at most 3
    config = LNPConfig(k_max=100, target_neuron_sparsity=0.2, tune_timescales=False, **plain)
    result = lnp_prune(
        small_world_rsnn(), config, exponents_fn=_exponents, lambda_max_fn=_stable,
        gains_fn=_gains, generator=torch.Generator().manual_seed(0), progress=True,
    )  # fmt: skip
    run = len(result.history) - 1
    assert seen == [(3, 0), (run, run)] and 1 <= run <= 3
    seen.clear()
    values = iter([Estimate(-0.1, 0.01, 4), Estimate(0.3, 0.01, 4)])  # iteration 1 is unstable: reverted, stop
    lnp_prune(
        small_world_rsnn(), LNPConfig(k_max=5, tune_timescales=False, **plain), exponents_fn=_exponents,
        gains_fn=_gains, lambda_max_fn=lambda model: next(values), generator=torch.Generator().manual_seed(0),
        progress=True,
    )  # fmt: skip
    assert seen == [(5, 0), (1, 1)]
    assert "LNP" in capsys.readouterr().err


def test_nan_in_masked_entries_changes_nothing():
    """Values outside the mask are not synapses: NaN there must not leak into any LNP step or baseline."""
    from hrsnn.pruning import set_mask
    from hrsnn.pruning.baselines import _synapse_flags

    def exponents(model: RSNN) -> torch.Tensor:
        layer = model.layers[0]
        return -1.0 / layer.tau_m.tau.detach() + 0.01 * layer.effective_recurrent_weight().detach().abs().sum(1)

    def run(model: RSNN):
        return lnp_prune(
            model, LNPConfig(k_max=2, **FAST), exponents_fn=exponents, lambda_max_fn=_stable,
            gains_fn=_gains, generator=torch.Generator().manual_seed(0), progress=False,
        )  # fmt: skip

    clean, poisoned = small_world_rsnn(), small_world_rsnn()
    layer = poisoned.layers[0]
    with torch.no_grad():
        layer.weight_rec[~layer.mask] = float("nan")
    assert poisoned.synapse_counts() == clean.synapse_counts()
    a, b = run(clean), run(poisoned)
    assert [(e.neurons, e.synapses) for e in a.history] == [(e.neurons, e.synapses) for e in b.history]
    assert torch.equal(a.model.layers[0].effective_recurrent_weight(), b.model.layers[0].effective_recurrent_weight())
    effective, flags = _synapse_flags(poisoned, 0)
    assert bool(torch.isfinite(effective).all()) and int(flags.sum()) == clean.synapse_counts()["layers.0.recurrent"]
    set_mask(poisoned, 0, layer.mask.clone())
    assert bool(torch.isfinite(poisoned.layers[0].weight_rec).all())  # set_mask zeroes what lies outside the mask
