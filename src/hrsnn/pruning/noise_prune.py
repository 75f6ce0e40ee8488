r"""Noise pruning of linear networks (Moore & Chaudhuri, NeurIPS 2020), and its building blocks.

Linear rate network driven by white noise, with :math:`W_{ij}` the weight from j to i:

.. math::

    \dot x = A x + \sigma \xi(t), \qquad A = -D + W, \qquad D = \mathrm{diag}(d).

1. Stationary covariance: :math:`C` solves the continuous Lyapunov equation :math:`A C + C A^\top + \sigma^2 I = 0`
   (exists iff A is stable, max Re eig(A) < 0); :func:`hrsnn.dynamics.noise.stationary_covariance`.
2. Difference matrix: :math:`\Delta_{ij} = C_{ii} + C_{jj} - 2\,\mathrm{sign}(W_{ij})\,C_{ij}`
   (the variance of :math:`x_i - \mathrm{sign}(W_{ij}) x_j`, so Δ ≥ 0); :func:`hrsnn.dynamics.noise.difference_matrix`.
3. Scores on the edges E (off-diagonal nonzero entries of W): :math:`s_{ij} = |W_{ij}|\,\Delta_{ij}`.
4. Retention probabilities: :math:`p_{ij} = \min(1, \kappa s_{ij})` with :math:`\kappa = \rho |E| / \sum_E s`
   (normalise the sum, then clip; like the authors' code, no re-normalisation after clipping by default, so the
   expected kept count :math:`\sum p \le \rho|E|`). With ``renormalise=True`` κ is chosen instead so that
   :math:`\sum_E \min(1, \kappa s_{ij}) = \rho|E|` exactly (water filling). Optionally
   :math:`p_{ij} \leftarrow 0` where :math:`p_{ij} < p_{min}`.
5. Sampling: keep edge (i, j) independently with probability :math:`p_{ij}` and rescale it,
   :math:`\tilde W_{ij} = W_{ij} / \max(p_{ij}, 1/r_{cap})`; pruned edges become 0. Without capping
   (:math:`p_{ij} \ge 1/r_{cap}`) this is unbiased, :math:`E[\tilde W_{ij}] = W_{ij}`; with capping
   :math:`E[\tilde W_{ij}] = p_{ij} r_{cap} W_{ij}`.
6. Diagonal: "original" keeps d; "row_sum" keeps each row's diagonal-dominance margin,
   :math:`\tilde d_i = d_i - (\sum_{j\ne i} |W_{ij}| - \sum_{j\ne i} |\tilde W_{ij}|)`.

The control rules replace the score: "magnitude" :math:`s_{ij} = |W_{ij}|`, "uniform" :math:`s_{ij} = 1`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import torch
from torch import Tensor

from hrsnn._validate import (
    check_bool,
    check_bool_matrix,
    check_choice,
    check_fraction,
    check_generator,
    check_real,
    check_vector,
    float64_matrix,
    off_diagonal,
)
from hrsnn.dynamics.noise import difference_matrix, stationary_covariance
from hrsnn.errors import ConfigError

__all__ = [
    "DIAGONAL_RULES",
    "SCORE_RULES",
    "NoisePruneResult",
    "expected_pruned_weight",
    "magnitude_scores",
    "noise_prune",
    "noise_scores",
    "retention_probabilities",
    "sample_edges",
    "uniform_scores",
]


def noise_scores(weight: Tensor, covariance: Tensor) -> Tensor:
    """Noise-prune scores :math:`s_{ij} = |W_{ij}|\\,\\Delta_{ij}` off the diagonal, 0 on it (float64).

    Δ is a variance, so rounding negatives are clamped to 0.
    """
    delta = difference_matrix(weight, covariance).clamp_min(0.0)
    scores = float64_matrix("weight", weight).abs() * delta
    return scores * off_diagonal(scores.shape[0])


def magnitude_scores(weight: Tensor, covariance: Tensor | None = None) -> Tensor:
    """Control rule :math:`s_{ij} = |W_{ij}|` off the diagonal (``covariance`` is ignored)."""
    del covariance
    w = float64_matrix("weight", weight).abs()
    return w * off_diagonal(w.shape[0])


def uniform_scores(weight: Tensor, covariance: Tensor | None = None) -> Tensor:
    """Control rule :math:`s_{ij} = 1` on every off-diagonal nonzero weight (``covariance`` is ignored)."""
    del covariance
    w = float64_matrix("weight", weight)
    return ((w != 0) & off_diagonal(w.shape[0])).to(torch.float64)


SCORE_RULES: Mapping[str, Callable[[Tensor, Tensor], Tensor]] = MappingProxyType(
    {"noise": noise_scores, "magnitude": magnitude_scores, "uniform": uniform_scores}
)
"""Read-only map from a score rule name to ``rule(weight, covariance) -> scores``."""


def _water_filling_kappa(scores: Tensor, budget: float) -> float:
    """κ with :math:`\\sum_k \\min(1, \\kappa s_k) = B` for positive scores s (B < number of scores).

    Sort s descending; if the m largest are clipped, :math:`\\kappa_m = (B - m) / \\sum_{k \\ge m} s_{(k)}`; the
    answer is the smallest m with :math:`\\kappa_m s_{(m)} \\le 1` (the first unclipped score stays ≤ 1).
    """
    s = torch.sort(scores, descending=True).values
    suffix = torch.flip(torch.cumsum(torch.flip(s, [0]), 0), [0])
    m = torch.arange(s.numel(), dtype=torch.float64)
    kappa = (budget - m) / suffix
    valid = (kappa * s <= 1.0 + 1e-12) & (kappa > 0)
    first = int(torch.nonzero(valid).flatten()[0])
    return float(kappa[first])


def retention_probabilities(
    scores: Tensor,
    edges: Tensor,
    keep_fraction: float,
    *,
    p_min: float = 0.0,
    renormalise: bool = False,
) -> Tensor:
    """Retention probabilities :math:`p_{ij} = \\min(1, \\kappa s_{ij})` on ``edges``, 0 elsewhere (float64).

    Default: :math:`\\kappa = \\rho |E| / \\sum_E s` (normalise the sum, then clip; the expected kept count
    :math:`\\sum p` is then at most :math:`\\rho|E|`). ``renormalise=True`` picks κ so that
    :math:`\\sum_E p = \\rho |E|` exactly after clipping (every positive-score edge gets p = 1 when fewer than
    :math:`\\rho|E|` scores are positive). If every score is 0 the probabilities are uniform, :math:`p = \\rho`.
    Finally :math:`p_{ij} \\leftarrow 0` where :math:`p_{ij} < p_{min}`.

    Args:
        scores: (N, N) non-negative scores.
        edges: (N, N) bool, the edge set E.
        keep_fraction: ρ in (0, 1], the expected kept fraction of edges.
        p_min: probability floor in [0, 1].
        renormalise: re-normalise after clipping (see above).
    """
    s = float64_matrix("scores", scores)
    edges = check_bool_matrix("edges", edges, s.shape[0]).cpu()
    rho = check_fraction("keep_fraction", keep_fraction, open_low=True)
    p_min = check_fraction("p_min", p_min)
    check_bool("renormalise", renormalise)
    if bool((s[edges] < 0).any()):
        raise ConfigError("scores", float(s[edges].min()), "must be >= 0 on the edges")
    s = torch.where(edges, s, torch.zeros_like(s))
    n_edges = int(edges.sum())
    budget = rho * n_edges
    total = float(s.sum())
    if n_edges == 0:
        return torch.zeros_like(s)
    if total == 0.0:
        p = torch.where(edges, torch.full_like(s, rho), torch.zeros_like(s))
    elif not renormalise:
        p = torch.clamp(s * (budget / total), max=1.0)
    else:
        positive = s[s > 0]
        if budget >= positive.numel():
            p = (s > 0).to(torch.float64)
        else:
            p = torch.clamp(s * _water_filling_kappa(positive, budget), max=1.0)
    return torch.where(p < p_min, torch.zeros_like(p), p)


def sample_edges(
    weight: Tensor, probabilities: Tensor, generator: torch.Generator, *, r_cap: float = math.inf
) -> tuple[Tensor, Tensor]:
    """Keep each edge independently with probability p and rescale it: :math:`\\tilde W = W / \\max(p, 1/r_{cap})`.

    Draws one ``torch.rand(N, N, dtype=float64)`` from ``generator``; edge (i, j) is kept iff
    :math:`U_{ij} < p_{ij}` (so p = 0 is never kept, p = 1 always). The diagonal and entries with p = 0 become 0
    unless p is 1 there; callers that keep the diagonal restore it themselves.

    Args:
        weight: (N, N) weights.
        probabilities: (N, N) retention probabilities in [0, 1].
        generator: source of randomness.
        r_cap: largest rescale factor 1/p (≥ 1; inf = no cap, unbiased).

    Returns:
        ``(kept, new_weight)``: bool (N, N) and float64 (N, N), zero where not kept.
    """
    w = float64_matrix("weight", weight)
    p = float64_matrix("probabilities", probabilities, w.shape[0])
    if bool(((p < 0) | (p > 1)).any()):
        raise ConfigError("probabilities", (float(p.min()), float(p.max())), "must lie in [0, 1]")
    check_generator("generator", generator)
    r_cap = check_real("r_cap", r_cap, low=1.0, allow_inf=True)
    u = torch.rand(w.shape, generator=generator, dtype=torch.float64, device=generator.device).cpu()
    kept = u < p
    scale = torch.where(kept, torch.clamp(p, min=1.0 / r_cap), torch.ones_like(p))
    return kept, torch.where(kept, w / scale, torch.zeros_like(w))


def expected_pruned_weight(weight: Tensor, probabilities: Tensor, *, r_cap: float = math.inf) -> Tensor:
    """:math:`E[\\tilde W_{ij}] = p_{ij} W_{ij} / \\max(p_{ij}, 1/r_{cap})` (= W where p ≥ 1/r_cap), float64."""
    w = float64_matrix("weight", weight)
    p = float64_matrix("probabilities", probabilities, w.shape[0])
    r_cap = check_real("r_cap", r_cap, low=1.0, allow_inf=True)
    ratio = p / torch.clamp(p, min=1.0 / r_cap)
    return torch.where(p > 0, ratio, torch.zeros_like(p)) * w


# ------------------------------------------------------------------------------------------- linear networks


def _diagonal_original(leak: Tensor, old: Tensor, new: Tensor) -> Tensor:
    del old, new
    return leak.clone()


def _diagonal_row_sum(leak: Tensor, old: Tensor, new: Tensor) -> Tensor:
    off = off_diagonal(old.shape[0])
    lost = (old.abs() * off).sum(1) - (new.abs() * off).sum(1)
    return leak - lost


DIAGONAL_RULES: Mapping[str, Callable[[Tensor, Tensor, Tensor], Tensor]] = MappingProxyType(
    {"original": _diagonal_original, "row_sum": _diagonal_row_sum}
)
"""Read-only map from a diagonal rule to ``rule(leak, old_weight, new_weight) -> new_leak``."""


@dataclass(frozen=True)
class NoisePruneResult:
    """Result of :func:`noise_prune` (all float64 / bool, on the CPU).

    Attributes:
        weight: pruned couplings :math:`\\tilde W` (diagonal unchanged).
        leak: new leak :math:`\\tilde d`.
        kept: bool mask of the kept off-diagonal edges.
        probabilities: retention probabilities p.
        covariance: stationary covariance C of the unpruned network (per the given σ).
    """

    weight: Tensor
    leak: Tensor
    kept: Tensor
    probabilities: Tensor
    covariance: Tensor


def noise_prune(
    weight: Tensor,
    leak: Tensor,
    *,
    keep_fraction: float,
    generator: torch.Generator,
    sigma: float = 1.0,
    rule: str = "noise",
    r_cap: float = math.inf,
    p_min: float = 0.0,
    renormalise: bool = False,
    diagonal: str = "original",
) -> NoisePruneResult:
    """Prune the linear network :math:`\\dot x = (-D + W) x + \\sigma\\xi` (module docstring, steps 1–6).

    Args:
        weight: (N, N) couplings W, (post, pre) layout; its off-diagonal nonzero entries are the edges E and
            its diagonal is kept as is.
        leak: (N,) leak d (the diagonal of D).
        keep_fraction: ρ, expected kept fraction of edges, in (0, 1].
        generator: source of randomness for the Bernoulli draws.
        sigma: noise amplitude σ.
        rule: score rule, a key of :data:`SCORE_RULES` ("noise", or the controls "magnitude", "uniform").
        r_cap: largest rescale 1/p (default: no cap).
        p_min: probability floor.
        renormalise: re-normalise κ after clipping.
        diagonal: a key of :data:`DIAGONAL_RULES` ("original" or "row_sum").

    Raises:
        ConfigError: bad shapes or values, or :math:`-D + W` not stable.
    """
    w = float64_matrix("weight", weight)
    n = w.shape[0]
    d = check_vector("leak", leak, n).detach().to(device="cpu", dtype=torch.float64)
    score_rule = SCORE_RULES[check_choice("rule", rule, SCORE_RULES)]
    diagonal_rule = DIAGONAL_RULES[check_choice("diagonal", diagonal, DIAGONAL_RULES)]
    cov = stationary_covariance(w - torch.diag(d), sigma)
    edges = (w != 0) & off_diagonal(n)
    p = retention_probabilities(score_rule(w, cov), edges, keep_fraction, p_min=p_min, renormalise=renormalise)
    kept, pruned = sample_edges(w, p, generator, r_cap=r_cap)
    kept &= edges
    pruned = torch.where(kept, pruned, torch.zeros_like(pruned)) + torch.diag(torch.diagonal(w))
    return NoisePruneResult(pruned, diagonal_rule(d, w, pruned), kept, p, cov)
