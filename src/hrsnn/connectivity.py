"""Recurrent connectivity: masks, initial weights, Dale's law and spectral-radius control.

The effective recurrent weight of an hrsnn layer is ``W ⊙ M``. ``M`` is a boolean mask of shape ``(n, n)``
with the ``nn.Linear`` layout ``(post, pre)``:

    M[i, j] = True  ⇔  a synapse from presynaptic neuron j to postsynaptic neuron i,

so row ``i`` lists the inputs of neuron ``i`` (in-degree = row sum) and column ``j`` the outputs of neuron
``j`` (out-degree = column sum). Autapses (``M[i, i]``) are excluded unless ``autapses=True``.

Every random function takes an explicit ``torch.Generator``; for a fixed generator state the result is fully
determined, and each function documents the order in which it draws from the generator.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from numbers import Real
from types import MappingProxyType
from typing import Any

import numpy as np
import torch
from torch import Tensor

from hrsnn._threads import single_threaded
from hrsnn.errors import ConfigError

__all__ = [
    "INIT_SCHEMES",
    "MASK_KINDS",
    "ConnectivitySpec",
    "apply_dale",
    "clustered_small_world_mask",
    "dale_signs",
    "dense_mask",
    "erdos_renyi_mask",
    "fixed_in_degree_mask",
    "in_degree",
    "init_recurrent_weight",
    "out_degree",
    "scale_to_spectral_radius",
    "small_world_mask",
    "spectral_radius",
    "synapse_count",
]

# Rows of uniform keys drawn at once when sampling sources without replacement (bounds memory at ~16 MiB).
_KEY_BLOCK_ELEMENTS = 1 << 22


# --------------------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------------------


def _check_int(field: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(field, value, "must be an integer")
    if value < minimum:
        raise ConfigError(field, value, f"must be >= {minimum}")
    return value


def _check_real(field: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ConfigError(field, value, "must be a real number")
    out = float(value)
    if not math.isfinite(out):
        raise ConfigError(field, value, "must be finite")
    return out


def _check_probability(field: str, value: Any) -> float:
    out = _check_real(field, value)
    if not 0.0 <= out <= 1.0:
        raise ConfigError(field, value, "must lie in [0, 1]")
    return out


def _check_nonnegative(field: str, value: Any) -> float:
    out = _check_real(field, value)
    if out < 0.0:
        raise ConfigError(field, value, "must be >= 0")
    return out


def _check_bool(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(field, value, "must be a bool")
    return value


def _check_generator(generator: Any) -> torch.Generator:
    if not isinstance(generator, torch.Generator):
        raise ConfigError("generator", type(generator).__name__, "must be a torch.Generator")
    return generator


def _check_square(field: str, x: Any) -> Tensor:
    if not isinstance(x, Tensor):
        raise ConfigError(field, type(x).__name__, "must be a torch.Tensor")
    if x.dim() != 2 or x.shape[0] != x.shape[1]:
        raise ConfigError(field, tuple(x.shape), "must be a square matrix of shape (n, n)")
    return x


def _check_mask(field: str, mask: Any) -> Tensor:
    mask = _check_square(field, mask)
    if mask.dtype != torch.bool:
        raise ConfigError(field, str(mask.dtype), "must be a bool tensor")
    return mask


def _check_float_tensor(field: str, x: Tensor) -> Tensor:
    if not torch.is_floating_point(x):
        raise ConfigError(field, str(x.dtype), "must be a floating-point tensor")
    return x


# --------------------------------------------------------------------------------------------------
# mask generators
# --------------------------------------------------------------------------------------------------


def _without_diagonal(mask: Tensor, autapses: bool) -> Tensor:
    if not autapses:
        mask.fill_diagonal_(False)
    return mask


def _sample_sources(forbidden: Tensor, counts: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Per row ``i``, draw ``counts[i]`` distinct columns uniformly among those not ``forbidden[i]``.

    Method: each allowed column gets a key ``u ~ U[0, 1)`` (forbidden columns get key 2), and the
    ``counts[i]`` smallest keys are taken: a uniform sample without replacement. Keys are drawn with one
    ``torch.rand`` call per block of rows, for the rows with ``counts > 0`` in increasing order. Requires
    ``counts[i]`` ≤ number of allowed columns of row ``i``.

    Returns:
        ``(rows, cols)`` long tensors of the chosen entries.
    """
    n_cols = forbidden.shape[1]
    active = torch.nonzero(counts > 0).flatten()
    rows_out: list[Tensor] = []
    cols_out: list[Tensor] = []
    block = max(1, _KEY_BLOCK_ELEMENTS // max(1, n_cols))
    positions = torch.arange(n_cols)
    for start in range(0, active.numel(), block):
        rows = active[start : start + block]
        keys = torch.rand(rows.numel(), n_cols, generator=generator)
        keys.masked_fill_(forbidden[rows], 2.0)
        order = torch.sort(keys, dim=1, stable=True).indices
        take = positions[None, :] < counts[rows][:, None]
        rows_out.append(rows[:, None].expand_as(order)[take])
        cols_out.append(order[take])
    if not rows_out:
        empty = torch.empty(0, dtype=torch.long)
        return empty, empty
    return torch.cat(rows_out), torch.cat(cols_out)


def dense_mask(n: int, autapses: bool = False) -> Tensor:
    """All-to-all mask: ``M[i, j] = True`` for all ``i ≠ j`` (and ``i = j`` if ``autapses``).

    Synapse count: ``n(n − 1)`` without autapses, ``n²`` with them.

    Args:
        n: number of neurons (≥ 1).
        autapses: keep self-connections.

    Returns:
        Bool tensor of shape ``(n, n)``.
    """
    _check_int("n", n, 1)
    _check_bool("autapses", autapses)
    return _without_diagonal(torch.ones(n, n, dtype=torch.bool), autapses)


def erdos_renyi_mask(n: int, p: float, generator: torch.Generator, autapses: bool = False) -> Tensor:
    """Directed Erdős–Rényi mask: each ordered pair ``(i, j)`` is a synapse independently with prob. ``p``.

    ``M[i, j] = (U_ij < p)`` with ``U = torch.rand(n, n, generator=generator)`` (one draw), diagonal then
    cleared unless ``autapses``. Expected synapse count: ``p·n(n − 1)`` without autapses.

    Args:
        n: number of neurons (≥ 1).
        p: connection probability in [0, 1].
        generator: source of randomness.
        autapses: allow self-connections.

    Returns:
        Bool tensor of shape ``(n, n)``.
    """
    _check_int("n", n, 1)
    p = _check_probability("p", p)
    _check_bool("autapses", autapses)
    _check_generator(generator)
    mask = torch.rand(n, n, generator=generator) < p
    return _without_diagonal(mask, autapses)


def fixed_in_degree_mask(n: int, k: int, generator: torch.Generator, autapses: bool = False) -> Tensor:
    """Random mask in which every neuron receives exactly ``k`` synapses from distinct, uniform sources.

    Sources of neuron ``i`` are a uniform sample without replacement from ``{0..n−1} \\ {i}`` (or all neurons
    if ``autapses``). Synapse count: ``n·k``.

    Args:
        n: number of neurons (≥ 1).
        k: in-degree, ``0 ≤ k ≤ n − 1`` (``≤ n`` with autapses).
        generator: source of randomness.
        autapses: allow self-connections.

    Returns:
        Bool tensor of shape ``(n, n)``.
    """
    _check_int("n", n, 1)
    _check_int("k", k, 0)
    _check_bool("autapses", autapses)
    _check_generator(generator)
    limit = n if autapses else n - 1
    if k > limit:
        raise ConfigError("k", k, f"must be <= {limit} for n={n} (autapses={autapses})")
    forbidden = torch.zeros(n, n, dtype=torch.bool)
    if not autapses:
        forbidden.fill_diagonal_(True)
    rows, cols = _sample_sources(forbidden, torch.full((n,), k, dtype=torch.long), generator)
    mask = torch.zeros(n, n, dtype=torch.bool)
    mask[rows, cols] = True
    return mask


def _ring_lattice_sources(n: int, k: int) -> Tensor:
    """Presynaptic indices of the ring lattice, shape ``(n, k)``: row ``i`` is ``i+1, i−1, i+2, …`` mod n."""
    steps = torch.arange(1, k // 2 + 1)
    offsets = torch.stack([steps, -steps], dim=1).reshape(-1)
    return (torch.arange(n)[:, None] + offsets[None, :]) % n


def small_world_mask(n: int, k: int, p_rewire: float, generator: torch.Generator, autapses: bool = False) -> Tensor:
    """Directed Watts–Strogatz mask with fixed in-degree ``k``.

    Convention (exact):

    1. Ring lattice: neuron ``i`` receives from ``(i ± d) mod n`` for ``d = 1..k/2``; its lattice edges are
       listed in the order ``d = +1, −1, +2, −2, …, +k/2, −k/2``. The lattice never contains self-loops.
    2. Flags: ``F = torch.rand(n, k, generator=generator) < p_rewire`` (one draw); ``F[i, c]`` marks the
       ``c``-th lattice edge of neuron ``i`` for rewiring.
    3. Every neuron has ``m = n − 1 − k`` free sources (``n − k`` with ``autapses``, where ``i`` itself is
       free): neurons that are not lattice sources of ``i``. If more than ``m`` edges of ``i`` are flagged,
       only the first ``m`` flagged edges (in lattice order) are rewired; the others stay.
    4. The rewired edges of neuron ``i`` lose their presynaptic end, and as many new presynaptic neurons are
       drawn uniformly *without replacement* from the free sources of ``i`` (see ``_sample_sources``).

    Hence rewiring moves only the presynaptic end, never creates a duplicate or (without ``autapses``) a
    self-loop, and keeps the in-degree of every neuron exactly ``k``; ``p_rewire = 0`` gives the ring lattice,
    ``p_rewire = 1`` a random graph with fixed in-degree ``k`` (when ``k ≤ m``).

    Args:
        n: number of neurons (≥ 1).
        k: in-degree of the lattice; even, ``0 ≤ k ≤ n − 1``.
        p_rewire: rewiring probability in [0, 1].
        generator: source of randomness.
        autapses: allow rewired edges to become self-connections.

    Returns:
        Bool tensor of shape ``(n, n)``.
    """
    _check_int("n", n, 1)
    _check_int("k", k, 0)
    if k % 2 != 0:
        raise ConfigError("k", k, "must be even (k/2 neighbours on each side of the ring)")
    if k > n - 1:
        raise ConfigError("k", k, f"must be <= n - 1 = {n - 1}")
    p_rewire = _check_probability("p_rewire", p_rewire)
    _check_bool("autapses", autapses)
    _check_generator(generator)

    sources = _ring_lattice_sources(n, k)
    lattice = torch.zeros(n, n, dtype=torch.bool)
    lattice.scatter_(1, sources, True)

    flags = torch.rand(n, k, generator=generator) < p_rewire
    n_free = n - 1 - k + int(autapses)
    flags &= torch.cumsum(flags.long(), dim=1) <= n_free
    counts = flags.sum(dim=1)

    mask = lattice.clone()
    mask[torch.arange(n)[:, None].expand_as(sources)[flags], sources[flags]] = False
    forbidden = lattice.clone()
    if not autapses:
        forbidden.fill_diagonal_(True)
    rows, cols = _sample_sources(forbidden, counts, generator)
    mask[rows, cols] = True
    return mask


def clustered_small_world_mask(
    cluster_sizes: Sequence[int],
    k: int,
    p_rewire: float,
    p_between: float,
    generator: torch.Generator,
    autapses: bool = False,
) -> Tensor:
    """Clustered small-world ("CHRSNN") mask: small worlds inside clusters, Erdős–Rényi edges between them.

    Neurons are split into contiguous clusters ``C_c = [s_c, s_c + size_c)`` in the given order. For ``i, j``
    in the same cluster, ``M[i, j]`` is ``small_world_mask(size_c, k, p_rewire)`` (drawn cluster by cluster,
    in order); for ``i, j`` in different clusters ``M[i, j] = (U_ij < p_between)`` with
    ``U = torch.rand(n, n, generator=generator)`` drawn once after all clusters. So every neuron has exactly
    ``k`` inputs from its own cluster, and in expectation ``p_between·(n − size_c)`` from the others.

    Args:
        cluster_sizes: sizes of the clusters (each ≥ k + 1); ``n = sum(cluster_sizes)``.
        k: within-cluster in-degree; even.
        p_rewire: within-cluster rewiring probability in [0, 1].
        p_between: between-cluster connection probability in [0, 1].
        generator: source of randomness.
        autapses: allow self-connections (only rewiring can create them).

    Returns:
        Bool tensor of shape ``(n, n)``.
    """
    if isinstance(cluster_sizes, str | bytes) or not isinstance(cluster_sizes, Sequence):
        raise ConfigError("cluster_sizes", cluster_sizes, "must be a sequence of positive integers")
    if len(cluster_sizes) == 0:
        raise ConfigError("cluster_sizes", cluster_sizes, "must contain at least one cluster")
    for size in cluster_sizes:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ConfigError("cluster_sizes", list(cluster_sizes), "every size must be an integer >= 1")
    _check_int("k", k, 0)
    smallest = min(cluster_sizes)
    if k > smallest - 1:
        raise ConfigError("k", k, f"must be <= smallest cluster size - 1 = {smallest - 1}")
    p_between = _check_probability("p_between", p_between)
    _check_generator(generator)

    n = sum(cluster_sizes)
    mask = torch.zeros(n, n, dtype=torch.bool)
    same_cluster = torch.zeros(n, n, dtype=torch.bool)
    start = 0
    for size in cluster_sizes:
        stop = start + size
        mask[start:stop, start:stop] = small_world_mask(size, k, p_rewire, generator, autapses)
        same_cluster[start:stop, start:stop] = True
        start = stop
    between = torch.rand(n, n, generator=generator) < p_between
    mask |= between & ~same_cluster
    return mask


# --------------------------------------------------------------------------------------------------
# degrees and counts
# --------------------------------------------------------------------------------------------------


def synapse_count(mask_or_weight: Tensor, mask: Tensor | None = None) -> int:
    """Number of synapses: ``Σ_ij [X_ij ≠ 0]`` with ``X = mask_or_weight`` (⊙ ``mask`` if given).

    For a bool mask this counts True entries; for a weight it counts nonzero entries of ``W`` (or of ``W ⊙ M``
    when ``mask`` is passed), so synapses whose weight is exactly 0 are not counted. Entries outside ``mask``
    never count, whatever they hold (NaN and ±inf included); without ``mask`` a NaN counts as nonzero.

    Args:
        mask_or_weight: bool mask or weight tensor.
        mask: optional bool mask applied to ``mask_or_weight`` first (same shape).

    Returns:
        The count as a Python int.
    """
    if not isinstance(mask_or_weight, Tensor):
        raise ConfigError("mask_or_weight", type(mask_or_weight).__name__, "must be a torch.Tensor")
    x = mask_or_weight != 0
    if mask is not None:
        mask = _check_mask("mask", mask)
        if mask.shape != mask_or_weight.shape:
            raise ConfigError("mask", tuple(mask.shape), f"must have shape {tuple(mask_or_weight.shape)}")
        x = x & mask
    return int(torch.count_nonzero(x).item())


def in_degree(mask: Tensor) -> Tensor:
    """In-degree of every neuron: ``d_in[i] = Σ_j [M_ij ≠ 0]`` (row sums; inputs of postsynaptic ``i``).

    Args:
        mask: bool mask or weight of shape ``(n, n)``.

    Returns:
        Long tensor of shape ``(n,)``.
    """
    return (_check_square("mask", mask) != 0).sum(dim=1)


def out_degree(mask: Tensor) -> Tensor:
    """Out-degree of every neuron: ``d_out[j] = Σ_i [M_ij ≠ 0]`` (column sums; outputs of presynaptic ``j``).

    Args:
        mask: bool mask or weight of shape ``(n, n)``.

    Returns:
        Long tensor of shape ``(n,)``.
    """
    return (_check_square("mask", mask) != 0).sum(dim=0)


# --------------------------------------------------------------------------------------------------
# Dale's law
# --------------------------------------------------------------------------------------------------


def dale_signs(n: int, frac_excitatory: float, generator: torch.Generator, dtype: torch.dtype | None = None) -> Tensor:
    """Sign of every presynaptic neuron: ``+1`` (excitatory) or ``−1`` (inhibitory).

    Exactly ``n_E = round(frac_excitatory · n)`` neurons (Python ``round``: halves go to the even integer) are
    excitatory: the first ``n_E`` entries of ``torch.randperm(n, generator=generator)``.

    Args:
        n: number of neurons (≥ 1).
        frac_excitatory: fraction of excitatory neurons in [0, 1].
        generator: source of randomness.
        dtype: floating dtype of the result (default: ``torch.get_default_dtype()``).

    Returns:
        Tensor of shape ``(n,)`` with entries ±1.
    """
    _check_int("n", n, 1)
    frac_excitatory = _check_probability("frac_excitatory", frac_excitatory)
    _check_generator(generator)
    n_exc = round(frac_excitatory * n)
    signs = -torch.ones(n, dtype=dtype or torch.get_default_dtype())
    signs[torch.randperm(n, generator=generator)[:n_exc]] = 1.0
    return signs


def apply_dale(weight: Tensor, signs: Tensor) -> Tensor:
    """Impose Dale's law on a ``(post, pre)`` weight: ``W'_ij = |W_ij| · s_j``.

    Every synapse takes the sign of its presynaptic (column) neuron; zeros stay zero, so a masked weight stays
    masked.

    Args:
        weight: floating tensor of shape ``(n_post, n_pre)``.
        signs: tensor of shape ``(n_pre,)`` with entries ±1 (see :func:`dale_signs`).

    Returns:
        New tensor of the same shape and dtype as ``weight``.
    """
    if not isinstance(weight, Tensor) or weight.dim() != 2:
        raise ConfigError("weight", getattr(weight, "shape", weight), "must be a 2-D tensor (n_post, n_pre)")
    _check_float_tensor("weight", weight)
    if not isinstance(signs, Tensor) or signs.shape != (weight.shape[1],):
        raise ConfigError("signs", getattr(signs, "shape", signs), f"must have shape ({weight.shape[1]},)")
    if not bool(((signs == 1) | (signs == -1)).all()):
        raise ConfigError("signs", signs.unique().tolist(), "entries must be +1 or -1")
    return weight.abs() * signs.to(device=weight.device, dtype=weight.dtype)[None, :]


# --------------------------------------------------------------------------------------------------
# spectral radius
# --------------------------------------------------------------------------------------------------


def _arpack_radius(matrix: Tensor) -> float | None:
    """Largest |eigenvalue| from ARPACK, or None if it did not converge.

    ARPACK is asked for the ``min(10, n − 2)`` largest-magnitude eigenvalues (not just one): for random
    matrices many eigenvalues crowd the spectral edge, and a single Ritz value often converges to a
    near-maximal one instead of the maximum.
    """
    from scipy.sparse import csr_matrix
    from scipy.sparse.linalg import ArpackNoConvergence, eigs

    n = matrix.shape[0]
    n_values = min(10, n - 2)
    n_basis = min(n, max(2 * n_values + 1, 64))
    # deterministic start vector: no randomness leaks from numpy's global state
    start = torch.rand(n, generator=torch.Generator().manual_seed(0), dtype=torch.float64).numpy() + 0.5
    with single_threaded():
        try:
            values = eigs(
                csr_matrix(matrix.numpy()),
                k=n_values,
                ncv=n_basis,
                which="LM",
                v0=start,
                return_eigenvectors=False,
            )
        except ArpackNoConvergence:
            return None
    return float(np.abs(values).max())


def spectral_radius(weight: Tensor, dense_limit: int = 2000) -> float:
    """Spectral radius ``ρ(W) = max_k |λ_k(W)|``.

    Computed in float64 with ``torch.linalg.eigvals`` for ``n ≤ dense_limit`` (exact up to rounding). Above
    it, with ARPACK (``scipy.sparse.linalg.eigs``, the 10 largest-magnitude eigenvalues, falling back to the
    dense solver if ARPACK does not converge): much faster for sparse masks, but iterative, so when many
    eigenvalues share nearly the largest modulus it can return one slightly below the maximum. Raise
    ``dense_limit`` when the exact value matters more than time. The dense solve runs on one torch thread
    (restored afterwards), which is far faster than a threaded solve on shared cores.

    Args:
        weight: square real tensor ``(n, n)``; must be finite.
        dense_limit: largest ``n`` solved with the dense eigen-solver.

    Returns:
        ``ρ(W)`` as a Python float (0.0 for an empty matrix).
    """
    weight = _check_square("weight", weight)
    _check_int("dense_limit", dense_limit, 0)
    matrix = weight.detach().to(device="cpu", dtype=torch.float64)
    if not bool(torch.isfinite(matrix).all()):
        raise ConfigError("weight", "non-finite entries", "must be finite")
    n = matrix.shape[0]
    if n == 0 or not bool(matrix.any()):
        return 0.0
    if n > dense_limit and n > 2:
        radius = _arpack_radius(matrix)
        if radius is not None:
            return radius
    with single_threaded():
        eigenvalues = torch.linalg.eigvals(matrix)
    return float(eigenvalues.abs().max().item())


def scale_to_spectral_radius(weight: Tensor, rho: float, dense_limit: int = 2000) -> Tensor:
    """Rescale a weight to spectral radius ``rho``: ``W' = W · rho / ρ(W)``, so that ``ρ(W') = rho``.

    Args:
        weight: square floating tensor ``(n, n)``.
        rho: target spectral radius (≥ 0); ``rho = 0`` returns zeros.
        dense_limit: passed to :func:`spectral_radius`.

    Returns:
        New tensor with the same shape, dtype and zero pattern as ``weight``.

    Raises:
        ConfigError: ``rho`` negative or non-finite, or ``ρ(W) = 0`` (e.g. all-zero or acyclic) while
            ``rho > 0``.
    """
    weight = _check_float_tensor("weight", _check_square("weight", weight))
    rho = _check_nonnegative("rho", rho)
    if rho == 0.0:
        return torch.zeros_like(weight)
    radius = spectral_radius(weight, dense_limit=dense_limit)
    if radius == 0.0:
        raise ConfigError(
            "weight",
            radius,
            f"spectral radius is 0 (all-zero or acyclic weight); cannot scale it to rho={rho}",
        )
    return weight * (rho / radius)


# --------------------------------------------------------------------------------------------------
# weight initialisation
# --------------------------------------------------------------------------------------------------


def _mean_fan_in(mask: Tensor) -> float:
    """``fan_in = (1/n) Σ_ij M_ij``: the mean in-degree of the mask."""
    return float(mask.sum().item()) / mask.shape[0]


def _init_orthogonal(mask: Tensor, generator: torch.Generator, gain: float, dtype: torch.dtype) -> Tensor:
    weight = torch.empty(mask.shape, dtype=dtype)
    with single_threaded():  # QR factorisation: same shared-core slowdown as the eigen-solver
        torch.nn.init.orthogonal_(weight, gain=gain, generator=generator)
    return weight * mask


def _init_normal(mask: Tensor, generator: torch.Generator, gain: float, dtype: torch.dtype) -> Tensor:
    fan_in = _mean_fan_in(mask)
    draw = torch.randn(mask.shape, generator=generator, dtype=dtype)
    if fan_in == 0.0:
        return torch.zeros(mask.shape, dtype=dtype)
    return draw * (gain / math.sqrt(fan_in)) * mask


def _init_uniform(mask: Tensor, generator: torch.Generator, gain: float, dtype: torch.dtype) -> Tensor:
    fan_in = _mean_fan_in(mask)
    draw = torch.rand(mask.shape, generator=generator, dtype=dtype)
    if fan_in == 0.0:
        return torch.zeros(mask.shape, dtype=dtype)
    bound = gain / math.sqrt(fan_in)
    return (2.0 * draw - 1.0) * bound * mask


def _init_zeros(mask: Tensor, generator: torch.Generator, gain: float, dtype: torch.dtype) -> Tensor:
    del generator, gain
    return torch.zeros(mask.shape, dtype=dtype)


_Initializer = Callable[[Tensor, torch.Generator, float, torch.dtype], Tensor]

INIT_SCHEMES: Mapping[str, _Initializer] = MappingProxyType(
    {
        "orthogonal": _init_orthogonal,
        "normal": _init_normal,
        "uniform": _init_uniform,
        "zeros": _init_zeros,
    }
)
"""Read-only map from an initialisation scheme name to its function."""


def init_recurrent_weight(
    mask: Tensor,
    scheme: str,
    generator: torch.Generator,
    gain: float = 1.0,
    dtype: torch.dtype | None = None,
) -> Tensor:
    """Initial recurrent weight ``W ⊙ M`` (zero wherever ``mask`` is False).

    With ``fan_in = (1/n) Σ_ij M_ij`` (mean in-degree of the mask) and one draw from ``generator``:

    * ``"orthogonal"``: ``W = gain · Q ⊙ M`` with ``Q`` from ``torch.nn.init.orthogonal_`` (before masking).
    * ``"normal"``: ``W_ij = Z_ij · gain / √fan_in · M_ij``, ``Z = torch.randn(n, n)``, i.e.
      ``N(0, gain²/fan_in)``.
    * ``"uniform"``: ``W_ij = (2U_ij − 1) · gain / √fan_in · M_ij``, ``U = torch.rand(n, n)``, i.e.
      ``U(−gain/√fan_in, gain/√fan_in)``.
    * ``"zeros"``: ``W = 0`` (no draw).

    For an empty mask (``fan_in = 0``) "normal" and "uniform" return zeros.

    Args:
        mask: bool mask ``(n, n)``.
        scheme: one of :data:`INIT_SCHEMES`.
        generator: source of randomness.
        gain: non-negative scale.
        dtype: floating dtype (default: ``torch.get_default_dtype()``).

    Returns:
        Tensor of shape ``(n, n)``.
    """
    mask = _check_mask("mask", mask)
    initializer = INIT_SCHEMES.get(scheme) if isinstance(scheme, str) else None
    if initializer is None:
        raise ConfigError("scheme", scheme, f"must be one of {sorted(INIT_SCHEMES)}")
    gain = _check_nonnegative("gain", gain)
    _check_generator(generator)
    dtype = dtype or torch.get_default_dtype()
    if not dtype.is_floating_point:
        raise ConfigError("dtype", str(dtype), "must be a floating-point dtype")
    return initializer(mask.cpu(), generator, gain, dtype).to(mask.device)


# --------------------------------------------------------------------------------------------------
# spec
# --------------------------------------------------------------------------------------------------


def _build_dense(spec: ConnectivitySpec, n: int, generator: torch.Generator, sizes: Sequence[int]) -> Tensor:
    del generator, sizes
    return dense_mask(n, spec.autapses)


def _build_erdos_renyi(spec: ConnectivitySpec, n: int, generator: torch.Generator, sizes: Sequence[int]) -> Tensor:
    del sizes
    return erdos_renyi_mask(n, spec.p, generator, spec.autapses)


def _build_fixed_in_degree(spec: ConnectivitySpec, n: int, generator: torch.Generator, sizes: Sequence[int]) -> Tensor:
    del sizes
    return fixed_in_degree_mask(n, spec.k, generator, spec.autapses)


def _build_small_world(spec: ConnectivitySpec, n: int, generator: torch.Generator, sizes: Sequence[int]) -> Tensor:
    del sizes
    return small_world_mask(n, spec.k, spec.p_rewire, generator, spec.autapses)


def _build_clustered(spec: ConnectivitySpec, n: int, generator: torch.Generator, sizes: Sequence[int]) -> Tensor:
    return clustered_small_world_mask(sizes, spec.k, spec.p_rewire, spec.p_between, generator, spec.autapses)


_MaskBuilder = Callable[["ConnectivitySpec", int, torch.Generator, Sequence[int]], Tensor]

MASK_KINDS: Mapping[str, _MaskBuilder] = MappingProxyType(
    {
        "dense": _build_dense,
        "erdos_renyi": _build_erdos_renyi,
        "fixed_in_degree": _build_fixed_in_degree,
        "small_world": _build_small_world,
        "clustered_small_world": _build_clustered,
    }
)
"""Read-only map from a connectivity kind to the function that builds its mask from a spec."""

_NEEDS_CLUSTERS = frozenset({"clustered_small_world"})
_NEEDS_EVEN_K = frozenset({"small_world", "clustered_small_world"})
_PREFIX = "connectivity"


@dataclass(frozen=True)
class ConnectivitySpec:
    """How to build a recurrent mask and its initial weight.

    Attributes:
        kind: one of :data:`MASK_KINDS` ("dense", "erdos_renyi", "fixed_in_degree", "small_world",
            "clustered_small_world").
        p: connection probability for "erdos_renyi".
        k: in-degree for "fixed_in_degree", lattice in-degree for the small-world kinds (even there).
        p_rewire: rewiring probability of the small-world kinds.
        p_between: between-cluster connection probability of "clustered_small_world".
        autapses: allow self-connections.
        dale: impose Dale's law (see :func:`apply_dale`).
        frac_excitatory: fraction of excitatory neurons when ``dale``.
        spectral_radius: if not None, the weight is rescaled to this spectral radius last.
        init: one of :data:`INIT_SCHEMES`.
        gain: gain passed to the initialiser.
    """

    kind: str = "dense"
    p: float = 0.1
    k: int = 10
    p_rewire: float = 0.1
    p_between: float = 0.01
    autapses: bool = False
    dale: bool = False
    frac_excitatory: float = 0.8
    spectral_radius: float | None = None
    init: str = "orthogonal"
    gain: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.kind, str) or self.kind not in MASK_KINDS:
            raise ConfigError(f"{_PREFIX}.kind", self.kind, f"must be one of {sorted(MASK_KINDS)}")
        if not isinstance(self.init, str) or self.init not in INIT_SCHEMES:
            raise ConfigError(f"{_PREFIX}.init", self.init, f"must be one of {sorted(INIT_SCHEMES)}")
        _check_int(f"{_PREFIX}.k", self.k, 0)
        if self.kind in _NEEDS_EVEN_K and self.k % 2 != 0:
            raise ConfigError(f"{_PREFIX}.k", self.k, f"must be even for kind={self.kind!r}")
        for name in ("p", "p_rewire", "p_between", "frac_excitatory"):
            object.__setattr__(self, name, _check_probability(f"{_PREFIX}.{name}", getattr(self, name)))
        _check_bool(f"{_PREFIX}.autapses", self.autapses)
        _check_bool(f"{_PREFIX}.dale", self.dale)
        object.__setattr__(self, "gain", _check_nonnegative(f"{_PREFIX}.gain", self.gain))
        if self.spectral_radius is not None:
            rho = _check_nonnegative(f"{_PREFIX}.spectral_radius", self.spectral_radius)
            object.__setattr__(self, "spectral_radius", rho)
            if rho > 0.0 and (self.init == "zeros" or self.gain == 0.0):
                raise ConfigError(
                    f"{_PREFIX}.spectral_radius",
                    rho,
                    "cannot scale an all-zero initial weight (init='zeros' or gain=0) to a positive radius",
                )

    def build(
        self, n: int, generator: torch.Generator, cluster_sizes: Sequence[int] | None = None
    ) -> tuple[Tensor, Tensor]:
        """Make the mask and the initial weight.

        Steps, in this order of generator use: mask (:data:`MASK_KINDS`), weight
        (:func:`init_recurrent_weight`), Dale signs and ``|W|·s_j`` if ``dale``, then
        ``W ← W · rho / ρ(W)`` if ``spectral_radius`` is set.

        Args:
            n: number of neurons (≥ 1).
            generator: source of randomness.
            cluster_sizes: contiguous cluster sizes summing to ``n``; required for "clustered_small_world",
                ignored otherwise.

        Returns:
            ``(mask, weight)``: bool ``(n, n)`` and float ``(n, n)`` with ``weight`` zero off-mask.
        """
        _check_int("n", n, 1)
        _check_generator(generator)
        sizes: Sequence[int] = ()
        if self.kind in _NEEDS_CLUSTERS:
            if cluster_sizes is None:
                raise ConfigError("cluster_sizes", None, f"required when {_PREFIX}.kind={self.kind!r}")
            sizes = cluster_sizes
            if isinstance(sizes, Sequence) and all(isinstance(s, int) for s in sizes) and sum(sizes) != n:
                raise ConfigError("cluster_sizes", list(sizes), f"must sum to n={n}")
        try:
            mask = MASK_KINDS[self.kind](self, n, generator, sizes)
        except ConfigError as err:
            if err.field in {f.name for f in dataclasses.fields(self)}:
                raise ConfigError(f"{_PREFIX}.{err.field}", err.value, err.reason) from err
            raise
        weight = init_recurrent_weight(mask, self.init, generator, self.gain)
        if self.dale:
            weight = apply_dale(weight, dale_signs(n, self.frac_excitatory, generator, dtype=weight.dtype))
        if self.spectral_radius is not None:
            try:
                weight = scale_to_spectral_radius(weight, self.spectral_radius)
            except ConfigError as err:
                raise ConfigError(
                    f"{_PREFIX}.spectral_radius",
                    self.spectral_radius,
                    "the initial weight has spectral radius 0 (empty or acyclic mask); cannot rescale it",
                ) from err
        return mask, weight

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (JSON/YAML-safe); ``ConnectivitySpec.from_dict(spec.to_dict()) == spec``."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], field: str = _PREFIX) -> ConnectivitySpec:
        """Build from a mapping (e.g. a YAML section); missing keys take their defaults.

        Args:
            d: mapping of field names to values.
            field: dotted name of the section, used in error messages (e.g. ``"model.connectivity"``).

        Raises:
            ConfigError: not a mapping, unknown key, or bad value (named ``f"{field}.<key>"``).
        """
        if not isinstance(d, Mapping):
            raise ConfigError(field, d, "must be a mapping")
        known = {f.name for f in dataclasses.fields(cls)}
        for key in d:
            if key not in known:
                raise ConfigError(f"{field}.{key}", d[key], f"unknown field; expected one of {sorted(known)}")
        try:
            return cls(**dict(d))
        except ConfigError as err:
            name = err.field.removeprefix(f"{_PREFIX}.")
            raise ConfigError(f"{field}.{name}", err.value, err.reason) from err
