"""Known-answer tests for hrsnn.connectivity."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from hrsnn.connectivity import (
    INIT_SCHEMES,
    MASK_KINDS,
    ConnectivitySpec,
    apply_dale,
    clustered_small_world_mask,
    dale_signs,
    dense_mask,
    erdos_renyi_mask,
    fixed_in_degree_mask,
    in_degree,
    init_recurrent_weight,
    out_degree,
    scale_to_spectral_radius,
    small_world_mask,
    spectral_radius,
    synapse_count,
)
from hrsnn.errors import ConfigError


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def ring_lattice_by_hand(n: int, k: int) -> torch.Tensor:
    mask = torch.zeros(n, n, dtype=torch.bool)
    for i in range(n):
        for d in range(1, k // 2 + 1):
            mask[i, (i + d) % n] = True
            mask[i, (i - d) % n] = True
    return mask


def block_of(sizes: list[int]) -> torch.Tensor:
    """Same-cluster indicator built with Python loops."""
    n = sum(sizes)
    labels = []
    for c, size in enumerate(sizes):
        labels += [c] * size
    return torch.tensor([[labels[i] == labels[j] for j in range(n)] for i in range(n)])


# ----- dense / ER


def test_dense_mask_count_and_diagonal():
    n = 17
    mask = dense_mask(n)
    assert mask.dtype == torch.bool and mask.shape == (n, n)
    assert synapse_count(mask) == n * (n - 1)
    assert not mask.diagonal().any()
    assert synapse_count(dense_mask(n, autapses=True)) == n * n


def test_erdos_renyi_matches_hand_draw_and_density():
    n, p = 400, 0.1
    mask = erdos_renyi_mask(n, p, gen(5))
    by_hand = torch.rand(n, n, generator=gen(5)) < p
    by_hand.fill_diagonal_(False)
    assert torch.equal(mask, by_hand)
    expected = p * n * (n - 1)
    sigma = math.sqrt(n * (n - 1) * p * (1 - p))
    assert abs(synapse_count(mask) - expected) < 5 * sigma
    assert not mask.diagonal().any()


def test_erdos_renyi_extremes_and_autapses():
    assert synapse_count(erdos_renyi_mask(10, 0.0, gen())) == 0
    assert synapse_count(erdos_renyi_mask(10, 1.0, gen())) == 90
    assert synapse_count(erdos_renyi_mask(10, 1.0, gen(), autapses=True)) == 100


def test_fixed_in_degree():
    mask = fixed_in_degree_mask(50, 7, gen(1))
    assert torch.equal(in_degree(mask), torch.full((50,), 7))
    assert not mask.diagonal().any()
    full = fixed_in_degree_mask(6, 5, gen(1))
    assert torch.equal(full, dense_mask(6))
    # the documented draw: keys U(0,1) per row, diagonal key 2, the k smallest keys are the sources
    keys = torch.rand(50, 50, generator=gen(1))
    keys.fill_diagonal_(2.0)
    by_hand = torch.zeros(50, 50, dtype=torch.bool)
    for i in range(50):
        by_hand[i, torch.argsort(keys[i], stable=True)[:7]] = True
    assert torch.equal(mask, by_hand)
    with pytest.raises(ConfigError) as err:
        fixed_in_degree_mask(6, 6, gen())
    assert err.value.field == "k"


# ----- small world


def test_small_world_without_rewiring_is_ring_lattice():
    n, k = 40, 6
    mask = small_world_mask(n, k, 0.0, gen(2))
    assert torch.equal(in_degree(mask), torch.full((n,), k))
    assert torch.equal(out_degree(mask), torch.full((n,), k))
    assert set(torch.nonzero(mask[0]).flatten().tolist()) == {1, 2, 3, 37, 38, 39}
    assert torch.equal(mask, ring_lattice_by_hand(n, k))


def test_small_world_full_rewiring_moves_every_edge():
    n, k = 60, 8
    lattice = ring_lattice_by_hand(n, k)
    mask = small_world_mask(n, k, 1.0, gen(3))
    assert not mask.diagonal().any()
    # a duplicate would lower the in-degree below k
    assert torch.equal(in_degree(mask), torch.full((n,), k))
    # k <= n - 1 - k free sources: every lattice edge is rewired away from the lattice
    assert not (mask & lattice).any()


def test_small_world_rewiring_capped_by_free_sources():
    # n=6, k=4: one free source per neuron (i+3), so exactly the first lattice edge (i+1) moves to i+3
    mask = small_world_mask(6, 4, 1.0, gen(4))
    by_hand = torch.zeros(6, 6, dtype=torch.bool)
    for i in range(6):
        for j in (i - 1, i + 2, i - 2, i + 3):
            by_hand[i, j % 6] = True
    assert torch.equal(mask, by_hand)


def test_small_world_rewired_fraction():
    n, k, p = 500, 10, 0.3
    mask = small_world_mask(n, k, p, gen(6))
    rewired = synapse_count(mask & ~ring_lattice_by_hand(n, k))
    sigma = math.sqrt(n * k * p * (1 - p))
    assert abs(rewired - p * n * k) < 5 * sigma
    assert torch.equal(in_degree(mask), torch.full((n,), k))


def test_small_world_autapses_allowed_keeps_in_degree():
    mask = small_world_mask(5, 2, 1.0, gen(7), autapses=True)
    assert torch.equal(in_degree(mask), torch.full((5,), 2))
    assert not (mask & ring_lattice_by_hand(5, 2)).any()


@pytest.mark.parametrize(("n", "k"), [(10, 3), (10, 10), (10, -2)])
def test_small_world_bad_k(n, k):
    with pytest.raises(ConfigError) as err:
        small_world_mask(n, k, 0.1, gen())
    assert err.value.field == "k"
    assert err.value.value == k


def test_small_world_bad_probability_names_field():
    with pytest.raises(ConfigError) as err:
        small_world_mask(10, 2, 1.5, gen())
    assert err.value.field == "p_rewire"
    assert "p_rewire=1.5" in str(err.value)


# ----- clustered


def test_clustered_without_between_edges():
    sizes, k = [30, 40, 50], 6
    mask = clustered_small_world_mask(sizes, k, 0.2, 0.0, gen(8))
    same = block_of(sizes)
    assert not (mask & ~same).any()
    assert torch.equal(in_degree(mask), torch.full((120,), k))
    assert not mask.diagonal().any()
    # each block is the small world drawn with the same generator, cluster by cluster
    g = gen(8)
    start = 0
    for size in sizes:
        block = small_world_mask(size, k, 0.2, g)
        assert torch.equal(mask[start : start + size, start : start + size], block)
        start += size
    # then one rand(n, n) draw decides the between-cluster entries
    between = torch.rand(120, 120, generator=g) < 0.3
    with_between = clustered_small_world_mask(sizes, k, 0.2, 0.3, gen(8))
    assert torch.equal(with_between & ~same, between & ~same)
    assert torch.equal(with_between & same, mask)


def test_clustered_between_edges():
    sizes = [10, 20]
    full = clustered_small_world_mask(sizes, 2, 0.0, 1.0, gen(9))
    assert torch.equal(full & ~block_of(sizes), ~block_of(sizes))
    assert torch.equal(in_degree(full), torch.tensor([2 + 20] * 10 + [2 + 10] * 20))

    sizes, p = [100, 100, 100, 100], 0.05
    mask = clustered_small_world_mask(sizes, 4, 0.1, p, gen(10))
    n_pairs = 400 * 400 - 4 * 100 * 100
    between = synapse_count(mask & ~block_of(sizes))
    assert abs(between - p * n_pairs) < 5 * math.sqrt(n_pairs * p * (1 - p))


def test_clustered_validation():
    with pytest.raises(ConfigError) as err:
        clustered_small_world_mask([10, 4], 4, 0.1, 0.0, gen())
    assert err.value.field == "k"
    with pytest.raises(ConfigError) as err:
        clustered_small_world_mask([10, 0], 2, 0.1, 0.0, gen())
    assert err.value.field == "cluster_sizes"
    with pytest.raises(ConfigError) as err:
        clustered_small_world_mask([10, 10], 2, 0.1, -0.1, gen())
    assert err.value.field == "p_between"


# ----- degrees / counts


def test_degrees_and_counts_by_hand():
    mask = torch.tensor([[False, True, True], [False, False, True], [False, False, False]])
    assert in_degree(mask).tolist() == [2, 1, 0]
    assert out_degree(mask).tolist() == [0, 1, 2]
    assert synapse_count(mask) == 3
    weight = torch.tensor([[5.0, 0.0, 2.0], [0.0, 0.0, 3.0], [0.0, 0.0, 0.0]])
    assert synapse_count(weight) == 3
    assert synapse_count(weight, mask) == 2  # W⊙M: 5 is off-mask, the masked 0 at (0, 1) is not counted


# ----- Dale


@pytest.mark.parametrize(("n", "frac", "n_exc"), [(10, 0.8, 8), (5, 0.5, 2), (7, 0.5, 4), (9, 0.0, 0), (9, 1.0, 9)])
def test_dale_signs_count(n, frac, n_exc):
    signs = dale_signs(n, frac, gen(11))
    assert int((signs == 1).sum()) == n_exc
    assert int((signs == -1).sum()) == n - n_exc
    assert signs.dtype == torch.get_default_dtype()


def test_dale_signs_placement_is_seeded_permutation():
    signs = dale_signs(10, 0.3, gen(12))
    by_hand = -torch.ones(10)
    by_hand[torch.randperm(10, generator=gen(12))[:3]] = 1.0
    assert torch.equal(signs, by_hand)


def test_apply_dale_by_hand():
    weight = torch.tensor([[1.0, -2.0, 0.0], [-3.0, 4.0, -5.0]])
    signs = torch.tensor([1.0, -1.0, -1.0])
    out = apply_dale(weight, signs)
    assert torch.equal(out, torch.tensor([[1.0, -2.0, 0.0], [3.0, -4.0, -5.0]]))
    with pytest.raises(ConfigError) as err:
        apply_dale(weight, torch.tensor([1.0, 0.5, -1.0]))
    assert err.value.field == "signs"
    with pytest.raises(ConfigError) as err:
        apply_dale(weight, torch.tensor([1.0, -1.0]))
    assert err.value.field == "signs"


# ----- spectral radius


def test_spectral_radius_hand_matrices():
    # symmetric: eigenvalues 3 and 1
    assert spectral_radius(torch.tensor([[2.0, 1.0], [1.0, 2.0]])) == pytest.approx(3.0, abs=1e-12)
    # rotation-like: eigenvalues ±2i
    assert spectral_radius(torch.tensor([[0.0, -2.0], [2.0, 0.0]])) == pytest.approx(2.0, abs=1e-12)
    assert spectral_radius(torch.zeros(4, 4)) == 0.0


def test_scale_to_spectral_radius_hand_matrix():
    weight = torch.tensor([[2.0, 1.0], [1.0, 2.0]], dtype=torch.float64)
    out = scale_to_spectral_radius(weight, 1.5)
    assert torch.allclose(out, torch.tensor([[1.0, 0.5], [0.5, 1.0]], dtype=torch.float64), atol=1e-12)
    assert spectral_radius(out) == pytest.approx(1.5, abs=1e-5)
    assert torch.equal(scale_to_spectral_radius(weight, 0.0), torch.zeros(2, 2, dtype=torch.float64))


def test_scale_to_spectral_radius_random():
    mask = erdos_renyi_mask(120, 0.2, gen(13))
    weight = init_recurrent_weight(mask, "normal", gen(14))
    out = scale_to_spectral_radius(weight, 0.9)
    assert spectral_radius(out) == pytest.approx(0.9, abs=1e-5)
    assert torch.equal(out != 0, weight != 0)
    assert out.dtype == weight.dtype


def test_spectral_radius_arpack_path_matches_dense():
    weight = torch.randn(150, 150, generator=gen(15), dtype=torch.float64) / math.sqrt(150)
    dense = spectral_radius(weight)
    assert spectral_radius(weight, dense_limit=10) == pytest.approx(dense, rel=1e-8)
    positive = weight.abs()
    assert spectral_radius(positive, dense_limit=10) == pytest.approx(spectral_radius(positive), rel=1e-8)


def test_dense_solve_restores_thread_count():
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        spectral_radius(torch.eye(3))
        init_recurrent_weight(dense_mask(3), "orthogonal", gen())
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)


def test_scale_zero_radius_raises():
    with pytest.raises(ConfigError) as err:
        scale_to_spectral_radius(torch.zeros(3, 3), 1.0)
    assert err.value.field == "weight"
    acyclic = torch.triu(torch.ones(4, 4), diagonal=1)  # nilpotent: all eigenvalues 0
    with pytest.raises(ConfigError):
        scale_to_spectral_radius(acyclic, 1.0)
    with pytest.raises(ConfigError) as err:
        scale_to_spectral_radius(torch.eye(2), -1.0)
    assert err.value.field == "rho"


# ----- init


@pytest.mark.parametrize("scheme", sorted(INIT_SCHEMES))
def test_init_zero_off_mask(scheme):
    mask = erdos_renyi_mask(50, 0.3, gen(16))
    weight = init_recurrent_weight(mask, scheme, gen(17), gain=2.0)
    assert weight.shape == (50, 50)
    assert not weight[~mask].any()
    if scheme != "zeros":
        assert bool((weight[mask] != 0).all())


def test_init_normal_and_uniform_by_hand():
    mask = erdos_renyi_mask(30, 0.4, gen(18))
    fan_in = mask.sum().item() / 30
    gain = 1.7
    normal = init_recurrent_weight(mask, "normal", gen(19), gain=gain)
    by_hand = torch.randn(30, 30, generator=gen(19)) * (gain / math.sqrt(fan_in)) * mask
    assert torch.allclose(normal, by_hand, atol=1e-7)
    uniform = init_recurrent_weight(mask, "uniform", gen(19), gain=gain)
    bound = gain / math.sqrt(fan_in)
    by_hand = (2 * torch.rand(30, 30, generator=gen(19)) - 1) * bound * mask
    assert torch.allclose(uniform, by_hand, atol=1e-7)
    assert uniform.abs().max() <= bound


def test_init_normal_variance_uses_mean_in_degree():
    n, p, gain = 400, 0.1, 2.0
    mask = erdos_renyi_mask(n, p, gen(20))
    weight = init_recurrent_weight(mask, "normal", gen(21), gain=gain)
    fan_in = synapse_count(mask) / n
    assert weight[mask].var().item() == pytest.approx(gain**2 / fan_in, rel=0.05)


def test_init_orthogonal():
    full = dense_mask(20, autapses=True)
    q = init_recurrent_weight(full, "orthogonal", gen(22), gain=1.5, dtype=torch.float64)
    assert torch.allclose(q @ q.T, 1.5**2 * torch.eye(20, dtype=torch.float64), atol=1e-10)
    mask = erdos_renyi_mask(20, 0.5, gen(23))
    masked = init_recurrent_weight(mask, "orthogonal", gen(22), gain=1.5, dtype=torch.float64)
    assert torch.allclose(masked, q * mask, atol=1e-12)


def test_init_validation():
    mask = dense_mask(4)
    with pytest.raises(ConfigError) as err:
        init_recurrent_weight(mask, "xavier", gen())
    assert err.value.field == "scheme" and err.value.value == "xavier"
    with pytest.raises(ConfigError) as err:
        init_recurrent_weight(mask.float(), "normal", gen())
    assert err.value.field == "mask"
    with pytest.raises(ConfigError) as err:
        init_recurrent_weight(mask, "normal", gen(), gain=-1.0)
    assert err.value.field == "gain"
    with pytest.raises(ConfigError) as err:
        init_recurrent_weight(mask, "normal", 123)  # type: ignore[arg-type]
    assert err.value.field == "generator"


# ----- spec


def test_spec_build_equals_pipeline_by_hand():
    """build() from raw draws in its documented order: the Erdős–Rényi mask (one rand), the normal weight (one
    randn), Dale's signs (one randperm), then W·ρ*/ρ(W) with ρ from numpy's eigenvalues."""
    n, p, gain, rho = 40, 0.25, 1.3, 0.95
    spec = ConnectivitySpec(
        kind="erdos_renyi", p=p, dale=True, frac_excitatory=0.75, spectral_radius=rho, init="normal", gain=gain
    )
    mask, weight = spec.build(n, gen(24))
    g = gen(24)
    m = torch.rand(n, n, generator=g) < p
    m.fill_diagonal_(False)
    fan_in = int(m.sum()) / n
    w = torch.randn(n, n, generator=g) * (gain / math.sqrt(fan_in))
    signs = -torch.ones(n)
    signs[torch.randperm(n, generator=g)[:30]] = 1.0  # round(0.75 · 40) excitatory
    w = torch.where(m, w.abs() * signs, 0.0)
    radius = float(np.abs(np.linalg.eigvals(w.double().numpy())).max())
    w = w * (rho / radius)
    assert torch.equal(mask, m)
    torch.testing.assert_close(weight, w, rtol=1e-5, atol=1e-7)
    assert float(np.abs(np.linalg.eigvals(weight.double().numpy())).max()) == pytest.approx(rho, abs=1e-5)
    assert torch.equal(torch.sign(weight), torch.where(m, signs[None, :].expand(n, n), 0.0))


def test_spec_build_small_world_with_dale_keeps_structure():
    spec = ConnectivitySpec(kind="small_world", k=8, p_rewire=0.2, dale=True, spectral_radius=0.95, init="normal")
    mask, weight = spec.build(80, gen(24))
    assert torch.equal(in_degree(mask), torch.full((80,), 8))
    assert not mask.diagonal().any() and not weight[~mask].any() and bool((weight[mask] != 0).all())
    column_signs = torch.sign(weight).sum(0)  # one sign per presynaptic column
    assert torch.equal(column_signs.abs(), out_degree(mask).to(column_signs.dtype))
    assert spectral_radius(weight) == pytest.approx(0.95, abs=1e-5)


def test_synapse_count_ignores_whatever_masked_entries_hold():
    mask = erdos_renyi_mask(30, 0.3, gen(26))
    weight = torch.randn(30, 30, generator=gen(27))
    weight[~mask] = torch.tensor([math.nan, math.inf, -math.inf]).repeat(900)[: int((~mask).sum())]
    weight[0, mask[0]] = 0.0  # a synapse of weight exactly 0 does not count
    assert synapse_count(weight, mask) == int(mask.sum()) - int(mask[0].sum())


@pytest.mark.parametrize("kind", sorted(MASK_KINDS))
def test_spec_build_every_kind(kind):
    spec = ConnectivitySpec(kind=kind, k=4, p=0.2, spectral_radius=1.0)
    mask, weight = spec.build(40, gen(25), cluster_sizes=[20, 20])
    assert mask.shape == weight.shape == (40, 40)
    assert not mask.diagonal().any()
    assert not weight[~mask].any()
    assert spectral_radius(weight) == pytest.approx(1.0, abs=1e-5)


def test_spec_reproducible():
    spec = ConnectivitySpec(kind="clustered_small_world", k=4, dale=True, spectral_radius=0.8)
    a = spec.build(60, gen(26), cluster_sizes=[20, 40])
    b = spec.build(60, gen(26), cluster_sizes=[20, 40])
    c = spec.build(60, gen(27), cluster_sizes=[20, 40])
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], c[1])


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"kind": "ring"}, "connectivity.kind"),
        ({"p": 1.5}, "connectivity.p"),
        ({"p_rewire": -0.1}, "connectivity.p_rewire"),
        ({"p_between": float("nan")}, "connectivity.p_between"),
        ({"kind": "small_world", "k": 5}, "connectivity.k"),
        ({"k": 2.0}, "connectivity.k"),
        ({"autapses": 1}, "connectivity.autapses"),
        ({"dale": "yes"}, "connectivity.dale"),
        ({"frac_excitatory": 1.2}, "connectivity.frac_excitatory"),
        ({"spectral_radius": -1.0}, "connectivity.spectral_radius"),
        ({"init": "xavier"}, "connectivity.init"),
        ({"gain": -2.0}, "connectivity.gain"),
        ({"init": "zeros", "spectral_radius": 1.0}, "connectivity.spectral_radius"),
    ],
)
def test_spec_validation_names_field(kwargs, field):
    with pytest.raises(ConfigError) as err:
        ConnectivitySpec(**kwargs)
    assert err.value.field == field
    assert str(err.value).startswith(f"{field}=")


def test_spec_fixed_in_degree_allows_odd_k():
    mask, _ = ConnectivitySpec(kind="fixed_in_degree", k=5).build(20, gen())
    assert torch.equal(in_degree(mask), torch.full((20,), 5))


def test_spec_build_errors():
    with pytest.raises(ConfigError) as err:
        ConnectivitySpec(kind="clustered_small_world", k=4).build(40, gen())
    assert err.value.field == "cluster_sizes"
    with pytest.raises(ConfigError) as err:
        ConnectivitySpec(kind="clustered_small_world", k=4).build(40, gen(), cluster_sizes=[20, 10])
    assert err.value.field == "cluster_sizes"
    with pytest.raises(ConfigError) as err:
        ConnectivitySpec(kind="small_world", k=10).build(8, gen())
    assert err.value.field == "connectivity.k"
    with pytest.raises(ConfigError) as err:
        ConnectivitySpec(kind="erdos_renyi", p=0.0, spectral_radius=1.0).build(8, gen())
    assert err.value.field == "connectivity.spectral_radius"
    with pytest.raises(ConfigError) as err:
        ConnectivitySpec().build(0, gen())
    assert err.value.field == "n"


def test_spec_dict_round_trip_and_frozen():
    spec = ConnectivitySpec(kind="erdos_renyi", p=0.3, dale=True, spectral_radius=1.2, init="uniform")
    d = spec.to_dict()
    assert d["kind"] == "erdos_renyi" and d["spectral_radius"] == 1.2
    assert ConnectivitySpec.from_dict(d) == spec
    assert ConnectivitySpec.from_dict({}) == ConnectivitySpec()
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.p = 0.5  # type: ignore[misc]


def test_spec_from_dict_errors_use_section_name():
    with pytest.raises(ConfigError) as err:
        ConnectivitySpec.from_dict({"p": 2}, field="model.connectivity")
    assert err.value.field == "model.connectivity.p" and err.value.value == 2
    with pytest.raises(ConfigError) as err:
        ConnectivitySpec.from_dict({"density": 0.1})
    assert err.value.field == "connectivity.density"
    with pytest.raises(ConfigError) as err:
        ConnectivitySpec.from_dict([("p", 0.1)], field="net")  # type: ignore[arg-type]
    assert err.value.field == "net"
