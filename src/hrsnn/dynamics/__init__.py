"""Dynamics of recurrent networks: Lyapunov spectra, node-wise exponents, linear-noise analysis, localisation.

* :mod:`hrsnn.dynamics.lyapunov` — Benettin/QR spectra of any map (Jacobians from ``torch.func``) or fixed-step
  ODE, per-node finite-time exponents, the Kaplan–Yorke dimension.
* :mod:`hrsnn.dynamics.snn` — the RSNN as a map (state vector, three readings of the spike discontinuity:
  surrogate-smoothed, almost-everywhere exact, fitted rate model), drives, one-call :func:`rsnn_lyapunov`.
* :mod:`hrsnn.dynamics.divergence` — surrogate-free stability of the spiking network: divergence of ε-perturbed
  copies (rate with SEM, spike-train distance), λ_max with SEM over initial conditions, the edge-of-chaos sweep.
* :mod:`hrsnn.dynamics.noise` — stationary covariance from the continuous Lyapunov equation, the difference matrix
  Δ of LNP, stability rescaling, inverse participation ratios of eigenvectors.
* :mod:`hrsnn.dynamics.plots` — spectrum and λ_max-over-time figure (needs matplotlib).
* :mod:`hrsnn.dynamics.cli` — the ``hrsnn lyapunov`` sub-command.
"""

from __future__ import annotations

from hrsnn.dynamics.divergence import (
    RESOLVING_SEMS,
    DivergenceResult,
    EdgeOfChaosResult,
    edge_of_chaos,
    largest_lyapunov_estimate,
    perturbation_divergence,
)
from hrsnn.dynamics.lyapunov import (
    INTEGRATORS,
    TANGENT_MODES,
    FTLEConfig,
    Linearization,
    LyapunovConfig,
    LyapunovResult,
    MapSystem,
    NodeExponents,
    TangentSystem,
    euler_step,
    heun_step,
    kaplan_yorke_dimension,
    lyapunov_spectrum,
    node_exponents_by_index,
    node_ftle,
    ode_system,
    rk4_step,
)
from hrsnn.dynamics.noise import (
    LOCALIZATION_OPERATORS,
    STABILIZERS,
    Localization,
    NoiseAnalysis,
    difference_matrix,
    eigenvector_localization,
    gershgorin_scale,
    inverse_participation_ratio,
    linear_noise_analysis,
    localization_eigenpairs,
    max_real_eigenvalue,
    stabilizing_scale,
    stationary_covariance,
)
from hrsnn.dynamics.plots import plot_lyapunov
from hrsnn.dynamics.snn import (
    DRIVES,
    METHODS,
    DriveConfig,
    RateMap,
    SigmoidGain,
    SpikingMap,
    ZeroSurrogate,
    driven_gains,
    fit_rate_map,
    fit_sigmoid_gain,
    rsnn_lyapunov,
    rsnn_node_ftle,
)

__all__ = [
    "DRIVES",
    "INTEGRATORS",
    "LOCALIZATION_OPERATORS",
    "METHODS",
    "RESOLVING_SEMS",
    "STABILIZERS",
    "TANGENT_MODES",
    "DivergenceResult",
    "DriveConfig",
    "EdgeOfChaosResult",
    "FTLEConfig",
    "Linearization",
    "Localization",
    "LyapunovConfig",
    "LyapunovResult",
    "MapSystem",
    "NodeExponents",
    "NoiseAnalysis",
    "RateMap",
    "SigmoidGain",
    "SpikingMap",
    "TangentSystem",
    "ZeroSurrogate",
    "difference_matrix",
    "driven_gains",
    "edge_of_chaos",
    "eigenvector_localization",
    "euler_step",
    "fit_rate_map",
    "fit_sigmoid_gain",
    "gershgorin_scale",
    "heun_step",
    "inverse_participation_ratio",
    "kaplan_yorke_dimension",
    "largest_lyapunov_estimate",
    "linear_noise_analysis",
    "localization_eigenpairs",
    "lyapunov_spectrum",
    "max_real_eigenvalue",
    "node_exponents_by_index",
    "node_ftle",
    "ode_system",
    "perturbation_divergence",
    "plot_lyapunov",
    "rk4_step",
    "rsnn_lyapunov",
    "rsnn_node_ftle",
    "stabilizing_scale",
    "stationary_covariance",
]
