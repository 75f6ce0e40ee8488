"""Graph measures: betweenness (hand values, backends agree), localisation scores, degree heterogeneity.

Eigenvector IPRs are tested with :mod:`hrsnn.dynamics.noise` (tests/test_dynamics_noise.py).
"""

from __future__ import annotations

import math

import pytest
import torch

from hrsnn.dynamics.noise import inverse_participation_ratio
from hrsnn.errors import ConfigError
from hrsnn.pruning.graph import (
    betweenness_centrality,
    degree_heterogeneity,
    edge_list,
    global_efficiency,
    localisation_scores,
    shortest_path_lengths,
)


def _path(n: int, both_ways: bool = True) -> torch.Tensor:
    w = torch.zeros(n, n)
    for i in range(n - 1):
        w[i + 1, i] = 1.0  # i → i+1 (post, pre layout)
        if both_ways:
            w[i, i + 1] = 1.0
    return w


def _random_graph(n: int = 25, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    mask = (torch.rand(n, n, generator=g) < 0.15) & ~torch.eye(n, dtype=torch.bool)
    return (0.1 + torch.rand(n, n, generator=g, dtype=torch.float64)) * mask


def test_path_graph_middle_nodes_are_most_between():
    w = _path(5)
    # undirected: BC = number of unordered pairs (s, t) whose path passes v: [0, 3, 4, 3, 0]
    torch.testing.assert_close(
        betweenness_centrality(w, directed=False), torch.tensor([0.0, 3.0, 4.0, 3.0, 0.0]).double()
    )
    # directed with both directions: ordered pairs, twice as many
    torch.testing.assert_close(betweenness_centrality(w), torch.tensor([0.0, 6.0, 8.0, 6.0, 0.0]).double())
    # one-way path: only forward paths exist
    torch.testing.assert_close(
        betweenness_centrality(_path(5, both_ways=False)), torch.tensor([0.0, 3.0, 4.0, 3.0, 0.0]).double()
    )


def test_weighted_lengths_route_through_strong_synapses():
    w = torch.zeros(3, 3)
    w[2, 0] = 0.1  # weak 0 → 2 (length 10)
    w[1, 0] = 1.0  # strong 0 → 1 → 2 (length 2)
    w[2, 1] = 1.0
    torch.testing.assert_close(betweenness_centrality(w), torch.tensor([0.0, 1.0, 0.0]).double())
    torch.testing.assert_close(betweenness_centrality(w, lengths="unweighted"), torch.tensor([0.0, 0.0, 0.0]).double())


def test_equal_shortest_paths_share_the_credit():
    w = torch.zeros(4, 4)
    w[1, 0] = w[2, 0] = w[3, 1] = w[3, 2] = 1.0  # 0 → {1, 2} → 3
    torch.testing.assert_close(betweenness_centrality(w), torch.tensor([0.0, 0.5, 0.5, 0.0]).double())


def test_undirected_edge_list_merges_directions_with_the_shorter_length():
    w = torch.zeros(3, 3)
    w[1, 0], w[0, 1], w[2, 1] = 0.5, 2.0, 1.0
    edges, length = edge_list(w, directed=False)
    assert edges.tolist() == [[0, 1], [1, 2]]
    assert length.tolist() == [0.5, 1.0]


@pytest.mark.parametrize("backend", ["igraph", "networkx"])
@pytest.mark.parametrize("directed", [True, False])
def test_library_backends_match_exact_brandes(backend, directed):
    if backend == "networkx":
        pytest.importorskip("networkx")  # the optional extra hrsnn[networkx]
    w = _random_graph()
    exact = betweenness_centrality(w, directed=directed)
    torch.testing.assert_close(betweenness_centrality(w, directed=directed, backend=backend), exact)


def test_sampled_pivots_keep_the_total_on_a_directed_ring():
    n = 12
    w = torch.zeros(n, n)
    for i in range(n):
        w[(i + 1) % n, i] = 1.0
    exact = betweenness_centrality(w)
    torch.testing.assert_close(exact, torch.full((n,), (n - 1) * (n - 2) / 2.0).double())
    g = torch.Generator().manual_seed(0)
    sampled = betweenness_centrality(w, pivots=4, generator=g)
    assert math.isclose(float(sampled.sum()), float(exact.sum()))
    again = betweenness_centrality(w, pivots=4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(sampled, again)
    torch.testing.assert_close(betweenness_centrality(w, pivots=n, generator=g), exact)
    with pytest.raises(ConfigError) as info:
        betweenness_centrality(w, pivots=4)
    assert info.value.field == "generator"
    with pytest.raises(ConfigError) as info:
        betweenness_centrality(w, backend="graph-tool")
    assert info.value.field == "backend"


def test_localisation_scores_by_hand():
    v = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0], [0.0, 1.0, -1.0]], dtype=torch.float64)
    v[:, 1:] /= math.sqrt(2.0)
    ipr3 = inverse_participation_ratio(v)
    torch.testing.assert_close(ipr3, torch.tensor([1.0, 0.5, 0.5]).double())
    # ⌈0.3·3⌉ = 1 most localised eigenvector: ℓ_i = v_1(i)²
    torch.testing.assert_close(localisation_scores(ipr3, v, 0.3), torch.tensor([1.0, 0.0, 0.0]).double())
    # all three: ℓ_i = Σ_k v_k(i)² = 1
    torch.testing.assert_close(localisation_scores(ipr3, v, 1.0), torch.ones(3).double())


def test_degree_heterogeneity_by_hand():
    # degrees [1, 2, 3]: mean 2, population std sqrt(2/3)
    assert math.isclose(degree_heterogeneity(torch.tensor([1.0, 2.0, 3.0])), math.sqrt(2.0 / 3.0) / 2.0)
    assert degree_heterogeneity(torch.tensor([2.0, 2.0, 2.0])) == 0.0
    assert degree_heterogeneity(torch.zeros(3)) == 0.0


def _weighted_cycle() -> torch.Tensor:
    w = torch.zeros(3, 3, dtype=torch.float64)
    w[1, 0] = 1.0  # 0 → 1, length 1
    w[2, 1] = -0.5  # 1 → 2, length 2 (|w| counts)
    w[0, 2] = 0.25  # 2 → 0, length 4
    return w


def test_shortest_path_lengths_by_hand_in_post_pre_layout():
    w = _weighted_cycle()
    inf = math.inf
    # entry (i, j) = shortest j → i: 0→1 1, 0→2 1+2, 1→2 2, 1→0 2+4, 2→0 4, 2→1 4+1
    expected = torch.tensor([[0.0, 6.0, 4.0], [1.0, 0.0, 5.0], [3.0, 2.0, 0.0]]).double()
    torch.testing.assert_close(shortest_path_lengths(w), expected)
    hops = torch.tensor([[0.0, 2.0, 1.0], [1.0, 0.0, 2.0], [2.0, 1.0, 0.0]]).double()
    torch.testing.assert_close(shortest_path_lengths(w, lengths="unweighted"), hops)
    # undirected: {0,1} 1, {1,2} 2, {0,2} min(4, 1+2) = 3
    sym = torch.tensor([[0.0, 1.0, 3.0], [1.0, 0.0, 2.0], [3.0, 2.0, 0.0]]).double()
    torch.testing.assert_close(shortest_path_lengths(w, directed=False), sym)
    one_way = torch.zeros(3, 3)
    one_way[1, 0] = 2.0  # 0 → 1 only, length 1/2; node 2 isolated
    expected = torch.full((3, 3), inf, dtype=torch.float64)
    expected.fill_diagonal_(0.0)
    expected[1, 0] = 0.5
    torch.testing.assert_close(shortest_path_lengths(one_way), expected)


def test_global_efficiency_by_hand():
    w = _weighted_cycle()
    # mean over the 6 ordered pairs of 1/d: (1 + 1/3 + 1/2 + 1/6 + 1/4 + 1/5) / 6
    assert math.isclose(global_efficiency(w), (1 + 1 / 3 + 1 / 2 + 1 / 6 + 1 / 4 + 1 / 5) / 6)
    assert math.isclose(global_efficiency(w, lengths="unweighted"), (3 * 1.0 + 3 * 0.5) / 6)
    assert math.isclose(global_efficiency(w, directed=False), 2 * (1 + 1 / 2 + 1 / 3) / 6)
    complete = torch.ones(4, 4)
    assert math.isclose(global_efficiency(complete, lengths="unweighted"), 1.0)
    one_way = torch.zeros(3, 3)
    one_way[1, 0] = 2.0  # only 0 → 1 (length 1/2) is connected: 2 / 6
    assert math.isclose(global_efficiency(one_way), 2.0 / 6.0)
    assert global_efficiency(torch.zeros(5, 5)) == 0.0
    with pytest.raises(ConfigError) as info:
        global_efficiency(torch.ones(1, 1))
    assert info.value.field == "weight"
