"""Builders shared by several test modules (pytest puts this folder on sys.path)."""

from __future__ import annotations

import pytest
import torch

from hrsnn.cli import main
from hrsnn.connectivity import ConnectivitySpec
from hrsnn.network import RSNN, LayerConfig, NeuronConfig, RSNNConfig
from hrsnn.tasks.base import SequenceDataset


def toy_sequences(n: int = 64, t: int = 20, seed: int = 0, per_step: bool = False) -> SequenceDataset:
    """Class = which of two channels carries a high spike rate (0.6 against 0.05)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    rates = torch.full((n, t, 2), 0.05)
    rates[torch.arange(n), :, y] = 0.6
    x = (torch.rand(n, t, 2, generator=g) < rates).float()
    if per_step:
        return SequenceDataset(x, y[:, None].expand(n, t).clone(), 2, "toy")
    return SequenceDataset(x, y, 2, "toy")


def small_world_rsnn(n: int = 30, seed: int = 0) -> RSNN:
    """A small-world LIF RSNN with Dale's law and gamma τ (3 inputs, 2 outputs), the LNP tests' network."""
    conn = ConnectivitySpec(kind="small_world", k=6, p_rewire=0.2, dale=True, init="normal", spectral_radius=1.0)
    neuron = NeuronConfig(kind="lif", tau_m={"dist": "gamma", "shape": 3.0, "scale": 6.0, "floor": 2.0})
    layer = LayerConfig(size=n, neuron=neuron, connectivity=conn)
    return RSNN(RSNNConfig(n_inputs=3, n_outputs=2, layers=(layer,)), seed=seed)


def run_cli(capsys: pytest.CaptureFixture[str], tmp_path, *args: str) -> tuple[int, str, str]:
    """``hrsnn --store tmp_path/runs.sqlite ARGS``: exit code, stdout, stderr."""
    code = main(["--store", str(tmp_path / "runs.sqlite"), *args])
    out, err = capsys.readouterr()
    return code, out, err
