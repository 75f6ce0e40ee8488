"""benchmarks/device_speed.py: its identity check on the CPU (and on CUDA where present) and its argument errors."""

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "device_speed.py"


@pytest.fixture(scope="module")
def ds():
    spec = importlib.util.spec_from_file_location("hrsnn_bench_device_speed", _PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "device",
    ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"))],
)
def test_quick_run_reports_identical_spikes_and_gradients(ds, device, tmp_path):
    out = tmp_path / "report.json"
    report = ds.main(["--device", device, "--quick", "--json", str(out)])
    assert out.exists()
    labels = set(report["configs"])
    assert labels == {"LIF N=64", "ALIF N=256 mask 1", "ALIF N=256 mask 0.1"}
    for label, entry in report["configs"].items():
        check = entry["identity"]
        assert 0.01 < check["rate"] < 0.9, label  # spikes and resets happen: the comparison is not vacuous
        for name in ("hrsnn", "plain"):
            assert check[name]["mismatches"] == 0, (label, name)
            assert check[name]["grad_rel_err"] < 1e-10, (label, name)
        timing = entry["timing"]
        assert set(timing) == {"hrsnn", "plain"}
        assert all(t["fwdbwd_s"] > 0 and len(t["fwdbwd_passes_s"]) == 1 for t in timing.values())
        assert all((t["peak_mib"] is None) == (device == "cpu") for t in timing.values())


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--device", "nosuchdevice"], "--device 'nosuchdevice' is not usable here"),
        (["--sizes", "64,x"], "--sizes: '64,x' is not a comma-separated list"),
        (["--density", "1.5"], "--density: 1.5 must lie in (0, 1)"),
    ],
)
def test_bad_arguments_name_the_bad_value(ds, argv, message, capsys):
    with pytest.raises(SystemExit):
        ds.main(argv)
    assert message in capsys.readouterr().err
