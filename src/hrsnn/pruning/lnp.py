r"""Lyapunov Noise Pruning (LNP; Chakraborty et al., ICLR 2024), following ``shared/specs/lnp.md`` §2.4.

The paper's text was not available; every formula here is the spec's reconstruction, with its ambiguities
A1–A13 as :class:`LNPConfig` options. Per iteration, on recurrent layer ``layer_index`` with weights W (post, pre),
mask M, time constants τ and per-neuron Lyapunov exponents λ (supplied by the caller):

Step 1, noise pruning of synapses (edges E = off-diagonal entries of M):

* growth factors :math:`g_k = e^{\lambda_k \bar\tau}` (``positive_map="exp"``, :math:`\bar\tau` = mean τ) or
  :math:`g_k = |\lambda_k| + \epsilon` ("abs");
* Lyapunov matrix on E: :math:`L_{ij} = 2 g_i g_j / (g_i + g_j)` ("endpoints") or
  :math:`L_{ij} = |S_{ij}| / \sum_{k \in S_{ij}} 1/g_k` with :math:`S_{ij} = N(i) \cup N(j)`, N(i) the
  in- or out-neighbours of i ("neighbourhood");
* coupling :math:`M = L \odot W` ("modulate") or :math:`M = L` ("replace"); leak :math:`D = \mathrm{diag}(1/\tau)`;
* scale c: "gershgorin" :math:`c = \min(1, (1-\delta) \min_i D_{ii} / \sum_j |M_{ij}|)`, or "bisection": c = 1
  if :math:`\max \mathrm{Re\,eig}(-D + M) \le -\delta \min_i D_{ii}`, else the largest
  :math:`c \in [c_{gershgorin}, 1]` meeting that bound (bracketed root search); both from
  :data:`hrsnn.dynamics.noise.STABILIZERS`;
* :math:`A = -D + cM`, C from :math:`AC + CA^T + \sigma^2 I = 0`, scores :math:`s_{ij} = |cM_{ij}| \Delta_{ij}`,
  probabilities and rescaled Bernoulli sampling as in :mod:`hrsnn.pruning.noise_prune`
  (:math:`\tilde W_{ij} = W_{ij} / \max(p_{ij}, 1/r_{cap})`).

Step 2, node pruning: remove the :math:`\lceil q_{node} N \rceil` neurons of lowest betweenness (ties broken at
random) and every dead end (in- or out-degree 0), see :mod:`hrsnn.pruning.graph`.

Step 3, eigenvector delocalisation: with :math:`\overline{IPR}` the mean IPR of the eigenvectors of
:math:`(|W| + |W|^T)/2` off the diagonal (or its Laplacian; :func:`hrsnn.dynamics.noise.eigenvector_localization`), if
:math:`N\,\overline{IPR} > (1 + tol_{ipr})\,N_{ref}\,\overline{IPR}_{ref}` ("size" scale; "raw" compares
:math:`\overline{IPR}` itself), add :math:`m = \lceil \rho_{add} \cdot \#\text{removed synapses} \rceil`
synapses greedily: :math:`i^* = \arg\max \ell_i` over nodes not yet used this
round, :math:`j^* = \arg\max_{j \notin N(i^*), j \ne i^*} H(N(i^*) \cup \{j\})` (ties at random), add j*→i*
and, with probability ½, i*→j*; magnitudes are drawn from the dense layer's nonzero |W|, signs follow the
presynaptic neuron (sign of its column sum in the dense layer, + if 0).

Step 4, timescales: per-neuron quantiles :math:`u_i` fixed at the start, :math:`\tau_i(k, \mu) =
\mathrm{clip}(F^{-1}_{\Gamma(k, \mu/k)}(u_i), \tau_{lo}, \tau_{hi})`; (k, μ) minimise an objective by Bayesian
optimisation (Optuna: "gp" = GPSampler, Matérn-5/2 GP with log-EI; or "tpe"). Default objective
:math:`J = (\lambda_{max} - \lambda^*)^2 + \beta \sum_{k \le m} (\lambda_k - \lambda_{ref,k})^2` (the second term
only when a spectrum function is given).

Stop: after ``k_max`` iterations, after ``c_stop`` iterations with neither neurons nor synapses changing, when a
target sparsity is reached, or when :math:`\lambda_{max} > 0` after an iteration (that iteration is reverted).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import Any, Literal

import scipy.special
import torch
from torch import Tensor
from tqdm.auto import tqdm

from hrsnn._validate import (
    check_bool,
    check_bool_matrix,
    check_choice,
    check_finite_matrix,
    check_fraction,
    check_generator,
    check_int,
    check_real,
    check_tensor,
    check_vector,
    masked_float64_matrix,
    off_diagonal,
)
from hrsnn.config import from_dict, to_dict
from hrsnn.connectivity import spectral_radius
from hrsnn.dynamics.noise import (
    STABILIZERS,
    eigenvector_localization,
    inverse_participation_ratio,
    localization_eigenpairs,
    stationary_covariance,
)
from hrsnn.errors import ConfigError
from hrsnn.io import load_checkpoint, save_checkpoint
from hrsnn.network import RSNN
from hrsnn.pruning._optional import require
from hrsnn.pruning.base import (
    SYNAPSE_SCOPES,
    PruneHistoryEntry,
    PruneResult,
    clone_model,
    recurrent_weight,
    set_mask,
    shrink_layer,
    synapse_total,
)
from hrsnn.pruning.graph import (
    BETWEENNESS_BACKENDS,
    EDGE_LENGTHS,
    IPR_MATRICES,
    betweenness_centrality,
    localisation_scores,
)
from hrsnn.pruning.noise_prune import noise_scores, retention_probabilities, sample_edges

__all__ = [
    "BO_SAMPLERS",
    "COUPLINGS",
    "IPR_SCALES",
    "LYAPUNOV_MATRICES",
    "POSITIVE_MAPS",
    "QUANTILE_INITS",
    "DelocaliseStep",
    "LNPConfig",
    "SynapsePruneStep",
    "TimescaleResult",
    "add_delocalising_edges",
    "coupling_matrix",
    "delocalise",
    "gamma_quantile_timescales",
    "growth_factors",
    "initial_quantiles",
    "lnp_prune",
    "lyapunov_matrix",
    "nodes_to_remove",
    "optimise_timescales",
    "prune_nodes",
    "prune_synapses",
    "stability_objective",
]

CovarianceFn = Callable[[Tensor, float], Tensor]


# ------------------------------------------------------------------------------------------ step 1: Lyapunov


def _growth_exp(exponents: Tensor, tau_bar: float, eps: float) -> Tensor:
    del eps
    return torch.exp(exponents * tau_bar)


def _growth_abs(exponents: Tensor, tau_bar: float, eps: float) -> Tensor:
    del tau_bar
    return exponents.abs() + eps


POSITIVE_MAPS: Mapping[str, Callable[[Tensor, float, float], Tensor]] = MappingProxyType(
    {"exp": _growth_exp, "abs": _growth_abs}
)
"""A1 (positivity): "exp" :math:`g = e^{\\lambda\\bar\\tau}` (default) or "abs" :math:`g = |\\lambda| + \\epsilon`."""


def growth_factors(exponents: Tensor, *, tau_bar: float, positive_map: str = "exp", eps: float = 1e-6) -> Tensor:
    """Positive per-neuron growth factors g from exponents λ (float64): see :data:`POSITIVE_MAPS`."""
    lam = check_tensor("exponents", exponents, dim=1)
    check_vector("exponents", lam, lam.shape[0])
    tau_bar = check_real("tau_bar", tau_bar, low=0.0)
    eps = check_real("eps", eps, low=0.0)
    rule = POSITIVE_MAPS[check_choice("positive_map", positive_map, POSITIVE_MAPS)]
    g = rule(lam.detach().to("cpu", torch.float64), tau_bar, eps)
    if not bool(torch.isfinite(g).all()) or bool((g <= 0).any()):
        raise ConfigError("exponents", (float(lam.min()), float(lam.max())), "give non-positive or overflowing g")
    return g


def _endpoint_harmonic(g: Tensor, edges: Tensor) -> Tensor:
    lyap = 2.0 * g[:, None] * g[None, :] / (g[:, None] + g[None, :])
    return lyap * edges


def _neighbourhood_harmonic(g: Tensor, edges: Tensor) -> Tensor:
    b = (edges | edges.T).to(torch.float64)
    h = 1.0 / g
    bh = b @ h
    size = b.sum(1)[:, None] + b.sum(1)[None, :] - b @ b.T
    total = bh[:, None] + bh[None, :] - (b * h[None, :]) @ b.T
    return torch.where(edges, size / total, torch.zeros_like(total))


LYAPUNOV_MATRICES: Mapping[str, Callable[[Tensor, Tensor], Tensor]] = MappingProxyType(
    {"endpoints": _endpoint_harmonic, "neighbourhood": _neighbourhood_harmonic}
)
"""A1 (formula): harmonic mean of the endpoints' g (default) or of g over :math:`N(i) \\cup N(j)`."""


def lyapunov_matrix(
    exponents: Tensor,
    edges: Tensor,
    *,
    tau_bar: float,
    variant: str = "endpoints",
    positive_map: str = "exp",
    eps: float = 1e-6,
) -> Tensor:
    """Lyapunov matrix L on the edges (0 elsewhere), float64 (module docstring, step 1).

    Args:
        exponents: per-neuron exponents λ (N,).
        edges: bool (N, N) edge set (off-diagonal; a diagonal is ignored).
        tau_bar: :math:`\\bar\\tau` of the "exp" map.
        variant: a key of :data:`LYAPUNOV_MATRICES`.
        positive_map: a key of :data:`POSITIVE_MAPS`.
        eps: ε of the "abs" map.
    """
    edges = check_bool_matrix("edges", edges).cpu() & off_diagonal(edges.shape[0])
    check_vector("exponents", exponents, edges.shape[0])
    rule = LYAPUNOV_MATRICES[check_choice("variant", variant, LYAPUNOV_MATRICES)]
    return rule(growth_factors(exponents, tau_bar=tau_bar, positive_map=positive_map, eps=eps), edges)


def _modulate(lyap: Tensor, weight: Tensor) -> Tensor:
    return lyap * weight


def _replace(lyap: Tensor, weight: Tensor) -> Tensor:
    del weight
    return lyap.clone()


COUPLINGS: Mapping[str, Callable[[Tensor, Tensor], Tensor]] = MappingProxyType(
    {"modulate": _modulate, "replace": _replace}
)
"""A3 (Eq. 3): "modulate" :math:`M = L \\odot W` (default, keeps signs) or "replace" :math:`M = L`."""


def coupling_matrix(lyap: Tensor, weight: Tensor, *, mode: str = "modulate") -> Tensor:
    """Coupling M of the linearised model (see :data:`COUPLINGS`), float64."""
    lyap = check_finite_matrix("lyap", lyap).detach().to("cpu", torch.float64)
    weight = check_finite_matrix("weight", weight, lyap.shape[0]).detach().to("cpu", torch.float64)
    return COUPLINGS[check_choice("mode", mode, COUPLINGS)](lyap, weight)


# ------------------------------------------------------------------------------------------------ config

Pair = tuple[float, float]


def _quantiles_random(tau: Tensor, generator: torch.Generator) -> Tensor:
    return torch.rand(tau.shape[0], generator=generator, dtype=torch.float64, device=generator.device).cpu()


def _quantiles_ranks(tau: Tensor, generator: torch.Generator) -> Tensor:
    del generator
    ranks = torch.argsort(torch.argsort(tau.detach().cpu(), stable=True), stable=True)
    return (ranks.to(torch.float64) + 0.5) / tau.shape[0]


QUANTILE_INITS: Mapping[str, Callable[[Tensor, torch.Generator], Tensor]] = MappingProxyType(
    {"random": _quantiles_random, "ranks": _quantiles_ranks}
)
"""Step 4 quantiles: "random" :math:`u_i \\sim U(0, 1)` drawn once (default, as in the spec) or "ranks"
:math:`u_i = (\\mathrm{rank}(\\tau_i) + 1/2)/N` (keeps each neuron's rank of its initial τ)."""


def _ipr_size(mean_ipr: float, n: int) -> float:
    return mean_ipr * n


def _ipr_raw(mean_ipr: float, n: int) -> float:
    del n
    return mean_ipr


IPR_SCALES: Mapping[str, Callable[[float, int], float]] = MappingProxyType({"size": _ipr_size, "raw": _ipr_raw})
"""A11 (trigger): compare N·mean IPR ("size", default: a fully delocalised network scores 1 at any N) or the raw
mean IPR ("raw", the spec's literal rule, which fires as N shrinks because IPR ≥ 1/N)."""


def _gp_sampler(optuna: ModuleType, seed: int, n_startup: int) -> Any:
    return optuna.samplers.GPSampler(seed=seed, n_startup_trials=n_startup)


def _tpe_sampler(optuna: ModuleType, seed: int, n_startup: int) -> Any:
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=n_startup)


BO_SAMPLERS: Mapping[str, Callable[[ModuleType, int, int], Any]] = MappingProxyType(
    {"gp": _gp_sampler, "tpe": _tpe_sampler}
)
"""Step 4 optimiser, ``factory(optuna, seed, n_startup)``: Optuna's "gp" (GPSampler: Matérn-5/2 GP + log expected
improvement, the spec's choice) or "tpe" (TPESampler: cheaper per trial)."""


def _check_pair(field: str, value: Any, low: float) -> Pair:
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise ConfigError(field, value, "must be a pair (low, high)")
    lo = check_real(f"{field}[0]", value[0], low=low)
    hi = check_real(f"{field}[1]", value[1], low=low)
    if not lo < hi:
        raise ConfigError(field, value, "needs low < high")
    return (lo, hi)


@dataclass(frozen=True)
class LNPConfig:
    """Hyper-parameters of LNP; defaults are the spec's §2.5 (module docstring for the equations).

    Attributes:
        layer_index: the recurrent layer to prune.
        k_max: maximum iterations (K_max). c_stop: stop after this many iterations without a change in neurons
            and synapses. target_neuron_sparsity, target_synapse_sparsity: stop as soon as one given target
            (fraction removed, e.g. 0.57) is reached (A6). sparsity_scope: synapses counted for targets and
            history, "recurrent" or "all" (A12). lambda_max_threshold: an iteration whose network has
            λ_max above it is reverted and the run stops.
        prune_synapses, prune_neurons, delocalise, tune_timescales: switch steps 1–4 on or off.
        lyap_matrix, positive_map, eps, tau_bar: the Lyapunov matrix (A1); tau_bar None = mean τ of the layer.
        eq3_mode, scale_method, delta, scale_tol, sigma: the linearised model (A3), margin δ, bisection
            tolerance, noise σ.
        keep_fraction, p_min, r_cap, renormalise: ρ_syn, probability floor, rescale cap (A4), and whether κ is
            re-normalised after clipping. Default True, so that ρ_syn is the expected kept fraction per
            iteration as §2.5 defines it; False is noise-prune's normalise-then-clip, which with ρ_syn = 0.95 and
            heavy-tailed scores keeps far fewer (measured: ~61% of a 1000-neuron small world in one iteration).
        renormalise_radius: after steps 1–3 rescale W to the dense layer's spectral radius (A4 fallback).
        q_node, remove_dead_ends, betweenness_*: step 2 (A10); pivots None = exact.
        ipr_matrix, ipr_scale, tol_ipr, q_loc, rho_add: step 3 (A11).
        bo_sampler, bo_startup, bo_trials, shape_range, mean_range, tau_bounds, quantile_init, lambda_target,
            spectrum_weight: step 4 (A9); bo_trials counts all trials, the first bo_startup random.
    """

    layer_index: int = 0
    k_max: int = 100
    c_stop: int = 5
    target_neuron_sparsity: float | None = None
    target_synapse_sparsity: float | None = None
    sparsity_scope: Literal["recurrent", "all"] = "recurrent"
    lambda_max_threshold: float = 0.0
    prune_synapses: bool = True
    prune_neurons: bool = True
    delocalise: bool = True
    tune_timescales: bool = True
    lyap_matrix: Literal["endpoints", "neighbourhood"] = "endpoints"
    positive_map: Literal["exp", "abs"] = "exp"
    eps: float = 1e-6
    tau_bar: float | None = None
    eq3_mode: Literal["modulate", "replace"] = "modulate"
    scale_method: Literal["bisection", "gershgorin"] = "bisection"
    delta: float = 0.05
    scale_tol: float = 1e-3
    sigma: float = 1.0
    keep_fraction: float = 0.95
    p_min: float = 0.0
    r_cap: float = 10.0
    renormalise: bool = True
    renormalise_radius: bool = False
    q_node: float = 0.01
    remove_dead_ends: bool = True
    betweenness_directed: bool = True
    betweenness_lengths: Literal["inverse", "unweighted"] = "inverse"
    betweenness_backend: Literal["igraph", "networkx", "brandes"] = "igraph"
    betweenness_pivots: int | None = None
    ipr_matrix: Literal["sym_abs", "laplacian"] = "sym_abs"
    ipr_scale: Literal["size", "raw"] = "size"
    tol_ipr: float = 0.1
    q_loc: float = 0.1
    rho_add: float = 0.05
    bo_sampler: Literal["gp", "tpe"] = "gp"
    bo_startup: int = 5
    bo_trials: int = 20
    shape_range: Pair = (1.0, 10.0)
    mean_range: Pair = (2.0, 100.0)
    tau_bounds: Pair = (2.0, 200.0)
    quantile_init: Literal["random", "ranks"] = "random"
    lambda_target: float = -0.01
    spectrum_weight: float = 0.1

    def __post_init__(self) -> None:
        p = "lnp"
        check_int(f"{p}.layer_index", self.layer_index, 0)
        check_int(f"{p}.k_max", self.k_max, 0)
        check_int(f"{p}.c_stop", self.c_stop, 1)
        for name in ("target_neuron_sparsity", "target_synapse_sparsity"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, check_fraction(f"{p}.{name}", getattr(self, name)))
        check_choice(f"{p}.sparsity_scope", self.sparsity_scope, SYNAPSE_SCOPES)
        for name in ("prune_synapses", "prune_neurons", "delocalise", "tune_timescales", "renormalise"):
            check_bool(f"{p}.{name}", getattr(self, name))
        for name in ("renormalise_radius", "remove_dead_ends", "betweenness_directed"):
            check_bool(f"{p}.{name}", getattr(self, name))
        choices: dict[str, Mapping[str, Any]] = {
            "lyap_matrix": LYAPUNOV_MATRICES,
            "positive_map": POSITIVE_MAPS,
            "eq3_mode": COUPLINGS,
            "scale_method": STABILIZERS,
            "betweenness_lengths": EDGE_LENGTHS,
            "betweenness_backend": BETWEENNESS_BACKENDS,
            "ipr_matrix": IPR_MATRICES,
            "ipr_scale": IPR_SCALES,
            "bo_sampler": BO_SAMPLERS,
            "quantile_init": QUANTILE_INITS,
        }
        for name, options in choices.items():
            check_choice(f"{p}.{name}", getattr(self, name), options)
        floats = {"lambda_max_threshold": None, "eps": 0.0, "delta": 0.0, "scale_tol": 0.0, "sigma": 0.0}
        floats |= {"tol_ipr": 0.0, "rho_add": 0.0, "lambda_target": None, "spectrum_weight": 0.0}
        for name, low in floats.items():
            object.__setattr__(self, name, check_real(f"{p}.{name}", getattr(self, name), low=low))
        if self.delta >= 1.0:
            raise ConfigError(f"{p}.delta", self.delta, "must lie in [0, 1)")
        if not 0.0 < self.scale_tol < 1.0:
            raise ConfigError(f"{p}.scale_tol", self.scale_tol, "must lie in (0, 1)")
        if self.sigma == 0.0:
            raise ConfigError(f"{p}.sigma", self.sigma, "must be > 0")
        if self.tau_bar is not None:
            object.__setattr__(self, "tau_bar", check_real(f"{p}.tau_bar", self.tau_bar, low=0.0))
        object.__setattr__(
            self, "keep_fraction", check_fraction(f"{p}.keep_fraction", self.keep_fraction, open_low=True)
        )
        for name in ("p_min", "q_node", "q_loc"):
            object.__setattr__(self, name, check_fraction(f"{p}.{name}", getattr(self, name)))
        object.__setattr__(self, "r_cap", check_real(f"{p}.r_cap", self.r_cap, low=1.0, allow_inf=True))
        if self.betweenness_pivots is not None:
            check_int(f"{p}.betweenness_pivots", self.betweenness_pivots, 1)
        check_int(f"{p}.bo_startup", self.bo_startup, 0)
        check_int(f"{p}.bo_trials", self.bo_trials, 1)
        object.__setattr__(self, "shape_range", _check_pair(f"{p}.shape_range", self.shape_range, 0.0))
        object.__setattr__(self, "mean_range", _check_pair(f"{p}.mean_range", self.mean_range, 0.0))
        object.__setattr__(self, "tau_bounds", _check_pair(f"{p}.tau_bounds", self.tau_bounds, 0.0))
        for name in ("shape_range", "mean_range", "tau_bounds"):
            if getattr(self, name)[0] <= 0.0:
                raise ConfigError(f"{p}.{name}", getattr(self, name), "needs low > 0")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], field: str = "lnp") -> LNPConfig:
        """Parse a plain dict (e.g. a TOML table); errors name the bad field."""
        return from_dict(cls, data, field)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict, the inverse of :meth:`from_dict`."""
        return to_dict(self)


# -------------------------------------------------------------------------------------- step 1: synapses


@dataclass(frozen=True)
class SynapsePruneStep:
    """Result of :func:`prune_synapses` (CPU tensors).

    Attributes:
        mask: new bool mask (N, N): the kept edges plus the old diagonal.
        weight: new weight (float64, zero outside ``mask``), kept edges rescaled by 1/max(p, 1/r_cap).
        probabilities: retention probabilities p (float64).
        scale: the stabilising scale c.
        removed: number of edges removed.
    """

    mask: Tensor
    weight: Tensor
    probabilities: Tensor
    scale: float
    removed: int


def prune_synapses(
    weight: Tensor,
    mask: Tensor,
    tau: Tensor,
    exponents: Tensor,
    config: LNPConfig,
    generator: torch.Generator,
    *,
    covariance_fn: CovarianceFn | None = None,
) -> SynapsePruneStep:
    """LNP step 1: Lyapunov-weighted noise pruning of the synapses (module docstring).

    Args:
        weight: recurrent weight (N, N), (post, pre) layout (only entries inside ``mask`` count).
        mask: bool mask (N, N); its off-diagonal entries are the edges E.
        tau: membrane time constants τ (N,), > 0; the leak is d = 1/τ.
        exponents: per-neuron Lyapunov exponents λ (N,), in units of 1/time of τ.
        config: LNP hyper-parameters.
        generator: source of randomness for the Bernoulli draws.
        covariance_fn: ``fn(A, sigma) -> C`` solving :math:`AC + CA^T + \\sigma^2 I = 0`; default
            :func:`hrsnn.dynamics.noise.stationary_covariance`.
    """
    mask = check_bool_matrix("mask", mask).cpu()
    n = mask.shape[0]
    w = masked_float64_matrix("weight", weight, mask)
    tau64 = check_vector("tau", tau, n).detach().to("cpu", torch.float64)
    if bool((tau64 <= 0).any()):
        raise ConfigError("tau", float(tau64.min()), "must be > 0")
    check_generator("generator", generator)
    edges = mask & off_diagonal(n)
    tau_bar = config.tau_bar if config.tau_bar is not None else float(tau64.mean())
    lyap = lyapunov_matrix(
        exponents, edges, tau_bar=tau_bar, variant=config.lyap_matrix, positive_map=config.positive_map, eps=config.eps
    )
    coupling = coupling_matrix(lyap, w, mode=config.eq3_mode)
    leak = 1.0 / tau64
    scale = STABILIZERS[config.scale_method](leak, coupling, config.delta, config.scale_tol)
    scaled = scale * coupling
    solve = covariance_fn if covariance_fn is not None else stationary_covariance
    cov = solve(scaled - torch.diag(leak), config.sigma)
    scores = noise_scores(scaled, cov)
    p = retention_probabilities(scores, edges, config.keep_fraction, p_min=config.p_min, renormalise=config.renormalise)
    kept, rescaled = sample_edges(w, p, generator, r_cap=config.r_cap)
    kept &= edges
    new_mask = kept | (mask & ~off_diagonal(n))
    new_weight = torch.where(kept, rescaled, w) * new_mask
    return SynapsePruneStep(new_mask, new_weight, p, scale, int(edges.sum()) - int(kept.sum()))


# ----------------------------------------------------------------------------------------- step 2: nodes


def nodes_to_remove(
    betweenness: Tensor, weight: Tensor, q_node: float, generator: torch.Generator, *, remove_dead_ends: bool = True
) -> Tensor:
    """Neurons removed by step 2: the ⌈q_node·N⌉ of lowest betweenness plus (optionally) every dead end.

    Ties in betweenness are broken by a random permutation from ``generator``. A dead end has in-degree 0 or
    out-degree 0 in the graph of ``weight`` (off-diagonal nonzero entries). If every neuron would go, the one of
    highest betweenness stays.

    Returns:
        bool tensor (N,), True for the neurons to remove.
    """
    w = check_finite_matrix("weight", weight).detach().cpu()
    n = w.shape[0]
    bc = check_vector("betweenness", betweenness, n).detach().cpu().to(torch.float64)
    q_node = check_fraction("q_node", q_node)
    check_generator("generator", generator)
    check_bool("remove_dead_ends", remove_dead_ends)
    perm = torch.randperm(n, generator=generator, device=generator.device).cpu()
    order = perm[torch.argsort(bc[perm], stable=True)]
    remove = torch.zeros(n, dtype=torch.bool)
    remove[order[: math.ceil(q_node * n)]] = True
    if remove_dead_ends:
        present = (w != 0) & off_diagonal(n)
        remove |= (present.sum(1) == 0) | (present.sum(0) == 0)
    if bool(remove.all()):
        remove[order[-1]] = False
    return remove


def prune_nodes(model: RSNN, config: LNPConfig, generator: torch.Generator) -> tuple[RSNN, Tensor]:
    """LNP step 2 on ``model.layers[config.layer_index]``: betweenness, :func:`nodes_to_remove`, :func:`shrink_layer`.

    Returns:
        ``(new_model, keep)`` with ``keep`` the bool (N,) flags of the surviving neurons.
    """
    layer, _ = recurrent_weight(model, config.layer_index)
    effective = layer.effective_recurrent_weight().detach().cpu()
    bc = betweenness_centrality(
        effective,
        directed=config.betweenness_directed,
        lengths=config.betweenness_lengths,
        backend=config.betweenness_backend,
        pivots=config.betweenness_pivots,
        generator=generator,
    )
    keep = ~nodes_to_remove(bc, effective, config.q_node, generator, remove_dead_ends=config.remove_dead_ends)
    return shrink_layer(model, config.layer_index, keep), keep


# ------------------------------------------------------------------------------------ step 3: delocalise


@dataclass(frozen=True)
class DelocaliseStep:
    """Result of :func:`delocalise` (CPU tensors).

    Attributes:
        mask: new bool mask. weight: new weight (float64). mean_ipr: mean IPR before any addition.
        triggered: whether the IPR trigger fired. added: number of synapses added.
    """

    mask: Tensor
    weight: Tensor
    mean_ipr: float
    triggered: bool
    added: int


def _best_partner(i: int, neighbours: Tensor, degree: Tensor, generator: torch.Generator) -> int | None:
    """j maximising H(N(i) ∪ {j}) over non-neighbours j ≠ i (ties at random), or None if there is none.

    With S = N(i), n = |S|, :math:`s_1 = \\sum_S d`, :math:`s_2 = \\sum_S d^2`, adding j gives mean
    :math:`m = (s_1 + d_j)/(n+1)` and variance :math:`(s_2 + d_j^2)/(n+1) - m^2`.
    """
    n = degree.shape[0]
    allowed = ~neighbours[i]
    allowed[i] = False
    keys = torch.rand(n, generator=generator, dtype=torch.float64, device=generator.device).cpu()
    if not bool(allowed.any()):
        return None
    s = degree[neighbours[i]]
    count, s1, s2 = s.numel() + 1, float(s.sum()), float((s * s).sum())
    mean = (s1 + degree) / count
    var = torch.clamp((s2 + degree * degree) / count - mean * mean, min=0.0)
    het = torch.where(mean > 0, torch.sqrt(var) / torch.where(mean > 0, mean, 1.0), torch.zeros_like(mean))
    het = torch.where(allowed, het, torch.full_like(het, -math.inf))
    best = float(het.max())
    ties = allowed & (het >= best - 1e-12 * max(1.0, abs(best)))
    return int(torch.argmax(torch.where(ties, keys, torch.full_like(keys, -1.0))))


def add_delocalising_edges(
    weight: Tensor,
    mask: Tensor,
    scores: Tensor,
    n_add: int,
    magnitudes: Tensor,
    signs: Tensor,
    generator: torch.Generator,
) -> tuple[Tensor, Tensor, int]:
    """Greedy edge addition of step 3 (module docstring): up to ``n_add`` rounds, each adding j*→i* (and i*→j*
    with probability ½).

    Per round the draws from ``generator`` are: N tie-break keys, one magnitude index, one coin, and one more
    magnitude index when the reverse edge is added. Degrees count in- plus out-edges and are updated after every
    addition. A round whose i* has no possible partner adds nothing.

    Args:
        weight: (N, N) weight, (post, pre) layout.
        mask: bool (N, N) mask.
        scores: localisation scores ℓ (N,).
        n_add: number of rounds.
        magnitudes: pool of positive magnitudes to draw new weights from.
        signs: presynaptic sign (+1/−1) of each neuron (N,).
        generator: source of randomness.

    Returns:
        ``(mask, weight, added)``.
    """
    mask = check_bool_matrix("mask", mask).cpu().clone()
    n = mask.shape[0]
    w = check_finite_matrix("weight", weight, n).detach().to("cpu", torch.float64).clone()
    ell = check_vector("scores", scores, n).detach().to("cpu", torch.float64)
    n_add = check_int("n_add", n_add, 0)
    pool = magnitudes.detach().to("cpu", torch.float64).flatten()
    if n_add > 0 and pool.numel() == 0:
        raise ConfigError("magnitudes", tuple(magnitudes.shape), "must not be empty")
    sgn = check_vector("signs", signs, n).detach().to("cpu", torch.float64)
    check_generator("generator", generator)
    edges = mask & off_diagonal(n)
    neighbours = edges | edges.T
    degree = (edges.sum(0) + edges.sum(1)).to(torch.float64)
    used = torch.zeros(n, dtype=torch.bool)
    added = 0

    def draw_magnitude() -> float:
        return float(pool[int(torch.randint(0, pool.numel(), (1,), generator=generator))])

    for _ in range(n_add):
        if bool(used.all()):
            used[:] = False
        i = int(torch.argmax(torch.where(used, torch.full_like(ell, -math.inf), ell)))
        used[i] = True
        j = _best_partner(i, neighbours, degree, generator)
        if j is None:
            continue
        w[i, j] = sgn[j] * draw_magnitude()
        mask[i, j] = True
        neighbours[i, j] = neighbours[j, i] = True
        degree[i] += 1.0
        degree[j] += 1.0
        added += 1
        coin = float(torch.rand(1, generator=generator, dtype=torch.float64))
        if coin < 0.5 and not bool(mask[j, i]):
            w[j, i] = sgn[i] * draw_magnitude()
            mask[j, i] = True
            degree[i] += 1.0
            degree[j] += 1.0
            added += 1
    return mask, w * mask, added


def delocalise(
    weight: Tensor,
    mask: Tensor,
    *,
    removed: int,
    reference_ipr: float,
    reference_size: int,
    magnitudes: Tensor,
    signs: Tensor,
    config: LNPConfig,
    generator: torch.Generator,
) -> DelocaliseStep:
    """LNP step 3: if the eigenvectors became localised, add :math:`\\lceil \\rho_{add} \\cdot removed \\rceil` edges.

    Args:
        weight: (N, N) weight. mask: bool (N, N).
        removed: synapses removed by step 1 in this iteration.
        reference_ipr, reference_size: mean IPR and size N_ref of the dense reference network.
        magnitudes, signs: see :func:`add_delocalising_edges`.
        config: LNP hyper-parameters (ipr_matrix, ipr_scale, tol_ipr, q_loc, rho_add).
        generator: source of randomness.
    """
    mask = check_bool_matrix("mask", mask).cpu()
    w = masked_float64_matrix("weight", weight, mask)
    n = mask.shape[0]
    removed = check_int("removed", removed, 0)
    _, vectors = localization_eigenpairs(w, IPR_MATRICES[config.ipr_matrix])
    ipr = inverse_participation_ratio(vectors)
    mean_ipr = float(ipr.mean())
    scale = IPR_SCALES[config.ipr_scale]
    triggered = scale(mean_ipr, n) > (1.0 + config.tol_ipr) * scale(reference_ipr, reference_size)
    n_add = math.ceil(config.rho_add * removed) if triggered else 0
    if n_add == 0:
        return DelocaliseStep(mask.clone(), w, mean_ipr, triggered, 0)
    scores = localisation_scores(ipr, vectors, config.q_loc)
    new_mask, new_weight, added = add_delocalising_edges(w, mask, scores, n_add, magnitudes, signs, generator)
    return DelocaliseStep(new_mask, new_weight, mean_ipr, triggered, added)


# ------------------------------------------------------------------------------------ step 4: timescales


def initial_quantiles(tau: Tensor, method: str, generator: torch.Generator) -> Tensor:
    """Per-neuron quantiles u (float64, in (0, 1)) of step 4, see :data:`QUANTILE_INITS`."""
    tau = check_tensor("tau", tau, dim=1)
    check_vector("tau", tau, tau.shape[0])
    check_generator("generator", generator)
    return QUANTILE_INITS[check_choice("method", method, QUANTILE_INITS)](tau, generator)


def gamma_quantile_timescales(quantiles: Tensor, shape: float, mean: float, *, bounds: Pair = (2.0, 200.0)) -> Tensor:
    """Timescales :math:`\\tau_i = \\mathrm{clip}(F^{-1}_{\\Gamma(k, \\theta)}(u_i), lo, hi)`, :math:`\\theta = \\mu/k`.

    Returned as float64 (N,).

    Args:
        quantiles: u (N,) in [0, 1].
        shape: gamma shape k > 0.
        mean: gamma mean μ = kθ > 0.
        bounds: (lo, hi) clip range.
    """
    u = check_tensor("quantiles", quantiles, dim=1).detach().to("cpu", torch.float64)
    if bool(((u < 0) | (u > 1)).any()):
        raise ConfigError("quantiles", (float(u.min()), float(u.max())), "must lie in [0, 1]")
    shape = check_real("shape", shape, low=0.0)
    mean = check_real("mean", mean, low=0.0)
    if shape == 0.0 or mean == 0.0:
        raise ConfigError("shape" if shape == 0.0 else "mean", 0.0, "must be > 0")
    lo, hi = _check_pair("bounds", bounds, 0.0)
    tau = torch.from_numpy(scipy.special.gammaincinv(shape, u.numpy()) * (mean / shape))
    return tau.clamp(lo, hi)


@dataclass(frozen=True)
class TimescaleResult:
    """Result of :func:`optimise_timescales`: best (shape k, mean μ), its τ, objective value and trial count."""

    shape: float
    mean: float
    tau: Tensor
    value: float
    trials: int


def optimise_timescales(
    quantiles: Tensor,
    objective: Callable[[Tensor], float],
    *,
    sampler: str = "gp",
    n_startup: int = 5,
    n_trials: int = 20,
    shape_range: Pair = (1.0, 10.0),
    mean_range: Pair = (2.0, 100.0),
    bounds: Pair = (2.0, 200.0),
    seed: int = 0,
) -> TimescaleResult:
    """LNP step 4: minimise ``objective(τ(k, μ))`` over the box by Bayesian optimisation (Optuna).

    τ(k, μ) is :func:`gamma_quantile_timescales` of the fixed quantiles, so every neuron keeps its rank. The
    first ``n_startup`` trials are random; non-finite objective values are passed on as +inf (the GP clips them).

    Args:
        quantiles: fixed per-neuron quantiles u (N,).
        objective: ``objective(tau) -> float`` to minimise, τ float64 (N,).
        sampler: a key of :data:`BO_SAMPLERS`.
        n_startup: random trials first. n_trials: all trials.
        shape_range, mean_range: search box of k and μ.
        bounds: τ clip range.
        seed: sampler seed.
    """
    factory = BO_SAMPLERS[check_choice("sampler", sampler, BO_SAMPLERS)]
    n_startup = check_int("n_startup", n_startup, 0)
    n_trials = check_int("n_trials", n_trials, 1)
    k_lo, k_hi = _check_pair("shape_range", shape_range, 0.0)
    m_lo, m_hi = _check_pair("mean_range", mean_range, 0.0)
    seed = check_int("seed", seed, 0)
    optuna = require("optuna", "sampler", sampler)
    quantiles = check_tensor("quantiles", quantiles, dim=1).detach().to("cpu", torch.float64)

    def trial_value(trial: Any) -> float:
        k = trial.suggest_float("shape", k_lo, k_hi)
        mu = trial.suggest_float("mean", m_lo, m_hi)
        value = float(objective(gamma_quantile_timescales(quantiles, k, mu, bounds=bounds)))
        return value if math.isfinite(value) else math.inf

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(direction="minimize", sampler=factory(optuna, seed, n_startup))
        study.optimize(trial_value, n_trials=n_trials)
    finally:
        optuna.logging.set_verbosity(verbosity)
    best = study.best_trial
    k, mu = float(best.params["shape"]), float(best.params["mean"])
    tau = gamma_quantile_timescales(quantiles, k, mu, bounds=bounds)
    return TimescaleResult(k, mu, tau, float(best.value), len(study.trials))


# ------------------------------------------------------------------------------------------------ driver

CHECKPOINT_FORMAT = "hrsnn-lnp/1"
"""Format tag of LNP checkpoints (safetensors via :func:`hrsnn.io.save_checkpoint`)."""

_MODEL_PREFIX = "model."
_COUNT_TOLERANCE = 1e-9  # sparsity targets compare counts, e.g. 27 of 30 neurons reaches 0.1 despite rounding


@dataclass(frozen=True)
class _Reference:
    """Quantities of the dense starting layer that every iteration uses."""

    n_original: int
    synapses: int
    magnitudes: Tensor
    signs: Tensor
    ipr: float
    radius: float | None
    spectrum: Tensor | None


@dataclass(frozen=True)
class _Callbacks:
    exponents_fn: Callable[[RSNN], Tensor]
    lambda_max_fn: Callable[[RSNN], float]
    covariance_fn: CovarianceFn | None
    timescale_objective: Callable[[RSNN], float] | None
    spectrum_fn: Callable[[RSNN], Tensor] | None


@dataclass(frozen=True)
class _RunState:
    model: RSNN
    kept: Tensor
    quantiles: Tensor | None
    iteration: int
    unchanged: int
    stop_reason: str | None
    history: tuple[PruneHistoryEntry, ...]


def _exponents(fn: Callable[[RSNN], Tensor], model: RSNN, n: int) -> Tensor:
    lam = fn(model)
    if not isinstance(lam, Tensor) or lam.shape != (n,):
        shown = tuple(lam.shape) if isinstance(lam, Tensor) else type(lam).__name__
        raise ConfigError("exponents_fn", shown, f"must return a tensor of shape ({n},), one exponent per neuron")
    if not bool(torch.isfinite(lam).all()):
        raise ConfigError("exponents_fn", "non-finite exponents", "must return finite values")
    return lam.detach()


def _lambda_max(fn: Callable[[RSNN], float], model: RSNN) -> float:
    value = fn(model)
    value = float(value.item()) if isinstance(value, Tensor) else value
    return check_real("lambda_max_fn", value, allow_inf=True)


def _reference(model: RSNN, config: LNPConfig, spectrum_fn: Callable[[RSNN], Tensor] | None) -> _Reference:
    layer, _ = recurrent_weight(model, config.layer_index)
    w = layer.effective_recurrent_weight().detach().to("cpu", torch.float64)
    n = w.shape[0]
    present = (w != 0) & off_diagonal(n)
    signs = torch.where(w.sum(0) < 0, -1.0, 1.0).to(torch.float64)
    ipr = math.nan
    if config.delocalise:
        ipr = float(eigenvector_localization(w, IPR_MATRICES[config.ipr_matrix]).ipr.mean())
    radius = spectral_radius(w) if config.renormalise_radius else None
    spectrum = None
    if spectrum_fn is not None and config.tune_timescales:
        spectrum = spectrum_fn(model).detach().to("cpu", torch.float64).flatten()
    synapses = synapse_total(model, config.layer_index, scope=config.sparsity_scope)
    return _Reference(n, synapses, w[present].abs(), signs, ipr, radius, spectrum)


def _fresh_state(
    model: RSNN, config: LNPConfig, reference: _Reference, callbacks: _Callbacks, generator: torch.Generator
) -> _RunState:
    layer = model.layers[config.layer_index]
    quantiles = None
    if config.tune_timescales:
        quantiles = initial_quantiles(layer.tau_m.tau.detach(), config.quantile_init, generator)
    lam0 = _lambda_max(callbacks.lambda_max_fn, model)
    ipr = reference.ipr if config.delocalise else None
    entry = PruneHistoryEntry(0, reference.n_original, reference.synapses, lam0, ipr, 0.0, "dense start")
    return _RunState(clone_model(model), torch.arange(reference.n_original), quantiles, 0, 0, None, (entry,))


def _save(path: Path, state: _RunState, generator: torch.Generator, config: LNPConfig, n_original: int) -> None:
    tensors = {_MODEL_PREFIX + k: v for k, v in state.model.state_dict().items()}
    tensors["lnp.kept"] = state.kept
    tensors["lnp.generator_state"] = generator.get_state()
    if state.quantiles is not None:
        tensors["lnp.quantiles"] = state.quantiles
    meta = {
        "format": CHECKPOINT_FORMAT,
        "iteration": state.iteration,
        "unchanged": state.unchanged,
        "stop_reason": state.stop_reason,
        "n_original": n_original,
        "history": [entry.to_dict() for entry in state.history],
        "config": config.to_dict(),
    }
    save_checkpoint(path, tensors, meta)


def _load(path: Path, model: RSNN, config: LNPConfig, generator: torch.Generator, n_original: int) -> _RunState:
    tensors, meta = load_checkpoint(path)
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise ConfigError("checkpoint_path", str(path), f"is not an LNP checkpoint ({CHECKPOINT_FORMAT})")
    if meta.get("n_original") != n_original:
        raise ConfigError(
            "checkpoint_path",
            str(path),
            f"was written for a layer of {meta.get('n_original')} neurons, not {n_original}",
        )
    kept = tensors["lnp.kept"].long()
    keep = torch.zeros(n_original, dtype=torch.bool)
    keep[kept] = True
    restored = shrink_layer(model, config.layer_index, keep)
    n = len(_MODEL_PREFIX)
    restored.load_state_dict({k[n:]: v for k, v in tensors.items() if k.startswith(_MODEL_PREFIX)})
    generator.set_state(tensors["lnp.generator_state"])
    quantiles = tensors.get("lnp.quantiles")
    if config.tune_timescales and quantiles is None:
        raise ConfigError(
            "checkpoint_path", str(path), "holds no timescale quantiles (written with tune_timescales off)"
        )
    history = tuple(PruneHistoryEntry.from_dict(entry) for entry in meta["history"])
    return _RunState(
        restored, kept, quantiles, int(meta["iteration"]), int(meta["unchanged"]), meta["stop_reason"], history
    )


def stability_objective(
    lambda_max: float,
    spectrum: Tensor | None = None,
    reference: Tensor | None = None,
    *,
    lambda_target: float = -0.01,
    spectrum_weight: float = 0.1,
) -> float:
    """Default step-4 objective (A9): :math:`J = (\\lambda_{max} - \\lambda^*)^2 + \\beta \\sum_{k \\le m} (\\lambda_k -
    \\lambda_{ref,k})^2`.

    The second term is used only when both spectra are given; m is the length of the shorter one.

    Args:
        lambda_max: largest Lyapunov exponent of the candidate network.
        spectrum: its top exponents (descending), or None.
        reference: the dense network's top exponents, or None.
        lambda_target: λ*. spectrum_weight: β.
    """
    lambda_max = check_real("lambda_max", lambda_max)
    out = (lambda_max - lambda_target) ** 2
    if spectrum is not None and reference is not None:
        spec = spectrum.detach().to("cpu", torch.float64).flatten()
        ref = reference.detach().to("cpu", torch.float64).flatten()
        m = min(spec.numel(), ref.numel())
        out += spectrum_weight * float(((spec[:m] - ref[:m]) ** 2).sum())
    return out


def _stability_objective(callbacks: _Callbacks, reference: _Reference, config: LNPConfig) -> Callable[[RSNN], float]:
    """:func:`stability_objective` of a model, measured with the caller's callables."""

    def value(model: RSNN) -> float:
        spectrum = callbacks.spectrum_fn(model) if callbacks.spectrum_fn is not None else None
        return stability_objective(
            _lambda_max(callbacks.lambda_max_fn, model),
            spectrum,
            reference.spectrum,
            lambda_target=config.lambda_target,
            spectrum_weight=config.spectrum_weight,
        )

    return value


def _tune(
    model: RSNN,
    quantiles: Tensor,
    config: LNPConfig,
    callbacks: _Callbacks,
    reference: _Reference,
    generator: torch.Generator,
) -> TimescaleResult:
    tc = model.layers[config.layer_index].tau_m
    on_model = callbacks.timescale_objective or _stability_objective(callbacks, reference, config)

    def objective(tau: Tensor) -> float:
        tc.set_tau(tau)
        return float(on_model(model))

    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    result = optimise_timescales(
        quantiles,
        objective,
        sampler=config.bo_sampler,
        n_startup=config.bo_startup,
        n_trials=config.bo_trials,
        shape_range=config.shape_range,
        mean_range=config.mean_range,
        bounds=config.tau_bounds,
        seed=seed,
    )
    tc.set_tau(result.tau)
    return result


def _stop_reason(config: LNPConfig, reference: _Reference, neurons: int, synapses: int, unchanged: int) -> str | None:
    if unchanged >= config.c_stop:
        return f"no change for {config.c_stop} iterations"
    target_n = config.target_neuron_sparsity
    if target_n is not None and neurons <= (1.0 - target_n) * reference.n_original + _COUNT_TOLERANCE:
        return f"target neuron sparsity {target_n:g} reached"
    target_s = config.target_synapse_sparsity
    if target_s is not None and synapses <= (1.0 - target_s) * reference.synapses + _COUNT_TOLERANCE:
        return f"target synapse sparsity {target_s:g} reached"
    return None


def _iteration(
    state: _RunState, config: LNPConfig, reference: _Reference, callbacks: _Callbacks, generator: torch.Generator
) -> _RunState:
    start = time.perf_counter()
    li = config.layer_index
    iteration = state.iteration + 1
    cand = clone_model(state.model)
    kept = state.kept
    notes: list[str] = []
    removed = 0
    if config.prune_synapses:
        layer, weight = recurrent_weight(cand, li)
        lam = _exponents(callbacks.exponents_fn, cand, layer.size)
        step = prune_synapses(
            weight.detach(), layer.mask, layer.tau_m.tau.detach(), lam, config, generator,
            covariance_fn=callbacks.covariance_fn,
        )  # fmt: skip
        set_mask(cand, li, step.mask, step.weight)
        removed = step.removed
        notes.append(f"-{removed} synapses (c={step.scale:.4g})")
    if config.prune_neurons:
        cand, keep = prune_nodes(cand, config, generator)
        kept = kept[keep.to(kept.device)]
        notes.append(f"-{int((~keep).sum())} neurons")
    mean_ipr = None
    if config.delocalise:
        layer, weight = recurrent_weight(cand, li)
        deloc = delocalise(
            weight.detach(), layer.mask, removed=removed, reference_ipr=reference.ipr,
            reference_size=reference.n_original, magnitudes=reference.magnitudes, signs=reference.signs[kept],
            config=config, generator=generator,
        )  # fmt: skip
        if deloc.added:
            set_mask(cand, li, deloc.mask, deloc.weight)
        mean_ipr = deloc.mean_ipr
        notes.append(f"+{deloc.added} synapses (IPR trigger {'on' if deloc.triggered else 'off'})")
    if config.renormalise_radius and reference.radius:
        layer, _ = recurrent_weight(cand, li)
        effective = layer.effective_recurrent_weight().detach()
        radius = spectral_radius(effective)
        if radius > 0.0:
            set_mask(cand, li, layer.mask, effective * (reference.radius / radius))
    if config.tune_timescales and state.quantiles is not None:
        tuned = _tune(cand, state.quantiles[kept], config, callbacks, reference, generator)
        notes.append(f"tau ~ Gamma(k={tuned.shape:.3g}, mean={tuned.mean:.3g}), J={tuned.value:.3g}")
    lam_max = _lambda_max(callbacks.lambda_max_fn, cand)
    seconds = time.perf_counter() - start
    previous = state.history[-1]
    if lam_max > config.lambda_max_threshold:
        note = f"reverted (lambda_max={lam_max:.4g} > {config.lambda_max_threshold:g}); stop"
        entry = dataclasses.replace(previous, iteration=iteration, seconds=seconds, note=note)
        return dataclasses.replace(state, iteration=iteration, stop_reason="unstable", history=(*state.history, entry))
    neurons = cand.layers[li].size
    synapses = synapse_total(cand, li, scope=config.sparsity_scope)
    unchanged = state.unchanged + 1 if (neurons, synapses) == (previous.neurons, previous.synapses) else 0
    stop = _stop_reason(config, reference, neurons, synapses, unchanged)
    if stop is not None:
        notes.append(f"stop: {stop}")
    entry = PruneHistoryEntry(iteration, neurons, synapses, lam_max, mean_ipr, seconds, "; ".join(notes))
    return _RunState(cand, kept, state.quantiles, iteration, unchanged, stop, (*state.history, entry))


def _iteration_bound(config: LNPConfig, n_original: int) -> int:
    """The most iterations the stopping rules allow: ``k_max``, or fewer when step 2 reaches the neuron target sooner.

    Step 2 removes at least :math:`\\min(\\lceil q_{node} N \\rceil, N - 1)` of the N neurons per iteration
    (:func:`nodes_to_remove`; dead ends only add to it), so the target is reached after at most the returned count.
    """
    target = config.target_neuron_sparsity
    if target is None or not config.prune_neurons:
        return config.k_max
    limit = (1.0 - target) * n_original + _COUNT_TOLERANCE
    n = n_original
    for iteration in range(1, config.k_max + 1):
        n -= min(math.ceil(config.q_node * n), n - 1)
        if n <= limit:
            return iteration
        if n == 1:
            break
    return config.k_max


def lnp_prune(
    model: RSNN,
    config: LNPConfig,
    *,
    exponents_fn: Callable[[RSNN], Tensor],
    lambda_max_fn: Callable[[RSNN], float],
    generator: torch.Generator,
    checkpoint_path: str | Path | None = None,
    progress: bool = True,
    covariance_fn: CovarianceFn | None = None,
    timescale_objective: Callable[[RSNN], float] | None = None,
    spectrum_fn: Callable[[RSNN], Tensor] | None = None,
    on_iteration: Callable[[tuple[PruneHistoryEntry, ...]], None] | None = None,
) -> PruneResult:
    """Run LNP (spec §2.4) on ``model.layers[config.layer_index]`` until a stopping rule fires.

    Each iteration runs the enabled steps 1–4 on a copy of the current network, then measures
    ``lambda_max_fn``; if it exceeds ``config.lambda_max_threshold`` the copy is discarded (the previous network
    is kept) and the run stops. Otherwise the copy becomes current. With ``checkpoint_path`` the whole pruning
    state (network, surviving neuron indices, τ quantiles, generator state, history) is written atomically after
    every iteration (and at the start); if the file exists when the run starts, the run resumes from it, so a
    killed run continues where it stopped and gives the same result as an uninterrupted one (resume with the same
    original ``model``; ``k_max`` may be raised). The input model is never modified.

    Args:
        model: the dense network.
        config: LNP hyper-parameters.
        exponents_fn: ``exponents_fn(model) -> Tensor (N,)``, per-neuron Lyapunov exponents of the pruned layer
            (A2 is the caller's choice: node-wise finite-time exponents or spectrum entries).
        lambda_max_fn: ``lambda_max_fn(model) -> float``, the network's largest Lyapunov exponent.
        generator: the only source of randomness of the run (its state is checkpointed and restored).
        checkpoint_path: safetensors checkpoint to write each iteration and resume from.
        progress: show a tqdm progress bar; its total is the most iterations the stopping rules allow (``k_max``,
            or fewer with a neuron sparsity target) and becomes the iterations run when a rule stops the run.
        covariance_fn: ``fn(A, sigma) -> C`` for step 1 (default: :func:`hrsnn.dynamics.noise.stationary_covariance`).
        timescale_objective: ``fn(model) -> float`` minimised by step 4, evaluated with the candidate τ already
            set (default: :math:`(\\lambda_{max} - \\lambda^*)^2`, plus the spectrum term with ``spectrum_fn``).
        spectrum_fn: ``fn(model) -> Tensor`` (top exponents, descending) for the default step-4 objective; the
            dense network's spectrum is the reference.
        on_iteration: called with the history after every iteration (once its checkpoint is written), e.g. to
            log progress to a run store.

    Returns:
        :class:`PruneResult` with the pruned network, the history (iteration 0 = dense start; ``mean_ipr`` is
        step 3's value, after node removal and before edges are added, None with step 3 off; ``synapses`` counted
        per ``config.sparsity_scope``) and the original indices of the surviving neurons.
    """
    if not isinstance(config, LNPConfig):
        raise ConfigError("config", type(config).__name__, "must be an LNPConfig")
    check_generator("generator", generator)
    check_bool("progress", progress)
    recurrent_weight(model, config.layer_index)
    callbacks = _Callbacks(exponents_fn, lambda_max_fn, covariance_fn, timescale_objective, spectrum_fn)
    reference = _reference(model, config, spectrum_fn)
    path = Path(checkpoint_path) if checkpoint_path is not None else None
    if path is not None and path.exists():
        state = _load(path, model, config, generator, reference.n_original)
    else:
        state = _fresh_state(model, config, reference, callbacks, generator)
        if path is not None:
            _save(path, state, generator, config, reference.n_original)
    total = max(_iteration_bound(config, reference.n_original), state.iteration)
    with tqdm(total=total, initial=state.iteration, disable=not progress, desc="LNP") as bar:
        while state.stop_reason is None and state.iteration < config.k_max:
            state = _iteration(state, config, reference, callbacks, generator)
            if path is not None:
                _save(path, state, generator, config, reference.n_original)
            if on_iteration is not None:
                on_iteration(state.history)
            last = state.history[-1]
            bar.update(1)
            bar.set_postfix(neurons=last.neurons, synapses=last.synapses, refresh=False)
        bar.total = state.iteration  # a stopping rule may end the run before the bound
        bar.refresh()
    return PruneResult(state.model, state.history, state.kept.clone())
