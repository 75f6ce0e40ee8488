"""LNP step 2 (issue 9) on the experiment's dense networks: removing the neurons of lowest betweenness keeps the
survivors' communication structure, measured against removing as many uniformly random neurons.

The measure is the share of the survivors' efficiency that remains,
:math:`R = \\sum_{i \\ne j \\in S} 1/d'_{ij} \\,/\\, \\sum_{i \\ne j \\in S} 1/d_{ij}` over the surviving neurons S,
d the dense and d' the pruned shortest-path lengths (:func:`hrsnn.pruning.graph.shortest_path_lengths`, lengths
1/|w| as LNP's betweenness, or hops): R = 1 when no shortest path between survivors ran through a removed neuron.
It compares rules on the same kind of pairs (global efficiency of the pruned graph also rewards a rule for removing
far-apart neurons). Measured (``build_dense`` N = 200, k = 20 and N = 300, k = 10, seeds 0–2; random: 5 draws each;
mean over seeds and draws):

=========================  ===========  ===========  ===========  ===========  ===========
R (1/|w| lengths)          low BC       random       high BC      low degree   low |w| sum
=========================  ===========  ===========  ===========  ===========  ===========
N=200, one shot, 30 %      0.995        0.875        0.689        0.910        0.985
N=200, 4 % rounds, 50 %    0.990        0.762        0.459        0.943        0.975
N=300, one shot, 50 %      0.957        0.618        0.466        0.711        0.897
N=300, 4 % rounds, 50 %    0.973        0.624        0.253        0.934        0.939
=========================  ===========  ===========  ===========  ===========  ===========

In hops, lowest betweenness also beats random (N = 300, rounds, 50 %: 0.899 against 0.786) but lowest degree does
better there (0.963): step 2's betweenness uses 1/|w| lengths, so it keeps the weighted paths. Every ordered pair
stays reachable under step 2 (random: 99.3 % at N = 300, 50 %; highest betweenness in rounds: 63 %). Not a claim of
step 2: it raises the spectral radius (×1.11–1.33 at 30–50 %; random lowers it, ×0.71–0.87), since the neurons it
removes are those with weak synapses.
"""

from __future__ import annotations

import torch

from hrsnn.experiments.lnp import LNPExperimentConfig, build_dense
from hrsnn.network import RSNN
from hrsnn.pruning.graph import betweenness_centrality, global_efficiency, shortest_path_lengths
from hrsnn.pruning.lnp import LNPConfig, prune_nodes

RANDOM_DRAWS = 6


def _weight(model: RSNN) -> torch.Tensor:
    return model.layers[0].effective_recurrent_weight().detach().double()


def _retained(dense_lengths: torch.Tensor, pruned: torch.Tensor, survivors: torch.Tensor, lengths: str) -> float:
    """R of the module docstring: the survivors' efficiency after pruning over theirs in the dense graph."""
    after = shortest_path_lengths(pruned, lengths=lengths)
    pairs = ~torch.eye(survivors.numel(), dtype=torch.bool)
    before = dense_lengths[survivors][:, survivors]
    return float((1.0 / after[pairs]).sum() / (1.0 / before[pairs]).sum())


def _random_survivors(n: int, removed: int, generator: torch.Generator) -> torch.Tensor:
    return torch.sort(torch.randperm(n, generator=generator)[removed:]).values


def _random_arm(dense: torch.Tensor, removed: int, seed: int, lengths: tuple[str, ...]) -> list[dict[str, float]]:
    """R and the global efficiency (1/|w| lengths) after removing ``removed`` random neurons, per draw."""
    n = dense.shape[0]
    dense_lengths = {name: shortest_path_lengths(dense, lengths=name) for name in lengths}
    generator = torch.Generator().manual_seed(seed)
    draws = []
    for _ in range(RANDOM_DRAWS):
        survivors = _random_survivors(n, removed, generator)
        pruned = dense[survivors][:, survivors]
        draw = {name: _retained(dense_lengths[name], pruned, survivors, name) for name in lengths}
        draw["efficiency"] = global_efficiency(pruned)
        draws.append(draw)
    return draws


def _mean(draws: list[dict[str, float]], key: str) -> float:
    return sum(d[key] for d in draws) / len(draws)


def test_one_shot_lowest_betweenness_keeps_weighted_paths_better_than_random_and_highest():
    model = build_dense(LNPExperimentConfig(n_neurons=200, k=20), 0)
    dense = _weight(model)
    pruned_model, keep = prune_nodes(model, LNPConfig(q_node=0.3), torch.Generator().manual_seed(0))
    survivors = torch.nonzero(keep).flatten()
    removed = 200 - survivors.numel()
    assert removed == 60  # ⌈0.3 · 200⌉, no dead ends in this small world
    dense_lengths = shortest_path_lengths(dense)
    lnp = _retained(dense_lengths, _weight(pruned_model), survivors, "inverse")
    random = _random_arm(dense, removed, 0, ("inverse",))
    highest = torch.sort(torch.argsort(betweenness_centrality(dense, backend="igraph"))[:-removed]).values
    high = _retained(dense_lengths, dense[highest][:, highest], highest, "inverse")
    # measured: step 2 0.994, random 0.870 (draws 0.835–0.904), highest betweenness 0.680
    assert lnp > 0.98
    assert _mean(random, "inverse") < lnp - 0.06
    assert high < _mean(random, "inverse") - 0.1
    # global efficiency of the remaining graph, 1/|w| lengths: step 2 raises it (×1.10), random lowers it (×0.87)
    efficiency = global_efficiency(_weight(pruned_model))
    assert efficiency > global_efficiency(dense) > _mean(random, "efficiency")
    assert efficiency > 1.15 * _mean(random, "efficiency")


def test_lnp_rounds_of_four_percent_keep_paths_and_reachability_better_than_random():
    model = build_dense(LNPExperimentConfig(n_neurons=300, k=10), 1)
    dense = _weight(model)
    config, generator = LNPConfig(q_node=0.04), torch.Generator().manual_seed(0)
    survivors = torch.arange(300)
    rounds = 0
    while survivors.numel() > 150:  # LNP's iterations without steps 1, 3 and 4
        model, keep = prune_nodes(model, config, generator)
        survivors = survivors[keep]
        rounds += 1
    assert rounds == 16 and survivors.numel() == 150
    pruned = _weight(model)
    lnp = {name: _retained(shortest_path_lengths(dense, lengths=name), pruned, survivors, name) for name in
           ("inverse", "unweighted")}  # fmt: skip
    random = _random_arm(dense, 150, 1, ("inverse", "unweighted"))
    # measured: 1/|w| lengths 0.980 against 0.620 (draws 0.577–0.691); hops 0.908 against 0.799
    assert lnp["inverse"] > 0.95
    assert _mean(random, "inverse") < lnp["inverse"] - 0.25
    assert _mean(random, "unweighted") < lnp["unweighted"] - 0.06
    # every survivor still reaches every other (highest betweenness in rounds leaves 63 % of the pairs reachable)
    assert bool(torch.isfinite(shortest_path_lengths(pruned, lengths="unweighted")).all())
