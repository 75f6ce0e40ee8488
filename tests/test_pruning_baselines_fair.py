"""Equal-budget baselines: global magnitude, activity + magnitude (with fine-tuning), lottery-ticket IMP."""

from __future__ import annotations

import pytest
import torch

from hrsnn.connectivity import ConnectivitySpec
from hrsnn.errors import ConfigError
from hrsnn.network import RSNN, LayerConfig, NeuronConfig, RSNNConfig
from hrsnn.pruning import (
    PruneResult,
    activity_magnitude_prune,
    firing_rates,
    global_magnitude_prune,
    iterative_magnitude_prune,
    set_mask,
)


def _model(n: int, seed: int = 0) -> RSNN:
    neuron = NeuronConfig(kind="lif", b0=0.05, tau_m={"dist": "uniform", "low": 5.0, "high": 20.0})
    layer = LayerConfig(size=n, neuron=neuron, connectivity=ConnectivitySpec(kind="erdos_renyi", p=0.5))
    return RSNN(RSNNConfig(n_inputs=3, n_outputs=2, layers=(layer,)), seed=seed)


def _rec(model: RSNN) -> torch.Tensor:
    return model.layers[0].weight_rec.detach().clone()


def _synapses(model: RSNN) -> int:
    return model.synapse_counts()["layers.0.recurrent"]


# W[i, j]: synapse from j to i. Strength (in + out |W|): 6.75, 9.5, 4.75, 1.0, 1.0 (neurons 3 and 4 tie).
_W5 = torch.tensor(
    [
        [0.0, 3.0, 0.0, -1.0, 0.0],
        [2.0, 0.0, 0.5, 0.0, 0.0],
        [0.0, -4.0, 0.0, 0.0, 0.25],
        [0.0, 0.0, 0.0, 0.0, 0.0],
        [0.75, 0.0, 0.0, 0.0, 0.0],
    ]
)


def test_global_magnitude_known_answer():
    model = _model(5)
    set_mask(model, 0, _W5 != 0, _W5)
    result = global_magnitude_prune(model, 0, 3, 2)
    assert result.kept_neurons.tolist() == [0, 1, 2]
    expected = torch.tensor([[0.0, 3.0, 0.0], [0.0, 0.0, 0.0], [0.0, -4.0, 0.0]])
    torch.testing.assert_close(_rec(result.model), expected, rtol=0, atol=0)
    assert torch.equal(result.model.layers[0].mask, expected != 0)
    assert [(e.neurons, e.synapses) for e in result.history] == [(5, 7), (3, 2)]
    # tie between neurons 3 and 4 (strength 1.0): the lower index stays; then |W| 4, 3, 2 among neurons 0..3
    tie = global_magnitude_prune(model, 0, 4, 3)
    assert tie.kept_neurons.tolist() == [0, 1, 2, 3]
    expected = torch.tensor([[0.0, 3.0, 0.0, 0.0], [2.0, 0.0, 0.0, 0.0], [0.0, -4.0, 0.0, 0.0], [0.0] * 4])
    torch.testing.assert_close(_rec(tie.model), expected, rtol=0, atol=0)
    torch.testing.assert_close(_rec(model), _W5, rtol=0, atol=0)  # input untouched
    with pytest.raises(ConfigError, match="n_synapses=5") as info:  # only 4 synapses among neurons 0, 1, 2
        global_magnitude_prune(model, 0, 3, 5)
    assert info.value.field == "n_synapses"


def _full(n: int, seed: int = 0) -> RSNN:
    """n neurons, every synapse present (autapses too), distinct nonzero weights."""
    model = _model(n, seed)
    w = torch.randn(n, n, generator=torch.Generator().manual_seed(seed + 10))
    set_mask(model, 0, torch.ones(n, n, dtype=torch.bool), w)
    return model


def test_imp_geometric_schedule_and_exact_counts():
    model = _full(12)
    calls: list[tuple[int, int]] = []
    rounds: list[tuple[int, int, int]] = []
    snapshots: list[PruneResult] = []

    def train(m: RSNN) -> None:
        calls.append((m.layers[0].size, _synapses(m)))

    def grab(r: int, snapshot: PruneResult) -> None:
        m = snapshot.model
        assert len(snapshot.history) == r + 1 and snapshot.kept_neurons.numel() == m.layers[0].size
        rounds.append((r, m.layers[0].size, _synapses(m)))
        snapshots.append(snapshot)

    result = iterative_magnitude_prune(model, 0, 3, 5, train_fn=train, rounds=3, on_round=grab)
    # neurons 12·(3/12)^(r/3) = 7.56, 4.76, 3 -> 8, 5, 3; synapses 144·(5/144)^(r/3) = 46.98, 15.33, 5 -> 47, 15, 5
    schedule = [(12, 144), (8, 47), (5, 15), (3, 5)]
    assert calls == schedule  # train_fn: once on the dense network, then once per round
    assert rounds == [(r, *counts) for r, counts in enumerate(schedule)]
    assert [(e.neurons, e.synapses) for e in result.history] == schedule
    assert [e.iteration for e in result.history] == [0, 1, 2, 3]
    assert result.model.layers[0].size == 3 and _synapses(result.model) == 5
    assert int(result.model.layers[0].mask.sum()) == 5
    assert result.kept_neurons.numel() == 3 and _synapses(model) == 144  # input untouched
    assert [e.details["target_synapses"] for e in result.history] == [144, 47, 15, 5]
    # snapshots are copies: nested kept neurons, and the last one is the result
    assert set(snapshots[3].kept_neurons.tolist()) <= set(snapshots[2].kept_neurons.tolist())
    assert torch.equal(snapshots[3].kept_neurons, result.kept_neurons)
    assert snapshots[1].model is not result.model and snapshots[1].model.layers[0].size == 8


def test_imp_rewinds_survivors_and_masks_persist():
    model = _full(8)
    rewind = _model(8, seed=1).state_dict()
    received: list[dict[str, torch.Tensor]] = []

    def train(m: RSNN) -> None:  # record, then move every weight (masked entries too)
        received.append({k: v.detach().clone() for k, v in m.named_parameters()})
        with torch.no_grad():
            for p in m.parameters():
                p.add_(1.0)

    result = iterative_magnitude_prune(model, 0, 4, 6, train_fn=train, rounds=2, rewind_state=rewind)
    assert len(received) == 3
    k, mask = result.kept_neurons, result.model.layers[0].mask
    last = received[-1]
    # before the last retraining: the rewind state's values, restricted to surviving neurons and synapses
    torch.testing.assert_close(
        last["layers.0.weight_rec"], torch.where(mask, rewind["layers.0.weight_rec"][k][:, k], 0.0), rtol=0, atol=0
    )
    torch.testing.assert_close(last["layers.0.input.weight"], rewind["layers.0.input.weight"][k], rtol=0, atol=0)
    torch.testing.assert_close(last["readout.input.weight"], rewind["readout.input.weight"][:, k], rtol=0, atol=0)
    # the dense network is trained as given (not rewound) before round 1
    torch.testing.assert_close(received[0]["layers.0.weight_rec"], _rec(model), rtol=0, atol=0)
    # masks persist: training added 1 everywhere, yet pruned synapses stay exactly 0
    w = _rec(result.model)
    assert bool((w[~mask] == 0).all()) and int(mask.sum()) == 6 == _synapses(result.model)
    torch.testing.assert_close(w[mask], last["layers.0.weight_rec"][mask] + 1.0, rtol=0, atol=0)
    # default rewind point: the input model's own weights
    received.clear()
    default = iterative_magnitude_prune(model, 0, 4, 6, train_fn=train, rounds=2)
    k, mask = default.kept_neurons, default.model.layers[0].mask
    torch.testing.assert_close(
        received[-1]["layers.0.weight_rec"], torch.where(mask, _rec(model)[k][:, k], 0.0), rtol=0, atol=0
    )


def test_imp_prunes_by_trained_magnitude():
    model = _full(6)
    strong = torch.tensor([1, 3, 4])

    def train(m: RSNN) -> None:  # training makes neurons 1, 3, 4 and their mutual synapses the strongest
        n = m.layers[0].size
        if n == 6:
            w = torch.full((6, 6), 0.01)
            w[strong[:, None], strong] = 1.0
            set_mask(m, 0, m.layers[0].mask, w)

    result = iterative_magnitude_prune(model, 0, 3, 9, train_fn=train, rounds=1)
    assert result.kept_neurons.tolist() == [1, 3, 4]
    assert int(result.model.layers[0].mask.sum()) == 9


def _silent_model(silent: int) -> RSNN:
    model = _model(10)
    with torch.no_grad():
        model.layers[0].input.weight.abs_()
        model.layers[0].input.weight.mul_(3.0)
        model.layers[0].input.weight[silent] = -5.0  # strongly inhibited: never fires
    return model


def test_activity_magnitude_budget_removes_least_active_and_fine_tunes():
    model = _silent_model(4)
    x = torch.rand(4, 30, 3, generator=torch.Generator().manual_seed(0))
    rates = firing_rates(model, x, 0)
    assert float(rates[4]) == 0.0 and bool((rates[torch.arange(10) != 4] > 0).all())
    pruned: list[torch.Tensor] = []
    sizes: list[tuple[int, int]] = []

    def tune(m: RSNN) -> None:
        sizes.append((m.layers[0].size, _synapses(m)))
        pruned.append(_rec(m))
        with torch.no_grad():
            m.layers[0].weight_rec.mul_(2.0).add_(1.0)

    result = activity_magnitude_prune(model, 0, x, 9, 12, train_fn=tune)
    assert sizes == [(9, 12)]  # called once, on the pruned network
    assert 4 not in result.kept_neurons.tolist() and result.kept_neurons.numel() == 9
    mask = result.model.layers[0].mask
    assert int(mask.sum()) == 12 == _synapses(result.model)
    w = _rec(result.model)
    torch.testing.assert_close(w[mask], 2.0 * pruned[0][mask] + 1.0, rtol=0, atol=0)
    assert bool((w[~mask] == 0).all())
    # the kept synapses are the largest |W| among the 9 surviving neurons
    k = result.kept_neurons
    before = model.layers[0].effective_recurrent_weight().detach()[k][:, k].abs()
    assert float(before[mask].min()) >= float(before[~mask].max())
    assert [(e.neurons, e.synapses) for e in result.history][-2:] == [(9, 12), (9, 12)]
    without = activity_magnitude_prune(model, 0, x, 9, 12)
    torch.testing.assert_close(_rec(without.model), pruned[0], rtol=0, atol=0)


@pytest.mark.parametrize(
    ("kwargs", "field", "value"),
    [
        ({"n_neurons": 9}, "n_neurons", 9),
        ({"n_neurons": 0}, "n_neurons", 0),
        ({"n_synapses": 65}, "n_synapses", 65),  # > the 64 synapses of the layer
        ({"n_neurons": 2, "n_synapses": 5}, "n_synapses", 5),  # > 2² possible among 2 neurons
        ({"rounds": 0}, "rounds", 0),
        ({"train_fn": "fit"}, "train_fn", "str"),
        ({"on_round": 3}, "on_round", "int"),
        ({"rewind_state": {"x": torch.zeros(1)}}, "rewind_state", "x"),
    ],
)
def test_imp_bad_input(kwargs, field, value):
    args = {"n_neurons": 4, "n_synapses": 6, "train_fn": lambda m: None, "rounds": 2} | kwargs
    with pytest.raises(ConfigError) as info:
        iterative_magnitude_prune(_full(8), 0, **args)
    assert (info.value.field, info.value.value) == (field, value)


def test_budget_errors_of_one_shot_baselines():
    model = _full(8)
    x = torch.rand(2, 5, 3, generator=torch.Generator().manual_seed(0))
    for call, field, value in [
        (lambda: global_magnitude_prune(model, 0, 9, 6), "n_neurons", 9),
        (lambda: global_magnitude_prune(model, 0, 4, 17), "n_synapses", 17),
        (lambda: activity_magnitude_prune(model, 0, x, 4, 17), "n_synapses", 17),
        (lambda: activity_magnitude_prune(model, 0, x, 4, 6, train_fn=1), "train_fn", "int"),
        (lambda: activity_magnitude_prune(model, 0, x, 4, 6, rounds=0), "rounds", 0),
    ]:
        with pytest.raises(ConfigError) as info:
            call()
        assert (info.value.field, info.value.value) == (field, value)

    def returns_model(m: RSNN) -> RSNN:
        return m

    with pytest.raises(ConfigError) as info:
        activity_magnitude_prune(model, 0, x, 4, 6, train_fn=returns_model)
    assert info.value.field == "train_fn"


def test_imp_explicit_schedule_from_a_pretrained_network():
    model = _full(10)
    rewind = _full(10, seed=5).state_dict()
    calls: list[tuple[int, int]] = []

    def train(m: RSNN) -> None:
        calls.append((m.layers[0].size, _synapses(m)))

    result = iterative_magnitude_prune(
        model, 0, 4, 9, train_fn=train, rounds=2, rewind_state=rewind, schedule=[(7, 30), (4, 9)], pretrained=True
    )
    assert calls == [(7, 30), (4, 9)]  # no training of the already trained network, then the given counts
    assert [(e.neurons, e.synapses) for e in result.history] == [(10, 100), (7, 30), (4, 9)]
    with pytest.raises(ConfigError, match="rewind_state"):
        iterative_magnitude_prune(model, 0, 4, 9, train_fn=train, rounds=1, pretrained=True)
    with pytest.raises(ConfigError, match="schedule"):
        iterative_magnitude_prune(model, 0, 4, 9, train_fn=train, rounds=2, schedule=[(7, 30), (5, 9)])
    with pytest.raises(ConfigError, match=r"schedule\[1\]"):
        iterative_magnitude_prune(model, 0, 4, 9, train_fn=train, rounds=2, schedule=[(7, 30), (8, 9)])


def test_allow_fewer_synapses_keeps_all_instead_of_raising():
    model = _model(5)
    set_mask(model, 0, _W5 != 0, _W5)
    with pytest.raises(ConfigError, match="n_synapses"):
        global_magnitude_prune(model, 0, 3, 5)
    fewer = global_magnitude_prune(model, 0, 3, 5, allow_fewer_synapses=True)
    assert _synapses(fewer.model) == 4  # every synapse among neurons 0, 1, 2
    with pytest.raises(ConfigError, match="allow_fewer_synapses"):
        global_magnitude_prune(model, 0, 3, 4, allow_fewer_synapses="yes")
