"""Classical (non-spiking) recurrent baselines: Elman RNN, GRU and LSTM with a linear readout at every step.

Layout is batch-first, as for :class:`hrsnn.network.RSNN`: inputs (B, T, n_inputs), readout (B, T, n_outputs).
Each layer is one ``nn.RNN`` (tanh), ``nn.GRU`` or ``nn.LSTM``, so stacked layers may differ in size; the readout is
``nn.Linear`` applied to the last layer's hidden state at every step, unbounded logits that the objectives of
:mod:`hrsnn.objectives` read like a spiking network's readout membranes. A model of this module satisfies
:class:`hrsnn.models.SequenceModel`, so the same trainer, evaluation and run store train it. It has no spikes: its
outputs carry no ``layer_spikes`` and no ``output_spikes``, and evaluation reports no firing rates for it.

Initialisation is PyTorch's default for these modules (every weight and bias ~ U(−1/√H, 1/√H), H the layer's
hidden size; for the readout H is its input size), drawn from a generator seeded by ``seed``. The state starts at
zero.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

import torch
from torch import Tensor, nn

from hrsnn._validate import check_memory, check_seed
from hrsnn.config import from_dict, to_dict
from hrsnn.errors import ConfigError
from hrsnn.io import load_tensors, read_model_config, save_tensors

ClassicalKind = Literal["lstm", "gru", "rnn"]

GATES: Mapping[str, int] = MappingProxyType({"lstm": 4, "gru": 3, "rnn": 1})
"""Weight blocks per layer of each kind (rows of ``weight_ih`` = blocks × hidden size)."""

_MODULES: Mapping[str, type[nn.RNNBase]] = MappingProxyType({"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN})

CLASSICAL_FORMAT = "hrsnn-classical/1"
"""Format tag in the metadata of a saved classical model."""


@dataclass(frozen=True)
class ClassicalConfig:
    """A classical recurrent network.

    Attributes:
        kind: "lstm", "gru" or "rnn" (Elman, tanh).
        n_inputs, n_outputs: channel counts.
        hidden_sizes: hidden units of each stacked recurrent layer, in order (at least one).
        bias: biases of the recurrent layers (both ``bias_ih`` and ``bias_hh``, as PyTorch); the readout always
            has one.
    """

    kind: ClassicalKind
    n_inputs: int
    n_outputs: int
    hidden_sizes: tuple[int, ...] = (64,)
    bias: bool = True

    def __post_init__(self) -> None:
        if self.kind not in GATES:
            raise ConfigError("model.kind", self.kind, f"must be one of {list(GATES)}")
        if self.n_inputs < 1:
            raise ConfigError("model.n_inputs", self.n_inputs, "must be >= 1")
        if self.n_outputs < 1:
            raise ConfigError("model.n_outputs", self.n_outputs, "must be >= 1")
        if not self.hidden_sizes:
            raise ConfigError("model.hidden_sizes", self.hidden_sizes, "needs at least one layer")
        for i, size in enumerate(self.hidden_sizes):
            if size < 1:
                raise ConfigError(f"model.hidden_sizes[{i}]", size, "must be >= 1")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], field: str = "model") -> ClassicalConfig:
        """Parse a plain dict (e.g. a TOML table); errors name the bad field."""
        return from_dict(cls, data, field)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict, the inverse of :meth:`from_dict`."""
        return to_dict(self)


def classical_tensor_shapes(config: ClassicalConfig) -> dict[str, tuple[int, ...]]:
    """Name and shape of every tensor in ``ClassicalRNN(config).state_dict()``, computed without building it."""
    gates = GATES[config.kind]
    shapes: dict[str, tuple[int, ...]] = {}
    n_in = config.n_inputs
    for i, n in enumerate(config.hidden_sizes):
        shapes[f"layers.{i}.weight_ih_l0"] = (gates * n, n_in)
        shapes[f"layers.{i}.weight_hh_l0"] = (gates * n, n)
        if config.bias:
            shapes[f"layers.{i}.bias_ih_l0"] = (gates * n,)
            shapes[f"layers.{i}.bias_hh_l0"] = (gates * n,)
        n_in = n
    shapes["readout.weight"] = (config.n_outputs, n_in)
    shapes["readout.bias"] = (config.n_outputs,)
    return shapes


def check_classical_memory(config: ClassicalConfig) -> None:
    """Refuse a network whose float32 tensors exceed :func:`hrsnn._validate.memory_limit`, naming its largest
    layer's size."""
    sizes = list(config.hidden_sizes)
    largest = max(range(len(sizes)), key=sizes.__getitem__)
    n_bytes = 4 * sum(math.prod(shape) for shape in classical_tensor_shapes(config).values())
    what = f"a {config.kind} network with hidden sizes {sizes}"
    check_memory(f"model.hidden_sizes[{largest}]", sizes[largest], n_bytes, what)


class LayerState(NamedTuple):
    """State of one recurrent layer: hidden state h (B, H) and, for an LSTM, the cell state c (B, H)."""

    h: Tensor
    c: Tensor | None


class ClassicalState(NamedTuple):
    """State of a whole classical network: one :class:`LayerState` per layer."""

    layers: tuple[LayerState, ...]


class ClassicalOutput(NamedTuple):
    """Result of :meth:`ClassicalRNN.forward`.

    Attributes:
        readout: logits (B, T, n_outputs), the network output.
        layer_spikes: always empty (no spiking layers).
        output_spikes: always None (no spiking output units).
        state: final state (pass it back in to continue a sequence).
    """

    readout: Tensor
    layer_spikes: tuple[Tensor, ...]
    output_spikes: Tensor | None
    state: ClassicalState


class ClassicalRNN(nn.Module):
    """Input → stacked Elman/GRU/LSTM layers → linear readout per step. See the module docstring."""

    def __init__(self, config: ClassicalConfig, *, seed: int = 0) -> None:
        check_classical_memory(config)
        seed = check_seed("seed", seed)
        super().__init__()
        self.config = config
        generator = torch.Generator().manual_seed(seed)
        module = _MODULES[config.kind]
        layers = []
        n_in = config.n_inputs
        for size in config.hidden_sizes:
            layer = module(n_in, size, bias=config.bias, batch_first=True)
            _uniform_init(layer, size, generator)
            layers.append(layer)
            n_in = size
        self.layers = nn.ModuleList(layers)
        self.readout = nn.Linear(n_in, config.n_outputs)
        _uniform_init(self.readout, n_in, generator)

    @property
    def device(self) -> torch.device:
        """Device of the parameters."""
        return next(self.parameters()).device

    def initial_state(self, batch: int, generator: torch.Generator | None = None) -> ClassicalState:
        """Zero state for ``batch`` samples in the dtype and on the device of the parameters (``generator`` is
        accepted for the common model interface and not used: nothing is random)."""
        like = self.readout.weight
        layers = []
        for size in self.config.hidden_sizes:
            h = like.new_zeros(batch, size)
            layers.append(LayerState(h, torch.zeros_like(h) if self.config.kind == "lstm" else None))
        return ClassicalState(tuple(layers))

    def forward(
        self, x: Tensor, state: ClassicalState | None = None, *, generator: torch.Generator | None = None
    ) -> ClassicalOutput:
        """Run the network on x (B, T, n_inputs) from ``state`` (default: the zero state)."""
        if x.dim() != 3 or x.shape[-1] != self.config.n_inputs:
            raise ConfigError("input", tuple(x.shape), f"must be (batch, time, {self.config.n_inputs}) for this model")
        if state is None:
            state = self.initial_state(x.shape[0], generator)
        h = x
        final = []
        for layer, st in zip(self.layers, state.layers, strict=True):
            if st.c is not None:
                h, (h_n, c_n) = layer(h, (st.h.unsqueeze(0), st.c.unsqueeze(0)))
                final.append(LayerState(h_n[0], c_n[0]))
            else:
                h, h_n = layer(h, st.h.unsqueeze(0))
                final.append(LayerState(h_n[0], None))
        return ClassicalOutput(self.readout(h), (), None, ClassicalState(tuple(final)))

    def parameter_families(self) -> dict[str, list[nn.Parameter]]:
        """Trainable parameters by role: all of them are "weights" (there are no time constants)."""
        return {"weights": [p for p in self.parameters() if p.requires_grad]}

    def hidden_units(self) -> int:
        """Hidden units over all recurrent layers."""
        return sum(self.config.hidden_sizes)

    def parameter_count(self) -> int:
        """Trainable scalars: every weight and bias, readout included."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


def _uniform_init(module: nn.Module, fan: int, generator: torch.Generator) -> None:
    """Every parameter of ``module`` ~ U(−1/√fan, 1/√fan), PyTorch's default for recurrent layers."""
    bound = 1.0 / math.sqrt(fan)
    with torch.no_grad():
        for param in module.parameters():
            param.uniform_(-bound, bound, generator=generator)


def save_classical(model: ClassicalRNN, path: str | Path, *, extra: Mapping[str, Any] | None = None) -> None:
    """Atomically save the weights as safetensors, with the config (JSON) in the file's metadata; nothing is
    pickled."""
    metadata = {"format": CLASSICAL_FORMAT, "config": json.dumps(model.config.to_dict())}
    if extra:
        metadata["extra"] = json.dumps(dict(extra))
    save_tensors(path, model.state_dict(), metadata)


def load_classical(path: str | Path, device: str | torch.device = "cpu") -> ClassicalRNN:
    """Load a model saved by :func:`save_classical` (never unpickles code).

    The stored config is checked against the names and shapes of the file's tensors (read from its header)
    before anything is built.

    Raises:
        DataNotFoundError: when ``path`` does not exist.
        DataFormatError: naming the file when it is not a classical hrsnn model, its config is unreadable or
            invalid, or its tensors do not match the config (missing, unexpected or of another shape).
        ConfigError: when ``path`` is not a safetensors file, or the network would not fit in memory.
    """
    config = read_model_config(
        path, CLASSICAL_FORMAT, ClassicalConfig.from_dict, classical_tensor_shapes, what="a classical hrsnn model"
    )
    model = ClassicalRNN(config)
    model.load_state_dict(load_tensors(path))
    return model.to(device)
