"""Plots of Lyapunov results. matplotlib (a dependency) is imported only when a plot is drawn: it is slow to import."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from hrsnn.dynamics.lyapunov import LyapunovResult
from hrsnn.errors import ConfigError, MissingDependencyError

__all__ = ["plot_lyapunov"]


def plot_lyapunov(result: LyapunovResult, path: str | Path, *, title: str | None = None) -> Path:
    """Write a two-panel figure: the spectrum and the running largest exponent over time.

    Left: mean exponent :math:`\\lambda_k` against k (finite exponents only; −∞ entries are left out), with
    ±1 standard deviation over initial conditions when there are several. Right: the running estimate of
    :math:`\\lambda_1` (:attr:`LyapunovResult.lambda_max_history`) for every initial condition, and their mean.
    The file type follows the suffix of ``path`` (e.g. ``.png``).

    Args:
        result: a spectrum from :func:`hrsnn.dynamics.lyapunov.lyapunov_spectrum`.
        path: output file; its directory must exist.
        title: optional figure title.

    Raises:
        MissingDependencyError: matplotlib is not installed.
        ConfigError: ``path`` points into a missing directory, or ``result`` is not a LyapunovResult.
    """
    if not isinstance(result, LyapunovResult):
        raise ConfigError("result", type(result).__name__, "must be a LyapunovResult")
    out = Path(path)
    if not out.parent.is_dir():
        raise ConfigError("path", str(path), "its directory does not exist")
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingDependencyError("plot", str(path), "matplotlib") from None

    figure = Figure(figsize=(11.0, 4.0), layout="constrained")
    FigureCanvasAgg(figure)
    spectrum_axes, history_axes = figure.subplots(1, 2)

    mean = result.mean
    finite = torch.isfinite(mean)
    index = torch.arange(1, mean.numel() + 1)[finite]
    values = mean[finite]
    std = result.std[finite]
    if result.exponents.shape[0] > 1 and bool(torch.isfinite(std).all()):
        spectrum_axes.errorbar(index.numpy(), values.numpy(), yerr=std.numpy(), fmt="o", ms=3, capsize=2)
    else:
        spectrum_axes.plot(index.numpy(), values.numpy(), "o", ms=3)
    spectrum_axes.axhline(0.0, color="grey", lw=0.8)
    spectrum_axes.set_xlabel("index k")
    spectrum_axes.set_ylabel("λ_k (per unit time)")
    dropped = int((~finite).sum())
    label = f"Lyapunov spectrum ({dropped} exponents = −∞ not shown)" if dropped else "Lyapunov spectrum"
    spectrum_axes.set_title(label)

    times = result.times.numpy()
    history = result.lambda_max_history
    for row in history:
        history_axes.plot(times, row.numpy(), lw=0.8, alpha=0.5)
    history_axes.plot(times, history.mean(dim=0).numpy(), color="black", lw=1.5, label="mean")
    history_axes.axhline(0.0, color="grey", lw=0.8)
    history_axes.set_xlabel("time")
    history_axes.set_ylabel("running λ_max")
    final = float(result.mean[0])
    history_axes.set_title(f"λ_max over time (final {final:.4g})" if math.isfinite(final) else "λ_max over time")
    history_axes.legend(loc="best")
    if title:
        figure.suptitle(title)
    figure.savefig(out, dpi=120)
    return out
