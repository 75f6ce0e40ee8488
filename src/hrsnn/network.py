"""The recurrent spiking network: masked recurrent LIF/ALIF layers, optional feed-forward spiking layers, readout.

Layout is batch-first: inputs (B, T, C), outputs (B, T, n_out). Each layer runs over the whole sequence before the
next one starts; that is exact because no layer feeds back into an earlier one, and it lets every input projection
run as one matrix product over all steps. Inside a layer the time axis is unbound once (never indexed per step,
which would make the backward pass O(T²)).

Layer l at step t receives :math:`I_t = W_{in} x_t + b_{in} + (W_{rec} \\odot M) s_{t-1} + b_{rec}`, where x_t is
the previous layer's spikes *of the same step* and M is the recurrent mask (a registered buffer that survives
training, saving and loading).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

import torch
from torch import Tensor, nn

from hrsnn._validate import check_rsnn_memory, check_seed, rsnn_tensor_shapes
from hrsnn.config import from_dict, to_dict
from hrsnn.connectivity import ConnectivitySpec, synapse_count
from hrsnn.errors import ConfigError
from hrsnn.events import EventLinear
from hrsnn.fused import (
    SynapseCache,
    alif_sequence_tm,
    alif_thresholds,
    integrator_sequence_tm,
    lif_hard_sequence_tm,
)
from hrsnn.io import load_tensors, read_model_config, save_tensors
from hrsnn.neurons import ALIFState, TimeConstants, alif_step, lif_hard_reset_step, make_parametrization
from hrsnn.surrogates import Surrogate, make_surrogate
from hrsnn.timescales import Clustered, sampler_from_dict

NeuronKind = Literal["alif", "lif", "lif_hard"]


def _frozen(d: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(d))


@dataclass(frozen=True)
class NeuronConfig:
    """Neuron model of one population.

    Attributes:
        kind: "alif" (adaptive threshold), "lif" (the β = 0 case, soft reset) or "lif_hard" (fixed threshold
            ``hard_threshold``, hard reset, no input scaling).
        b0: baseline threshold. beta: adaptation strength (ALIF only). r_m: membrane resistance. dt: step size.
        tau_m, tau_adp: timescale distributions (see :mod:`hrsnn.timescales`), drawn once per neuron at build.
        learn_tau_m, learn_tau_adp: whether those τ are trained.
        parametrization: "softplus" (τ = τ_min + softplus(θ), default), "log" or "raw" (the authors').
        tau_min: floor of the softplus parametrisation.
    """

    kind: NeuronKind = "alif"
    b0: float = 0.01
    beta: float = 1.8
    r_m: float = 1.0
    dt: float = 1.0
    tau_m: Mapping[str, Any] = field(default_factory=lambda: _frozen({"dist": "normal", "mean": 20.0, "std": 5.0}))
    tau_adp: Mapping[str, Any] = field(default_factory=lambda: _frozen({"dist": "normal", "mean": 200.0, "std": 25.0}))
    learn_tau_m: bool = True
    learn_tau_adp: bool = True
    parametrization: Literal["raw", "softplus", "log"] = "softplus"
    tau_min: float = 0.0
    hard_threshold: float = 0.5

    def __post_init__(self) -> None:
        for name in ("b0", "r_m", "dt"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"neuron.{name}", getattr(self, name), "must be > 0")
        if self.beta < 0:
            raise ConfigError("neuron.beta", self.beta, "must be >= 0")
        sampler_from_dict(self.tau_m, field="neuron.tau_m")
        sampler_from_dict(self.tau_adp, field="neuron.tau_adp")
        make_parametrization(self.parametrization, self.tau_min)


@dataclass(frozen=True)
class LayerConfig:
    """One spiking layer: ``size`` neurons, recurrent (masked) or feed-forward."""

    size: int
    recurrent: bool = True
    neuron: NeuronConfig = field(default_factory=NeuronConfig)
    connectivity: ConnectivitySpec = field(default_factory=ConnectivitySpec)
    bias: bool = True

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ConfigError("layer.size", self.size, "must be >= 1")


@dataclass(frozen=True)
class ReadoutConfig:
    """Readout: "integrator" (non-spiking leaky integrator, τ = neuron.tau_m) or "alif" (spiking ALIF units)."""

    kind: Literal["integrator", "alif"] = "integrator"
    neuron: NeuronConfig = field(default_factory=NeuronConfig)


@dataclass(frozen=True)
class RSNNConfig:
    """A whole network.

    Attributes:
        n_inputs, n_outputs: channel counts.
        layers: spiking layers, in order (at least one).
        readout: readout layer.
        surrogate: surrogate gradient as a dict, e.g. ``{"name": "multi_gaussian"}``.
        state_init: initial state of the spiking layers per sample: "zeros" (u = s = 0), "uniform"
            (u ~ U[0, scale)), or "uniform_spike" (u ~ U[0, scale) and s_0 = u_0, the authors' ECG/SSC scheme).
            η_0 = b0 in all schemes.
        readout_init: initial state of the readout, same schemes (default "zeros": u = s = 0). The authors' ECG
            script starts its ALIF readout like its hidden layer, u_0 = s_0 ~ U[0, scale): "uniform_spike". An
            integrator readout has no spikes, so it accepts "zeros" and "uniform" only. Drawn from the same
            generator as the hidden states, after them.
        state_init_scale: scale of the uniform schemes (hidden layers and readout); None means each layer's b0.
    """

    n_inputs: int
    n_outputs: int
    layers: tuple[LayerConfig, ...]
    readout: ReadoutConfig = field(default_factory=ReadoutConfig)
    surrogate: Mapping[str, Any] = field(default_factory=lambda: _frozen({"name": "multi_gaussian"}))
    state_init: Literal["zeros", "uniform", "uniform_spike"] = "zeros"
    state_init_scale: float | None = None
    readout_init: Literal["zeros", "uniform", "uniform_spike"] = "zeros"

    def __post_init__(self) -> None:
        if self.n_inputs < 1:
            raise ConfigError("model.n_inputs", self.n_inputs, "must be >= 1")
        if self.n_outputs < 1:
            raise ConfigError("model.n_outputs", self.n_outputs, "must be >= 1")
        if not self.layers:
            raise ConfigError("model.layers", self.layers, "needs at least one layer")
        if self.state_init_scale is not None and self.state_init_scale < 0:
            raise ConfigError("model.state_init_scale", self.state_init_scale, "must be >= 0")
        if self.readout_init == "uniform_spike" and self.readout.kind != "alif":
            raise ConfigError(
                "model.readout_init", self.readout_init, "needs an 'alif' readout (an integrator has no spikes)"
            )
        make_surrogate(**self.surrogate)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], field: str = "model") -> RSNNConfig:
        """Parse a plain dict (e.g. a TOML table); errors name the bad field."""
        return from_dict(cls, data, field)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict, the inverse of :meth:`from_dict`."""
        return to_dict(self)


def _batch_first(x: Tensor | None, keep: bool = True) -> Tensor | None:
    """(T, B, N) -> (B, T, N) view, or None when absent or not kept."""
    return x.transpose(0, 1) if x is not None and keep else None


class LayerOutput(NamedTuple):
    """What a layer returns: spikes (B, T, N), final state, and (when recorded) membranes and thresholds."""

    spikes: Tensor
    state: ALIFState
    membranes: Tensor | None
    thresholds: Tensor | None


def _sample_tau(spec: Mapping[str, Any], n: int, generator: torch.Generator, field: str) -> Tensor:
    return sampler_from_dict(spec, field=field).sample(n, generator)


class SpikingLayer(nn.Module):
    """A population of LIF/ALIF neurons with an input projection and an optional masked recurrence.

    Parameters: ``input`` (nn.Linear), ``weight_rec`` and ``bias_rec`` (recurrent only), ``tau_m`` and
    ``tau_adp`` (:class:`TimeConstants`; ``tau_adp`` for ALIF only). Buffer: ``mask`` (bool, recurrent only).
    ``tau_families`` tags the two τ for optimiser groups; an ALIF readout puts both in "tau_out".
    """

    def __init__(
        self,
        n_in: int,
        config: LayerConfig,
        surrogate: Surrogate,
        generator: torch.Generator,
        *,
        tau_families: tuple[str, str] = ("tau_m", "tau_adp"),
    ) -> None:
        super().__init__()
        self.config = config
        self.surrogate = surrogate
        self.fused = True
        neuron = config.neuron
        n = config.size
        self.input = EventLinear(n_in, n, bias=config.bias)
        nn.init.xavier_uniform_(self.input.weight, generator=generator)
        if config.bias:
            nn.init.zeros_(self.input.bias)
        param = make_parametrization(neuron.parametrization, neuron.tau_min)
        tau_m_sampler = sampler_from_dict(neuron.tau_m, field="neuron.tau_m")
        self.tau_m = TimeConstants(
            tau_m_sampler.sample(n, generator), param, learnable=neuron.learn_tau_m, family=tau_families[0]
        )
        self.tau_adp: TimeConstants | None = None
        if neuron.kind == "alif":
            self.tau_adp = TimeConstants(
                _sample_tau(neuron.tau_adp, n, generator, "neuron.tau_adp"),
                param,
                learnable=neuron.learn_tau_adp,
                family=tau_families[1],
            )
        self.weight_rec: nn.Parameter | None = None
        self.bias_rec: nn.Parameter | None = None
        if config.recurrent:
            clusters = tau_m_sampler.cluster_sizes(n) if isinstance(tau_m_sampler, Clustered) else None
            mask, weight = config.connectivity.build(n, generator, cluster_sizes=clusters)
            self.register_buffer("mask", mask.bool())
            self.weight_rec = nn.Parameter(weight.float())
            self.bias_rec = nn.Parameter(torch.zeros(n)) if config.bias else None
        self.synapse_cache = SynapseCache()  # the compiled sparse kernels' structures for the mask, kept between calls

    @property
    def size(self) -> int:
        """Number of neurons."""
        return self.config.size

    def effective_recurrent_weight(self) -> Tensor | None:
        """W_rec ⊙ M, or None for a feed-forward layer.

        Masked entries are exactly 0 whatever W_rec holds there (NaN and ±inf included), and so is their gradient.
        """
        if self.weight_rec is None:
            return None
        return torch.where(self.mask, self.weight_rec, 0.0)

    def initial_state(
        self, batch: int, scheme: str, scale: float | None, generator: torch.Generator | None
    ) -> ALIFState:
        """Initial (u, s, η) for ``batch`` samples under a state-initialisation scheme (see RSNNConfig), in the
        dtype and on the device of the layer's parameters."""
        b0 = self.config.neuron.b0
        like = self.input.weight
        return STATE_INITS[scheme](batch, self.size, b0 if scale is None else scale, b0, like, generator)

    def forward(self, x: Tensor, state: ALIFState, *, record: bool = False) -> LayerOutput:
        """Run the layer over x (B, T, n_in) from ``state``.

        Uses the fused sequence kernels of :mod:`hrsnn.fused` (time-major inside; the returned (B, T, N) tensors
        are transposed views) unless ``self.fused`` is False, in which case the reference step functions run in a
        Python loop; both compute the same values and gradients.
        """
        if not self.fused:
            return self._step_loop(x, state, record)
        neuron = self.config.neuron
        currents = self.input(x.transpose(0, 1))  # W_in x_t + b_in, time-major (T, B, N); hooks see the product
        alpha = self.tau_m.decay(neuron.dt)
        w_rec = self.weight_rec  # the kernels apply the mask (a pruned layer's CSR reads W on its synapses only)
        if neuron.kind == "lif_hard":
            if self.bias_rec is not None:
                currents = currents + self.bias_rec
            spikes, membranes, u = lif_hard_sequence_tm(
                currents, w_rec, alpha, state.u, state.s, threshold=neuron.hard_threshold, surrogate=self.surrogate,
                mask=self._mask(), synapse_cache=self.synapse_cache,
            )
            final = ALIFState(u, spikes[-1], state.eta)
            thresholds = torch.full_like(membranes, neuron.hard_threshold) if record else None
            return LayerOutput(spikes.transpose(0, 1), final, _batch_first(membranes, record), _batch_first(thresholds))
        rho, beta = self._adaptation()
        spikes, membranes, traces, u, eta = alif_sequence_tm(
            currents, w_rec, alpha, rho, *state, b0=neuron.b0, beta=beta, surrogate=self.surrogate,
            r_m=neuron.r_m, dt=neuron.dt, keep_membranes=record, mask=self._mask(), bias=self.bias_rec,
            synapse_cache=self.synapse_cache,
        )  # fmt: skip
        final = ALIFState(u, spikes[-1], eta)
        thresholds = alif_thresholds(traces, membranes, neuron.b0, beta) if record and membranes is not None else None
        return LayerOutput(spikes.transpose(0, 1), final, _batch_first(membranes, record), _batch_first(thresholds))

    def _mask(self) -> Tensor | None:
        return self.mask if self.weight_rec is not None else None

    def _step_loop(self, x: Tensor, state: ALIFState, record: bool) -> LayerOutput:
        """The reference path: step functions of :mod:`hrsnn.neurons` in a Python loop."""
        neuron = self.config.neuron
        currents = self.input(x)
        alpha = self.tau_m.decay(neuron.dt)
        w_rec = self.effective_recurrent_weight()
        step = self._step_function(alpha)
        spike_list, membrane_list, threshold_list = [], [], []
        for current in currents.unbind(1):
            if w_rec is not None:
                current = current + nn.functional.linear(state.s, w_rec, self.bias_rec)
            s, state = step(current, state)
            spike_list.append(s)
            if record:
                membrane_list.append(state.u)
                threshold_list.append(self._threshold(state))
        return LayerOutput(
            torch.stack(spike_list, 1),
            state,
            torch.stack(membrane_list, 1) if record else None,
            torch.stack(threshold_list, 1) if record else None,
        )

    def _adaptation(self) -> tuple[Tensor, float]:
        """(ρ, β) of this layer; a LIF layer has no adaptation (ρ = 1, β = 0)."""
        if self.tau_adp is None:
            return torch.ones_like(self.tau_m.theta), 0.0
        return self.tau_adp.decay(self.config.neuron.dt), self.config.neuron.beta

    def _threshold(self, state: ALIFState) -> Tensor:
        neuron = self.config.neuron
        if neuron.kind == "lif_hard":
            return torch.full_like(state.u, neuron.hard_threshold)
        beta = neuron.beta if neuron.kind == "alif" else 0.0
        return neuron.b0 + beta * state.eta

    def _step_function(self, alpha: Tensor) -> Callable[[Tensor, ALIFState], tuple[Tensor, ALIFState]]:
        neuron = self.config.neuron
        sg = self.surrogate
        if neuron.kind == "lif_hard":
            return lambda i, st: lif_hard_reset_step(i, st, alpha, threshold=neuron.hard_threshold, surrogate=sg)
        rho, beta = self._adaptation()
        return lambda i, st: alif_step(
            i, st, alpha, rho, b0=neuron.b0, beta=beta, surrogate=sg, r_m=neuron.r_m, dt=neuron.dt
        )


def _zeros_state(
    batch: int, n: int, scale: float, b0: float, like: Tensor, generator: torch.Generator | None
) -> ALIFState:
    z = like.new_zeros(batch, n)
    return ALIFState(z, z, torch.full_like(z, b0))


def _uniform(batch: int, n: int, scale: float, like: Tensor, generator: torch.Generator | None) -> Tensor:
    return torch.rand(batch, n, generator=generator, dtype=like.dtype, device=like.device) * scale


def _uniform_state(
    batch: int, n: int, scale: float, b0: float, like: Tensor, generator: torch.Generator | None
) -> ALIFState:
    u = _uniform(batch, n, scale, like, generator)
    return ALIFState(u, torch.zeros_like(u), torch.full_like(u, b0))


def _uniform_spike_state(
    batch: int, n: int, scale: float, b0: float, like: Tensor, generator: torch.Generator | None
) -> ALIFState:
    u = _uniform(batch, n, scale, like, generator)
    return ALIFState(u, u, torch.full_like(u, b0))


# (batch, n, scale, b0, like, generator) -> state in the dtype and on the device of the tensor ``like``
STATE_INITS: Mapping[str, Callable[..., ALIFState]] = MappingProxyType(
    {"zeros": _zeros_state, "uniform": _uniform_state, "uniform_spike": _uniform_spike_state}
)


class IntegratorReadout(nn.Module):
    """Non-spiking leaky-integrator readout u_t = α u_{t-1} + (1 − α)(W s_t + b), τ learnable per unit."""

    def __init__(self, n_in: int, n_out: int, neuron: NeuronConfig, generator: torch.Generator) -> None:
        super().__init__()
        self.input = EventLinear(n_in, n_out)
        nn.init.xavier_uniform_(self.input.weight, generator=generator)
        nn.init.zeros_(self.input.bias)
        self.tau_m = TimeConstants(
            _sample_tau(neuron.tau_m, n_out, generator, "readout.neuron.tau_m"),
            make_parametrization(neuron.parametrization, neuron.tau_min),
            learnable=neuron.learn_tau_m,
            family="tau_out",
        )
        self.neuron = neuron
        self.fused = True

    def initial_state(
        self, batch: int, scheme: str, scale: float | None, generator: torch.Generator | None
    ) -> ALIFState:
        """Initial membrane under "zeros" or "uniform" (U[0, scale), scale None: neuron.b0); s and η are unused (0)."""
        scale = self.neuron.b0 if scale is None else scale
        u = STATE_INITS[scheme](batch, self.input.out_features, scale, 0.0, self.input.weight, generator).u
        z = torch.zeros_like(u)
        return ALIFState(u, z, z)

    def forward(self, x: Tensor, state: ALIFState) -> tuple[Tensor, ALIFState]:
        """Return membranes (B, T, n_out) and the final state (fused kernel unless ``self.fused`` is False)."""
        alpha = self.tau_m.decay(self.neuron.dt)
        if self.fused:
            membranes = integrator_sequence_tm(self.input(x.transpose(0, 1)), alpha, state.u)
            return membranes.transpose(0, 1), ALIFState(membranes[-1], state.s, state.eta)
        u = state.u
        out = []
        for current in self.input(x).unbind(1):
            u = alpha * u + (1.0 - alpha) * current
            out.append(u)
        return torch.stack(out, 1), ALIFState(u, state.s, state.eta)


class RSNNState(NamedTuple):
    """State of a whole network: one ALIFState per spiking layer and one for the readout."""

    layers: tuple[ALIFState, ...]
    readout: ALIFState


class RSNNOutput(NamedTuple):
    """Result of :meth:`RSNN.forward` (always this type, whatever was recorded).

    Attributes:
        readout: readout membranes (B, T, n_out), the network output.
        layer_spikes: spikes of every spiking layer, each (B, T, N_l).
        output_spikes: spikes of an ALIF readout (B, T, n_out), or None for an integrator readout.
        state: final state (pass it back in to continue a sequence).
        membranes, thresholds: per-layer traces when ``record=True``, else None.
    """

    readout: Tensor
    layer_spikes: tuple[Tensor, ...]
    output_spikes: Tensor | None
    state: RSNNState
    membranes: tuple[Tensor, ...] | None
    thresholds: tuple[Tensor, ...] | None


class RSNN(nn.Module):
    """Input → spiking layers (recurrent masked or feed-forward) → readout. See the module docstring."""

    def __init__(self, config: RSNNConfig, *, seed: int = 0) -> None:
        check_rsnn_memory(config)
        seed = check_seed("seed", seed)
        super().__init__()
        self.config = config
        generator = torch.Generator().manual_seed(seed)
        surrogate = make_surrogate(**config.surrogate)
        layers = []
        n_in = config.n_inputs
        for layer_cfg in config.layers:
            layers.append(SpikingLayer(n_in, layer_cfg, surrogate, generator))
            n_in = layer_cfg.size
        self.layers = nn.ModuleList(layers)
        ro = config.readout
        self.readout: SpikingLayer | IntegratorReadout
        if ro.kind == "alif":
            self.readout = SpikingLayer(
                n_in,
                LayerConfig(size=config.n_outputs, recurrent=False, neuron=ro.neuron),
                surrogate,
                generator,
                tau_families=("tau_out", "tau_out"),
            )
        else:
            self.readout = IntegratorReadout(n_in, config.n_outputs, ro.neuron, generator)

    @property
    def device(self) -> torch.device:
        """Device of the parameters."""
        return next(self.parameters()).device

    def initial_state(self, batch: int, generator: torch.Generator | None = None) -> RSNNState:
        """Initial state for ``batch`` samples under ``config.state_init`` and ``config.readout_init``.

        Random draws come from ``generator``: the spiking layers in order, then the readout. States take the
        dtype and device of the model's parameters.
        """
        scale = self.config.state_init_scale
        layers = tuple(layer.initial_state(batch, self.config.state_init, scale, generator) for layer in self.layers)
        return RSNNState(layers, self.readout.initial_state(batch, self.config.readout_init, scale, generator))

    def forward(
        self,
        x: Tensor,
        state: RSNNState | None = None,
        *,
        record: bool = False,
        generator: torch.Generator | None = None,
    ) -> RSNNOutput:
        """Run the network on x (B, T, n_inputs) from ``state`` (default: a fresh initial state)."""
        if x.dim() != 3 or x.shape[-1] != self.config.n_inputs:
            raise ConfigError("input", tuple(x.shape), f"must be (batch, time, {self.config.n_inputs}) for this model")
        if state is None:
            state = self.initial_state(x.shape[0], generator)
        h = x
        layer_spikes, new_states, membranes, thresholds = [], [], [], []
        for layer, st in zip(self.layers, state.layers, strict=True):
            out = layer(h, st, record=record)
            h = out.spikes
            layer_spikes.append(out.spikes)
            new_states.append(out.state)
            if record:
                membranes.append(out.membranes)
                thresholds.append(out.thresholds)
        if isinstance(self.readout, SpikingLayer):
            ro_out = self.readout(h, state.readout, record=True)
            readout, ro_state, out_spikes = ro_out.membranes, ro_out.state, ro_out.spikes
        else:
            readout, ro_state = self.readout(h, state.readout)
            out_spikes = None
        return RSNNOutput(
            readout,
            tuple(layer_spikes),
            out_spikes,
            RSNNState(tuple(new_states), ro_state),
            tuple(membranes) if record else None,
            tuple(thresholds) if record else None,
        )

    def parameter_families(self) -> dict[str, list[nn.Parameter]]:
        """Trainable parameters by role: "weights" (all weights and biases), "tau_m" and "tau_adp" (spiking layers),
        "tau_out" (every readout τ: the integrator's τ, or an ALIF readout's τ_m and τ_adp)."""
        families: dict[str, list[nn.Parameter]] = {"weights": []}
        tau_ids = set()
        for module in self.modules():
            if isinstance(module, TimeConstants):
                tau_ids.add(id(module.theta))
                if module.theta.requires_grad:
                    families.setdefault(module.family, []).append(module.theta)
        families["weights"] = [p for p in self.parameters() if p.requires_grad and id(p) not in tau_ids]
        return families

    def synapse_counts(self) -> dict[str, int]:
        """Synapses per projection, counting only nonzero weights inside each mask."""
        counts = {}
        for i, layer in enumerate(self.layers):
            counts[f"layers.{i}.input"] = synapse_count(layer.input.weight.detach())
            w_rec = layer.effective_recurrent_weight()
            if w_rec is not None:
                counts[f"layers.{i}.recurrent"] = synapse_count(w_rec.detach())
        counts["readout"] = synapse_count(self.readout.input.weight.detach())
        return counts

    def n_neurons(self) -> dict[str, int]:
        """Neurons per spiking layer and in the readout."""
        sizes = {f"layers.{i}": layer.size for i, layer in enumerate(self.layers)}
        sizes["readout"] = self.config.n_outputs
        return sizes


MODEL_FORMAT = "hrsnn-model/1"


def save_model(model: RSNN, path: str | Path, *, extra: Mapping[str, Any] | None = None) -> None:
    """Atomically save weights, masks and τ as safetensors, with the config (JSON) in the file's metadata.

    Nothing is pickled; :func:`load_model` rebuilds the network from the config and loads the tensors.
    """
    metadata = {"format": MODEL_FORMAT, "config": json.dumps(model.config.to_dict())}
    if extra:
        metadata["extra"] = json.dumps(dict(extra))
    save_tensors(path, model.state_dict(), metadata)


def load_model(path: str | Path, device: str | torch.device = "cpu") -> RSNN:
    """Load a model saved by :func:`save_model` (never unpickles code).

    The stored config is checked against the names and shapes of the file's tensors (read from its header)
    before anything is built, so a damaged or crafted file cannot make the loader allocate what its config claims.

    Raises:
        DataNotFoundError: when ``path`` does not exist.
        DataFormatError: naming the file when it is not an hrsnn model, its config is unreadable or invalid, or
            its tensors do not match the config (missing, unexpected or of another shape).
        ConfigError: when ``path`` is not a safetensors file, or the network would not fit in memory.
    """
    config = read_model_config(path, MODEL_FORMAT, RSNNConfig.from_dict, rsnn_tensor_shapes)
    model = RSNN(config)
    model.load_state_dict(load_tensors(path))
    return model.to(device)
