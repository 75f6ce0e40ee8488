"""LNP's stability stop with a choice of measure, and the dense network started at the edge of chaos."""

from __future__ import annotations

import typing

import pytest

from hrsnn.connectivity import spectral_radius
from hrsnn.dynamics import perturbation_divergence
from hrsnn.errors import ConfigError
from hrsnn.experiments.lnp import (
    STABILITY_MEASURES,
    LNPExperimentConfig,
    build_dense,
    edge_radius,
    probe_drive,
    prune_with_lnp,
)


def _config(**over: typing.Any) -> LNPExperimentConfig:
    return LNPExperimentConfig.from_dict({"quick": True, **over})


def test_the_registry_is_read_only_and_lists_the_config_choices():
    assert set(STABILITY_MEASURES) == {"lyapunov", "divergence"}
    assert set(typing.get_args(typing.get_type_hints(LNPExperimentConfig)["stability_measure"])) == set(
        STABILITY_MEASURES
    )
    with pytest.raises(TypeError):
        STABILITY_MEASURES["lyapunov"] = STABILITY_MEASURES["divergence"]  # type: ignore[index]


def test_both_measures_give_the_leak_rate_of_a_network_that_never_spikes():
    # threshold 1000, inputs ~1: no spike ever, so d_t = alpha^t eps and lambda = log(alpha) = -1/tau, tau = 2 + 3 * 6
    config = _config(n_neurons=40, tau_homogeneous=True, threshold=1000.0, lnp_divergence_pairs=5)
    model = build_dense(config, 0)
    lyapunov = STABILITY_MEASURES["lyapunov"](model, config, 0)
    divergence = STABILITY_MEASURES["divergence"](model, config, 0)
    assert lyapunov.mean == pytest.approx(-1.0 / 20.0, abs=1e-5) and lyapunov.n == config.lnp_ics == 4
    assert divergence.mean == pytest.approx(-1.0 / 20.0, abs=1e-5) and divergence.n == 5


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"stability_measure": "chaos"}, "stability_measure"),
        ({"lnp_divergence_epsilon": 0.0}, "lnp_divergence_epsilon"),
        ({"lnp_divergence_epsilon": 1e-9}, "lnp_divergence_epsilon"),
        ({"lnp_divergence_epsilon": "big"}, "lnp_divergence_epsilon"),
        ({"lnp_divergence_pairs": 0}, "lnp_divergence_pairs"),
        ({"start_at_edge": "yes"}, "start_at_edge"),
        ({"edge_radii": [3.0]}, "edge_radii"),
        ({"edge_radii": [2.0, 1.0]}, "edge_radii"),
        ({"edge_radii": [0.0, 1.0]}, "edge_radii[0]"),
        ({"edge_radii": [1.0, float("inf")]}, "edge_radii[1]"),
        ({"edge_factor": 0.0}, "edge_factor"),
    ],
)
def test_bad_stability_settings_name_the_field(over, field):
    with pytest.raises(ConfigError) as info:
        LNPExperimentConfig.from_dict(over)
    assert info.value.field.removeprefix("config.") == field  # from_dict's own type checks prefix "config."


def test_stability_settings_round_trip():
    config = LNPExperimentConfig.from_dict(
        {"stability_measure": "divergence", "start_at_edge": True, "edge_radii": [1, 2], "edge_factor": 0.9}
    )
    assert config.edge_radii == (1.0, 2.0) and config.lnp_divergence_pairs == 64
    assert LNPExperimentConfig.from_dict(config.to_dict()) == config


def test_divergence_reverts_the_first_iteration_where_lyapunov_does_not_stop():
    # at radius 64 perturbations of the tiny network grow (rate ~ +0.02, 10 SEM) while the surrogate lambda_max < 0
    over = {"n_neurons": 60, "spectral_radius": 64.0, "lnp_divergence_epsilon": 0.3, "lnp_divergence_pairs": 16}
    over["lnp"] = {"q_node": 0.02}
    dense = build_dense(_config(**over), 0)
    chaotic = prune_with_lnp(dense, _config(**over, stability_measure="divergence"), seed=0)
    assert [h.iteration for h in chaotic.history] == [0, 1] and chaotic.model.layers[0].size == 60
    assert chaotic.history[0].lambda_max > 0.0 and chaotic.history[1].note.startswith("reverted")
    assert chaotic.history[1].details["rejected_lambda_max"] > 0.0
    stable = prune_with_lnp(dense, _config(**over, stability_measure="lyapunov"), seed=0)
    assert [h.iteration for h in stable.history] == [0, 1, 2] and stable.model.layers[0].size < 60
    assert all(h.lambda_max < 0.0 and "reverted" not in h.note for h in stable.history)


def test_edge_radius_interpolates_the_first_sign_change_and_build_dense_starts_there():
    base = {"n_neurons": 60, "stability_measure": "divergence", "edge_radii": [1.0, 4.0, 32.0]}
    radii = (1.0, 4.0, 32.0)
    rates = []
    for radius in radii:  # each radius built afresh and measured by hand: eps 0.1, 64 pairs, 100 + 100 steps
        config = _config(**base, spectral_radius=radius)
        result = perturbation_divergence(
            build_dense(config, 0), probe_drive(config, 0), epsilon=0.1, n_pairs=64, transient=100, horizon=100
        )
        rates.append(result.rate.mean)
    assert rates[0] < 0.0 and rates[1] < 0.0 < rates[2]
    expected = 4.0 + (0.0 - rates[1]) * (32.0 - 4.0) / (rates[2] - rates[1])
    critical = edge_radius(_config(**base), 0)
    assert 4.0 < critical < 32.0 and critical == pytest.approx(expected, rel=1e-3)
    config = _config(**base, start_at_edge=True, edge_factor=0.9)
    assert edge_radius(config, 0) == pytest.approx(0.9 * critical, rel=1e-9)
    weight = build_dense(config, 0).layers[0].effective_recurrent_weight().detach()
    assert spectral_radius(weight) == pytest.approx(0.9 * critical, rel=1e-4)


def test_no_crossing_raises_naming_edge_radii_and_the_measurements():
    config = _config(n_neurons=40, stability_measure="lyapunov", start_at_edge=True, edge_radii=[1.0, 2.0])
    with pytest.raises(ConfigError, match=r"'lyapunov'.*never crosses 0.*mean < 0") as info:
        build_dense(config, 0)
    assert info.value.field == "edge_radii" and info.value.value == [1.0, 2.0]
    assert "1: -0." in str(info.value) and "2: -0." in str(info.value)
