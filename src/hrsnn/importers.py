"""Importers for trained models of other code bases.

``import_srnn_ecg`` reads the state dict of the SRNN authors' ECG model (Yin, Corradi & Bohté;
``byin-cwi/Efficient-spiking-networks``, ``ECG/adapt_srnn_0.844_gpu-v1.py``) into an :class:`hrsnn.network.RSNN`.

Their layout, for H hidden and O output neurons and 4 input channels:

============== ========= ==============================================================
key            shape     hrsnn parameter
============== ========= ==============================================================
``i2h.weight`` (H, 4)    ``layers.0.input.weight``
``i2h.bias``   (H,)      ``layers.0.input.bias``
``h2h.weight`` (H, H)    ``layers.0.weight_rec`` (full matrix: the mask keeps autapses)
``h2h.bias``   (H,)      ``layers.0.bias_rec``
``h2o.weight`` (O, H)    ``readout.input.weight`` (fed by the *present* step's hidden spikes)
``h2o.bias``   (O,)      ``readout.input.bias``
``tau_m_h``    (H,)      ``layers.0.tau_m`` (raw parametrisation, as trained)
``tau_adp_h``  (H,)      unused: the hidden layer is LIF (β = 0), so τ_adp has no effect
``tau_m_o``    (O,)      ``readout.tau_m``
``tau_adp_o``  (O,)      ``readout.tau_adp``
============== ========= ==============================================================

Neuron settings of that model: hidden LIF (β = 0), output ALIF (β = 1.8), b0 = 0.1, R_m = 1, dt = 1, η_0 = b0,
u_0 = s_0 = 0. Its per-step prediction is the arg-max of the output membrane.

**Why b0 = 0.1** (not hrsnn's default 0.01): the threshold is not stored in the state dict, and the weights were
trained with b0 = 0.1. On the 141 QTDB test records (steps 10…1300) the imported checkpoint reaches 0.8586
per-step accuracy with b0 = 0.1, the authors' figure, but 0.304 with b0 = 0.01 (the hidden layer then fires far
more often and the readout stays almost silent).

:func:`import_srnn_ecg` reads a ``.pt`` file with ``torch.load(weights_only=True)``: only tensors and plain
containers are accepted, and a file holding other pickled objects is refused rather than unpickled.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from hrsnn.connectivity import ConnectivitySpec
from hrsnn.errors import ConfigError, DataFormatError
from hrsnn.network import RSNN, LayerConfig, NeuronConfig, ReadoutConfig, RSNNConfig

SRNN_ECG_KEYS = (
    "i2h.weight",
    "i2h.bias",
    "h2h.weight",
    "h2h.bias",
    "h2o.weight",
    "h2o.bias",
    "tau_m_h",
    "tau_adp_h",
    "tau_m_o",
    "tau_adp_o",
)


def srnn_ecg_config(
    n_inputs: int = 4, n_hidden: int = 36, n_outputs: int = 6, *, b0: float = 0.1, beta: float = 1.8
) -> RSNNConfig:
    """The authors' ECG architecture: inputs → recurrent LIF (β = 0, all-to-all with autapses) → ALIF outputs."""
    raw = {"parametrization": "raw"}
    hidden = NeuronConfig(
        kind="lif",
        b0=b0,
        beta=0.0,
        tau_m={"dist": "constant", "value": 20.0},
        **raw,  # type: ignore[arg-type]
    )
    output = NeuronConfig(
        kind="alif",
        b0=b0,
        beta=beta,
        tau_m={"dist": "constant", "value": 20.0},
        tau_adp={"dist": "constant", "value": 100.0},
        **raw,  # type: ignore[arg-type]
    )
    return RSNNConfig(
        n_inputs=n_inputs,
        n_outputs=n_outputs,
        layers=(
            LayerConfig(
                size=n_hidden,
                recurrent=True,
                neuron=hidden,
                connectivity=ConnectivitySpec(kind="dense", autapses=True, init="orthogonal"),
            ),
        ),
        readout=ReadoutConfig(kind="alif", neuron=output),
        state_init="zeros",
    )


def _load_state_dict(path: Path) -> Mapping[str, Tensor]:
    """``torch.load(path, weights_only=True)``, with every failure a one-line :class:`DataFormatError`."""
    try:
        loaded: Any = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        rejected = re.search(r"GLOBAL (\S+)", str(exc))
        if rejected is None:
            raise DataFormatError("source", str(path), "is not a readable PyTorch file of tensors") from None
        reason = (
            f"holds pickled objects beyond tensors ({rejected[1]}), which hrsnn will not unpickle; save the tensors "
            "alone, e.g. torch.save(model.state_dict(), path)"
        )
        raise DataFormatError("source", str(path), reason) from None
    except Exception as exc:  # torch raises RuntimeError, EOFError, KeyError, ... on truncated or foreign files
        reason = f"is not a readable PyTorch file (truncated, or not written by torch.save: {type(exc).__name__})"
        raise DataFormatError("source", str(path), reason) from None
    if not isinstance(loaded, Mapping):
        reason = f"holds a {type(loaded).__name__}, not a state dict (a mapping of names to tensors)"
        raise DataFormatError("source", str(path), reason)
    for key, value in loaded.items():
        if not isinstance(value, Tensor):
            raise DataFormatError("source", str(path), f"entry {key!r} is a {type(value).__name__}, not a tensor")
    return loaded


def import_srnn_ecg(source: str | Path | Mapping[str, Tensor]) -> RSNN:
    """Build an RSNN holding the authors' trained ECG weights (see the module docstring for the mapping).

    Args:
        source: a path to the ``.pt`` state dict (loaded with ``weights_only=True``, never unpickling code) or
            the state dict itself.

    Raises:
        ConfigError: naming ``source`` when the file is absent, or ``state_dict`` when keys or shapes differ.
        DataFormatError: naming the file when it is unreadable, is not a state dict of tensors, or holds
            pickled objects other than tensors (which are never unpickled).
    """
    if isinstance(source, str | Path):
        path = Path(source)
        if not path.is_file():
            raise ConfigError("source", str(path), "state-dict file not found")
        sd = _load_state_dict(path)
    else:
        sd = source
    missing = [k for k in SRNN_ECG_KEYS if k not in sd]
    if missing:
        raise ConfigError("state_dict", sorted(sd), f"is not an SRNN ECG state dict; missing keys {missing}")
    n_hidden, n_inputs = sd["i2h.weight"].shape
    n_outputs = sd["h2o.weight"].shape[0]
    expected = {
        "i2h.bias": (n_hidden,),
        "h2h.weight": (n_hidden, n_hidden),
        "h2h.bias": (n_hidden,),
        "h2o.weight": (n_outputs, n_hidden),
        "h2o.bias": (n_outputs,),
        "tau_m_h": (n_hidden,),
        "tau_m_o": (n_outputs,),
        "tau_adp_o": (n_outputs,),
    }
    for key, shape in expected.items():
        if tuple(sd[key].shape) != shape:
            raise ConfigError(f"state_dict[{key!r}]", tuple(sd[key].shape), f"expected shape {shape}")
    model = RSNN(srnn_ecg_config(n_inputs, n_hidden, n_outputs))
    hidden = model.layers[0]
    readout = model.readout
    with torch.no_grad():
        hidden.input.weight.copy_(sd["i2h.weight"])
        hidden.input.bias.copy_(sd["i2h.bias"])
        hidden.weight_rec.copy_(sd["h2h.weight"])  # type: ignore[union-attr]
        hidden.bias_rec.copy_(sd["h2h.bias"])  # type: ignore[union-attr]
        readout.input.weight.copy_(sd["h2o.weight"])
        readout.input.bias.copy_(sd["h2o.bias"])
    hidden.tau_m.set_tau(sd["tau_m_h"].float())
    readout.tau_m.set_tau(sd["tau_m_o"].float())
    readout.tau_adp.set_tau(sd["tau_adp_o"].float())  # type: ignore[union-attr]
    return model
