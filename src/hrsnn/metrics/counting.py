r"""Operation counts of an RSNN from the activity it actually produces (masks and pruning respected).

**Projections.** Every weight matrix :math:`W` (post × pre) of the network is a *projection*: ``layers.l.input``
(from the inputs or from layer l−1), ``layers.l.recurrent`` (the effective weight :math:`W_{rec}\odot M`) and
``readout.input``. Its *fan-out* is the number of nonzero weights of each presynaptic column,
:math:`f_j = \sum_i [W_{ij} \neq 0]` (masked and pruned synapses are exact zeros of the effective weight; NaN outside
the mask never counts). A projection acts at step t on its presynaptic activity :math:`a_t`: the inputs
:math:`x_t`, the spikes of the layer below at the same step, or, for a recurrent projection, the layer's own spikes
of the previous step :math:`s_{t-1}` (at t = 0 the initial state's :math:`s`). Per step, as in NeuroBench's
``SynapticOperations`` (which binarises activity and weights):

- **effective** operations :math:`\sum_j [a_{t,j} \neq 0]\, f_j`: a silent neuron costs nothing, a pruned synapse
  costs nothing. They are ACs when :math:`a_{t,j} \in \{-1, 1\}` (a spike or an event) and MACs otherwise
  (analog values, and the real-valued initial "spikes" of ``state_init="uniform_spike"``);
- **dense** operations :math:`n_{pre}\, n_{post}` (NeuroBench's "Dense": every input and every weight as if
  nonzero), ACs for projections driven by spikes or binary inputs, MACs for analog inputs.

Inputs are *binary* (event) inputs when every value is in {−1, 0, 1} (NeuroBench's test; −1 is an OFF event, e.g.
the QTDB end marker): their operations are ACs. Analog inputs cost MACs (zeros are still skipped). Biases are
not synaptic operations (as in NeuroBench); they are counted with the neuron updates.

**Neuron updates** (:data:`NEURON_UPDATE_COSTS`), per neuron and step, from the step equations of
:mod:`hrsnn.neurons` (:math:`\alpha, \rho, (1-\alpha)R_m, (1-\rho)` are per-neuron constants, precomputed once):

- ``alif``: :math:`\eta_t = \rho\eta_{t-1} + (1-\rho)s_{t-1}`, :math:`\theta_t = b_0 + \beta\eta_t`,
  :math:`u_t = \alpha u_{t-1} + (1-\alpha)R_m I_t - \theta_t s_{t-1} dt`, :math:`s_t = H(u_t - \theta_t)`.
  Every step 4 MACs (:math:`\rho\eta`, :math:`\beta\eta + b_0`, :math:`\alpha u`, :math:`(1-\alpha)R_m I`) and
  1 AC (the comparison :math:`u - \theta`); per previous spike 2 ACs (add :math:`1-\rho` to η, subtract θ from u).
  With dt ≠ 1 the reset :math:`\theta_t\,dt` is a MAC.
- ``lif`` (β = 0; η has no effect and is not counted): every step 2 MACs (:math:`\alpha u`,
  :math:`(1-\alpha)R_m I`) and 1 AC (comparison); per previous spike 1 AC (subtract the constant :math:`b_0 dt`).
- ``lif_hard``: :math:`v_t = \alpha u_{t-1} + I_t`, :math:`s_t = H(v_t - \vartheta)`, :math:`u_t = (1-s_t)v_t`:
  every step 1 MAC and 1 AC (comparison); the reset to 0 is a conditional write, not counted.
- ``integrator`` (readout): :math:`u_t = \alpha u_{t-1} + (1-\alpha)I_t`: every step 2 MACs.

Every population also adds its bias once per neuron and step: one AC per neuron whose folded bias
(:math:`b_{in} + b_{rec}`) is nonzero. A spike-triggered operation whose previous "spike" is real-valued (the
``uniform_spike`` initial state) is a MAC. The summation of the synaptic current :math:`I_t` itself is the
synaptic operations above.

**Activity statistics** (NeuroBench's definitions): the *firing rate* of a population is its nonzero outputs per
neuron and step; *activation sparsity* is the fraction of zero outputs over all spiking populations (the hidden
layers and a spiking readout; an integrator readout is not spiking), samples and steps. *Connection sparsity* is
the fraction of zero weights among all possible connections of all projections, self-connections of recurrent
projections excluded (NeuroBench issue #81). *Parameter count* and *footprint* (bytes of parameters and buffers,
masks included) are NeuroBench's.

All counts are means per sample (one sequence of ``n_steps`` steps); divide by ``n_steps`` for per-step values.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import torch
from torch import Tensor

from hrsnn._validate import check_bool, check_generator, check_int, check_model, check_tensor
from hrsnn.errors import ConfigError
from hrsnn.metrics.energy import DEFAULT_ENERGY_SETS, EnergyConstants, energy
from hrsnn.network import RSNN, SpikingLayer
from hrsnn.tasks.base import InMemorySequences, LazySequenceDataset

__all__ = [
    "NEURON_UPDATE_COSTS",
    "Data",
    "EfficiencyReport",
    "NeuronUpdateCost",
    "PopulationCounts",
    "ProjectionCounts",
    "count_from_spikes",
    "measure_efficiency",
]


@dataclass(frozen=True)
class NeuronUpdateCost:
    """Operations of one neuron's state update (module docstring for the equations).

    Attributes:
        macs: MACs every step.
        acs: ACs every step (threshold comparisons), besides the bias AC.
        spike_ops: operations per nonzero previous spike s_{t−1}: ACs for a spike of ±1, MACs for a real value.
        dt_ops: how many of ``spike_ops`` multiply by dt, so are MACs when dt ≠ 1.
    """

    macs: int
    acs: int
    spike_ops: int
    dt_ops: int

    def spike_counts(self, unit: float, other: float, dt: float) -> tuple[float, float]:
        """``(ACs, MACs)`` of ``unit`` previous spikes of ±1 and ``other`` real-valued ones."""
        unit_acs = self.spike_ops - (self.dt_ops if dt != 1.0 else 0)
        return unit * unit_acs, unit * (self.spike_ops - unit_acs) + other * self.spike_ops


NEURON_UPDATE_COSTS: Mapping[str, NeuronUpdateCost] = MappingProxyType(
    {
        "alif": NeuronUpdateCost(macs=4, acs=1, spike_ops=2, dt_ops=1),
        "lif": NeuronUpdateCost(macs=2, acs=1, spike_ops=1, dt_ops=0),
        "lif_hard": NeuronUpdateCost(macs=1, acs=1, spike_ops=0, dt_ops=0),
        "integrator": NeuronUpdateCost(macs=2, acs=0, spike_ops=0, dt_ops=0),
    }
)
"""Read-only map from neuron kind (``"alif"``, ``"lif"``, ``"lif_hard"``, ``"integrator"``) to its update cost."""


# ------------------------------------------------------------------------------------------------ report


@dataclass(frozen=True)
class ProjectionCounts:
    """Synaptic operations of one projection, per sample (module docstring).

    Attributes:
        name: ``"layers.<l>.input"``, ``"layers.<l>.recurrent"`` or ``"readout.input"``.
        source, target: presynaptic population (``"input"``, ``"layers.<l>"``) and postsynaptic one.
        n_pre, n_post: sizes.
        n_synapses: nonzero weights (inside the mask; self-connections included).
        n_possible: possible connections (``n_pre · n_post``, minus the ``n`` self-connections when recurrent).
        n_zero: zero weights among the possible connections.
        event_driven: True when driven by spikes or binary inputs (dense operations are ACs), False for analog input.
        dense: dense operations ``n_steps · n_pre · n_post``.
        effective_acs, effective_macs: effective operations.
        profile: effective operations (ACs + MACs) at each step.
    """

    name: str
    source: str
    target: str
    n_pre: int
    n_post: int
    n_synapses: int
    n_possible: int
    n_zero: int
    event_driven: bool
    dense: float
    effective_acs: float
    effective_macs: float
    profile: tuple[float, ...]

    @property
    def connection_sparsity(self) -> float:
        """``n_zero / n_possible`` (0 when nothing is possible: a recurrent layer of one neuron)."""
        return self.n_zero / self.n_possible if self.n_possible else 0.0

    def to_dict(self, *, profile: bool = False) -> dict[str, Any]:
        """Plain JSON-able dict; the per-step ``profile`` only when asked."""
        out = {
            "name": self.name,
            "source": self.source,
            "target": self.target,
            "n_pre": self.n_pre,
            "n_post": self.n_post,
            "n_synapses": self.n_synapses,
            "n_possible": self.n_possible,
            "n_zero": self.n_zero,
            "connection_sparsity": self.connection_sparsity,
            "event_driven": self.event_driven,
            "dense": self.dense,
            "effective_acs": self.effective_acs,
            "effective_macs": self.effective_macs,
        }
        if profile:
            out["profile"] = list(self.profile)
        return out


@dataclass(frozen=True)
class PopulationCounts:
    """Activity and state-update operations of one population, per sample.

    Attributes:
        name: ``"layers.<l>"`` or ``"readout"``.
        kind: a key of :data:`NEURON_UPDATE_COSTS`.
        n_neurons: size.
        spiking: whether it emits spikes (False for an integrator readout).
        spikes: nonzero outputs per sample (0 when not spiking).
        firing_rate: spikes per neuron and step (None when not spiking).
        activation_sparsity: ``1 − firing_rate`` for binary spikes: zero outputs over all outputs (None when not
            spiking).
        neuron_acs, neuron_macs: state-update operations (module docstring).
    """

    name: str
    kind: str
    n_neurons: int
    spiking: bool
    spikes: float
    firing_rate: float | None
    activation_sparsity: float | None
    neuron_acs: float
    neuron_macs: float

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        return {
            "name": self.name,
            "kind": self.kind,
            "n_neurons": self.n_neurons,
            "spiking": self.spiking,
            "spikes": self.spikes,
            "firing_rate": self.firing_rate,
            "activation_sparsity": self.activation_sparsity,
            "neuron_acs": self.neuron_acs,
            "neuron_macs": self.neuron_macs,
        }


@dataclass(frozen=True)
class EfficiencyReport:
    """Operation counts of an RSNN on a data set, per sample of ``n_steps`` steps (module docstring).

    Attributes:
        n_samples: sequences counted.
        n_steps: steps per sequence.
        binary_input: whether the inputs were counted as events (ACs) rather than analog values (MACs).
        projections: per weight matrix, in network order.
        populations: per spiking layer, then the readout.
        parameter_count: NeuroBench's "ParameterCount" (every parameter tensor element, τ included).
        footprint: NeuroBench's "Footprint": bytes of parameters and buffers (masks included).
    """

    n_samples: int
    n_steps: int
    binary_input: bool
    projections: tuple[ProjectionCounts, ...]
    populations: tuple[PopulationCounts, ...]
    parameter_count: int
    footprint: int

    @property
    def synaptic_acs(self) -> float:
        """Effective synaptic ACs (NeuroBench's "Effective_ACs")."""
        return sum(p.effective_acs for p in self.projections)

    @property
    def synaptic_macs(self) -> float:
        """Effective synaptic MACs (NeuroBench's "Effective_MACs")."""
        return sum(p.effective_macs for p in self.projections)

    @property
    def dense(self) -> float:
        """Dense synaptic operations (NeuroBench's "Dense")."""
        return sum(p.dense for p in self.projections)

    @property
    def neuron_acs(self) -> float:
        """State-update ACs of all populations."""
        return sum(p.neuron_acs for p in self.populations)

    @property
    def neuron_macs(self) -> float:
        """State-update MACs of all populations."""
        return sum(p.neuron_macs for p in self.populations)

    def counts(self, dense: bool = False) -> tuple[float, float]:
        """``(ACs, MACs)`` per sample, synaptic plus neuron updates.

        Effective counts by default; with ``dense`` the synaptic part is the dense count (ACs for event-driven
        projections, MACs for analog input) and the neuron updates are the same.
        """
        if not dense:
            return self.synaptic_acs + self.neuron_acs, self.synaptic_macs + self.neuron_macs
        dense_acs = sum(p.dense for p in self.projections if p.event_driven)
        dense_macs = sum(p.dense for p in self.projections if not p.event_driven)
        return dense_acs + self.neuron_acs, dense_macs + self.neuron_macs

    @property
    def n_synapses(self) -> int:
        """Nonzero weights of all projections."""
        return sum(p.n_synapses for p in self.projections)

    @property
    def connection_sparsity(self) -> float:
        """Zero weights over possible connections, all projections, self-connections excluded."""
        possible = sum(p.n_possible for p in self.projections)
        return sum(p.n_zero for p in self.projections) / possible if possible else 0.0

    @property
    def firing_rate(self) -> float:
        """Spikes per neuron and step over all spiking populations."""
        spiking = [p for p in self.populations if p.spiking]
        return sum(p.spikes for p in spiking) / (self.n_steps * sum(p.n_neurons for p in spiking))

    @property
    def activation_sparsity(self) -> float:
        """NeuroBench's "ActivationSparsity": zero outputs over all outputs of the spiking populations."""
        return 1.0 - self.firing_rate

    @property
    def profile(self) -> tuple[float, ...]:
        """Effective synaptic operations (ACs + MACs) per sample at each step, all projections."""
        return tuple(map(sum, zip(*(p.profile for p in self.projections), strict=True)))

    def neurobench(self) -> dict[str, Any]:
        """The counts under NeuroBench's metric names (ConnectionSparsity unrounded, self-connections excluded)."""
        return {
            "Footprint": self.footprint,
            "ConnectionSparsity": self.connection_sparsity,
            "ParameterCount": self.parameter_count,
            "ActivationSparsity": self.activation_sparsity,
            "SynapticOperations": {
                "Effective_MACs": self.synaptic_macs,
                "Effective_ACs": self.synaptic_acs,
                "Dense": self.dense,
            },
        }

    def to_dict(
        self, constants: Sequence[EnergyConstants] = DEFAULT_ENERGY_SETS, *, profiles: bool = False
    ) -> dict[str, Any]:
        """Plain JSON-able dict: counts, statistics, per-projection and per-population rows, and the energy
        (effective and dense, pJ per sample and per step) under each of ``constants``; per-step profiles only when
        ``profiles``."""
        acs, macs = self.counts()
        dense_acs, dense_macs = self.counts(dense=True)
        out: dict[str, Any] = {
            "n_samples": self.n_samples,
            "n_steps": self.n_steps,
            "binary_input": self.binary_input,
            "effective_acs": acs,
            "effective_macs": macs,
            "dense_acs": dense_acs,
            "dense_macs": dense_macs,
            "synaptic_acs": self.synaptic_acs,
            "synaptic_macs": self.synaptic_macs,
            "dense": self.dense,
            "neuron_acs": self.neuron_acs,
            "neuron_macs": self.neuron_macs,
            "firing_rate": self.firing_rate,
            "activation_sparsity": self.activation_sparsity,
            "connection_sparsity": self.connection_sparsity,
            "n_synapses": self.n_synapses,
            "parameter_count": self.parameter_count,
            "footprint": self.footprint,
            "neurobench": self.neurobench(),
            "projections": [p.to_dict(profile=profiles) for p in self.projections],
            "populations": [p.to_dict() for p in self.populations],
            "energy": {
                c.name: {
                    "constants": c.to_dict(),
                    "effective": energy(self, c).to_dict(),
                    "dense": energy(self, c, dense=True).to_dict(),
                }
                for c in constants
            },
        }
        if profiles:
            out["profile"] = list(self.profile)
        return out


# ------------------------------------------------------------------------------------------------ counting


@dataclass(frozen=True)
class _Projection:
    """Static description of a projection; ``source`` is -1 for the inputs, else a layer index."""

    name: str
    source: int
    target: str
    recurrent: bool
    fanout: Tensor  # float64 (n_pre,)
    n_post: int
    n_synapses: int
    n_possible: int
    n_zero: int


def _projection(name: str, source: int, target: str, weight: Tensor, recurrent: bool) -> _Projection:
    nonzero = weight.detach() != 0
    n_post, n_pre = nonzero.shape
    n_synapses = int(nonzero.sum())
    if recurrent:
        off_diagonal = ~torch.eye(n_pre, dtype=torch.bool, device=nonzero.device)
        n_possible, n_zero = n_pre * n_pre - n_pre, int((~nonzero & off_diagonal).sum())
    else:
        n_possible, n_zero = n_pre * n_post, n_pre * n_post - n_synapses
    fanout = nonzero.sum(0).to(torch.float64)
    return _Projection(name, source, target, recurrent, fanout, n_post, n_synapses, n_possible, n_zero)


@dataclass(frozen=True)
class _Population:
    name: str
    kind: str
    n: int
    spiking: bool
    dt: float
    n_bias: int  # neurons with a nonzero folded bias


def _folded_bias_count(*biases: Tensor | None) -> int:
    present = [b.detach() for b in biases if b is not None]
    return int((sum(present) != 0).sum()) if present else 0


def _structure(model: RSNN) -> tuple[list[_Projection], list[_Population]]:
    projections, populations = [], []
    for i, layer in enumerate(model.layers):
        name = f"layers.{i}"
        projections.append(_projection(f"{name}.input", i - 1, name, layer.input.weight, False))
        w_rec = layer.effective_recurrent_weight()
        if w_rec is not None:
            projections.append(_projection(f"{name}.recurrent", i, name, w_rec, True))
        neuron = layer.config.neuron
        n_bias = _folded_bias_count(layer.input.bias, layer.bias_rec)
        populations.append(_Population(name, neuron.kind, layer.size, True, neuron.dt, n_bias))
    readout = model.readout
    projections.append(_projection("readout.input", len(model.layers) - 1, "readout", readout.input.weight, False))
    n_bias = _folded_bias_count(readout.input.bias)
    if isinstance(readout, SpikingLayer):
        neuron = readout.config.neuron
        populations.append(_Population("readout", neuron.kind, readout.size, True, neuron.dt, n_bias))
    else:
        dt = readout.neuron.dt
        populations.append(_Population("readout", "integrator", readout.input.out_features, False, dt, n_bias))
    return projections, populations


def _unit_other(activity: Tensor) -> tuple[Tensor, Tensor]:
    """float64 indicators of entries of ±1 and of other nonzero values."""
    unit = activity.abs() == 1
    other = (activity != 0) & ~unit
    return unit.to(torch.float64), other.to(torch.float64)


def _delayed(initial: Tensor, spikes: Tensor) -> Tensor:
    """The previous-step activity ``(s_init, s_0, ..., s_{T-2})`` of spikes ``(B, T, N)``."""
    return torch.cat([initial.unsqueeze(1).to(spikes.dtype), spikes[:, :-1]], dim=1)


class _Tally:
    """Accumulates integer operation counts over batches (float64 tensors hold them exactly)."""

    def __init__(self, model: RSNN, binary_input: bool | None) -> None:
        self.model = model
        self.binary_input = binary_input
        self.projections, self.populations = _structure(model)
        self.n_samples = 0
        self.n_steps = 0
        self.analog_input = False  # some input value is not -1, 0 or 1
        self.ops_unit: list[Tensor] = []  # per projection (T,)
        self.ops_other: list[Tensor] = []
        self.spikes = [0] * len(self.populations)
        self.prev_unit = [0] * len(self.populations)
        self.prev_other = [0] * len(self.populations)

    def add(
        self,
        inputs: Tensor,
        layer_spikes: Sequence[Tensor],
        output_spikes: Tensor | None,
        initial_spikes: Sequence[Tensor],
        initial_output_spikes: Tensor | None,
    ) -> None:
        batch, n_steps = inputs.shape[0], inputs.shape[1]
        if self.n_samples == 0:
            self.n_steps = n_steps
        for k, proj in enumerate(self.projections):
            if proj.source < 0:
                pre = inputs
            elif proj.recurrent:
                pre = _delayed(initial_spikes[proj.source], layer_spikes[proj.source])
            else:
                pre = layer_spikes[proj.source]
            unit, other = _unit_other(pre.to(proj.fanout.device))
            if proj.source < 0 and bool(other.any()):
                if self.binary_input:
                    raise ConfigError(
                        "binary_input", True, "the inputs hold values other than -1, 0 and 1; pass False or None"
                    )
                self.analog_input = True
            unit_steps, other_steps = (unit @ proj.fanout).sum(0), (other @ proj.fanout).sum(0)
            if len(self.ops_unit) <= k:
                self.ops_unit.append(unit_steps)
                self.ops_other.append(other_steps)
            else:
                self.ops_unit[k] += unit_steps
                self.ops_other[k] += other_steps
        outputs = [*layer_spikes, output_spikes]
        initials = [*initial_spikes, initial_output_spikes]
        for k, (spikes, initial) in enumerate(zip(outputs, initials, strict=True)):
            if spikes is None or initial is None:  # the integrator readout
                continue
            self.spikes[k] += int(torch.count_nonzero(spikes))
            unit, other = _unit_other(_delayed(initial, spikes))
            self.prev_unit[k] += int(unit.sum())
            self.prev_other[k] += int(other.sum())
        self.n_samples += batch

    def report(self) -> EfficiencyReport:
        n, steps = self.n_samples, self.n_steps
        binary = not self.analog_input if self.binary_input is None else self.binary_input
        rows = []
        for proj, unit, other in zip(self.projections, self.ops_unit, self.ops_other, strict=True):
            acs, macs = float(unit.sum()), float(other.sum())
            event_driven = True
            if proj.source < 0:
                event_driven = binary
                acs, macs = (acs + macs, 0.0) if binary else (0.0, acs + macs)
            source = "input" if proj.source < 0 else f"layers.{proj.source}"
            n_pre = proj.fanout.numel()
            rows.append(
                ProjectionCounts(
                    name=proj.name,
                    source=source,
                    target=proj.target,
                    n_pre=n_pre,
                    n_post=proj.n_post,
                    n_synapses=proj.n_synapses,
                    n_possible=proj.n_possible,
                    n_zero=proj.n_zero,
                    event_driven=event_driven,
                    dense=float(steps * n_pre * proj.n_post),
                    effective_acs=acs / n,
                    effective_macs=macs / n,
                    profile=tuple(((unit + other) / n).tolist()),
                )
            )
        pops = []
        for k, pop in enumerate(self.populations):
            cost = NEURON_UPDATE_COSTS[pop.kind]
            neuron_steps = n * steps * pop.n
            spike_acs, spike_macs = cost.spike_counts(self.prev_unit[k], self.prev_other[k], pop.dt)
            rate = self.spikes[k] / neuron_steps if pop.spiking else None
            pops.append(
                PopulationCounts(
                    name=pop.name,
                    kind=pop.kind,
                    n_neurons=pop.n,
                    spiking=pop.spiking,
                    spikes=self.spikes[k] / n,
                    firing_rate=rate,
                    activation_sparsity=None if rate is None else 1.0 - rate,
                    neuron_acs=(cost.acs * neuron_steps + pop.n_bias * n * steps + spike_acs) / n,
                    neuron_macs=(cost.macs * neuron_steps + spike_macs) / n,
                )
            )
        params = list(self.model.parameters())
        buffers = list(self.model.buffers())
        return EfficiencyReport(
            n_samples=n,
            n_steps=steps,
            binary_input=binary,
            projections=tuple(rows),
            populations=tuple(pops),
            parameter_count=sum(p.numel() for p in params),
            footprint=sum(t.numel() * t.element_size() for t in params + buffers),
        )


def _check_spikes(field: str, spikes: Any, shape: tuple[int, ...]) -> Tensor:
    spikes = check_tensor(field, spikes)
    if tuple(spikes.shape) != shape:
        raise ConfigError(field, tuple(spikes.shape), f"must have shape {shape}")
    if spikes.dtype == torch.bool:
        return spikes.to(torch.float32)
    return spikes


def _check_layer_list(field: str, values: Any, shapes: list[tuple[int, ...]]) -> list[Tensor]:
    if isinstance(values, Tensor) or not isinstance(values, Sequence) or len(values) != len(shapes):
        raise ConfigError(field, type(values).__name__, f"must be a sequence of {len(shapes)} tensors, one per layer")
    return [_check_spikes(f"{field}[{i}]", v, s) for i, (v, s) in enumerate(zip(values, shapes, strict=True))]


def count_from_spikes(
    model: RSNN,
    inputs: Tensor,
    layer_spikes: Sequence[Tensor],
    *,
    output_spikes: Tensor | None = None,
    initial_spikes: Sequence[Tensor] | None = None,
    initial_output_spikes: Tensor | None = None,
    binary_input: bool | None = None,
) -> EfficiencyReport:
    """Count the operations of ``model`` (its weights and masks) for recorded activity; nothing is run.

    Args:
        model: the network.
        inputs: ``(B, T, n_inputs)``, finite.
        layer_spikes: spikes of every spiking layer, each ``(B, T, N_l)`` (``RSNNOutput.layer_spikes``).
        output_spikes: ``(B, T, n_outputs)`` spikes of a spiking readout (required for one, refused otherwise).
        initial_spikes: each layer's spike state before step 0, ``(B, N_l)``; None: zeros. Needed for the
            recurrent operations at step 0 under ``state_init="uniform_spike"``.
        initial_output_spikes: a spiking readout's spike state before step 0 ``(B, n_outputs)``; None: zeros.
        binary_input: count input operations as ACs (True; every value must be -1, 0 or 1) or MACs (False);
            None detects it (True when every value is -1, 0 or 1).

    Raises:
        ConfigError: naming the bad argument.
    """
    model = check_model(model)
    inputs = check_tensor("inputs", inputs, dim=3, finite=True)
    batch, n_steps, channels = inputs.shape
    if batch < 1 or n_steps < 1:
        raise ConfigError("inputs", tuple(inputs.shape), "needs at least one sample and one step")
    if channels != model.config.n_inputs:
        raise ConfigError("inputs", tuple(inputs.shape), f"needs {model.config.n_inputs} channels for this model")
    if binary_input is not None:
        check_bool("binary_input", binary_input)
    sizes = [layer.size for layer in model.layers]
    spikes = _check_layer_list("layer_spikes", layer_spikes, [(batch, n_steps, n) for n in sizes])
    if initial_spikes is None:
        initial = [spikes[i].new_zeros(batch, n) for i, n in enumerate(sizes)]
    else:
        initial = _check_layer_list("initial_spikes", initial_spikes, [(batch, n) for n in sizes])
    n_out = model.config.n_outputs
    out_spikes, out_initial = None, None
    if isinstance(model.readout, SpikingLayer):
        if output_spikes is None:
            raise ConfigError("output_spikes", None, "the model's readout spikes; pass its spikes (B, T, n_outputs)")
        out_spikes = _check_spikes("output_spikes", output_spikes, (batch, n_steps, n_out))
        out_initial = (
            out_spikes.new_zeros(batch, n_out)
            if initial_output_spikes is None
            else _check_spikes("initial_output_spikes", initial_output_spikes, (batch, n_out))
        )
    elif output_spikes is not None or initial_output_spikes is not None:
        raise ConfigError("output_spikes", "given", "the model's readout is an integrator and emits no spikes")
    tally = _Tally(model, binary_input)
    tally.add(inputs, spikes, out_spikes, initial, out_initial)
    return tally.report()


Data = InMemorySequences | LazySequenceDataset | Tensor
"""What :func:`measure_efficiency` runs on: a data set (``SequenceDataset``, ``RegressionDataset``) or inputs
``(N, T, C)``."""


def _input_batches(data: Any, batch_size: int, n_inputs: int) -> Iterator[Tensor]:
    """Input batches of ``data`` after checking its shape against the model."""
    if isinstance(data, InMemorySequences | LazySequenceDataset):
        shape = (data.n_samples, data.n_steps, data.n_channels)
        batches = (xb for xb, _ in data.batches(batch_size, shuffle=False))
        name = data.name
    elif isinstance(data, Tensor):
        x = check_tensor("data", data, dim=3, finite=True)
        shape = tuple(x.shape)
        batches = iter(x.split(batch_size))
        name = "inputs"
    else:
        raise ConfigError("data", type(data).__name__, "must be a (lazy) sequence data set or a tensor (N, T, C)")
    if shape[0] == 0:
        raise ConfigError("data", name, "is empty")
    if shape[2] != n_inputs:
        raise ConfigError("data", shape, f"has {shape[2]} channels; the model takes {n_inputs}")
    return batches


@torch.no_grad()
def measure_efficiency(
    model: RSNN,
    data: Data,
    *,
    batch_size: int = 256,
    binary_input: bool | None = None,
    generator: torch.Generator | None = None,
) -> EfficiencyReport:
    """Run ``model`` (eval mode, no gradients) over ``data`` and count its operations from the spikes it emits.

    Initial states are drawn with ``generator`` (the global RNG when None; unused under ``state_init="zeros"``).
    The model's train/eval mode is restored afterwards. See :func:`count_from_spikes` for ``binary_input``.

    Raises:
        ConfigError: naming ``model``, ``data`` (wrong type, empty, wrong channel count), ``batch_size``,
            ``binary_input`` or ``generator``.
    """
    model = check_model(model)
    batch_size = check_int("batch_size", batch_size, 1)
    if binary_input is not None:
        check_bool("binary_input", binary_input)
    if generator is not None:
        check_generator("generator", generator)
    batches = _input_batches(data, batch_size, model.config.n_inputs)
    like = model.layers[0].input.weight
    spiking_readout = isinstance(model.readout, SpikingLayer)
    tally = _Tally(model, binary_input)
    was_training = model.training
    model.eval()
    try:
        for x in batches:
            x = x.to(device=like.device, dtype=like.dtype)
            state = model.initial_state(x.shape[0], generator)
            out = model(x, state)
            tally.add(
                x,
                out.layer_spikes,
                out.output_spikes,
                [s.s for s in state.layers],
                state.readout.s if spiking_readout else None,
            )
    finally:
        model.train(was_training)
    return tally.report()
