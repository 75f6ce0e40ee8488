"""The ``lyapunov`` sub-command, registered on a parser built here (the main CLI hooks it in separately)."""

from __future__ import annotations

import argparse
import json
import os
import re
from typing import ClassVar

import pytest
import torch

from hrsnn._threads import auto_threads
from hrsnn.cli import build_parser, main
from hrsnn.dynamics import cli as lyapunov_cli
from hrsnn.errors import ConfigError
from hrsnn.network import RSNN, LayerConfig, RSNNConfig, save_model

FAST = ["--steps", "20", "--transient", "5", "--align", "5", "--top", "3", "--size", "12", "--inputs", "4"]


def _run(argv: list[str]) -> int:
    args = build_parser().parse_args(["lyapunov", *argv])
    return args.func(args)


def test_json_output_of_generated_network(capsys):
    assert _run([*FAST, "--json", "--batch", "2", "--drive-rate", "0.3"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["exponents"]) == 3 and len(out["std"]) == 3
    assert out["dim"] == 36 and out["n_initial_conditions"] == 2
    assert out["method"] == "surrogate" and out["plot"] is None
    assert out["exponents"] == sorted(out["exponents"], reverse=True)


def test_text_output_and_plot(tmp_path, capsys):
    png = tmp_path / "spectrum.png"
    assert _run([*FAST, "--kind", "lif", "--method", "rate", "--probe-steps", "50", "--plot", str(png)]) == 0
    text = capsys.readouterr().out
    assert "method=rate" in text and "Kaplan–Yorke" in text and str(png) in text
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "nan" not in text and "± std" not in text  # one initial condition: no spread column
    assert _run([*FAST, "--batch", "2"]) == 0
    text = capsys.readouterr().out
    assert "± std" in text and "nan" not in text


def test_saved_model_full_spectrum(tmp_path, capsys):
    model = RSNN(RSNNConfig(n_inputs=3, n_outputs=1, layers=(LayerConfig(size=4),)), seed=0)
    path = tmp_path / "model.safetensors"
    save_model(model, path)
    assert _run(["--model", str(path), "--full", "--steps", "10", "--method", "exact", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n_exponents"] == 12
    assert out["exponents"][8:] == [None] * 4  # the s-block: −∞, written as null


@pytest.mark.parametrize(
    ("argv", "field"),
    [
        (["--sparsity", "1.5"], "--sparsity"),
        (["--tau-m", "{not json"], "--tau-m"),
        (["--tau-m", "[1, 2]"], "--tau-m"),
        (["--model", "/no/such/model.safetensors"], "--model"),
        (["--plot", "/no/such/dir/out.png"], "--plot"),
        (["--threads", "0"], "--threads"),
        (["--drive-rate", "2"], "drive.rate"),
        (["--top", "99"], "lyapunov.n_exponents"),
    ],
)
def test_bad_input_raises_config_error(argv, field):
    with pytest.raises(ConfigError) as info:
        _run([*FAST, *argv])
    assert info.value.field == field


def test_non_finite_model_is_named_before_the_analysis(tmp_path):
    model = RSNN(RSNNConfig(n_inputs=3, n_outputs=1, layers=(LayerConfig(size=4),)), seed=0)
    with torch.no_grad():
        model.layers[0].weight_rec[0, 1] = float("nan")
        model.layers[0].weight_rec[2, 1] = float("nan")
        model.layers[0].input.weight[0, 0] = float("-inf")
    path = tmp_path / "nan.safetensors"
    save_model(model, path)
    with pytest.raises(ConfigError) as info:
        _run(["--model", str(path), "--steps", "10", "--top", "3"])
    assert info.value.field == "--model"
    assert info.value.reason == (
        "the model holds non-finite values (layers.0.weight_rec: 2 NaN, 0 inf; layers.0.input.weight: 0 NaN, 1 inf)"
    )


class _FakeBar:
    """Stands in for tqdm: records how it was made, the steps reported and the thread count of the run."""

    made: ClassVar[list[_FakeBar]] = []

    def __init__(self, *, total: int, disable: bool | None, **kwargs) -> None:
        self.total, self.disable, self.kwargs, self.steps = total, disable, kwargs, 0
        self.threads = torch.get_num_threads()
        _FakeBar.made.append(self)

    def update(self, n: int) -> None:
        self.steps += n

    def __enter__(self) -> _FakeBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


@pytest.mark.parametrize(("extra", "disable"), [([], None), (["--quiet"], True), (["--json"], True)])
def test_progress_bar_counts_every_step_and_small_networks_use_one_thread(monkeypatch, extra, disable):
    monkeypatch.setattr(lyapunov_cli, "tqdm", _FakeBar)
    _FakeBar.made.clear()
    torch.set_num_threads(2)
    try:
        assert _run([*FAST, *extra]) == 0
        assert torch.get_num_threads() == 2  # restored after the command
    finally:
        torch.set_num_threads(1)
    (bar,) = _FakeBar.made
    assert bar.total == bar.steps == 5 + 5 + 20  # transient + align + steps
    assert bar.disable is disable and bar.threads == 1


def test_auto_threads_by_largest_layer_and_idle_cores(monkeypatch):
    """One thread below 512 neurons; above, torch's setting capped at CPU count minus the 1-minute load."""
    torch.set_num_threads(2)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    try:
        small = RSNN(RSNNConfig(n_inputs=1, n_outputs=1, layers=(LayerConfig(size=511), LayerConfig(size=3))))
        large = RSNN(RSNNConfig(n_inputs=1, n_outputs=1, layers=(LayerConfig(size=3), LayerConfig(size=512))))
        for load, expected_large in ((0.0, 2), (0.3, 2), (1.2, 1), (3.5, 1)):
            monkeypatch.setattr(os, "getloadavg", lambda load=load: (load, load, load))
            assert auto_threads(small) == 1 and auto_threads(large) == expected_large, load
        monkeypatch.setattr(os, "cpu_count", lambda: 8)
        monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
        assert auto_threads(large) == 2  # never more than torch's setting
    finally:
        torch.set_num_threads(1)


def test_quiet_json_prints_only_the_json(capsys):
    assert main(["lyapunov", *FAST, "--quiet", "--json"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert captured.out.count("\n") == 1 and len(json.loads(captured.out)["exponents"]) == 3


@pytest.mark.parametrize(("option", "value"), [("--seed", str(2**64)), ("--seed", "-1"), ("--drive-seed", "-5")])
def test_seeds_outside_generator_range(capsys, option, value):
    with pytest.raises(ConfigError) as info:
        _run([*FAST, option, value])
    assert info.value.field == option
    assert main(["lyapunov", *FAST, option, value]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{option}={int(value)}" in err


def test_size_that_cannot_fit_in_memory(monkeypatch, capsys):
    monkeypatch.setenv("HRSNN_MAX_BYTES", str(10**6))
    assert main(["lyapunov", *FAST, "--size", "1000"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--size=1000" in err and "GiB" in err


def test_help_names_options_not_issue_numbers():
    parser = build_parser()
    (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    text = sub.choices["lyapunov"].format_help()
    assert "--quiet" in text and "--threads" in text
    assert not re.search(r"#\d|issue", text, flags=re.IGNORECASE)
