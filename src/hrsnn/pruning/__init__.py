"""Pruning toolkit: network surgery, Moore–Chaudhuri noise pruning, Lyapunov Noise Pruning (LNP) and baselines.

* :mod:`hrsnn.pruning.base`: :func:`shrink_layer` (remove neurons), :func:`set_mask` (prune synapses),
  :class:`PruneResult` / :class:`PruneHistoryEntry`.
* :mod:`hrsnn.pruning.noise_prune`: noise pruning of linear networks and its building blocks.
* :mod:`hrsnn.pruning.graph`: betweenness centrality, localisation scores, degree heterogeneity.
* :mod:`hrsnn.pruning.lnp`: the four LNP steps and the checkpointed driver :func:`lnp_prune`.
* :mod:`hrsnn.pruning.baselines`: magnitude, random and activity-based pruning, and the equal-budget baselines
  (global magnitude, activity + magnitude with fine-tuning, lottery-ticket IMP with rewinding).

python-igraph (fast betweenness) and optuna (step 4) are dependencies; networkx (an alternative betweenness
backend) is the optional extra ``hrsnn[networkx]``. All three are imported only when used. The linear-noise and
localisation numerics (stationary covariance, Δ, stability rescaling, eigenvector IPR) live in
:mod:`hrsnn.dynamics.noise`; ``stationary_covariance`` is re-exported here.
"""

from __future__ import annotations

from hrsnn.dynamics.noise import stationary_covariance
from hrsnn.pruning.base import PruneHistoryEntry, PruneResult, clone_model, set_mask, shrink_layer, synapse_total
from hrsnn.pruning.baselines import (
    activity_magnitude_prune,
    activity_prune,
    firing_rates,
    global_magnitude_prune,
    iterative_magnitude_prune,
    magnitude_prune,
    random_prune,
)
from hrsnn.pruning.lnp import LNPConfig, lnp_prune
from hrsnn.pruning.noise_prune import NoisePruneResult, noise_prune

__all__ = [
    "LNPConfig",
    "NoisePruneResult",
    "PruneHistoryEntry",
    "PruneResult",
    "activity_magnitude_prune",
    "activity_prune",
    "clone_model",
    "firing_rates",
    "global_magnitude_prune",
    "iterative_magnitude_prune",
    "lnp_prune",
    "magnitude_prune",
    "noise_prune",
    "random_prune",
    "set_mask",
    "shrink_layer",
    "stationary_covariance",
    "synapse_total",
]
