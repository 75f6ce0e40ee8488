r"""Operation counts of classical recurrent baselines (Elman RNN, GRU, LSTM), following PyTorch's equations.

Conventions. Every multiplication is one MAC (the addition that follows it, when there is one, is part of the MAC);
an addition without a multiplication is one AC. A matrix-vector product :math:`W x` with :math:`W \in
\mathbb R^{m\times n}` is :math:`mn` MACs. The two biases PyTorch keeps per gate (``b_i*`` and ``b_h*``) enter the
same sum, so they are folded into one constant: one AC per gate unit. Sigmoid and tanh evaluations are counted
separately (``sigmoids``, ``tanhs``) and are not priced by :func:`hrsnn.metrics.energy`. Counts are dense: every
input, state and weight is taken as nonzero (a classical network does not skip zeros).

Per layer with :math:`N_x` inputs and :math:`N_h` units, per step:

- Elman (``nn.RNN``, tanh): :math:`h' = \tanh(W_{ih}x + b_{ih} + W_{hh}h + b_{hh})`.
  MACs :math:`N_h(N_x+N_h)`; ACs :math:`N_h` (bias); :math:`N_h` tanh.
- GRU (``nn.GRU``): :math:`r = \sigma(W_{ir}x + b_{ir} + W_{hr}h + b_{hr})`,
  :math:`z = \sigma(W_{iz}x + b_{iz} + W_{hz}h + b_{hz})`,
  :math:`n = \tanh(W_{in}x + b_{in} + r\odot(W_{hn}h + b_{hn}))`, :math:`h' = (1-z)\odot n + z\odot h`.
  MACs :math:`3N_h(N_x+N_h) + 3N_h` (products :math:`r\odot\cdot`, :math:`(1-z)\odot n`, :math:`z\odot h`);
  ACs :math:`4N_h` (biases: one folded per r and z unit, :math:`b_{in}` and :math:`b_{hn}` apart) + :math:`N_h`
  (:math:`1-z`); :math:`2N_h` sigmoid, :math:`N_h` tanh.
- LSTM (``nn.LSTM``): :math:`i, f, o = \sigma(\cdot)`, :math:`g = \tanh(\cdot)` (each
  :math:`W_{i\cdot}x + b_{i\cdot} + W_{h\cdot}h + b_{h\cdot}`), :math:`c' = f\odot c + i\odot g`,
  :math:`h' = o\odot\tanh(c')`. MACs :math:`4N_h(N_x+N_h) + 3N_h`; ACs :math:`4N_h` (bias);
  :math:`3N_h` sigmoid, :math:`2N_h` tanh.

Without biases the bias ACs vanish (the GRU keeps its :math:`N_h` ACs for :math:`1-z`). The readout
``nn.Linear(N_h, N_out)`` costs :math:`N_h N_{out}` MACs and :math:`N_{out}` bias ACs each time it is applied:
every step (per-step outputs) or once (a label per sequence). NeuroBench's ``SynapticOperations`` counts the same
MACs for ``nn.RNNCell``, ``nn.GRUCell`` and ``nn.LSTMCell`` with nonzero inputs, states and weights (it leaves out
bias additions).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Integral
from types import MappingProxyType
from typing import Any, Literal

from hrsnn._validate import check_int
from hrsnn.errors import ConfigError

__all__ = ["CLASSICAL_CELLS", "CellCost", "ClassicalLayerOps", "ClassicalOps", "classical_macs"]

ClassicalKind = Literal["rnn", "gru", "lstm"]


@dataclass(frozen=True)
class CellCost:
    """Per-unit, per-step costs of one recurrent cell type, beyond its ``gates`` matrix products (module docstring).

    Attributes:
        gates: weight blocks per unit (1, 3, 4): the matrix products cost ``gates · N_h · (N_x + N_h)`` MACs.
        elementwise_macs: element-wise products per unit.
        bias_acs: bias additions per unit (with biases).
        other_acs: other additions per unit (GRU: ``1 − z``).
        sigmoids, tanhs: nonlinearity evaluations per unit.
    """

    gates: int
    elementwise_macs: int
    bias_acs: int
    other_acs: int
    sigmoids: int
    tanhs: int


CLASSICAL_CELLS: Mapping[str, CellCost] = MappingProxyType(
    {
        "rnn": CellCost(gates=1, elementwise_macs=0, bias_acs=1, other_acs=0, sigmoids=0, tanhs=1),
        "gru": CellCost(gates=3, elementwise_macs=3, bias_acs=4, other_acs=1, sigmoids=2, tanhs=1),
        "lstm": CellCost(gates=4, elementwise_macs=3, bias_acs=4, other_acs=0, sigmoids=3, tanhs=2),
    }
)
"""Read-only map from cell type (``"rnn"``, ``"gru"``, ``"lstm"``) to its :class:`CellCost`."""


@dataclass(frozen=True)
class ClassicalLayerOps:
    """Operations of one recurrent layer per step (per sample), and its parameter count.

    Attributes:
        n_inputs, n_hidden: ``N_x`` and ``N_h``.
        matrix_macs: ``gates · N_h · (N_x + N_h)``.
        elementwise_macs: gate products.
        acs: bias and other additions.
        sigmoids, tanhs: nonlinearity evaluations.
        parameter_count: weights and biases, as PyTorch holds them (two bias vectors per gate).
    """

    n_inputs: int
    n_hidden: int
    matrix_macs: int
    elementwise_macs: int
    acs: int
    sigmoids: int
    tanhs: int
    parameter_count: int

    @property
    def macs(self) -> int:
        """All MACs of a step."""
        return self.matrix_macs + self.elementwise_macs

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        return {
            "n_inputs": self.n_inputs,
            "n_hidden": self.n_hidden,
            "matrix_macs": self.matrix_macs,
            "elementwise_macs": self.elementwise_macs,
            "macs": self.macs,
            "acs": self.acs,
            "sigmoids": self.sigmoids,
            "tanhs": self.tanhs,
            "parameter_count": self.parameter_count,
        }


@dataclass(frozen=True)
class ClassicalOps:
    """Operation counts of a stacked classical RNN with a linear readout, per sample of ``n_steps`` steps.

    Attributes:
        kind: ``"rnn"``, ``"gru"`` or ``"lstm"``.
        n_inputs, n_outputs, n_steps: sizes.
        bias: whether the layers and the readout have biases.
        readout_steps: how many times the readout is applied per sample (``n_steps`` or 1).
        layers: per-layer counts per step.
        readout_macs, readout_acs, readout_parameter_count: one readout application and its parameters.
    """

    kind: str
    n_inputs: int
    n_outputs: int
    n_steps: int
    bias: bool
    readout_steps: int
    layers: tuple[ClassicalLayerOps, ...]
    readout_macs: int
    readout_acs: int
    readout_parameter_count: int

    @property
    def hidden_sizes(self) -> tuple[int, ...]:
        """``N_h`` of every layer."""
        return tuple(layer.n_hidden for layer in self.layers)

    @property
    def macs(self) -> int:
        """MACs per sample: every layer at every step, plus the readout ``readout_steps`` times."""
        return sum(layer.macs for layer in self.layers) * self.n_steps + self.readout_macs * self.readout_steps

    @property
    def acs(self) -> int:
        """ACs per sample (bias and other additions)."""
        return sum(layer.acs for layer in self.layers) * self.n_steps + self.readout_acs * self.readout_steps

    @property
    def sigmoids(self) -> int:
        """Sigmoid evaluations per sample."""
        return sum(layer.sigmoids for layer in self.layers) * self.n_steps

    @property
    def tanhs(self) -> int:
        """Tanh evaluations per sample."""
        return sum(layer.tanhs for layer in self.layers) * self.n_steps

    @property
    def parameter_count(self) -> int:
        """Parameters of the layers and the readout (NeuroBench's "parameter count")."""
        return sum(layer.parameter_count for layer in self.layers) + self.readout_parameter_count

    def counts(self, dense: bool = False) -> tuple[float, float]:
        """``(ACs, MACs)`` per sample. A classical network computes densely, so ``dense`` changes nothing."""
        del dense
        return float(self.acs), float(self.macs)

    def label(self) -> str:
        """Short description, e.g. ``"lstm 4→(36)→6"``."""
        return f"{self.kind} {self.n_inputs}→({', '.join(map(str, self.hidden_sizes))})→{self.n_outputs}"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        return {
            "kind": self.kind,
            "n_inputs": self.n_inputs,
            "hidden_sizes": list(self.hidden_sizes),
            "n_outputs": self.n_outputs,
            "n_steps": self.n_steps,
            "bias": self.bias,
            "readout_steps": self.readout_steps,
            "layers": [layer.to_dict() for layer in self.layers],
            "readout_macs": self.readout_macs,
            "readout_acs": self.readout_acs,
            "macs": self.macs,
            "acs": self.acs,
            "sigmoids": self.sigmoids,
            "tanhs": self.tanhs,
            "parameter_count": self.parameter_count,
        }


def _layer_ops(cost: CellCost, n_x: int, n_h: int, bias: bool) -> ClassicalLayerOps:
    matrix = cost.gates * n_h * (n_x + n_h)
    return ClassicalLayerOps(
        n_inputs=n_x,
        n_hidden=n_h,
        matrix_macs=matrix,
        elementwise_macs=cost.elementwise_macs * n_h,
        acs=((cost.bias_acs if bias else 0) + cost.other_acs) * n_h,
        sigmoids=cost.sigmoids * n_h,
        tanhs=cost.tanhs * n_h,
        parameter_count=matrix + (2 * cost.gates * n_h if bias else 0),
    )


def classical_macs(
    kind: ClassicalKind,
    n_inputs: int,
    hidden_sizes: int | Sequence[int],
    n_outputs: int,
    n_steps: int,
    *,
    bias: bool = True,
    readout: Literal["every_step", "last_step"] = "every_step",
) -> ClassicalOps:
    """Operation counts of a stacked ``kind`` network ``n_inputs → hidden_sizes → n_outputs`` over ``n_steps`` steps
    (module docstring for the equations and conventions).

    Args:
        kind: ``"rnn"`` (Elman, tanh), ``"gru"`` or ``"lstm"``.
        n_inputs: input channels ``N_x`` (>= 1).
        hidden_sizes: units of each stacked layer (an int for one layer; each >= 1).
        n_outputs: readout units (>= 1).
        n_steps: sequence length (>= 1).
        bias: biases in the layers and the readout (PyTorch's default).
        readout: apply the readout at ``"every_step"`` (per-step outputs) or at the ``"last_step"`` only.

    Raises:
        ConfigError: naming the bad argument.
    """
    if not isinstance(kind, str) or kind not in CLASSICAL_CELLS:
        raise ConfigError("kind", kind, f"must be one of {sorted(CLASSICAL_CELLS)}")
    n_inputs = check_int("n_inputs", n_inputs, 1)
    n_outputs = check_int("n_outputs", n_outputs, 1)
    n_steps = check_int("n_steps", n_steps, 1)
    if not isinstance(bias, bool):
        raise ConfigError("bias", bias, "must be true or false")
    if readout not in ("every_step", "last_step"):
        raise ConfigError("readout", readout, "must be 'every_step' or 'last_step'")
    if isinstance(hidden_sizes, Integral) and not isinstance(hidden_sizes, bool):
        hidden_sizes = (int(hidden_sizes),)
    if isinstance(hidden_sizes, str | bytes) or not isinstance(hidden_sizes, Sequence) or not hidden_sizes:
        raise ConfigError("hidden_sizes", hidden_sizes, "must be a positive int or a non-empty sequence of them")
    sizes = tuple(check_int("hidden_sizes", n, 1) for n in hidden_sizes)
    cost = CLASSICAL_CELLS[kind]
    layers, n_x = [], n_inputs
    for n_h in sizes:
        layers.append(_layer_ops(cost, n_x, n_h, bias))
        n_x = n_h
    return ClassicalOps(
        kind=kind,
        n_inputs=n_inputs,
        n_outputs=n_outputs,
        n_steps=n_steps,
        bias=bias,
        readout_steps=n_steps if readout == "every_step" else 1,
        layers=tuple(layers),
        readout_macs=n_x * n_outputs,
        readout_acs=n_outputs if bias else 0,
        readout_parameter_count=n_x * n_outputs + (n_outputs if bias else 0),
    )
