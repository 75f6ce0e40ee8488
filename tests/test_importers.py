"""The SRNN authors' ECG model imported into hrsnn reproduces their published evaluation."""

from __future__ import annotations

import argparse

import pytest
import torch

from hrsnn.errors import ConfigError, DataFormatError, DataNotFoundError
from hrsnn.importers import SRNN_ECG_KEYS, import_srnn_ecg
from hrsnn.objectives import make_objective
from hrsnn.tasks.base import resolve_data_dir
from hrsnn.tasks.ecg import load_qtdb
from hrsnn.training import evaluate


def _data_dir():
    try:
        root = resolve_data_dir(None)
    except DataNotFoundError:
        pytest.skip("shared data not available")
    if not (root / "srnn" / "ecg_nmi_state_dict.pt").is_file() or not (root / "qtdb" / "QTDB_test.mat").is_file():
        pytest.skip("SRNN ECG model or QTDB test set not available")
    return root


def test_imported_srnn_ecg_model_reproduces_authors_accuracy_and_rate():
    root = _data_dir()
    model = import_srnn_ecg(root / "srnn" / "ecg_nmi_state_dict.pt")
    test = load_qtdb(root).test
    metrics = evaluate(model, test, make_objective("per_step_nll", skip=10), batch_size=141)
    assert metrics["accuracy"] == pytest.approx(0.8586, abs=5e-4)
    assert metrics["firing_rate"] == pytest.approx(0.2953, abs=5e-4)


def test_importer_maps_every_tensor():
    g = torch.Generator().manual_seed(0)
    shapes = {
        "i2h.weight": (5, 4), "i2h.bias": (5,), "h2h.weight": (5, 5), "h2h.bias": (5,),
        "h2o.weight": (3, 5), "h2o.bias": (3,), "tau_m_h": (5,), "tau_adp_h": (5,), "tau_m_o": (3,),
        "tau_adp_o": (3,),
    }  # fmt: skip
    sd = {k: torch.rand(s, generator=g) + (5.0 if k.startswith("tau") else 0.0) for k, s in shapes.items()}
    model = import_srnn_ecg(sd)
    layer, ro = model.layers[0], model.readout
    assert torch.equal(layer.input.weight, sd["i2h.weight"]) and torch.equal(layer.bias_rec, sd["h2h.bias"])
    assert torch.equal(layer.weight_rec, sd["h2h.weight"]) and bool(layer.mask.all())  # autapses kept
    assert torch.equal(ro.input.weight, sd["h2o.weight"]) and torch.equal(ro.input.bias, sd["h2o.bias"])
    torch.testing.assert_close(layer.tau_m.tau, sd["tau_m_h"])
    torch.testing.assert_close(ro.tau_m.tau, sd["tau_m_o"])
    torch.testing.assert_close(ro.tau_adp.tau, sd["tau_adp_o"])
    assert model.config.layers[0].neuron.kind == "lif" and model.config.readout.neuron.beta == 1.8


def test_importer_rejects_wrong_layouts(tmp_path):
    with pytest.raises(ConfigError, match="missing keys"):
        import_srnn_ecg({"i2h.weight": torch.zeros(2, 2)})
    sd = {k: torch.zeros(1) for k in SRNN_ECG_KEYS}
    sd.update({"i2h.weight": torch.zeros(5, 4), "h2o.weight": torch.zeros(3, 5)})
    with pytest.raises(ConfigError, match=r"state_dict\['i2h.bias'\]"):
        import_srnn_ecg(sd)
    with pytest.raises(ConfigError, match="not found"):
        import_srnn_ecg(tmp_path / "absent.pt")


def _valid_sd() -> dict[str, torch.Tensor]:
    shapes = {
        "i2h.weight": (5, 4), "i2h.bias": (5,), "h2h.weight": (5, 5), "h2h.bias": (5,),
        "h2o.weight": (3, 5), "h2o.bias": (3,), "tau_m_h": (5,), "tau_adp_h": (5,), "tau_m_o": (3,),
        "tau_adp_o": (3,),
    }  # fmt: skip
    return {k: torch.full(s, 20.0) for k, s in shapes.items()}


def test_pickled_objects_are_refused_without_suggesting_unsafe_loading(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({**_valid_sd(), "args": argparse.Namespace(lr=0.1)}, path)
    with pytest.raises(DataFormatError) as err:
        import_srnn_ecg(path)
    message = str(err.value)
    assert str(path) in message and "argparse.Namespace" in message and "will not unpickle" in message
    assert "weights_only" not in message and "\n" not in message


@pytest.mark.parametrize("kind", ["truncated", "random", "empty", "text"])
def test_unreadable_state_dict_file_is_named(tmp_path, kind):
    path = tmp_path / "model.pt"
    torch.save(_valid_sd(), path)
    data = path.read_bytes()
    path.write_bytes(
        {"truncated": data[: len(data) // 2], "random": bytes(range(256)) * 8, "empty": b"", "text": b"hello\n" * 50}[
            kind
        ]
    )
    with pytest.raises(DataFormatError) as err:
        import_srnn_ecg(path)
    assert str(path) in str(err.value) and "not a readable PyTorch file" in str(err.value)
    assert "\n" not in str(err.value)


def test_file_holding_something_else_than_a_state_dict(tmp_path):
    path = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), path)
    with pytest.raises(DataFormatError, match="holds a Tensor, not a state dict"):
        import_srnn_ecg(path)
    torch.save({"i2h.weight": [1, 2]}, path)
    with pytest.raises(DataFormatError, match=r"'i2h.weight' is a list, not a tensor"):
        import_srnn_ecg(path)
