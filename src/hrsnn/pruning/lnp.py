r"""Lyapunov Noise Pruning (LNP; Chakraborty et al., ICLR 2024), following ``shared/specs/lnp.md`` §2.4.

The paper's text was not available; every formula here is the spec's reconstruction, with its ambiguities
A1–A13 as :class:`LNPConfig` options. Per iteration, on recurrent layer ``layer_index`` with weights W (post, pre),
mask M, time constants τ and per-neuron Lyapunov exponents λ (supplied by the caller):

Step 1, noise pruning of synapses (edges E = off-diagonal entries of M):

* growth factors in the named A1 direction (``lyapunov_preference``): s = +1 for "unstable" (default, the spec's
  :math:`e^{\lambda\bar\tau}`: a neuron with larger λ gets a larger g, so the synapses between such neurons get a
  larger L and are more likely kept) or s = −1 for "stable" (the reverse). ``positive_map="exp"``:
  :math:`g_k = e^{s \lambda_k \bar\tau}` (:math:`\bar\tau` = mean τ); "linear": :math:`g_k = s\lambda_k -
  \min_l s\lambda_l + \epsilon`, i.e. :math:`\lambda_k - \min\lambda + \epsilon` or
  :math:`\max\lambda - \lambda_k + \epsilon`. Both increase with :math:`s\lambda_k`;
* Lyapunov matrix on E: :math:`L_{ij} = 2 g_i g_j / (g_i + g_j)` ("endpoints") or
  :math:`L_{ij} = |S_{ij}| / \sum_{k \in S_{ij}} 1/g_k` with :math:`S_{ij} = N(i) \cup N(j)`, N(i) the
  in- or out-neighbours of i ("neighbourhood");
* coupling :math:`M = L \odot W` ("modulate") or :math:`M = L` ("replace"); leak :math:`D = \mathrm{diag}(1/\tau)`;
* linear model (``linear_model``, A3): :math:`A = -D + cK`. "rate" (default): :math:`K = D\,\mathrm{diag}(\phi')M`,
  i.e. :math:`A = D(-I + \mathrm{diag}(\phi')(cM))`, the Jacobian of :math:`\tau_i \dot x_i = -x_i +
  \phi_i(\sum_j cM_{ij} x_j + \dots)` with :math:`\phi'_i` neuron i's gain (slope of its rate against its input
  current) at the network's driven operating point, from the caller's ``gains_fn`` (e.g.
  :func:`hrsnn.dynamics.driven_gains`). "leak": K = M, :math:`A = -D + cM` (no gains);
* scale c (``scale_method``), from the Gershgorin value :math:`c_G = (1-\delta) \min_i D_{ii} / \sum_j |K_{ij}|`:
  "edge" (default) the c > 0, not capped at 1, with :math:`\max \mathrm{Re\,eig}(A) = -\delta \min_i D_{ii}`: the
  leading mode sits near the stability edge, where the covariance depends on the coupling (g, hence L, has an
  arbitrary overall size, which c absorbs); c is doubled from :math:`c_G` until the bound is crossed, then
  :func:`hrsnn.dynamics.stabilizing_scale` finds the root; if 40 doublings never cross it (e.g. K nilpotent),
  :math:`c = c_G`. "gershgorin" :math:`c = \min(1, c_G)`; "bisection" c = 1 if A(1) meets the bound, else the
  largest :math:`c \in [c_G, 1]` that does (both from :data:`hrsnn.dynamics.noise.STABILIZERS`). Far inside the
  stable region C is nearly the uncoupled :math:`\sigma^2\,\mathrm{diag}(\tau)/2` and the scores reduce to
  :math:`|A_{ij}|(\tau_i + \tau_j)\sigma^2/2`. Measured on the experiment's dense networks (Spearman rank
  correlation of the scores with that uncoupled score): "leak" with "gershgorin" (c ≈ 0.008) 0.99999 and
  "rate" with "gershgorin" (c = 1: L < 1 for the negative measured λ keeps A far from the edge) 1.00000 at N = 300;
  "rate" with "edge" 0.94 at N = 300 and 0.988 at N = 1000;
* C from :math:`AC + CA^T + \sigma^2 I = 0`, scores :math:`s_{ij} = |A_{ij}| \Delta_{ij}` with A's off-diagonal
  entries (Moore–Chaudhuri), probabilities and rescaled Bernoulli sampling as in :mod:`hrsnn.pruning.noise_prune`
  (:math:`\tilde W_{ij} = W_{ij} / \max(p_{ij}, 1/r_{cap})`). Diagnostics: the Spearman rank correlation of the
  scores with |W| and with the uncoupled score :math:`|A_{ij}|(\tau_i + \tau_j)` over E.

Step 2, node pruning: remove the :math:`\lceil q_{node} N \rceil` neurons of lowest betweenness (ties broken at
random) and every dead end (in- or out-degree 0), see :mod:`hrsnn.pruning.graph`.

Step 3, eigenvector delocalisation: with :math:`\overline{IPR}` the mean IPR of the eigenvectors of
:math:`S = (|W| + |W|^T)/2` off the diagonal (or its Laplacian; :func:`hrsnn.dynamics.noise.eigenvector_localization`),
the trigger fires if :math:`\overline{IPR} > (1 + tol_{ipr})\,\overline{IPR}_{ref}` (:data:`IPR_REFERENCES`): by
default :math:`\overline{IPR}_{ref}` is the mean IPR of directed Erdős–Rényi networks with the current N and edge
count (magnitudes from the dense layer's pool, Dale signs; :func:`random_network_ipr`), so the trigger asks whether
the network is more localised than a random one of its size and density. Then
:math:`m = \lceil \rho_{add} \cdot L \rceil` synapses are added, L = the synapses lost this iteration (step 1's and,
by default, those of the removed neurons), by a rule of :data:`DELOCALISE_RULES`: "ipr_gradient" (default) adds, in
``deloc_rounds`` rounds, the absent pairs whose first-order change of :math:`\overline{IPR}` is most negative
(:func:`ipr_gradient`, :func:`add_ipr_gradient_edges`); "heterogeneity" is the spec's greedy rule,
:math:`i^* = \arg\max \ell_i` over nodes not yet used this round,
:math:`j^* = \arg\max_{j \notin N(i^*), j \ne i^*} H(N(i^*) \cup \{j\})` (ties at random), add j*→i* and, with
probability ½, i*→j* (:func:`add_delocalising_edges`). New magnitudes are drawn from the dense layer's nonzero |W|,
signs follow the presynaptic neuron (sign of its column sum in the dense layer, + if 0).

Step 4, timescales: per-neuron quantiles :math:`u_i` fixed at the start (by default the rank of τ_i within its
cluster), :math:`\tau_i = \tau_{floor} + F^{-1}_{\Gamma(k, (\mu_c - \tau_{floor})/k)}(u_i)` with c the neuron's
cluster: the dense initialisation's family (floor + Γ), one mean per cluster of a clustered (CHRSNN) layer and a
shared shape k. (k, μ_c) minimise an objective by Bayesian optimisation (Optuna: "gp" = GPSampler, Matérn-5/2 GP
with log-EI; or "tpe"). Objective values are estimates (mean, SEM) over initial conditions; default
:math:`J = (\bar\lambda_{max} - \lambda^*)^2 + \beta \sum_{k \le m} (\lambda_k - \lambda_{ref,k})^2` (the second
term only when a spectrum function is given). τ moves to the best trial only if that trial beats the current τ's
objective by more than ``bo_noise_z`` standard errors of the difference; otherwise it stays.

Stop: after ``k_max`` iterations, after ``c_stop`` iterations with neither neurons nor synapses changing, when a
target sparsity is reached, or when the estimated :math:`\lambda_{max}` exceeds the threshold by more than
``stop_z`` standard errors after an iteration, :math:`\bar\lambda - z\,\mathrm{SEM} > \lambda_{thr}` (that
iteration is reverted; SEM counts as 0 for a single initial condition).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import Any, Literal, NamedTuple

import scipy.special
import scipy.stats
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
    float64_matrix,
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
    max_real_eigenvalue,
    stabilizing_scale,
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
from hrsnn.stats import Estimate
from hrsnn.timescales import Clustered, sampler_from_dict

__all__ = [
    "BO_SAMPLERS",
    "COUPLINGS",
    "DELOCALISE_RULES",
    "IPR_REFERENCES",
    "IPR_SCALES",
    "LINEAR_MODELS",
    "LYAPUNOV_MATRICES",
    "LYAPUNOV_PREFERENCES",
    "POSITIVE_MAPS",
    "QUANTILE_INITS",
    "SCALES",
    "DelocaliseStep",
    "LNPConfig",
    "LinearModel",
    "SynapsePruneStep",
    "TimescaleResult",
    "add_delocalising_edges",
    "add_ipr_gradient_edges",
    "cluster_mean_ranges",
    "coupling_matrix",
    "delocalise",
    "gamma_quantile_timescales",
    "growth_factors",
    "initial_quantiles",
    "interaction_matrix",
    "ipr_gradient",
    "lnp_prune",
    "lyapunov_matrix",
    "nodes_to_remove",
    "optimise_timescales",
    "prune_nodes",
    "prune_synapses",
    "random_network_ipr",
    "stability_objective",
]

CovarianceFn = Callable[[Tensor, float], Tensor]


# ------------------------------------------------------------------------------------------ step 1: Lyapunov


LYAPUNOV_PREFERENCES: Mapping[str, float] = MappingProxyType({"unstable": 1.0, "stable": -1.0})
"""A1 (direction): the sign s of :math:`s\\lambda`, in which every growth map increases. "unstable" (+1, default,
the spec's :math:`e^{\\lambda\\bar\\tau}`): synapses between neurons with larger λ get a larger L and are more
likely kept; "stable" (−1): those between neurons with smaller λ."""


def _growth_exp(signed: Tensor, tau_bar: float, eps: float) -> Tensor:
    del eps
    return torch.exp(signed * tau_bar)


def _growth_linear(signed: Tensor, tau_bar: float, eps: float) -> Tensor:
    del tau_bar
    return signed - signed.min() + eps


POSITIVE_MAPS: Mapping[str, Callable[[Tensor, float, float], Tensor]] = MappingProxyType(
    {"exp": _growth_exp, "linear": _growth_linear}
)
"""A1 (positivity), ``rule(s·λ, τ̄, ε)``: "exp" :math:`g = e^{s\\lambda\\bar\\tau}` (default) or "linear"
:math:`g = s\\lambda - \\min_k s\\lambda_k + \\epsilon` (λ − min λ + ε, or max λ − λ + ε); both increase with
:math:`s\\lambda` (:data:`LYAPUNOV_PREFERENCES`)."""


def growth_factors(
    exponents: Tensor,
    *,
    tau_bar: float,
    positive_map: str = "exp",
    preference: str = "unstable",
    eps: float = 1e-6,
) -> Tensor:
    """Positive per-neuron growth factors g from exponents λ (float64): see :data:`POSITIVE_MAPS`.

    Args:
        exponents: per-neuron exponents λ (N,).
        tau_bar: :math:`\\bar\\tau` of the "exp" map, >= 0.
        positive_map: a key of :data:`POSITIVE_MAPS`.
        preference: a key of :data:`LYAPUNOV_PREFERENCES`, the direction in λ in which g grows.
        eps: ε of the "linear" map (its smallest g), >= 0.
    """
    lam = check_tensor("exponents", exponents, dim=1)
    check_vector("exponents", lam, lam.shape[0])
    tau_bar = check_real("tau_bar", tau_bar, low=0.0)
    eps = check_real("eps", eps, low=0.0)
    rule = POSITIVE_MAPS[check_choice("positive_map", positive_map, POSITIVE_MAPS)]
    sign = LYAPUNOV_PREFERENCES[check_choice("preference", preference, LYAPUNOV_PREFERENCES)]
    g = rule(sign * lam.detach().to("cpu", torch.float64), tau_bar, eps)
    if not bool(torch.isfinite(g).all()) or bool((g <= 0).any()):
        raise ConfigError(
            "exponents",
            (float(lam.min()), float(lam.max())),
            f"give non-positive or overflowing g under positive_map={positive_map!r} with eps={eps:g}",
        )
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
    preference: str = "unstable",
    eps: float = 1e-6,
) -> Tensor:
    """Lyapunov matrix L on the edges (0 elsewhere), float64 (module docstring, step 1).

    Args:
        exponents: per-neuron exponents λ (N,).
        edges: bool (N, N) edge set (off-diagonal; a diagonal is ignored).
        tau_bar: :math:`\\bar\\tau` of the "exp" map.
        variant: a key of :data:`LYAPUNOV_MATRICES`.
        positive_map: a key of :data:`POSITIVE_MAPS`.
        preference: a key of :data:`LYAPUNOV_PREFERENCES`.
        eps: ε of the "linear" map.
    """
    edges = check_bool_matrix("edges", edges).cpu() & off_diagonal(edges.shape[0])
    check_vector("exponents", exponents, edges.shape[0])
    rule = LYAPUNOV_MATRICES[check_choice("variant", variant, LYAPUNOV_MATRICES)]
    g = growth_factors(exponents, tau_bar=tau_bar, positive_map=positive_map, preference=preference, eps=eps)
    return rule(g, edges)


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


def _rate_interaction(leak: Tensor, coupling: Tensor, gains: Tensor) -> Tensor:
    return (leak * gains)[:, None] * coupling


def _leak_interaction(leak: Tensor, coupling: Tensor, gains: Tensor) -> Tensor:
    del leak, gains
    return coupling.clone()


class LinearModel(NamedTuple):
    """A step-1 linear model :math:`A = -D + cK`: ``interaction(d, M, gains) -> K`` and whether it uses the gains."""

    interaction: Callable[[Tensor, Tensor, Tensor], Tensor]
    needs_gains: bool


LINEAR_MODELS: Mapping[str, LinearModel] = MappingProxyType(
    {"rate": LinearModel(_rate_interaction, True), "leak": LinearModel(_leak_interaction, False)}
)
"""A3 (the linearised network): "rate" :math:`K = D\\,\\mathrm{diag}(\\phi')M`, i.e.
:math:`A = D(-I + \\mathrm{diag}(\\phi')(cM))`, the Jacobian of the rate network
:math:`\\tau_i \\dot x_i = -x_i + \\phi_i(\\ldots)` at its driven operating point (default; needs the gains
:math:`\\phi'`), or "leak" :math:`K = M`, :math:`A = -D + cM` (the spec's literal Eq. 3 reading, no gains)."""


def interaction_matrix(coupling: Tensor, leak: Tensor, *, model: str = "rate", gains: Tensor | None = None) -> Tensor:
    """K of the step-1 drift :math:`A = -\\mathrm{diag}(d) + cK` (see :data:`LINEAR_MODELS`), float64.

    Args:
        coupling: M (N, N).
        leak: d = 1/τ (N,), > 0.
        model: a key of :data:`LINEAR_MODELS`.
        gains: each neuron's gain :math:`\\phi'_i` (N,), finite and >= 0; required by "rate", ignored by "leak".
    """
    m = check_finite_matrix("coupling", coupling).detach().to("cpu", torch.float64)
    n = m.shape[0]
    d = check_vector("leak", leak, n).detach().to("cpu", torch.float64)
    entry = LINEAR_MODELS[check_choice("model", model, LINEAR_MODELS)]
    if gains is None:
        if entry.needs_gains:
            raise ConfigError("gains", None, f"linear model {model!r} needs each neuron's gain φ' (N,)")
        return entry.interaction(d, m, torch.ones(n, dtype=torch.float64))
    phi = check_vector("gains", gains, n).detach().to("cpu", torch.float64)
    if not bool(torch.isfinite(phi).all()) or bool((phi < 0).any()):
        raise ConfigError("gains", float(phi.min()), "must be finite and >= 0 (slopes of rising rate curves)")
    return entry.interaction(d, m, phi)


_EDGE_DOUBLINGS = 40


def _edge_scale(leak: Tensor, interaction: Tensor, margin: float, tol: float) -> float:
    """The "edge" scale: the c > 0 with max Re eig(−D + cK) = −δ min d (module docstring), else :math:`c_G`."""
    row = interaction.abs().sum(dim=1)
    active = row > 0
    if not bool(active.any()):
        return 1.0
    start = (1.0 - margin) * float((leak[active] / row[active]).min())  # uncapped Gershgorin: A(start) is stable
    base = -torch.diag(leak)
    bound = -margin * float(leak.min())
    high = start
    for _ in range(_EDGE_DOUBLINGS):
        high *= 2.0
        if max_real_eigenvalue(base + high * interaction) > bound:
            return high * stabilizing_scale(leak, high * interaction, margin, tol)
    return start


SCALES: Mapping[str, Callable[[Tensor, Tensor, float, float], float]] = MappingProxyType(
    {"edge": _edge_scale, **STABILIZERS}
)
"""Step 1's coupling scale c, ``fn(d, K, δ, tol)``: "edge" (default; any c > 0, leading eigenvalue of A at
:math:`-\\delta \\min d`), or :data:`hrsnn.dynamics.noise.STABILIZERS`' "bisection" and "gershgorin" (c ≤ 1)."""


# ------------------------------------------------------------------------------------------------ config

Pair = tuple[float, float]


def _quantiles_random(tau: Tensor, clusters: Tensor, generator: torch.Generator) -> Tensor:
    del clusters
    return torch.rand(tau.shape[0], generator=generator, dtype=torch.float64, device=generator.device).cpu()


def _quantiles_ranks(tau: Tensor, clusters: Tensor, generator: torch.Generator) -> Tensor:
    del generator
    tau = tau.detach().to("cpu", torch.float64)
    u = torch.empty_like(tau)
    for c in torch.unique(clusters).tolist():
        members = torch.nonzero(clusters == c).flatten()
        ranks = torch.argsort(torch.argsort(tau[members], stable=True), stable=True)
        u[members] = (ranks.to(torch.float64) + 0.5) / members.numel()
    return u


QUANTILE_INITS: Mapping[str, Callable[[Tensor, Tensor, torch.Generator], Tensor]] = MappingProxyType(
    {"random": _quantiles_random, "ranks": _quantiles_ranks}
)
"""Step 4 quantiles, ``fn(tau, clusters, generator)``: "ranks" (default) :math:`u_i = (r_i + 1/2)/N_c` with
:math:`r_i` the rank of :math:`\\tau_i` among the :math:`N_c` neurons of its cluster, so every neuron keeps its rank
(its identity) when τ is retuned; "random" :math:`u_i \\sim U(0, 1)` drawn once (the spec's literal reading: the new
τ is unrelated to the τ the neuron's exponent was measured with)."""


def _ipr_size(mean_ipr: float, n: int) -> float:
    return mean_ipr * n


def _ipr_raw(mean_ipr: float, n: int) -> float:
    del n
    return mean_ipr


IPR_SCALES: Mapping[str, Callable[[float, int], float]] = MappingProxyType({"size": _ipr_size, "raw": _ipr_raw})
"""A11, the "dense" trigger of :data:`IPR_REFERENCES`: compare N·mean IPR with the dense network's ("size": a fully
delocalised network scores 1 at any N) or the raw mean IPR ("raw", the spec's literal rule, which fires as N shrinks
because IPR ≥ 1/N)."""


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
            history, "recurrent" or "all" (A12). lambda_max_threshold, stop_z: an iteration whose network's mean
            λ_max (over the initial conditions of ``lambda_max_fn``) exceeds the threshold by more than ``stop_z``
            standard errors is reverted and the run stops (default 2: near the edge of chaos the divergence
            measure's mean sits within its noise of 0, and a plain mean test reverted on noise; measured).
        prune_synapses, prune_neurons, delocalise, tune_timescales: switch steps 1–4 on or off.
        lyap_matrix, positive_map, lyapunov_preference, eps, tau_bar: the Lyapunov matrix (A1): harmonic-mean
            formula, growth map "exp" (:math:`e^{s\\lambda\\bar\\tau}`) or "linear"
            (:math:`s\\lambda - \\min s\\lambda + \\epsilon`), both increasing in :math:`s\\lambda` with s = +1 for
            "unstable" (default: synapses between neurons of larger λ are more likely kept) or −1 for "stable";
            ε of "linear"; tau_bar None = mean τ of the layer.
        eq3_mode, linear_model, scale_method, delta, scale_tol, sigma: the linearised model (A3): coupling
            M = L∘W or L, drift "rate" :math:`A = D(-I + \\mathrm{diag}(\\phi')(cM))` (default; needs the
            driver's ``gains_fn``) or "leak" :math:`A = -D + cM`; scale c "edge" (default: leading eigenvalue of A
            at :math:`-\\delta \\min_i D_{ii}`, c not capped), "bisection" or "gershgorin" (c ≤ 1); margin δ,
            root-search tolerance, noise σ.
        keep_fraction, p_min, r_cap, renormalise: ρ_syn, probability floor, rescale cap (A4), and whether κ is
            re-normalised after clipping. Default True, so that ρ_syn is the expected kept fraction per
            iteration as §2.5 defines it; False is noise-prune's normalise-then-clip, which with ρ_syn = 0.95 and
            heavy-tailed scores keeps far fewer (measured: ~61% of a 1000-neuron small world in one iteration).
        renormalise_radius: after steps 1–3 rescale W to the dense layer's spectral radius (A4 fallback).
        q_node, remove_dead_ends, betweenness_*: step 2 (A10); pivots None = exact.
        ipr_matrix, tol_ipr, rho_add: step 3 (A11): the operator whose eigenvectors' IPR is measured, the
            trigger's tolerance, synapses added per lost synapse. ipr_reference: what the mean IPR is compared with
            (:data:`IPR_REFERENCES`): "random" (default), directed Erdős–Rényi networks of the current size and
            edge count, ``ipr_reference_draws`` draws; "dense", the dense network scaled by ``ipr_scale``, which
            never fired (0 of 32 measured iterations). Measured with "random" (experiment's 200-neuron HRSNN): the
            dense small world is 1.29× as localised as a random network; LNP iterations 1–4 stay 1.25–1.14× (fires),
            from iteration 5 on ≤ 1.06× (off), and after 16 iterations 0.70×: LNP does not localise eigenvectors
            beyond random networks of the same size and density. budget_neuron_synapses: the budget also counts the
            synapses lost with removed neurons (about 59 % of those lost per iteration; without them step 3 adds
            nothing when step 1 is off). deloc_rule, deloc_rounds, q_loc: :data:`DELOCALISE_RULES`, the rounds of
            "ipr_gradient" and the localised eigenvector fraction of "heterogeneity".
        bo_sampler, bo_startup, bo_trials, shape_range, mean_range, tau_floor, quantile_init, bo_noise_z,
            lambda_target, spectrum_weight: step 4 (A9). bo_trials counts the BO trials, the first bo_startup
            random; the current τ is evaluated once more. τ = tau_floor + Γ, the dense initialisation's family
            (floor 2 in :mod:`hrsnn.experiments.lnp`); mean_range bounds μ of an unclustered layer (a clustered one
            searches one mean per cluster, :func:`cluster_mean_ranges`, with a shared k: 1 + C dimensions, not 2C,
            since 8–20 trials cannot search 8). τ moves only when the best trial beats the current τ by more than
            bo_noise_z standard errors of the difference. Measured (experiment's settings, N = 200, 200 steps,
            4 initial conditions, 6 iterations): λ_max SEM 0.003–0.011, best trial vs current τ 2e-4–1e-3 apart
            in J, always within 2 SEM (trial spread 7e-4–1.5e-3), so τ never moved.
    """

    layer_index: int = 0
    k_max: int = 100
    c_stop: int = 5
    target_neuron_sparsity: float | None = None
    target_synapse_sparsity: float | None = None
    sparsity_scope: Literal["recurrent", "all"] = "recurrent"
    lambda_max_threshold: float = 0.0
    stop_z: float = 2.0
    prune_synapses: bool = True
    prune_neurons: bool = True
    delocalise: bool = True
    tune_timescales: bool = True
    lyap_matrix: Literal["endpoints", "neighbourhood"] = "endpoints"
    positive_map: Literal["exp", "linear"] = "exp"
    lyapunov_preference: Literal["unstable", "stable"] = "unstable"
    eps: float = 1e-6
    tau_bar: float | None = None
    eq3_mode: Literal["modulate", "replace"] = "modulate"
    linear_model: Literal["rate", "leak"] = "rate"
    scale_method: Literal["edge", "bisection", "gershgorin"] = "edge"
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
    ipr_reference: Literal["random", "dense"] = "random"
    ipr_reference_draws: int = 3
    ipr_scale: Literal["size", "raw"] = "size"
    tol_ipr: float = 0.1
    budget_neuron_synapses: bool = True
    deloc_rule: Literal["ipr_gradient", "heterogeneity"] = "ipr_gradient"
    deloc_rounds: int = 5
    q_loc: float = 0.1
    rho_add: float = 0.05
    bo_sampler: Literal["gp", "tpe"] = "gp"
    bo_startup: int = 5
    bo_trials: int = 20
    shape_range: Pair = (1.0, 10.0)
    mean_range: Pair = (2.0, 100.0)
    tau_floor: float = 2.0
    quantile_init: Literal["random", "ranks"] = "ranks"
    bo_noise_z: float = 2.0
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
        for name in ("renormalise_radius", "remove_dead_ends", "betweenness_directed", "budget_neuron_synapses"):
            check_bool(f"{p}.{name}", getattr(self, name))
        choices: dict[str, Mapping[str, Any]] = {
            "lyap_matrix": LYAPUNOV_MATRICES,
            "positive_map": POSITIVE_MAPS,
            "lyapunov_preference": LYAPUNOV_PREFERENCES,
            "eq3_mode": COUPLINGS,
            "linear_model": LINEAR_MODELS,
            "scale_method": SCALES,
            "betweenness_lengths": EDGE_LENGTHS,
            "betweenness_backend": BETWEENNESS_BACKENDS,
            "ipr_matrix": IPR_MATRICES,
            "ipr_reference": IPR_REFERENCES,
            "ipr_scale": IPR_SCALES,
            "deloc_rule": DELOCALISE_RULES,
            "bo_sampler": BO_SAMPLERS,
            "quantile_init": QUANTILE_INITS,
        }
        for name, options in choices.items():
            check_choice(f"{p}.{name}", getattr(self, name), options)
        floats = {"lambda_max_threshold": None, "stop_z": 0.0, "eps": 0.0, "delta": 0.0, "scale_tol": 0.0, "sigma": 0.0}
        floats |= {"tol_ipr": 0.0, "rho_add": 0.0, "lambda_target": None, "spectrum_weight": 0.0}
        floats |= {"tau_floor": 0.0, "bo_noise_z": 0.0}
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
        check_int(f"{p}.ipr_reference_draws", self.ipr_reference_draws, 1)
        check_int(f"{p}.deloc_rounds", self.deloc_rounds, 1)
        object.__setattr__(self, "shape_range", _check_pair(f"{p}.shape_range", self.shape_range, 0.0))
        object.__setattr__(self, "mean_range", _check_pair(f"{p}.mean_range", self.mean_range, 0.0))
        if self.shape_range[0] <= 0.0:
            raise ConfigError(f"{p}.shape_range", self.shape_range, "needs low > 0")
        if self.mean_range[0] < self.tau_floor:
            raise ConfigError(f"{p}.mean_range", self.mean_range, f"needs low >= tau_floor = {self.tau_floor:g}")

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
        scale: the coupling scale c.
        removed: number of edges removed.
        drift: the linear model's drift A (float64 (N, N)) whose covariance scored the edges.
        scores: the scores :math:`s_{ij} = |A_{ij}|\\Delta_{ij}` (float64 (N, N), 0 off the edges).
        spearman_absw: Spearman rank correlation of the scores with |W| over the edges (NaN if undefined).
        spearman_uncoupled: the same with the uncoupled score :math:`|A_{ij}|(\\tau_i + \\tau_j)`, the score
            the rule would give if C were :math:`\\sigma^2\\mathrm{diag}(\\tau)/2`; near 1, the covariance
            term does not reorder the synapses.
    """

    mask: Tensor
    weight: Tensor
    probabilities: Tensor
    scale: float
    removed: int
    drift: Tensor
    scores: Tensor
    spearman_absw: float
    spearman_uncoupled: float


def _spearman(x: Tensor, y: Tensor) -> float:
    """Spearman's rank correlation (average ranks for ties) of two 1-D tensors; NaN if a side is constant."""
    rx = torch.from_numpy(scipy.stats.rankdata(x.numpy()))
    ry = torch.from_numpy(scipy.stats.rankdata(y.numpy()))
    dx, dy = rx - rx.mean(), ry - ry.mean()
    norm = float(torch.linalg.vector_norm(dx) * torch.linalg.vector_norm(dy))
    return float((dx * dy).sum()) / norm if norm > 0.0 else math.nan


def prune_synapses(
    weight: Tensor,
    mask: Tensor,
    tau: Tensor,
    exponents: Tensor,
    config: LNPConfig,
    generator: torch.Generator,
    *,
    covariance_fn: CovarianceFn | None = None,
    gains: Tensor | None = None,
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
        gains: each neuron's gain :math:`\\phi'_i` at the driven operating point (N,), >= 0 (e.g.
            :func:`hrsnn.dynamics.driven_gains`); required by ``config.linear_model`` "rate".
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
        exponents, edges, tau_bar=tau_bar, variant=config.lyap_matrix, positive_map=config.positive_map,
        preference=config.lyapunov_preference, eps=config.eps,
    )  # fmt: skip
    coupling = coupling_matrix(lyap, w, mode=config.eq3_mode)
    leak = 1.0 / tau64
    interaction = interaction_matrix(coupling, leak, model=config.linear_model, gains=gains)
    scale = SCALES[config.scale_method](leak, interaction, config.delta, config.scale_tol)
    scaled = scale * interaction
    drift = scaled - torch.diag(leak)
    solve = covariance_fn if covariance_fn is not None else stationary_covariance
    scores = noise_scores(scaled, solve(drift, config.sigma))
    p = retention_probabilities(scores, edges, config.keep_fraction, p_min=config.p_min, renormalise=config.renormalise)
    kept, rescaled = sample_edges(w, p, generator, r_cap=config.r_cap)
    kept &= edges
    new_mask = kept | (mask & ~off_diagonal(n))
    new_weight = torch.where(kept, rescaled, w) * new_mask
    uncoupled = scaled.abs() * (tau64[:, None] + tau64[None, :])
    return SynapsePruneStep(
        new_mask, new_weight, p, scale, int(edges.sum()) - int(kept.sum()), drift, scores,
        _spearman(scores[edges], w[edges].abs()), _spearman(scores[edges], uncoupled[edges]),
    )  # fmt: skip


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
        compared, reference: the two values the trigger compared (:data:`IPR_REFERENCES`); it fires when
            ``compared > (1 + tol_ipr) · reference``.
        triggered: whether the IPR trigger fired. budget: synapses the rule could add (0 if it did not fire).
        added: number of synapses added.
    """

    mask: Tensor
    weight: Tensor
    mean_ipr: float
    compared: float
    reference: float
    triggered: bool
    budget: int
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


def random_network_ipr(
    n: int,
    edges: int,
    magnitudes: Tensor,
    signs: Tensor,
    *,
    operator: str = "sym_abs",
    draws: int = 3,
    seed: int = 0,
) -> float:
    """Mean IPR (:data:`IPR_MATRICES` operator) of directed Erdős–Rényi networks, averaged over ``draws`` networks.

    Each network has ``edges`` distinct synapses j→i drawn uniformly among the n(n−1) off-diagonal pairs, magnitudes
    drawn from ``magnitudes`` and the sign of the presynaptic neuron (``signs``, (n,)). The draws come from a
    generator seeded with ``seed``, so the reference of a given size and edge count is fixed.
    """
    n = check_int("n", n, 1)
    edges = check_int("edges", edges, 0)
    if edges > n * (n - 1):
        raise ConfigError("edges", edges, f"does not fit {n} neurons without autapses ({n * (n - 1)} pairs)")
    pool = check_tensor("magnitudes", magnitudes, dim=1, finite=True).detach().to("cpu", torch.float64)
    if edges > 0 and pool.numel() == 0:
        raise ConfigError("magnitudes", tuple(pool.shape), "must not be empty")
    sgn = check_vector("signs", signs, n).detach().to("cpu", torch.float64)
    draws = check_int("draws", draws, 1)
    solve = IPR_MATRICES[check_choice("operator", operator, IPR_MATRICES)]
    generator = torch.Generator().manual_seed(check_int("seed", seed, 0))
    pairs = torch.nonzero(off_diagonal(n).flatten()).flatten()
    total = 0.0
    for _ in range(draws):
        chosen = pairs[torch.randperm(pairs.numel(), generator=generator)[:edges]]
        w = torch.zeros(n * n, dtype=torch.float64)
        w[chosen] = pool[torch.randint(pool.numel(), (edges,), generator=generator)] * sgn[chosen % n]
        _, vectors = localization_eigenpairs(w.view(n, n), solve)
        total += float(inverse_participation_ratio(vectors).mean())
    return total / draws


def _pair_gradient_symmetric(p: Tensor) -> Tensor:
    return p + p.T


def _pair_gradient_laplacian(p: Tensor) -> Tensor:
    d = torch.diagonal(p)
    return d[:, None] + d[None, :] - p - p.T


_PAIR_GRADIENTS: Mapping[str, Callable[[Tensor], Tensor]] = MappingProxyType(
    {"sym_abs": _pair_gradient_symmetric, "laplacian": _pair_gradient_laplacian}
)
"""Per :data:`IPR_MATRICES` key: the pair matrix :math:`a_k^T \\delta O\\, v_k` summed over k, from
:math:`P = \\sum_k a_k v_k^T`, for a unit symmetric coupling between i and j (module docstring of
:func:`ipr_gradient`)."""


def ipr_gradient(weight: Tensor, operator: str = "sym_abs") -> Tensor:
    """First-order change of the mean IPR per unit of symmetric coupling added between two neurons.

    With the operator's orthonormal eigenpairs :math:`(\\mu_k, v_k)` (:data:`IPR_MATRICES`), raising
    :math:`S_{ij} = S_{ji}` by t changes the operator by :math:`t\\,\\delta O` ("sym_abs":
    :math:`\\delta O = e_i e_j^T + e_j e_i^T`; "laplacian": :math:`e_i e_i^T + e_j e_j^T - e_i e_j^T - e_j e_i^T`),
    :math:`v_k` by :math:`t \\sum_{l \\ne k} v_l\\, v_l^T \\delta O\\, v_k / (\\mu_k - \\mu_l)` and
    :math:`IPR_k = \\sum_i v_k(i)^4` by :math:`4t\\, a_k^T \\delta O\\, v_k`, with
    :math:`a_k = \\sum_{l \\ne k} v_l\\, (v_l \\cdot v_k^3) / (\\mu_k - \\mu_l)`. Pairs (k, l) of equal eigenvalues
    (gap ≤ 1e-9 of the largest |μ|) are left out. A synapse j→i of magnitude m raises :math:`S_{ij} = S_{ji}` by m/2.

    Returns:
        float64 (N, N), symmetric: entry (i, j) is :math:`d\\,\\overline{IPR}/dt` for the pair {i, j}.
    """
    w = float64_matrix("weight", weight)
    pair = _PAIR_GRADIENTS[check_choice("operator", operator, _PAIR_GRADIENTS)]
    values, vectors = localization_eigenpairs(w, IPR_MATRICES[operator])
    overlap = vectors.T @ vectors**3  # [l, k] = v_l · v_k³
    gap = values[None, :] - values[:, None]  # [l, k] = μ_k − μ_l
    distinct = gap.abs() > 1e-9 * max(1.0, float(values.abs().max()))
    coeff = torch.where(distinct, overlap / torch.where(distinct, gap, 1.0), torch.zeros_like(overlap))
    p = (vectors @ coeff) @ vectors.T  # Σ_k a_k v_kᵀ
    return pair(p) * (4.0 / w.shape[0])


def add_ipr_gradient_edges(
    weight: Tensor,
    mask: Tensor,
    n_add: int,
    magnitudes: Tensor,
    signs: Tensor,
    generator: torch.Generator,
    *,
    operator: str = "sym_abs",
    rounds: int = 5,
) -> tuple[Tensor, Tensor, int]:
    """Add up to ``n_add`` synapses where they lower the mean IPR most, by :func:`ipr_gradient` (step 3's default).

    In each of ``rounds`` rounds (the gradient is recomputed each time) the ⌈remaining / rounds left⌉ neuron pairs
    with at least one absent direction and the most negative gradient get one synapse: j→i or i→j by a coin when
    both are absent. Pairs with a gradient ≥ 0 are never used, so fewer than ``n_add`` may be added. Draws from
    ``generator`` per round: one coin, then one magnitude index, per chosen pair.

    Args:
        weight: (N, N) weight, (post, pre) layout. mask: bool (N, N).
        n_add: synapses to add.
        magnitudes: pool of positive magnitudes for the new weights. signs: presynaptic sign (+1/−1) per neuron.
        generator: source of randomness.
        operator: a key of :data:`IPR_MATRICES`. rounds: gradient evaluations.

    Returns:
        ``(mask, weight, added)``.
    """
    mask = check_bool_matrix("mask", mask).cpu().clone()
    n = mask.shape[0]
    w = check_finite_matrix("weight", weight, n).detach().to("cpu", torch.float64).clone()
    n_add = check_int("n_add", n_add, 0)
    rounds = check_int("rounds", rounds, 1)
    pool = check_tensor("magnitudes", magnitudes, dim=1, finite=True).detach().to("cpu", torch.float64)
    if n_add > 0 and pool.numel() == 0:
        raise ConfigError("magnitudes", tuple(pool.shape), "must not be empty")
    sgn = check_vector("signs", signs, n).detach().to("cpu", torch.float64)
    check_generator("generator", generator)
    added = 0
    for done in range(rounds):
        count = math.ceil((n_add - added) / (rounds - done))
        if count == 0:
            break
        grad = ipr_gradient(w * mask, operator)
        absent = ~mask & off_diagonal(n)
        open_pairs = torch.triu((absent | absent.T) & (grad < 0), diagonal=1)
        candidates = torch.nonzero(open_pairs)
        if candidates.numel() == 0:
            break
        order = torch.argsort(grad[candidates[:, 0], candidates[:, 1]], stable=True)[:count]
        chosen = candidates[order]
        coins = torch.rand(chosen.shape[0], generator=generator, dtype=torch.float64, device=generator.device).cpu()
        picks = torch.randint(pool.numel(), (chosen.shape[0],), generator=generator, device=generator.device).cpu()
        for (a, b), coin, pick in zip(chosen.tolist(), coins.tolist(), picks.tolist(), strict=True):
            flip = bool(absent[a, b]) and bool(absent[b, a]) and coin < 0.5
            post, pre = (b, a) if flip or not bool(absent[a, b]) else (a, b)
            w[post, pre] = sgn[pre] * float(pool[pick])
            mask[post, pre] = True
        added += chosen.shape[0]
    return mask, w * mask, added


def _rule_ipr_gradient(
    w: Tensor, mask: Tensor, n_add: int, pool: Tensor, signs: Tensor, config: LNPConfig, generator: torch.Generator
) -> tuple[Tensor, Tensor, int]:
    return add_ipr_gradient_edges(
        w, mask, n_add, pool, signs, generator, operator=config.ipr_matrix, rounds=config.deloc_rounds
    )


def _rule_heterogeneity(
    w: Tensor, mask: Tensor, n_add: int, pool: Tensor, signs: Tensor, config: LNPConfig, generator: torch.Generator
) -> tuple[Tensor, Tensor, int]:
    _, vectors = localization_eigenpairs(w, IPR_MATRICES[config.ipr_matrix])
    scores = localisation_scores(inverse_participation_ratio(vectors), vectors, config.q_loc)
    return add_delocalising_edges(w, mask, scores, n_add, pool, signs, generator)


DelocaliseRule = Callable[
    [Tensor, Tensor, int, Tensor, Tensor, "LNPConfig", torch.Generator], tuple[Tensor, Tensor, int]
]

DELOCALISE_RULES: Mapping[str, DelocaliseRule] = MappingProxyType(
    {"ipr_gradient": _rule_ipr_gradient, "heterogeneity": _rule_heterogeneity}
)
"""Step 3's edge rule, ``fn(weight, mask, budget, magnitudes, signs, config, generator) -> (mask, weight, added)``:
"ipr_gradient" (default, :func:`add_ipr_gradient_edges`, at most ``budget`` synapses) or "heterogeneity" (the
spec's greedy degree-heterogeneity rule, :func:`add_delocalising_edges`: ``budget`` rounds of one or two synapses).
Measured (drop of the mean IPR, ×1e-4, mean of 3 draws; random = as many synapses uniformly among the absent pairs,
same magnitudes and signs): on the experiment's 200-neuron HRSNN after 6 LNP iterations of steps 1–2 (step 1 with
the "leak" model; 154 neurons, mean IPR 0.0313), 30 synapses by "ipr_gradient" 30.1 vs random 7.4, 100 synapses
43.1 vs 14.7; on the 160-neuron network of ``tests/test_pruning_lnp_steps34.py`` (134 neurons), 30 synapses 27.3
vs 7.4. "heterogeneity" beat random only for few additions (10 rounds, 16 synapses: 6.0 vs −1.1) and lost for
more (100 rounds, 160 synapses: 11.7 vs 26.4). A first-order rule sees nothing to gain when eigenvectors sit on
exactly disjoint supports (the gradient is 0 there) and then adds nothing."""


def _reference_random(
    mean_ipr: float, w: Tensor, dense_ipr: float, dense_size: int, magnitudes: Tensor, signs: Tensor, config: LNPConfig
) -> tuple[float, float]:
    del dense_ipr, dense_size
    n = w.shape[0]
    edges = int(((w != 0) & off_diagonal(n)).sum())
    reference = random_network_ipr(
        n, edges, magnitudes, signs, operator=config.ipr_matrix, draws=config.ipr_reference_draws
    )
    return mean_ipr, reference


def _reference_dense(
    mean_ipr: float, w: Tensor, dense_ipr: float, dense_size: int, magnitudes: Tensor, signs: Tensor, config: LNPConfig
) -> tuple[float, float]:
    del magnitudes, signs
    scale = IPR_SCALES[config.ipr_scale]
    return scale(mean_ipr, w.shape[0]), scale(dense_ipr, dense_size)


IprReference = Callable[[float, Tensor, float, int, Tensor, Tensor, "LNPConfig"], tuple[float, float]]

IPR_REFERENCES: Mapping[str, IprReference] = MappingProxyType({"random": _reference_random, "dense": _reference_dense})
"""A11, step 3's trigger, ``fn(mean_ipr, weight, dense_ipr, dense_size, magnitudes, signs, config) -> (compared,
reference)``: "random" (default) compares the mean IPR with :func:`random_network_ipr` of the current size and edge
count; "dense" compares with the dense network through :data:`IPR_SCALES` (``ipr_scale``)."""


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
    """LNP step 3: if the eigenvectors are localised, add :math:`\\lceil \\rho_{add} \\cdot removed \\rceil` synapses.

    Args:
        weight: (N, N) weight. mask: bool (N, N).
        removed: synapses lost in this iteration (the budget's base; the driver's count follows
            ``config.budget_neuron_synapses``).
        reference_ipr, reference_size: mean IPR and size N_ref of the dense network (the "dense" trigger).
        magnitudes, signs: pool of magnitudes and presynaptic signs (N,) of new synapses and of the random
            reference networks.
        config: LNP hyper-parameters (ipr_matrix, ipr_reference, ipr_reference_draws, ipr_scale, tol_ipr, rho_add,
            deloc_rule, deloc_rounds, q_loc).
        generator: source of randomness of the edge rule.
    """
    mask = check_bool_matrix("mask", mask).cpu()
    w = masked_float64_matrix("weight", weight, mask)
    removed = check_int("removed", removed, 0)
    _, vectors = localization_eigenpairs(w, IPR_MATRICES[config.ipr_matrix])
    mean_ipr = float(inverse_participation_ratio(vectors).mean())
    trigger = IPR_REFERENCES[config.ipr_reference]
    compared, reference = trigger(mean_ipr, w, reference_ipr, reference_size, magnitudes, signs, config)
    triggered = compared > (1.0 + config.tol_ipr) * reference
    budget = math.ceil(config.rho_add * removed) if triggered else 0
    if budget == 0:
        return DelocaliseStep(mask.clone(), w, mean_ipr, compared, reference, triggered, 0, 0)
    rule = DELOCALISE_RULES[config.deloc_rule]
    new_mask, new_weight, added = rule(w, mask, budget, magnitudes, signs, config, generator)
    return DelocaliseStep(new_mask, new_weight, mean_ipr, compared, reference, triggered, budget, added)


# ------------------------------------------------------------------------------------ step 4: timescales


def _cluster_labels(clusters: Tensor | None, n: int) -> Tensor:
    """Cluster index of every neuron as a long CPU tensor (all 0 when ``clusters`` is None)."""
    if clusters is None:
        return torch.zeros(n, dtype=torch.long)
    labels = check_vector("clusters", clusters, n).detach().cpu()
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ConfigError("clusters", str(labels.dtype), "must be an integer tensor of cluster indices")
    if n > 0 and int(labels.min()) < 0:
        raise ConfigError("clusters", int(labels.min()), "cluster indices must be >= 0")
    return labels.long()


def initial_quantiles(
    tau: Tensor, method: str, generator: torch.Generator, *, clusters: Tensor | None = None
) -> Tensor:
    """Per-neuron quantiles u (float64, in (0, 1)) of step 4, see :data:`QUANTILE_INITS`.

    Args:
        tau: the neurons' τ (N,). method: a key of :data:`QUANTILE_INITS`. generator: for "random".
        clusters: cluster index per neuron (N,), integers; None = one cluster.
    """
    tau = check_tensor("tau", tau, dim=1)
    check_vector("tau", tau, tau.shape[0])
    check_generator("generator", generator)
    labels = _cluster_labels(clusters, tau.shape[0])
    return QUANTILE_INITS[check_choice("method", method, QUANTILE_INITS)](tau, labels, generator)


def gamma_quantile_timescales(quantiles: Tensor, shape: float, mean: float, *, floor: float = 0.0) -> Tensor:
    """Timescales :math:`\\tau_i = \\tau_{floor} + F^{-1}_{\\Gamma(k, \\theta)}(u_i)`, :math:`\\theta = (\\mu -
    \\tau_{floor})/k`: quantile :math:`u_i` of the family of :class:`hrsnn.timescales.Gamma` (floor + Γ) with mean μ.

    Returned as float64 (N,).

    Args:
        quantiles: u (N,) in [0, 1).
        shape: gamma shape k > 0.
        mean: mean μ of τ, >= floor (μ = floor gives τ = floor everywhere).
        floor: τ_floor >= 0.
    """
    u = check_tensor("quantiles", quantiles, dim=1).detach().to("cpu", torch.float64)
    if bool(((u < 0) | (u >= 1) | u.isnan()).any()):
        raise ConfigError("quantiles", (float(u.min()), float(u.max())), "must lie in [0, 1)")
    shape = check_real("shape", shape, low=0.0, strict=True)
    floor = check_real("floor", floor, low=0.0)
    mean = check_real("mean", mean, low=floor)
    return floor + torch.from_numpy(scipy.special.gammaincinv(shape, u.numpy())) * ((mean - floor) / shape)


def _family_timescales(quantiles: Tensor, labels: Tensor, shape: float, means: Sequence[float], floor: float) -> Tensor:
    """:func:`gamma_quantile_timescales` of every cluster c with its own mean ``means[c]`` and the shared shape."""
    tau = torch.empty_like(quantiles)
    for c, mean in enumerate(means):
        members = labels == c
        if bool(members.any()):
            tau[members] = gamma_quantile_timescales(quantiles[members], shape, mean, floor=floor)
    return tau


def cluster_mean_ranges(means: Sequence[float], *, floor: float = 0.0) -> tuple[Pair, ...]:
    """Search boxes of the cluster means μ_c of a clustered layer; they do not overlap, so clusters keep their order.

    With the dense clusters' means sorted, :math:`m_{(1)} < \\dots < m_{(C)}`, cluster (c) searches between the
    geometric midpoints :math:`\\sqrt{m_{(c-1)} m_{(c)}}` and :math:`\\sqrt{m_{(c)} m_{(c+1)}}`; the outer ends mirror
    the nearest midpoint (:math:`m_{(1)} \\sqrt{m_{(1)}/m_{(2)}}` and :math:`m_{(C)} \\sqrt{m_{(C)}/m_{(C-1)}}`), and
    no lower end lies below ``floor``. Returned in the clusters' own order.

    Args:
        means: the dense mean τ of each cluster (at least two, distinct, each > floor).
        floor: τ_floor.
    """
    floor = check_real("floor", floor, low=0.0)
    if isinstance(means, str | bytes) or not isinstance(means, Sequence) or len(means) < 2:
        raise ConfigError("means", means, "must list the mean τ of at least two clusters")
    values = [check_real(f"means[{i}]", m, low=floor, strict=True) for i, m in enumerate(means)]
    order = sorted(range(len(values)), key=values.__getitem__)
    ranked = [values[i] for i in order]
    if any(a >= b for a, b in itertools.pairwise(ranked)):
        raise ConfigError("means", tuple(values), "cluster means must be distinct")
    mids = [math.sqrt(a * b) for a, b in itertools.pairwise(ranked)]
    lows = [max(floor, ranked[0] * math.sqrt(ranked[0] / ranked[1])), *mids]
    highs = [*mids, ranked[-1] * math.sqrt(ranked[-1] / ranked[-2])]
    boxes: list[Pair] = [(0.0, 0.0)] * len(values)
    for rank, cluster in enumerate(order):
        boxes[cluster] = (lows[rank], highs[rank])
    return tuple(boxes)


def _as_estimate(field: str, value: Any) -> Estimate:
    """A callback's value as an :class:`Estimate`: a plain number is one sample (SEM nan); a non-finite mean is +inf."""
    if isinstance(value, Tensor) and value.numel() == 1:
        value = float(value.item())
    if not isinstance(value, Estimate):
        mean = check_real(field, value, allow_inf=True) if not _is_nan(value) else math.inf
        return Estimate(mean if math.isfinite(mean) else math.inf, math.nan, 1)
    mean = value.mean if not _is_nan(value.mean) else math.inf
    mean = check_real(f"{field}.mean", mean, allow_inf=True)
    sem = check_real(f"{field}.sem", value.sem, low=0.0) if not _is_nan(value.sem) else math.nan
    n = check_int(f"{field}.n", value.n, 1)
    return Estimate(mean if math.isfinite(mean) else math.inf, sem, n)


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


@dataclass(frozen=True)
class TimescaleResult:
    """Result of :func:`optimise_timescales`.

    Attributes:
        shape, means: the best trial's shape k and per-cluster means μ_c.
        tau: the timescales to use: the best trial's if ``moved``, else the current ones, unchanged.
        best: objective estimate of the best trial. current: of the current τ (None when none was given).
        spread: standard deviation (ddof 1) of the finite trial means (nan for fewer than two).
        trials: BO trials run (the current τ's evaluation not counted).
        moved: whether τ changed: always without a current τ; otherwise only when the best trial's mean is below
            the current τ's by more than ``noise_z`` standard errors of the difference (when either SEM is
            unknown, by any amount).
    """

    shape: float
    means: tuple[float, ...]
    tau: Tensor
    best: Estimate
    current: Estimate | None
    spread: float
    trials: int
    moved: bool


def optimise_timescales(
    quantiles: Tensor,
    objective: Callable[[Tensor], float | Estimate],
    *,
    clusters: Tensor | None = None,
    current: Tensor | None = None,
    sampler: str = "gp",
    n_startup: int = 5,
    n_trials: int = 20,
    shape_range: Pair = (1.0, 10.0),
    mean_ranges: Sequence[Pair] = ((2.0, 100.0),),
    floor: float = 0.0,
    noise_z: float = 2.0,
    seed: int = 0,
) -> TimescaleResult:
    """LNP step 4: minimise ``objective(τ(k, μ))`` by Bayesian optimisation (Optuna), moving τ only beyond noise.

    τ(k, μ) is :func:`gamma_quantile_timescales` of the fixed quantiles with the cluster's mean μ_c and the shared
    shape k (search space: k and one μ per cluster), so every neuron keeps its rank within its cluster. The first
    ``n_startup`` trials are random; non-finite objective means are passed on as +inf (the GP clips them). With
    ``current``, that τ is evaluated first and kept unless the best trial is better beyond noise (see
    :class:`TimescaleResult`).

    Args:
        quantiles: fixed per-neuron quantiles u (N,).
        objective: ``objective(tau) -> float | Estimate`` to minimise, τ float64 (N,); an :class:`Estimate`
            (mean, SEM over initial conditions) lets the rule tell improvements from noise.
        clusters: cluster index per neuron (N,), in ``range(len(mean_ranges))``; None = one cluster.
        current: the network's current τ (N,), or None.
        sampler: a key of :data:`BO_SAMPLERS`.
        n_startup: random trials first. n_trials: all BO trials.
        shape_range: search interval of k. mean_ranges: search interval of each cluster's μ.
        floor: τ_floor of the family.
        noise_z: standard errors by which the best trial must beat the current τ.
        seed: sampler seed.
    """
    factory = BO_SAMPLERS[check_choice("sampler", sampler, BO_SAMPLERS)]
    n_startup = check_int("n_startup", n_startup, 0)
    n_trials = check_int("n_trials", n_trials, 1)
    k_lo, k_hi = _check_pair("shape_range", shape_range, 0.0)
    if isinstance(mean_ranges, str | bytes) or not isinstance(mean_ranges, Sequence) or not mean_ranges:
        raise ConfigError("mean_ranges", mean_ranges, "must list one (low, high) pair per cluster")
    boxes = [_check_pair(f"mean_ranges[{c}]", box, 0.0) for c, box in enumerate(mean_ranges)]
    floor = check_real("floor", floor, low=0.0)
    for c, (lo, _) in enumerate(boxes):
        if lo < floor:
            raise ConfigError(f"mean_ranges[{c}]", boxes[c], f"needs low >= floor = {floor:g}")
    noise_z = check_real("noise_z", noise_z, low=0.0)
    seed = check_int("seed", seed, 0)
    optuna = require("optuna", "sampler", sampler)
    quantiles = check_tensor("quantiles", quantiles, dim=1).detach().to("cpu", torch.float64)
    labels = _cluster_labels(clusters, quantiles.shape[0])
    if labels.numel() and int(labels.max()) >= len(boxes):
        raise ConfigError("clusters", int(labels.max()), f"must be < {len(boxes)}, the number of mean ranges")
    names = ["mean"] if len(boxes) == 1 else [f"mean_{c}" for c in range(len(boxes))]
    incumbent = None
    if current is not None:
        current = check_vector("current", current, quantiles.shape[0]).detach().to("cpu", torch.float64)
        incumbent = _as_estimate("objective", objective(current))
    estimates: dict[int, Estimate] = {}

    def trial_value(trial: Any) -> float:
        k = trial.suggest_float("shape", k_lo, k_hi)
        means = [trial.suggest_float(name, lo, hi) for name, (lo, hi) in zip(names, boxes, strict=True)]
        estimate = _as_estimate("objective", objective(_family_timescales(quantiles, labels, k, means, floor)))
        estimates[trial.number] = estimate
        return estimate.mean

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(direction="minimize", sampler=factory(optuna, seed, n_startup))
        study.optimize(trial_value, n_trials=n_trials)
    finally:
        optuna.logging.set_verbosity(verbosity)
    best_trial = study.best_trial
    best = estimates[best_trial.number]
    k = float(best_trial.params["shape"])
    means = tuple(float(best_trial.params[name]) for name in names)
    finite = torch.tensor([e.mean for e in estimates.values() if math.isfinite(e.mean)], dtype=torch.float64)
    spread = float(finite.std()) if finite.numel() >= 2 else math.nan
    moved = incumbent is None or _beats(best, incumbent, noise_z)
    tau = _family_timescales(quantiles, labels, k, means, floor) if moved or current is None else current
    return TimescaleResult(k, means, tau, best, incumbent, spread, len(study.trials), moved)


def _beats(best: Estimate, current: Estimate, noise_z: float) -> bool:
    """Whether ``best`` is lower than ``current`` by more than ``noise_z`` standard errors of the difference (by any
    amount when either SEM is unknown)."""
    noise = math.sqrt(best.sem**2 + current.sem**2)
    margin = noise_z * noise if math.isfinite(noise) else 0.0
    return best.mean < current.mean - margin


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
    clusters: Tensor | None
    cluster_means: tuple[float, ...]


@dataclass(frozen=True)
class _Callbacks:
    exponents_fn: Callable[[RSNN], Tensor]
    lambda_max_fn: Callable[[RSNN], Estimate]
    covariance_fn: CovarianceFn | None
    timescale_objective: Callable[[RSNN], float | Estimate] | None
    spectrum_fn: Callable[[RSNN], Tensor] | None
    gains_fn: Callable[[RSNN], Tensor] | None = None


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


def _gains(fn: Callable[[RSNN], Tensor], model: RSNN, n: int) -> Tensor:
    gains = fn(model)
    if not isinstance(gains, Tensor) or gains.shape != (n,):
        shown = tuple(gains.shape) if isinstance(gains, Tensor) else type(gains).__name__
        raise ConfigError("gains_fn", shown, f"must return a tensor of shape ({n},), one gain per neuron")
    if not bool(torch.isfinite(gains).all()) or bool((gains < 0).any()):
        raise ConfigError("gains_fn", "negative or non-finite gains", "must return finite values >= 0")
    return gains.detach()


def _lambda_max(fn: Callable[[RSNN], Estimate], model: RSNN) -> Estimate:
    """The caller's λ_max estimate, checked (a non-finite mean counts as +inf, i.e. unstable)."""
    value = fn(model)
    if not isinstance(value, Estimate):
        reason = "must return an hrsnn.stats.Estimate (mean, sem, n over initial conditions)"
        raise ConfigError("lambda_max_fn", type(value).__name__, reason)
    return _as_estimate("lambda_max_fn", value)


def _edge_count(model: RSNN, layer_index: int) -> int:
    """Off-diagonal synapses (nonzero effective weights) of a recurrent layer."""
    w = model.layers[layer_index].effective_recurrent_weight().detach()
    return int(((w != 0) & off_diagonal(w.shape[0], w.device)).sum())


def _noise_details(prefix: str, estimate: Estimate) -> dict[str, float]:
    """History details ``<prefix>_sem`` (only when known) and ``<prefix>_n`` of an estimate."""
    out = {f"{prefix}_n": float(estimate.n)}
    if math.isfinite(estimate.sem):
        out[f"{prefix}_sem"] = estimate.sem
    return out


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
    sampler = sampler_from_dict(layer.config.neuron.tau_m, field="neuron.tau_m")
    clusters = sampler.labels(n) if isinstance(sampler, Clustered) else None
    tau = layer.tau_m.tau.detach().to("cpu", torch.float64)
    labels = _cluster_labels(clusters, n)
    means = tuple(float(tau[labels == c].mean()) for c in range(int(labels.max()) + 1))
    return _Reference(n, synapses, w[present].abs(), signs, ipr, radius, spectrum, clusters, means)


def _fresh_state(
    model: RSNN, config: LNPConfig, reference: _Reference, callbacks: _Callbacks, generator: torch.Generator
) -> _RunState:
    layer = model.layers[config.layer_index]
    quantiles = None
    if config.tune_timescales:
        tau = layer.tau_m.tau.detach()
        quantiles = initial_quantiles(tau, config.quantile_init, generator, clusters=reference.clusters)
    lam0 = _lambda_max(callbacks.lambda_max_fn, model)
    ipr = reference.ipr if config.delocalise else None
    details = _noise_details("lambda_max", lam0)
    entry = PruneHistoryEntry(0, reference.n_original, reference.synapses, lam0.mean, ipr, 0.0, "dense start", details)
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


def _stability_objective(callbacks: _Callbacks, reference: _Reference, config: LNPConfig) -> Callable[[RSNN], Estimate]:
    """:func:`stability_objective` of a model's mean λ_max (caller's callables), as an estimate.

    With λ_max estimated as m ± s, the standard error of J is that of :math:`(X - \\lambda^*)^2` for
    :math:`X \\sim N(m, s^2)`, :math:`\\sqrt{4 (m - \\lambda^*)^2 s^2 + 2 s^4}` (the spectrum term counts as exact).
    An infinite λ_max gives J = +inf.
    """

    def value(model: RSNN) -> Estimate:
        lam = _lambda_max(callbacks.lambda_max_fn, model)
        if not math.isfinite(lam.mean):
            return Estimate(math.inf, math.nan, lam.n)
        spectrum = callbacks.spectrum_fn(model) if callbacks.spectrum_fn is not None else None
        j = stability_objective(
            lam.mean,
            spectrum,
            reference.spectrum,
            lambda_target=config.lambda_target,
            spectrum_weight=config.spectrum_weight,
        )
        offset = lam.mean - config.lambda_target
        return Estimate(j, math.sqrt(4.0 * offset**2 * lam.sem**2 + 2.0 * lam.sem**4), lam.n)

    return value


def _tune(
    model: RSNN,
    kept: Tensor,
    quantiles: Tensor,
    config: LNPConfig,
    callbacks: _Callbacks,
    reference: _Reference,
    generator: torch.Generator,
) -> TimescaleResult:
    """Step 4 on ``model`` (in place); ``kept``: original indices of its neurons (for their clusters)."""
    tc = model.layers[config.layer_index].tau_m
    saved = tc.theta.detach().clone()
    on_model = callbacks.timescale_objective or _stability_objective(callbacks, reference, config)

    def objective(tau: Tensor) -> float | Estimate:
        tc.set_tau(tau)
        return on_model(model)

    clusters = None if reference.clusters is None else reference.clusters[kept.cpu()]
    ranges = (config.mean_range,)
    if clusters is not None:
        ranges = cluster_mean_ranges(reference.cluster_means, floor=config.tau_floor)
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    result = optimise_timescales(
        quantiles,
        objective,
        clusters=clusters,
        current=tc.tau.detach(),
        sampler=config.bo_sampler,
        n_startup=config.bo_startup,
        n_trials=config.bo_trials,
        shape_range=config.shape_range,
        mean_ranges=ranges,
        floor=config.tau_floor,
        noise_z=config.bo_noise_z,
        seed=seed,
    )
    if result.moved:
        tc.set_tau(result.tau)
    else:
        with torch.no_grad():
            tc.theta.copy_(saved)
    return result


def _tune_report(result: TimescaleResult, config: LNPConfig) -> tuple[str, dict[str, float]]:
    """Note and history details of step 4."""
    best, current = result.best, result.current
    details = {"bo_best": best.mean, "bo_moved": float(result.moved), **_noise_details("bo_best", best)}
    details["bo_best_shape"] = result.shape
    details |= {f"bo_best_mean_{c}": mean for c, mean in enumerate(result.means)}
    if math.isfinite(result.spread):
        details["bo_spread"] = result.spread
    if current is not None:
        details |= {"bo_current": current.mean, **_noise_details("bo_current", current)}
    means = ", ".join(f"{m:.3g}" for m in result.means)
    if result.moved or current is None:
        return f"tau ~ {config.tau_floor:g} + Gamma(k={result.shape:.3g}, mean={means}), J={best.mean:.3g}", details
    note = (
        f"tau kept: best trial J={best.mean:.3g} ± {best.sem:.2g} is not below the current J={current.mean:.3g} ± "
        f"{current.sem:.2g} by {config.bo_noise_z:g} SEM (trial spread {result.spread:.2g})"
    )
    return note, details


_TARGET_STOP = "target "
"""Prefix of the stop reasons of the sparsity targets (a resume with a deeper target continues such a run)."""


def _stop_reason(config: LNPConfig, reference: _Reference, neurons: int, synapses: int, unchanged: int) -> str | None:
    if unchanged >= config.c_stop:
        return f"no change for {config.c_stop} iterations"
    target_n = config.target_neuron_sparsity
    if target_n is not None and neurons <= (1.0 - target_n) * reference.n_original + _COUNT_TOLERANCE:
        return f"{_TARGET_STOP}neuron sparsity {target_n:g} reached"
    target_s = config.target_synapse_sparsity
    if target_s is not None and synapses <= (1.0 - target_s) * reference.synapses + _COUNT_TOLERANCE:
        return f"{_TARGET_STOP}synapse sparsity {target_s:g} reached"
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
    details: dict[str, float] = {}
    removed = 0
    if config.prune_synapses:
        layer, weight = recurrent_weight(cand, li)
        lam = _exponents(callbacks.exponents_fn, cand, layer.size)
        gains = None
        if callbacks.gains_fn is not None and LINEAR_MODELS[config.linear_model].needs_gains:
            gains = _gains(callbacks.gains_fn, cand, layer.size)
        step = prune_synapses(
            weight.detach(), layer.mask, layer.tau_m.tau.detach(), lam, config, generator,
            covariance_fn=callbacks.covariance_fn, gains=gains,
        )  # fmt: skip
        set_mask(cand, li, step.mask, step.weight)
        removed = step.removed
        notes.append(f"-{removed} synapses (c={step.scale:.4g}, Spearman with |W| {step.spearman_absw:.3f})")
        details |= {
            "step1_scale": step.scale,
            "step1_spearman_absw": step.spearman_absw,
            "step1_spearman_uncoupled": step.spearman_uncoupled,
        }
    if config.prune_neurons:
        cand, keep = prune_nodes(cand, config, generator)
        kept = kept[keep.to(kept.device)]
        notes.append(f"-{int((~keep).sum())} neurons")
    mean_ipr = None
    if config.delocalise:
        layer, weight = recurrent_weight(cand, li)
        lost = _edge_count(state.model, li) - _edge_count(cand, li) if config.budget_neuron_synapses else removed
        deloc = delocalise(
            weight.detach(), layer.mask, removed=max(lost, 0), reference_ipr=reference.ipr,
            reference_size=reference.n_original, magnitudes=reference.magnitudes, signs=reference.signs[kept],
            config=config, generator=generator,
        )  # fmt: skip
        if deloc.added:
            set_mask(cand, li, deloc.mask, deloc.weight)
        mean_ipr = deloc.mean_ipr
        state_word = "on" if deloc.triggered else "off"
        notes.append(
            f"+{deloc.added} synapses (IPR {deloc.compared:.4g} vs reference {deloc.reference:.4g}: trigger "
            f"{state_word}; budget {deloc.budget} of {max(lost, 0)} lost)"
        )
        details |= {
            "deloc_lost": float(max(lost, 0)),
            "deloc_budget": float(deloc.budget),
            "deloc_added": float(deloc.added),
            "ipr_compared": deloc.compared,
            "ipr_reference": deloc.reference,
            "ipr_triggered": float(deloc.triggered),
        }
    if config.renormalise_radius and reference.radius:
        layer, _ = recurrent_weight(cand, li)
        effective = layer.effective_recurrent_weight().detach()
        radius = spectral_radius(effective)
        if radius > 0.0:
            set_mask(cand, li, layer.mask, effective * (reference.radius / radius))
    if config.tune_timescales and state.quantiles is not None:
        tuned = _tune(cand, kept, state.quantiles[kept], config, callbacks, reference, generator)
        note, tune_details = _tune_report(tuned, config)
        notes.append(note)
        details |= tune_details
    lam_max = _lambda_max(callbacks.lambda_max_fn, cand)
    details |= _noise_details("lambda_max", lam_max)
    seconds = time.perf_counter() - start
    previous = state.history[-1]
    margin = config.stop_z * (lam_max.sem if math.isfinite(lam_max.sem) else 0.0)
    if lam_max.mean - margin > config.lambda_max_threshold:
        sem = f" ± {lam_max.sem:.2g}" if math.isfinite(lam_max.sem) else ""
        note = (
            f"reverted (mean lambda_max={lam_max.mean:.4g}{sem} over {lam_max.n} exceeds "
            f"{config.lambda_max_threshold:g} by more than {config.stop_z:g} SEM); stop"
        )
        rejected = {"rejected_lambda_max": lam_max.mean, **_noise_details("rejected_lambda_max", lam_max)}
        entry = dataclasses.replace(previous, iteration=iteration, seconds=seconds, note=note, details=rejected)
        return dataclasses.replace(state, iteration=iteration, stop_reason="unstable", history=(*state.history, entry))
    neurons = cand.layers[li].size
    synapses = synapse_total(cand, li, scope=config.sparsity_scope)
    unchanged = state.unchanged + 1 if (neurons, synapses) == (previous.neurons, previous.synapses) else 0
    stop = _stop_reason(config, reference, neurons, synapses, unchanged)
    if stop is not None:
        notes.append(f"stop: {stop}")
    entry = PruneHistoryEntry(iteration, neurons, synapses, lam_max.mean, mean_ipr, seconds, "; ".join(notes), details)
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
    lambda_max_fn: Callable[[RSNN], Estimate],
    generator: torch.Generator,
    checkpoint_path: str | Path | None = None,
    progress: bool = True,
    covariance_fn: CovarianceFn | None = None,
    timescale_objective: Callable[[RSNN], float | Estimate] | None = None,
    spectrum_fn: Callable[[RSNN], Tensor] | None = None,
    on_iteration: Callable[[tuple[PruneHistoryEntry, ...]], None] | None = None,
    gains_fn: Callable[[RSNN], Tensor] | None = None,
) -> PruneResult:
    """Run LNP (spec §2.4) on ``model.layers[config.layer_index]`` until a stopping rule fires.

    Each iteration runs the enabled steps 1–4 on a copy of the current network, then measures ``lambda_max_fn``; if its
    mean exceeds ``config.lambda_max_threshold`` by more than ``config.stop_z`` standard errors the copy is discarded
    (the previous network is kept) and the run stops. Otherwise the copy becomes current. With ``checkpoint_path`` the
    whole pruning state (network, surviving neuron indices, τ quantiles, generator state, history) is written atomically
    after every iteration (and at the start); if the file exists when the run starts, the run resumes from it, so a
    killed run continues where it stopped and gives the same result as an uninterrupted one (resume with the same
    original ``model``; ``k_max`` may be raised). The input model is never modified.

    Args:
        model: the dense network. If its layer's τ sampler is :class:`hrsnn.timescales.Clustered`, step 4 takes each
            neuron's cluster from the sampler's contiguous blocks of this layer (``Clustered.labels``) and follows it
            through node removal.
        config: LNP hyper-parameters.
        exponents_fn: ``exponents_fn(model) -> Tensor (N,)``, per-neuron Lyapunov exponents of the pruned layer
            (A2 is the caller's choice: node-wise finite-time exponents or spectrum entries).
        lambda_max_fn: ``lambda_max_fn(model) -> Estimate``, the network's largest Lyapunov exponent estimated over
            several initial conditions (:class:`hrsnn.stats.Estimate`: mean, SEM, n); the stability stop uses the
            mean, step 4 the SEM to tell improvements from noise. A non-finite mean counts as +inf (unstable).
        generator: the only source of randomness of the run (its state is checkpointed and restored).
        checkpoint_path: safetensors checkpoint to write each iteration and resume from.
        progress: show a tqdm progress bar; its total is the most iterations the stopping rules allow (``k_max``,
            or fewer with a neuron sparsity target) and becomes the iterations run when a rule stops the run.
        covariance_fn: ``fn(A, sigma) -> C`` for step 1 (default: :func:`hrsnn.dynamics.noise.stationary_covariance`).
        timescale_objective: ``fn(model) -> float | Estimate`` minimised by step 4, evaluated with the candidate τ
            already set (default: :math:`(\\bar\\lambda_{max} - \\lambda^*)^2` with its SEM from ``lambda_max_fn``'s,
            plus the spectrum term with ``spectrum_fn``). A plain float has no SEM, so τ moves whenever the best
            trial beats the current τ at all.
        spectrum_fn: ``fn(model) -> Tensor`` (top exponents, descending) for the default step-4 objective; the
            dense network's spectrum is the reference.
        on_iteration: called with the history after every iteration (once its checkpoint is written), e.g. to
            log progress to a run store.
        gains_fn: ``gains_fn(model) -> Tensor (N,)``, each neuron's gain φ' (slope of its rate against its input
            current, >= 0) at the network's driven operating point, e.g. :func:`hrsnn.dynamics.driven_gains`; called
            once per iteration before step 1. Required by ``config.linear_model`` "rate" (with step 1 on).

    Returns:
        :class:`PruneResult` with the pruned network, the history (iteration 0 = dense start; ``mean_ipr`` is
        step 3's value, after node removal and before edges are added, None with step 3 off; ``synapses`` counted
        per ``config.sparsity_scope``; ``details`` holds step 1's "step1_scale" c and the Spearman correlations
        "step1_spearman_absw" and "step1_spearman_uncoupled" of :class:`SynapsePruneStep`; "lambda_max_sem" and
        "lambda_max_n" of the λ_max estimate (a reverted iteration: "rejected_lambda_max" and its "_sem", "_n");
        step 3's "deloc_lost", "deloc_budget", "deloc_added", "ipr_compared", "ipr_reference", "ipr_triggered";
        step 4's "bo_best" (+ "_sem", "_n"), "bo_current" (+ "_sem", "_n"), "bo_spread" (std of the trials'
        objective means), "bo_moved" (1 if τ changed) and the best trial's "bo_best_shape" and "bo_best_mean_<c>"
        per cluster c) and the original indices of the surviving neurons.

    Raises:
        ConfigError: ``gains_fn`` when the linear model needs gains and none is given, or it returns a bad tensor.
    """
    if not isinstance(config, LNPConfig):
        raise ConfigError("config", type(config).__name__, "must be an LNPConfig")
    check_generator("generator", generator)
    check_bool("progress", progress)
    recurrent_weight(model, config.layer_index)
    if config.prune_synapses and LINEAR_MODELS[config.linear_model].needs_gains and gains_fn is None:
        raise ConfigError(
            "gains_fn",
            None,
            f"is required by linear_model={config.linear_model!r}: step 1's rate model needs each neuron's gain "
            "(e.g. hrsnn.dynamics.driven_gains); pass gains_fn or set linear_model='leak'",
        )
    callbacks = _Callbacks(
        exponents_fn, lambda_max_fn, covariance_fn, timescale_objective, spectrum_fn, gains_fn=gains_fn
    )
    reference = _reference(model, config, spectrum_fn)
    path = Path(checkpoint_path) if checkpoint_path is not None else None
    if path is not None and path.exists():
        state = _load(path, model, config, generator, reference.n_original)
        if state.stop_reason is not None and state.stop_reason.startswith(_TARGET_STOP):
            # a run stopped at a sparsity target continues when resumed with a deeper target (sweeps do this)
            last = state.history[-1]
            again = _stop_reason(config, reference, last.neurons, last.synapses, state.unchanged)
            state = dataclasses.replace(state, stop_reason=again)
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
