r"""Common pruning interface and network surgery.

Two operations change a network's structure:

* :func:`shrink_layer` removes neurons. With K the sorted indices of the kept neurons of layer l, the new
  layer has :math:`W'_{rec} = W_{rec}[K, K]`, :math:`M' = M[K, K]`, :math:`b'_{rec} = b_{rec}[K]`,
  :math:`W'_{in} = W_{in}[K, :]`, :math:`b'_{in} = b_{in}[K]`, :math:`\tau' = \tau[K]`, and the next
  projection (next layer or readout) :math:`W'_{next} = W_{next}[:, K]`. Every other tensor is unchanged, so the
  kept network is the original one with the removed neurons' influence cut.
* :func:`set_mask` prunes (or adds) synapses: :math:`M \leftarrow M'`, :math:`W_{rec} \leftarrow W' \odot M'`.

Pruning algorithms return a :class:`PruneResult`: the pruned model, a history of :class:`PruneHistoryEntry`
and the indices (into the original layer) of the neurons that survive.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import torch
from torch import Tensor, nn

from hrsnn._validate import (
    check_bool_matrix,
    check_choice,
    check_int,
    check_model,
    check_tensor,
    masked_float64_matrix,
)
from hrsnn.connectivity import ConnectivitySpec
from hrsnn.errors import ConfigError
from hrsnn.network import RSNN, IntegratorReadout, SpikingLayer
from hrsnn.neurons import TimeConstants
from hrsnn.timescales import Clustered, sampler_from_dict

__all__ = [
    "SYNAPSE_SCOPES",
    "PruneHistoryEntry",
    "PruneResult",
    "clone_model",
    "recurrent_layer",
    "recurrent_weight",
    "set_mask",
    "shrink_layer",
    "synapse_total",
]


@dataclass(frozen=True)
class PruneHistoryEntry:
    """State of a pruned network after one iteration (iteration 0 is the starting network).

    Attributes:
        iteration: iteration number.
        neurons: neurons in the pruned layer.
        synapses: synapses counted as configured by the algorithm (by default the recurrent ones of the layer).
        lambda_max: largest Lyapunov exponent, when measured.
        mean_ipr: mean inverse participation ratio of the eigenvectors, when measured.
        seconds: wall-clock time of the iteration.
        note: free text (what was done, why the run stopped).
        details: named measurements of the iteration (e.g. a step's diagnostics), name -> number.
    """

    iteration: int
    neurons: int
    synapses: int
    lambda_max: float | None = None
    mean_ipr: float | None = None
    seconds: float = 0.0
    note: str = ""
    details: Mapping[str, float] = dataclasses.field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        object.__setattr__(self, "details", MappingProxyType({str(k): float(v) for k, v in self.details.items()}))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)} | {"details": dict(self.details)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PruneHistoryEntry:
        """Inverse of :meth:`to_dict` (``details`` may be absent: files written before it existed)."""
        return cls(**dict(data))


@dataclass(frozen=True)
class PruneResult:
    """What a pruning algorithm returns.

    Attributes:
        model: the pruned network (a new object; the input model is left unchanged).
        history: one entry per iteration, starting with iteration 0.
        kept_neurons: sorted long tensor of the surviving neurons' indices in the original layer.
    """

    model: RSNN
    history: tuple[PruneHistoryEntry, ...]
    kept_neurons: Tensor


def recurrent_layer(model: RSNN, layer_index: int, *, need_recurrent: bool = True) -> SpikingLayer:
    """Return ``model.layers[layer_index]``, checking the index (and that the layer is recurrent)."""
    check_model(model)
    n_layers = len(model.layers)
    index = check_int("layer_index", layer_index, 0)
    if index >= n_layers:
        raise ConfigError("layer_index", layer_index, f"must be < {n_layers} (number of spiking layers)")
    layer = model.layers[index]
    if need_recurrent and layer.weight_rec is None:
        raise ConfigError("layer_index", layer_index, "selects a feed-forward layer; it must be recurrent")
    return layer


def recurrent_weight(model: RSNN, layer_index: int) -> tuple[SpikingLayer, nn.Parameter]:
    """Return ``(layer, layer.weight_rec)`` of a recurrent layer, checking the index."""
    layer = recurrent_layer(model, layer_index, need_recurrent=False)
    weight = layer.weight_rec
    if weight is None:
        raise ConfigError("layer_index", layer_index, "selects a feed-forward layer; it must be recurrent")
    return layer, weight


def _count_recurrent(counts: Mapping[str, int], layer_index: int) -> int:
    return counts.get(f"layers.{layer_index}.recurrent", 0)


def _count_all(counts: Mapping[str, int], layer_index: int) -> int:
    del layer_index
    return sum(counts.values())


SYNAPSE_SCOPES: Mapping[str, Callable[[Mapping[str, int], int], int]] = MappingProxyType(
    {"recurrent": _count_recurrent, "all": _count_all}
)
"""Read-only map from a sparsity scope to the function that counts its synapses."""


def synapse_total(model: RSNN, layer_index: int, *, scope: str = "recurrent") -> int:
    """Synapses of a network, counted as by :meth:`RSNN.synapse_counts` (nonzero weights inside the masks).

    Args:
        model: the network.
        layer_index: the pruned layer.
        scope: "recurrent" (the layer's recurrent synapses only) or "all" (every projection: inputs, recurrent
            and readout).
    """
    counter = SYNAPSE_SCOPES[check_choice("scope", scope, SYNAPSE_SCOPES)]
    return counter(model.synapse_counts(), layer_index)


# ---------------------------------------------------------------------------------------------------- surgery


def _is_immutable(value: Any) -> bool:
    if isinstance(value, MappingProxyType):
        return True
    params = getattr(type(value), "__dataclass_params__", None)
    return params is not None and bool(params.frozen)


def clone_model(model: RSNN) -> RSNN:
    """Deep copy of a network that shares its immutable parts (frozen config dataclasses, read-only mappings).

    ``copy.deepcopy`` alone fails on the configs' ``MappingProxyType`` fields; they never change, so sharing
    them is safe. Parameters, buffers and sub-modules are copied.
    """
    check_model(model)
    memo: dict[int, Any] = {}
    for module in model.modules():
        for value in vars(module).values():
            if _is_immutable(value):
                memo[id(value)] = value
    return copy.deepcopy(model, memo)


def _check_keep(keep: Any, n: int) -> Tensor:
    keep = check_tensor("keep", keep, dim=1)
    if keep.dtype != torch.bool:
        raise ConfigError("keep", str(keep.dtype), "must be a bool tensor")
    if keep.shape[0] != n:
        raise ConfigError("keep", tuple(keep.shape), f"must have shape ({n},), one flag per neuron of the layer")
    if not bool(keep.any()):
        raise ConfigError("keep", "all False", "must keep at least one neuron")
    return keep


def _select_linear(linear: nn.Linear, *, rows: Tensor | None = None, cols: Tensor | None = None) -> nn.Linear:
    """A new nn.Linear holding ``weight[rows][:, cols]`` (and ``bias[rows]``), same dtype, device and grad flags."""
    weight = linear.weight.detach()
    bias = linear.bias.detach() if linear.bias is not None else None
    if rows is not None:
        weight = weight[rows]
        bias = bias[rows] if bias is not None else None
    if cols is not None:
        weight = weight[:, cols]
    out = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, device=weight.device, dtype=weight.dtype)
    out.weight = nn.Parameter(weight.clone(), requires_grad=linear.weight.requires_grad)
    if bias is not None and linear.bias is not None:
        out.bias = nn.Parameter(bias.clone(), requires_grad=linear.bias.requires_grad)
    return out


def _select_tau(tc: TimeConstants, idx: Tensor) -> None:
    tc.theta = nn.Parameter(tc.theta.detach()[idx].clone(), requires_grad=tc.theta.requires_grad)


def _select_parameter(param: nn.Parameter, idx: Tensor, square: bool) -> nn.Parameter:
    data = param.detach()[idx]
    if square:
        data = data[:, idx]
    return nn.Parameter(data.clone(), requires_grad=param.requires_grad)


_K_KINDS = frozenset({"fixed_in_degree", "small_world", "clustered_small_world"})
_EVEN_K_KINDS = frozenset({"small_world", "clustered_small_world"})


def _fit_connectivity(spec: ConnectivitySpec, n: int, tau_spec: Mapping[str, Any]) -> ConnectivitySpec:
    """The layer's connectivity spec, with ``k`` lowered if it no longer fits ``n`` neurons.

    The spec only describes how a *fresh* layer of this size would be built (:func:`hrsnn.network.load_model`
    builds one and then overwrites mask and weights); the pruned mask itself lives in the ``mask`` buffer.
    """
    if spec.kind not in _K_KINDS:
        return spec
    sampler = sampler_from_dict(tau_spec, field="neuron.tau_m")
    smallest = min(sampler.cluster_sizes(n)) if isinstance(sampler, Clustered) else n
    limit = smallest - 1 + int(spec.autapses and spec.kind == "fixed_in_degree")
    if spec.kind in _EVEN_K_KINDS:
        limit -= limit % 2
    limit = max(limit, 0)
    return dataclasses.replace(spec, k=limit) if spec.k > limit else spec


def shrink_layer(model: RSNN, layer_index: int, keep: Tensor) -> RSNN:
    """Return a new network whose layer ``layer_index`` has only the neurons flagged in ``keep``.

    Removed neurons leave every matrix (see the module docstring for the exact index maps), and the new
    model's config holds the new layer size. The input model is not modified; optimiser state built for it
    does not fit the new parameters.

    Args:
        model: the network.
        layer_index: index of the spiking layer to shrink (recurrent or feed-forward).
        keep: bool tensor (N,) with True for the neurons that stay (at least one).

    Returns:
        The shrunk copy.
    """
    layer = recurrent_layer(model, layer_index, need_recurrent=False)
    keep = _check_keep(keep, layer.size)
    new = clone_model(model)
    target = new.layers[layer_index]
    idx = torch.nonzero(keep.to(target.input.weight.device)).flatten()
    with torch.no_grad():
        target.input = _select_linear(target.input, rows=idx)
        _select_tau(target.tau_m, idx)
        if target.tau_adp is not None:
            _select_tau(target.tau_adp, idx)
        if target.weight_rec is not None:
            target.weight_rec = _select_parameter(target.weight_rec, idx, square=True)
            target.mask = target.mask[idx][:, idx].clone()
            if target.bias_rec is not None:
                target.bias_rec = _select_parameter(target.bias_rec, idx, square=False)
        downstream: SpikingLayer | IntegratorReadout = (
            new.layers[layer_index + 1] if layer_index + 1 < len(new.layers) else new.readout
        )
        downstream.input = _select_linear(downstream.input, cols=idx)
    n_new = int(idx.numel())
    old_cfg = layer.config
    connectivity = _fit_connectivity(old_cfg.connectivity, n_new, old_cfg.neuron.tau_m)
    layer_cfg = dataclasses.replace(old_cfg, size=n_new, connectivity=connectivity)
    target.config = layer_cfg
    layers = tuple(layer_cfg if i == layer_index else c for i, c in enumerate(model.config.layers))
    new.config = dataclasses.replace(model.config, layers=layers)
    return new


def set_mask(model: RSNN, layer_index: int, mask: Tensor, weight: Tensor | None = None) -> RSNN:
    """Replace a recurrent layer's mask in place: ``M ← mask``, ``W_rec ← W ⊙ mask``.

    Args:
        model: the network (modified in place and returned).
        layer_index: index of a recurrent layer.
        mask: bool (N, N) mask in the (post, pre) layout.
        weight: new recurrent weight (N, N); default: the current ``weight_rec``. Entries outside ``mask`` are
            zeroed either way.

    Returns:
        ``model``.
    """
    layer, weight_rec = recurrent_weight(model, layer_index)
    n = layer.size
    mask = check_bool_matrix("mask", mask, n)
    source = weight_rec.detach() if weight is None else masked_float64_matrix("weight", weight, mask)
    device = weight_rec.device
    new_mask = mask.to(device).clone()
    with torch.no_grad():  # entries outside the mask become exactly 0, whatever they held (NaN too)
        weight_rec.copy_(torch.where(new_mask, source.to(device=device, dtype=weight_rec.dtype), 0.0))
    layer.mask = new_mask
    return model
