"""Packages: LNP's and the plots' packages are default dependencies; a missing package is a one-line ConfigError
naming it and how to install it (so the CLI exits 2), never an ImportError traceback."""

from __future__ import annotations

import importlib.metadata
import re
import sys

import pytest
import torch

from hrsnn.cli import main
from hrsnn.dynamics import LyapunovConfig, MapSystem, lyapunov_spectrum
from hrsnn.dynamics.plots import plot_lyapunov
from hrsnn.errors import ConfigError, MissingDependencyError
from hrsnn.experiments.lnp import plot_lnp_history, plot_spectra
from hrsnn.pruning.graph import betweenness_centrality
from hrsnn.pruning.lnp import optimise_timescales

MATPLOTLIB = ("matplotlib", "matplotlib.figure", "matplotlib.backends", "matplotlib.backends.backend_agg")


def _hide(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """Make ``import name`` fail for every name (a None entry in sys.modules raises ImportError)."""
    for name in names:
        monkeypatch.setitem(sys.modules, name, None)


def _one_line(err: MissingDependencyError, package: str, install: str) -> None:
    text = str(err)
    assert isinstance(err, ConfigError) and err.package == package
    assert "\n" not in text and repr(package) in text and install in text


def test_lnp_and_plot_packages_are_default_dependencies():
    requires = importlib.metadata.requires("hrsnn") or []
    default = {re.split(r"[<>=!~ ;\[]", r)[0].lower() for r in requires if "extra ==" not in r}
    assert {"optuna", "igraph", "matplotlib"} <= default
    assert "networkx" not in default  # an alternative betweenness backend only: the "networkx" extra
    assert any(r.startswith("networkx") and 'extra == "networkx"' in r for r in requires)


def test_missing_networkx_names_its_extra(monkeypatch):
    _hide(monkeypatch, "networkx")
    with pytest.raises(MissingDependencyError) as info:
        betweenness_centrality(torch.ones(3, 3), backend="networkx")
    _one_line(info.value, "networkx", "pip install 'hrsnn[networkx]'")
    assert str(info.value).startswith("betweenness_backend='networkx': ")


def test_missing_igraph_and_optuna_say_the_install_is_broken(monkeypatch):
    _hide(monkeypatch, "igraph", "optuna")
    with pytest.raises(MissingDependencyError) as info:
        betweenness_centrality(torch.ones(3, 3), backend="igraph")
    _one_line(info.value, "igraph", "pip install igraph")
    assert "reinstall hrsnn" in str(info.value)
    with pytest.raises(MissingDependencyError) as info:
        optimise_timescales(torch.tensor([0.3, 0.6]), lambda tau: 0.0, sampler="tpe", n_trials=1)
    _one_line(info.value, "optuna", "pip install optuna")


def test_missing_matplotlib_in_every_plot(monkeypatch, tmp_path):
    system = MapSystem(lambda x: 0.5 * x, dim=2)
    result = lyapunov_spectrum(system, torch.ones(2), LyapunovConfig(n_steps=3, transient=0, align=0))
    _hide(monkeypatch, *MATPLOTLIB)
    calls = (
        lambda: plot_lyapunov(result, tmp_path / "a.png"),
        lambda: plot_spectra({"dense": torch.tensor([-0.1, -0.2])}, tmp_path / "b.png"),
        lambda: plot_lnp_history({}, tmp_path / "c.png"),
    )
    for call in calls:
        with pytest.raises(MissingDependencyError) as info:
            call()
        _one_line(info.value, "matplotlib", "pip install matplotlib")


def test_cli_exits_2_with_one_line_when_a_package_is_missing(monkeypatch, tmp_path, capsys):
    _hide(monkeypatch, "networkx")
    args = ["--store", str(tmp_path / "runs.sqlite"), "lnp", "--quick", "--quiet", "--out", str(tmp_path / "out")]
    code = main([*args, "--set", "lnp.betweenness_backend=networkx", "--set", "lnp.prune_synapses=false"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "pip install 'hrsnn[networkx]'" in err
