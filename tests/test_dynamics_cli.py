"""The ``lyapunov`` sub-command, registered on a parser built here (the main CLI hooks it in separately)."""

from __future__ import annotations

import argparse
import json

import pytest

from hrsnn.dynamics.cli import add_lyapunov_parser
from hrsnn.errors import ConfigError
from hrsnn.network import RSNN, LayerConfig, RSNNConfig, save_model

FAST = ["--steps", "20", "--transient", "5", "--align", "5", "--top", "3", "--size", "12", "--inputs", "4"]


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="hrsnn")
    sub = parser.add_subparsers(dest="command", required=True)
    add_lyapunov_parser(sub)
    args = parser.parse_args(["lyapunov", *argv])
    return args.func(args)


def test_json_output_of_generated_network(capsys):
    assert _run([*FAST, "--json", "--batch", "2", "--drive-rate", "0.3"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["exponents"]) == 3 and len(out["std"]) == 3
    assert out["dim"] == 36 and out["n_initial_conditions"] == 2
    assert out["method"] == "surrogate" and out["plot"] is None
    assert out["exponents"] == sorted(out["exponents"], reverse=True)


def test_text_output_and_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    png = tmp_path / "spectrum.png"
    assert _run([*FAST, "--kind", "lif", "--method", "rate", "--probe-steps", "50", "--plot", str(png)]) == 0
    text = capsys.readouterr().out
    assert "method=rate" in text and "Kaplan–Yorke" in text and str(png) in text
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


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
