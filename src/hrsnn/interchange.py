r"""NIR export and import: move hrsnn networks to and from the Neuromorphic Intermediate Representation.

:func:`to_nir` / :func:`save_nir` write an :class:`~hrsnn.network.RSNN` as a ``nir.NIRGraph``;
:func:`from_nir` / :func:`load_nir` build an RSNN from one. ``hrsnn nir export`` and ``hrsnn nir import`` are the
command-line front ends (:func:`add_parser`). This module imports torch, numpy and nir only inside its functions,
so registering the sub-commands costs nothing.

**Graph layout.** ``input`` → ``layer0`` (Affine W_in, b_in + b_rec; Linear when the layer has no bias) →
``layer0_lif`` → ``layer1`` → ``layer1_lif`` → … → ``readout`` (Affine W_out, b_out) → ``readout_li`` (or
``readout_lif``) → ``output``; HDF5 files list nodes by name, and these names (zero-padded, ``layer00``, from 10
layers on) sort in execution order, which nirtorch's importer needs. A recurrent layer's ``layerK_lif`` is a
subgraph ``{input → lif, lif → w_rec, w_rec → lif, lif → output}`` (the layout snnTorch's exporter writes for
``RLeaky``) whose ``w_rec`` is a Linear node holding W_rec ⊙ M: the pruning mask M is there as explicit zeros. The
recurrent bias acts every step whatever the spikes, so it is added into the input Affine's bias (its two parts are
kept in that node's metadata): nirtorch-based importers (snnTorch, Norse) start a recurrent edge at 0, which would
drop a bias on ``w_rec`` at the first step. A feed-forward layer is a bare ``LIF`` node. The integrator readout is
an ``LI`` node; a spiking readout a ``LIF`` node. Execution order is the one every NIR simulator uses for such
graphs: within a step the layers run in order (layer l + 1 sees layer l's spikes of the same step) and the recurrent
edge delivers the previous step's spikes, so layer l receives
:math:`I_t = W_{in} x_t + b_{in} + (W_{rec} \odot M) s_{t-1} + b_{rec}`, as in hrsnn.

**Continuous-time mapping.** A NIR ``LIF`` node is :math:`\tau \dot v = (v_{leak} - v) + R\,I`, spike when
:math:`v > v_{threshold}`, then :math:`v \leftarrow v_{reset}`; an ``LI`` node is the same without spikes. Held
constant over a step Δ (zero-order hold), the exact solution is

.. math::  v_t = \alpha\,v_{t-1} + (1 - \alpha)\,(v_{leak} + R\,I_t), \qquad \alpha = e^{-\Delta/\tau}.

An importer must use this discretisation, with Δ = ``graph.metadata["dt"]``, to reproduce hrsnn. For each hrsnn
population of step ``dt`` and per-neuron :math:`\tau_m` (:mod:`hrsnn.neurons`), the export writes
:math:`v_{leak} = 0`, :math:`v_{reset} = 0`, :math:`\tau = \tau_m\,\Delta / dt` (so that
:math:`e^{-\Delta/\tau} = e^{-dt/\tau_m}`) and

* ``"lif_hard"`` (:math:`v_t = \alpha u_{t-1} + I_t`, :math:`u_t = (1 - s_t) v_t`):
  :math:`R = 1/(1-\alpha)`, :math:`v_{threshold}` = ``hard_threshold``. **Exact**: NIR's reset to
  :math:`v_{reset} = 0` at the spike step is hrsnn's hard reset.
* ``"lif"`` and ``"alif"`` (:math:`u_t = \alpha u_{t-1} + (1-\alpha) r_m I_t - \theta_t s_{t-1} dt`):
  :math:`R = r_m`, :math:`v_{threshold} = b_0`. Not expressible in NIR, see below.
* integrator readout (:math:`u_t = \alpha u_{t-1} + (1-\alpha) I_t`): ``LI`` with :math:`R = 1`. **Exact.**

With ``discretisation="euler"`` the export instead writes :math:`\tau = \Delta / (1 - \alpha)`, so that an
importer using forward Euler, :math:`v_t = (1 - \Delta/\tau) v_{t-1} + (\Delta/\tau) R\,I_t` (snnTorch, Norse,
SpikingJelly), gets the same α and input factor. With ``absorb_r=True`` the per-neuron gain R is multiplied into
the rows of the incoming weights and biases and R = 1 is written, for importers that ignore R (Norse, Sinabs).

**What NIR cannot express** (never dropped silently: a layer that needs it is refused, or exported with its
dynamics in the node's metadata and a ``UserWarning`` that other simulators will not reproduce them):

1. *Soft reset, one step late* (``"lif"``, ``"alif"``): hrsnn subtracts the threshold of step t for a spike of
   step t − 1; NIR only has a hard reset to ``v_reset`` at the spike step. ``soft_reset="custom"`` exports the
   ``LIF`` node with ``metadata["hrsnn_reset"] = "subtract_next_step"``; ``"refuse"`` raises.
2. *Adaptive threshold* (``"alif"``): NIR has no ALIF primitive. ``alif="custom"`` exports the **hrsnn ALIF
   node**, a ``LIF`` node (``v_threshold`` = b0) whose metadata ``hrsnn_kind = "alif"``, ``hrsnn_tau_adp``
   (per neuron, in the graph's time unit), ``hrsnn_beta`` and ``hrsnn_dt`` define

   .. math::

       \eta_t &= \rho\,\eta_{t-1} + (1-\rho)\,s_{t-1}, \quad \rho = e^{-\Delta/\tau_{adp}}, \quad \eta_0 = b_0 \\
       \theta_t &= b_0 + \beta\,\eta_t \\
       v_t &= \alpha\,v_{t-1} + (1-\alpha)\,R\,I_t - \theta_t\,s_{t-1}\,dt_{hrsnn}, \quad s_t = [v_t > \theta_t]

   (ρ from :math:`\tau_{adp}` as α from τ, so 1 − Δ/τ_adp under Euler). ``alif="refuse"`` raises instead.
3. *Random initial states* (``state_init``/``readout_init`` other than "zeros"): NIR simulators start at 0.

Exporting any of these warns once, naming the layers. **Round trip.** The graph's metadata holds the hrsnn
config (``hrsnn_config``, JSON) and the nodes' metadata the raw τ parameters (``hrsnn_theta_*``) and the mask
(``hrsnn_mask`` on ``w_rec``), so hrsnn → NIR (→ HDF5 file) → hrsnn gives the same config, the same state dict
(entries of ``weight_rec`` outside the mask, which never act, come back as 0) and the same outputs bit for bit,
for every neuron kind, pruned masks, several layers and both readouts, in float32 or float64. Node values win
over metadata: a τ edited in another tool is used (the stale raw parameter is dropped). ``absorb_r`` exports keep
R inside the weights on the way back (same dynamics, other parameter values).

**Import of other tools' graphs.** A graph fits hrsnn when it is a chain Input → (Affine|Linear → LIF, optionally
with an Affine|Linear from the LIF back to itself, flat or as a subgraph)+ → Affine|Linear → LI|LIF → Output,
with ``v_leak = 0``, ``v_reset = 0`` and one threshold per layer, such as snnTorch's exporter writes for
``Linear``/``RLeaky``/``Leaky`` networks (``dt=1e-4``, Euler) and SpikingJelly's for hard-reset ``LIFNode``
networks (its ``dt``, Euler). Such LIF layers become ``"lif_hard"`` layers (step 1, so τ is in
steps: :math:`\tau_m = \tau/\Delta`, or :math:`-1/\ln(1-\Delta/\tau)` under Euler); the per-neuron gain
:math:`R(1-\alpha)`, which hrsnn's hard-reset LIF fixes to 1, is multiplied into the rows of the incoming weights
and biases when it differs from 1. The step Δ and discretisation the graph was made for must be given
(``dt=1e-4, discretisation="euler"`` for snnTorch). Anything else (CubaLIF, IF, convolutions, branches, a
recurrent last layer, ...) is refused with a one-line :class:`~hrsnn.errors.ConfigError` naming the node.

**Peers** (measured by the tests): snnTorch 1.0's ``import_from_nir`` reproduces the spikes of an export with
``discretisation="euler", dt=1e-4`` exactly (it has no LI node: cut the readout); Norse 1.1's ``from_nir``
reproduces those of ``discretisation="euler", dt=1e-3, absorb_r=True`` (it ignores R, and skips LI nodes
without a word). Sinabs (several spikes per step with subtractive reset, R ignored, feed-forward only) and
SpikingJelly (one τ per layer) cannot run hrsnn's heterogeneous hard-reset layers as they are.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import sys
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hrsnn.errors import ConfigError, DataFormatError, DataNotFoundError

if TYPE_CHECKING:
    import nir
    import numpy as np
    import torch

    from hrsnn.network import RSNN, LayerConfig, NeuronConfig, RSNNConfig, SpikingLayer
    from hrsnn.neurons import TimeConstants

__all__ = [
    "DISCRETISATIONS",
    "NIR_FORMAT",
    "POLICIES",
    "add_parser",
    "cmd_nir_export",
    "cmd_nir_import",
    "from_nir",
    "load_nir",
    "save_nir",
    "to_nir",
]

NIR_FORMAT = "hrsnn-nir/1"
"""Value of ``graph.metadata["hrsnn_format"]`` in graphs written by :func:`to_nir`."""

DISCRETISATIONS = ("exp", "euler")
"""How an importer turns τ into a per-step decay: ``exp`` α = e^{-Δ/τ} (exact), ``euler`` α = 1 − Δ/τ."""

POLICIES = ("custom", "refuse")
"""What :func:`to_nir` does with dynamics NIR cannot express: metadata plus a warning, or an error."""

_DTYPES = ("float32", "float64")
_GAIN_TOLERANCE = 1e-9  # |R(1-α) - 1| below this counts as 1 (the rounding of a float64 round trip)


# ---------------------------------------------------------------------------------------------------------- checks


def _choice(field: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigError(field, value, f"must be one of {list(choices)}")
    return str(value)


def _step(field: str, value: Any, *, zero: bool = False) -> float:
    """``value`` as a finite float > 0 (>= 0 with ``zero``)."""
    number = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not (number and (value > 0 or (zero and value == 0))):
        raise ConfigError(field, value, f"must be a finite number {'>=' if zero else '>'} 0")
    return float(value)


def _array(value: Any) -> np.ndarray:
    """A node field as a float64 numpy array (exporters store numpy arrays, torch tensors or scalars)."""
    import numpy as np

    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=np.float64)


# ---------------------------------------------------------------------------------------------------------- time


def _tau_to_graph(tau_h: torch.Tensor, dt_h: float, dt: float, discretisation: str) -> np.ndarray:
    """hrsnn τ (step ``dt_h``) → the NIR τ an importer with step Δ = ``dt`` turns into the same decay."""
    import torch

    tau = tau_h.detach().to(device="cpu", dtype=torch.float64)
    if discretisation == "exp":
        return (tau * (dt / dt_h)).numpy()
    return (dt / -torch.expm1(-dt_h / tau)).numpy()


def _one_minus_alpha(tau: np.ndarray, dt: float, discretisation: str) -> np.ndarray:
    """1 − α of NIR time constants τ under step Δ = ``dt``."""
    import numpy as np

    return -np.expm1(-dt / tau) if discretisation == "exp" else dt / tau


def _tau_from_graph(tau: np.ndarray, dt_h: float, dt: float, discretisation: str) -> np.ndarray:
    """Inverse of :func:`_tau_to_graph`: the hrsnn τ (step ``dt_h``) of NIR time constants τ."""
    import numpy as np

    if discretisation == "exp":
        return tau * (dt_h / dt)
    return dt_h / -np.log1p(-dt / tau)


def _check_taus(where: str, field: str, tau: np.ndarray, dt: float, discretisation: str) -> None:
    import numpy as np

    low = dt if discretisation == "euler" else 0.0
    if not (np.all(np.isfinite(tau)) and np.all(tau > low)):
        bad = float(tau[~(np.isfinite(tau) & (tau > low))][0])
        need = f"> dt={dt} (Euler decay 1 - dt/tau must lie in (0, 1))" if low else "> 0"
        raise ConfigError(f"node {where!r}", f"{field}={bad}", f"every time constant must be finite and {need}")


# ---------------------------------------------------------------------------------------------------------- export


@dataclass(frozen=True)
class _Layer:
    """A spiking population to export: its node name and the layer."""

    name: str
    layer: SpikingLayer


def _policy_notes(model: RSNN, layers: list[_Layer], alif: str, soft_reset: str) -> list[str]:
    """What other simulators will not reproduce, one phrase per item; raises for what the policies refuse."""
    notes = []
    for item in layers:
        neuron = item.layer.config.neuron
        if neuron.kind == "alif" and alif == "refuse":
            raise ConfigError(
                "alif", alif, f"{item.name} is an ALIF population and NIR has no adaptive-threshold neuron "
                "(use alif='custom' to export it as the documented hrsnn ALIF node)",
            )  # fmt: skip
        if neuron.kind != "lif_hard" and soft_reset == "refuse":
            raise ConfigError(
                "soft_reset", soft_reset, f"{item.name} ({neuron.kind}) subtracts its threshold one step after a "
                "spike and NIR only has a hard reset (use kind 'lif_hard', or soft_reset='custom')",
            )  # fmt: skip
        if neuron.kind == "alif":
            notes.append(f"{item.name}: adaptive threshold (tau_adp, beta={neuron.beta}) and soft reset one step late")
        elif neuron.kind == "lif":
            notes.append(f"{item.name}: soft reset one step late")
    cfg = model.config
    if cfg.state_init != "zeros" or cfg.readout_init != "zeros":
        notes.append(
            f"initial states state_init={cfg.state_init!r}, readout_init={cfg.readout_init!r} (NIR starts at 0)"
        )
    return notes


def _projection(
    weight: torch.Tensor, bias: torch.Tensor | None, gain: np.ndarray | None, metadata: dict[str, Any]
) -> nir.NIRNode:
    """An Affine (with bias) or Linear node; ``gain`` multiplies row i (and bias i) by gain[i]."""
    import nir

    w = _array(weight)
    b = None if bias is None else _array(bias)
    if gain is not None:
        w = w * gain[:, None]
        b = None if b is None else b * gain
    if b is None:
        return nir.Linear(weight=w, metadata=metadata)
    return nir.Affine(weight=w, bias=b, metadata=metadata)


def _theta(tc: TimeConstants) -> np.ndarray:
    return _array(tc.theta)


def _lif_node(layer: SpikingLayer, dt: float, discretisation: str, absorb_r: bool) -> tuple[nir.LIF, np.ndarray]:
    """The LIF node of a spiking layer and its per-neuron input gain R."""
    import nir
    import numpy as np
    import torch

    neuron = layer.config.neuron
    tau_h = layer.tau_m.tau.detach().to(device="cpu", dtype=torch.float64)
    tau = _tau_to_graph(tau_h, neuron.dt, dt, discretisation)
    n = tau.size
    metadata: dict[str, Any] = {
        "hrsnn_kind": neuron.kind,
        "hrsnn_dt": float(neuron.dt),
        "hrsnn_theta_tau_m": _theta(layer.tau_m),
    }
    if neuron.kind == "lif_hard":
        r = (1.0 / -torch.expm1(-neuron.dt / tau_h)).numpy()
        threshold = neuron.hard_threshold
    else:
        r = np.full(n, float(neuron.r_m))
        threshold = neuron.b0
        metadata["hrsnn_reset"] = "subtract_next_step"
    if layer.tau_adp is not None:
        metadata["hrsnn_beta"] = float(neuron.beta)
        metadata["hrsnn_tau_adp"] = _tau_to_graph(layer.tau_adp.tau, neuron.dt, dt, discretisation)
        metadata["hrsnn_theta_tau_adp"] = _theta(layer.tau_adp)
    node = nir.LIF(
        tau=tau,
        r=np.ones(n) if absorb_r else r,
        v_leak=np.zeros(n),
        v_threshold=np.full(n, float(threshold)),
        v_reset=np.zeros(n),
        metadata=metadata,
    )
    return node, r


def _input_projection(layer: SpikingLayer, gain: np.ndarray | None) -> nir.NIRNode:
    """W_in with the bias b_in + b_rec (both parts in the metadata when the layer is recurrent)."""
    import torch

    bias, metadata = layer.input.bias, {}
    if bias is not None and layer.bias_rec is not None:
        metadata = {"hrsnn_bias_in": _array(bias), "hrsnn_bias_rec": _array(layer.bias_rec)}
        bias = torch.from_numpy(metadata["hrsnn_bias_in"] + metadata["hrsnn_bias_rec"])
    return _projection(layer.input.weight, bias, gain, metadata)


def _recurrent_subgraph(
    layer: SpikingLayer, w_rec: torch.Tensor, lif: nir.LIF, gain: np.ndarray | None
) -> nir.NIRGraph:
    """The snnTorch-style subgraph {input -> lif <-> w_rec, lif -> output} of a recurrent layer."""
    import nir
    import numpy as np

    n = layer.size
    rec = _projection(w_rec, None, gain, {"hrsnn_mask": layer.mask.cpu().numpy().astype(np.uint8)})
    return nir.NIRGraph(
        nodes={"input": nir.Input(np.array([n])), "lif": lif, "w_rec": rec, "output": nir.Output(np.array([n]))},
        edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")],
        metadata={},
    )


def to_nir(
    model: RSNN,
    *,
    alif: str = "custom",
    soft_reset: str = "custom",
    discretisation: str = "exp",
    dt: float | None = None,
    absorb_r: bool = False,
) -> nir.NIRGraph:
    """Export ``model`` as a NIR graph (layout, mapping and limits in the module docstring).

    Args:
        model: the network (trained, pruned or fresh).
        alif: "custom" exports ALIF populations as the documented hrsnn ALIF node (a LIF node plus metadata) and
            warns; "refuse" raises.
        soft_reset: the same choice for the soft reset of "lif" and "alif" populations.
        discretisation: the importer's discretisation the time constants are written for: "exp" (exact,
            α = e^{-Δ/τ}) or "euler" (α = 1 − Δ/τ).
        dt: the importer's step Δ in its time unit (stored as ``metadata["dt"]``); default: the first layer's
            ``neuron.dt``. Time constants are scaled so that the decays per step are hrsnn's.
        absorb_r: multiply the input gain R into the incoming weights and write R = 1.

    Raises:
        ConfigError: for a bad option, or a population the options refuse.

    Warns:
        UserWarning: naming the populations whose dynamics other simulators will not reproduce.
    """
    import nir
    import numpy as np
    import torch

    from hrsnn.network import RSNN, SpikingLayer

    if not isinstance(model, RSNN):
        raise ConfigError("model", type(model).__name__, "must be an hrsnn RSNN")
    alif = _choice("alif", alif, POLICIES)
    soft_reset = _choice("soft_reset", soft_reset, POLICIES)
    discretisation = _choice("discretisation", discretisation, DISCRETISATIONS)
    dt = _step("dt", model.config.layers[0].neuron.dt if dt is None else dt)
    width = len(str(len(model.layers) - 1))  # zero-padded from 10 layers on, so that names sort in order
    spiking = [_Layer(f"layer{i:0{width}d}", layer) for i, layer in enumerate(model.layers)]
    if isinstance(model.readout, SpikingLayer):
        spiking.append(_Layer("readout", model.readout))
    notes = _policy_notes(model, spiking, alif, soft_reset)

    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(np.array([model.config.n_inputs]))}
    edges: list[tuple[str, str]] = []
    previous = "input"
    for item in spiking:
        layer = item.layer
        lif, r = _lif_node(layer, dt, discretisation, absorb_r)
        gain = r if absorb_r else None
        nodes[item.name] = _input_projection(layer, gain)
        w_rec = layer.effective_recurrent_weight()
        nodes[f"{item.name}_lif"] = lif if w_rec is None else _recurrent_subgraph(layer, w_rec, lif, gain)
        edges += [(previous, item.name), (item.name, f"{item.name}_lif")]
        previous = f"{item.name}_lif"
    if not isinstance(model.readout, SpikingLayer):
        readout = model.readout
        n_out = model.config.n_outputs
        nodes["readout"] = _projection(readout.input.weight, readout.input.bias, None, {})
        nodes["readout_li"] = nir.LI(
            tau=_tau_to_graph(readout.tau_m.tau, readout.neuron.dt, dt, discretisation),
            r=np.ones(n_out),
            v_leak=np.zeros(n_out),
            metadata={"hrsnn_dt": float(readout.neuron.dt), "hrsnn_theta_tau": _theta(readout.tau_m)},
        )
        edges += [(previous, "readout"), ("readout", "readout_li")]
        previous = "readout_li"
    nodes["output"] = nir.Output(np.array([model.config.n_outputs]))
    edges.append((previous, "output"))
    dtype = model.readout.input.weight.dtype
    metadata = {
        "hrsnn_format": NIR_FORMAT,
        "hrsnn_config": json.dumps(model.config.to_dict()),
        "hrsnn_dtype": "float64" if dtype == torch.float64 else "float32",
        "dt": dt,
        "discretisation": discretisation,
        "absorb_r": bool(absorb_r),
    }
    graph = nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)
    if notes:
        warnings.warn(
            "NIR cannot express part of this network and other simulators will not reproduce it: "
            + "; ".join(notes)
            + ". hrsnn keeps them in the metadata (nodes: hrsnn_kind, hrsnn_reset, hrsnn_tau_adp, hrsnn_beta; "
            "graph: hrsnn_config), so hrsnn.interchange.from_nir restores them exactly.",
            UserWarning,
            stacklevel=2,
        )
    return graph


def save_nir(model: RSNN, path: str | Path, **options: Any) -> None:
    """Export ``model`` with :func:`to_nir` (same keyword options) and write it atomically as a NIR HDF5 file."""
    import nir

    from hrsnn.io import atomic_write_bytes

    graph = to_nir(model, **options)
    buffer = io.BytesIO()
    nir.write(buffer, graph)
    atomic_write_bytes(path, buffer.getvalue())


# ---------------------------------------------------------------------------------------------------------- graph walk


@dataclass
class _Projection:
    name: str
    weight: np.ndarray
    bias: np.ndarray | None
    metadata: Mapping[str, Any]


@dataclass
class _Stage:
    """One population of the chain: its incoming projection, its neuron node, its recurrent projection."""

    name: str
    node: nir.NIRNode
    proj: _Projection
    rec: _Projection | None


def _flatten(graph: nir.NIRGraph, prefix: str = "") -> tuple[dict[str, Any], list[tuple[str, str]], list[str]]:
    """Nodes and edges with subgraphs inlined (names ``sub.node``), and the subgraphs' Input/Output nodes, kept as
    pass-through nodes for :func:`_contract` to remove."""
    import nir

    nodes: dict[str, Any] = {}
    edges: list[tuple[str, str]] = []
    passthrough: list[str] = []
    ports: dict[str, tuple[str, str]] = {}
    for name, node in graph.nodes.items():
        full = f"{prefix}{name}"
        if isinstance(node, nir.NIRGraph):
            inner, inner_edges, inner_passthrough = _flatten(node, f"{full}.")
            ins = [k for k, v in node.nodes.items() if isinstance(v, nir.Input)]
            outs = [k for k, v in node.nodes.items() if isinstance(v, nir.Output)]
            if len(ins) != 1 or len(outs) != 1:
                raise ConfigError(f"node {full!r}", "NIRGraph", "a subgraph needs exactly one Input and one Output")
            ports[name] = (f"{full}.{ins[0]}", f"{full}.{outs[0]}")
            nodes.update(inner)
            edges += inner_edges
            passthrough += [*inner_passthrough, *ports[name]]
        else:
            nodes[full] = node
    for src, dst in graph.edges:
        source = ports[src][1] if src in ports else f"{prefix}{src}"
        edges.append((source, ports[dst][0] if dst in ports else f"{prefix}{dst}"))
    return nodes, edges, passthrough


def _contract(nodes: dict[str, Any], edges: list[tuple[str, str]], name: str) -> list[tuple[str, str]]:
    """Remove pass-through node ``name``, joining each of its sources to each of its targets."""
    sources = [a for a, b in edges if b == name]
    targets = [b for a, b in edges if a == name]
    del nodes[name]
    return [e for e in edges if name not in e] + [(a, b) for a in sources for b in targets]


def _successors(edges: list[tuple[str, str]], name: str) -> list[str]:
    return [b for a, b in edges if a == name]


def _predecessors(edges: list[tuple[str, str]], name: str) -> list[str]:
    return [a for a, b in edges if b == name]


def _as_projection(name: str, node: Any, n_in: int) -> _Projection:
    import nir

    if not isinstance(node, nir.Affine | nir.Linear):
        raise ConfigError(
            f"node {name!r}", type(node).__name__, "hrsnn expects an Affine or Linear projection here (a chain "
            "Input -> (Affine|Linear -> LIF)+ -> Affine|Linear -> LI|LIF -> Output)",
        )  # fmt: skip
    weight = _array(node.weight)
    if weight.ndim != 2 or weight.shape[1] != n_in:
        raise ConfigError(f"node {name!r}", f"weight shape {weight.shape}", f"must be (n_out, {n_in})")
    bias = _array(node.bias) if isinstance(node, nir.Affine) else None
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ConfigError(f"node {name!r}", f"bias shape {bias.shape}", f"must be ({weight.shape[0]},)")
    return _Projection(name, weight, bias, dict(node.metadata or {}))


_REFUSED = {
    "CubaLIF": "hrsnn neurons have no synaptic current filter (tau_syn)",
    "CubaLI": "hrsnn's readout has no synaptic current filter (tau_syn)",
    "IF": "hrsnn neurons always leak (no IF neuron)",
    "I": "hrsnn's readout always leaks (no pure integrator)",
}


def _neuron(name: str, node: Any) -> Any:
    import nir

    if not isinstance(node, nir.LIF | nir.LI):
        reason = _REFUSED.get(type(node).__name__, "hrsnn expects a LIF (spiking layer) or LI (readout) node here")
        raise ConfigError(f"node {name!r}", type(node).__name__, reason)
    return node


def _walk(graph: nir.NIRGraph) -> tuple[int, list[_Stage]]:
    """The input width and the populations of a graph that fits hrsnn's model, in order."""
    import nir

    nodes, edges, passthrough = _flatten(graph)
    for name in passthrough:
        edges = _contract(nodes, edges, name)
    inputs = [k for k, v in nodes.items() if isinstance(v, nir.Input)]
    outputs = [k for k, v in nodes.items() if isinstance(v, nir.Output)]
    if len(inputs) != 1 or len(outputs) != 1:
        raise ConfigError("graph", f"{len(inputs)} Input / {len(outputs)} Output nodes", "hrsnn needs one of each")
    shape = _array(nodes[inputs[0]].input_type["input"]).astype(int).tolist()
    if len(shape) != 1:
        raise ConfigError(f"node {inputs[0]!r}", f"shape {shape}", "hrsnn takes a flat input vector")
    width, current, stages, seen = shape[0], inputs[0], [], {inputs[0]}
    recurrent: set[str] = set()
    while True:
        targets = [t for t in _successors(edges, current) if t not in recurrent]
        if len(targets) != 1:
            raise ConfigError(f"node {current!r}", f"{len(targets)} outgoing edges", "hrsnn needs a chain (one)")
        if isinstance(nodes[targets[0]], nir.Output):
            break
        proj = _as_projection(targets[0], nodes[targets[0]], width)
        after = _successors(edges, proj.name)
        if len(after) != 1:
            raise ConfigError(f"node {proj.name!r}", f"{len(after)} outgoing edges", "hrsnn needs a chain (one)")
        name = after[0]
        node = _neuron(name, nodes[name])
        size = proj.weight.shape[0]
        if _array(node.tau).size not in (1, size):
            raise ConfigError(f"node {name!r}", f"{_array(node.tau).size} neurons", f"its input has {size}")
        rec = None
        others = [p for p in _predecessors(edges, name) if p != proj.name]
        if others:
            r = others[0]
            is_loop = _predecessors(edges, r) == [name] and _successors(edges, r) == [name]
            if len(others) != 1 or not is_loop:
                raise ConfigError(f"node {name!r}", f"inputs {sorted(others)}", "hrsnn allows one recurrent projection")
            rec = _as_projection(r, nodes[r], size)
            recurrent.add(r)
        stages.append(_Stage(name, node, proj, rec))
        seen |= {proj.name, name, *recurrent}
        width, current = size, name
    output = nodes[targets[0]]
    out_shape = _array(output.output_type["output"]).astype(int).tolist()
    if out_shape != [width]:
        raise ConfigError(f"node {targets[0]!r}", f"shape {out_shape}", f"the readout has {width} units")
    if stray := sorted(set(nodes) - seen - {targets[0]}):
        raise ConfigError(f"node {stray[0]!r}", type(nodes[stray[0]]).__name__, "is not on the Input -> Output chain")
    _check_roles(stages)
    return shape[0], stages


def _check_roles(stages: list[_Stage]) -> None:
    import nir

    if len(stages) < 2:
        raise ConfigError("graph", f"{len(stages)} population(s)", "hrsnn needs spiking layers and then a readout")
    for stage in stages[:-1]:
        if isinstance(stage.node, nir.LI):
            raise ConfigError(f"node {stage.name!r}", "LI", "only the readout may be a non-spiking LI node")
    last = stages[-1]
    if last.rec is not None:
        raise ConfigError(f"node {last.name!r}", "recurrent", "hrsnn's readout (the last population) is feed-forward")


# ---------------------------------------------------------------------------------------------------------- import


@dataclass
class _Imported:
    """A population read from the graph, in hrsnn's terms."""

    neuron: NeuronConfig
    tau: np.ndarray  # hrsnn τ_m (step neuron.dt)
    gain: np.ndarray | None  # row gain folded into the incoming weights, None when 1
    tau_adp: np.ndarray | None = None
    recurrent: bool = False
    bias: bool = True


def _uniform(where: str, field: str, values: np.ndarray) -> float:
    import numpy as np

    if values.size == 0 or not np.all(values == values.flat[0]):
        raise ConfigError(f"node {where!r}", field, "hrsnn needs one value for the whole layer")
    return float(values.flat[0])


def _zero(where: str, field: str, values: np.ndarray) -> None:
    import numpy as np

    if np.any(values != 0):
        raise ConfigError(f"node {where!r}", f"{field}={float(values[values != 0][0])}", "hrsnn needs 0")


def _broadcast(node: Any, field: str, n: int) -> np.ndarray:
    import numpy as np

    return np.broadcast_to(_array(getattr(node, field)), (n,)).copy()


def _read_population(stage: _Stage, base: NeuronConfig | None, dt: float, discretisation: str) -> _Imported:
    """hrsnn neuron settings, τ and folded gain of a LIF or LI node (metadata: see the module docstring)."""
    import nir
    import numpy as np

    from hrsnn.network import NeuronConfig

    node, where, n = stage.node, stage.name, stage.proj.weight.shape[0]
    meta = dict(node.metadata or {})
    kind = str(meta.get("hrsnn_kind", "lif_hard"))
    if not isinstance(node, nir.LIF):
        kind = "integrator"
    elif kind not in ("alif", "lif", "lif_hard"):
        raise ConfigError(f"node {where!r}", f"hrsnn_kind={kind!r}", "must be 'alif', 'lif' or 'lif_hard'")
    dt_h = _step(f"node {where!r} metadata hrsnn_dt", meta.get("hrsnn_dt", 1.0))
    tau = _broadcast(node, "tau", n)
    _check_taus(where, "tau", tau, dt, discretisation)
    _zero(where, "v_leak", _broadcast(node, "v_leak", n))
    r = _broadcast(node, "r", n)
    neuron = base if base is not None else NeuronConfig()
    changes: dict[str, Any] = {"dt": dt_h}
    gain = None
    if kind in ("lif_hard", "integrator"):
        g = r * _one_minus_alpha(tau, dt, discretisation) if kind == "lif_hard" else r
        if np.max(np.abs(g - 1.0)) > _GAIN_TOLERANCE:
            gain = g
    else:
        changes["r_m"] = _uniform(where, "r", r)
        changes["b0"] = _uniform(where, "v_threshold", _broadcast(node, "v_threshold", n))
    if kind != "integrator":
        _zero(where, "v_reset", _broadcast(node, "v_reset", n))
        changes["kind"] = kind
    if kind == "lif_hard":
        changes["hard_threshold"] = _uniform(where, "v_threshold", _broadcast(node, "v_threshold", n))
    tau_adp = None
    if kind == "alif":
        if "hrsnn_tau_adp" not in meta or "hrsnn_beta" not in meta:
            raise ConfigError(f"node {where!r}", "hrsnn_kind='alif'", "needs metadata hrsnn_tau_adp and hrsnn_beta")
        raw_adp = np.broadcast_to(_array(meta["hrsnn_tau_adp"]), (n,))
        _check_taus(where, "hrsnn_tau_adp", raw_adp, dt, discretisation)
        tau_adp = _tau_from_graph(raw_adp, dt_h, dt, discretisation)
        changes["beta"] = _step(f"node {where!r} metadata hrsnn_beta", meta["hrsnn_beta"], zero=True)
    try:
        neuron = replace(neuron, **changes)
    except ConfigError as err:
        raise ConfigError(f"node {where!r}", err.value, f"{err.field}: {err.reason}") from None
    bias = stage.proj.bias is not None or (stage.rec is not None and stage.rec.bias is not None)
    return _Imported(neuron, _tau_from_graph(tau, dt_h, dt, discretisation), gain, tau_adp, stage.rec is not None, bias)


def _graph_settings(graph: nir.NIRGraph, dt: float | None, discretisation: str | None) -> tuple[float, str]:
    """Step and discretisation: the graph's own (hrsnn metadata) or the caller's."""
    meta = graph.metadata or {}
    if dt is None:
        if "dt" not in meta:
            raise ConfigError(
                "dt", None, "the graph does not say its step: pass the dt it was made for (snnTorch: 1e-4)"
            )
        dt = float(meta["dt"])
    if discretisation is None:
        discretisation = str(meta.get("discretisation", "exp"))
    return _step("dt", dt), _choice("discretisation", discretisation, DISCRETISATIONS)


def _base_config(graph: nir.NIRGraph, n_layers: int) -> RSNNConfig | None:
    """The hrsnn config stored in the graph's metadata (None for other tools' graphs)."""
    from hrsnn.network import RSNNConfig

    meta = graph.metadata or {}
    if "hrsnn_config" not in meta:
        return None
    try:
        base = RSNNConfig.from_dict(json.loads(str(meta["hrsnn_config"])))
    except (json.JSONDecodeError, ConfigError, TypeError) as exc:
        raise ConfigError("graph metadata hrsnn_config", "...", f"is not a valid hrsnn config ({exc})") from None
    if len(base.layers) != n_layers:
        raise ConfigError(
            "graph metadata hrsnn_config", f"{len(base.layers)} layers", f"but the nodes hold {n_layers} spiking layers"
        )
    return base


def _layer_config(base: LayerConfig | None, stage: _Stage, imported: _Imported) -> LayerConfig:
    from hrsnn.network import LayerConfig

    size = stage.proj.weight.shape[0]
    if base is None:
        return LayerConfig(size=size, recurrent=imported.recurrent, neuron=imported.neuron, bias=imported.bias)
    return replace(base, size=size, recurrent=imported.recurrent, neuron=imported.neuron, bias=imported.bias)


def _copy(target: torch.Tensor, values: np.ndarray) -> None:
    import torch

    target.copy_(torch.from_numpy(values).to(dtype=target.dtype, device=target.device))


def _scaled(proj: _Projection, gain: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    if gain is None:
        return proj.weight, proj.bias
    return proj.weight * gain[:, None], None if proj.bias is None else proj.bias * gain


def _set_tau(
    tc: TimeConstants, tau_h: np.ndarray, theta: Any, graph_tau: np.ndarray, dt_h: float, dt: float, disc: str
) -> None:
    """Restore the raw τ parameter when it reproduces the node's τ exactly, else set τ itself."""
    import numpy as np
    import torch

    if theta is not None and np.shape(theta) == tc.theta.shape:
        _copy(tc.theta.data, _array(theta))
        if np.array_equal(_tau_to_graph(tc.tau, dt_h, dt, disc), graph_tau):
            return
    tc.set_tau(torch.from_numpy(tau_h))


def _bias_parts(proj: _Projection, gain: np.ndarray | None) -> tuple[np.ndarray, np.ndarray] | None:
    """(b_in, b_rec) from the input node's metadata, when they still add up to its bias (no gain folded)."""
    import numpy as np

    b_in, b_rec = proj.metadata.get("hrsnn_bias_in"), proj.metadata.get("hrsnn_bias_rec")
    if gain is not None or proj.bias is None or b_in is None or b_rec is None:
        return None
    b_in, b_rec = _array(b_in), _array(b_rec)
    if b_in.shape != proj.bias.shape or b_rec.shape != proj.bias.shape or not np.array_equal(b_in + b_rec, proj.bias):
        return None
    return b_in, b_rec


def _load_spiking(layer: SpikingLayer, stage: _Stage, imported: _Imported, dt: float, discretisation: str) -> None:
    import numpy as np

    meta = dict(stage.node.metadata or {})
    n = layer.size
    weight, bias = _scaled(stage.proj, imported.gain)
    b_rec = None if stage.rec is None else _scaled(stage.rec, imported.gain)[1]
    bias, b_rec = _bias_parts(stage.proj, imported.gain) or (bias, b_rec)
    _copy(layer.input.weight.data, weight)
    if layer.input.bias is not None:
        _copy(layer.input.bias.data, np.zeros(n) if bias is None else bias)
    if stage.rec is not None and layer.weight_rec is not None:
        w_rec = _scaled(stage.rec, imported.gain)[0]
        mask = w_rec != 0
        stored = stage.rec.metadata.get("hrsnn_mask")
        if stored is not None and np.shape(stored) == mask.shape:
            mask |= np.asarray(stored).astype(bool)
        _copy(layer.weight_rec.data, np.where(mask, w_rec, 0.0))
        layer.mask.copy_(layer.mask.new_tensor(mask))
        if layer.bias_rec is not None:
            _copy(layer.bias_rec.data, np.zeros(n) if b_rec is None else b_rec)
    dt_h = layer.config.neuron.dt
    graph_tau = _broadcast(stage.node, "tau", n)
    _set_tau(layer.tau_m, imported.tau, meta.get("hrsnn_theta_tau_m"), graph_tau, dt_h, dt, discretisation)
    if layer.tau_adp is not None and imported.tau_adp is not None:
        graph_adp = np.broadcast_to(_array(meta["hrsnn_tau_adp"]), (n,))
        theta = meta.get("hrsnn_theta_tau_adp")
        _set_tau(layer.tau_adp, imported.tau_adp, theta, graph_adp, dt_h, dt, discretisation)


def from_nir(
    graph: nir.NIRGraph,
    *,
    dt: float | None = None,
    discretisation: str | None = None,
    dtype: str | None = None,
) -> RSNN:
    """Build an RSNN from a NIR graph that fits hrsnn's model (see the module docstring).

    Args:
        graph: a graph written by :func:`to_nir` (restored exactly), or another tool's graph of the same layout.
        dt: the step Δ the graph's time constants are meant for; default ``graph.metadata["dt"]`` (required for
            other tools' graphs, e.g. 1e-4 for snnTorch's).
        discretisation: "exp" or "euler" (snnTorch, Norse, SpikingJelly); default the graph's, else "exp".
        dtype: "float32" or "float64"; default the graph's (``hrsnn_dtype``), else "float32".

    Raises:
        ConfigError: naming the node (or option) when the graph does not fit.
    """
    import nir
    import numpy as np
    import torch

    from hrsnn.network import RSNN, ReadoutConfig, RSNNConfig

    if not isinstance(graph, nir.NIRGraph):
        raise ConfigError("graph", type(graph).__name__, "must be a nir.NIRGraph")
    dt, discretisation = _graph_settings(graph, dt, discretisation)
    dtype = _choice("dtype", dtype or str((graph.metadata or {}).get("hrsnn_dtype", "float32")), _DTYPES)
    n_inputs, stages = _walk(graph)
    base = _base_config(graph, len(stages) - 1)
    hidden = [
        _read_population(stage, base.layers[i].neuron if base else None, dt, discretisation)
        for i, stage in enumerate(stages[:-1])
    ]
    readout = _read_population(stages[-1], base.readout.neuron if base else None, dt, discretisation)
    layers = tuple(
        _layer_config(base.layers[i] if base else None, stage, imp)
        for i, (stage, imp) in enumerate(zip(stages[:-1], hidden, strict=True))
    )
    ro_kind = "integrator" if isinstance(stages[-1].node, nir.LI) else "alif"
    ro_config = ReadoutConfig(kind=ro_kind, neuron=readout.neuron)
    n_outputs = stages[-1].proj.weight.shape[0]
    try:
        if base is None:
            config = RSNNConfig(n_inputs=n_inputs, n_outputs=n_outputs, layers=layers, readout=ro_config)
        else:
            config = replace(base, n_inputs=n_inputs, n_outputs=n_outputs, layers=layers, readout=ro_config)
    except ConfigError as err:
        raise ConfigError("graph", err.value, f"does not make a valid hrsnn network: {err}") from None
    model = RSNN(config).to(getattr(torch, dtype))
    with torch.no_grad():
        for layer, stage, imp in zip(model.layers, stages[:-1], hidden, strict=True):
            _load_spiking(layer, stage, imp, dt, discretisation)
        if ro_kind == "alif":
            _load_spiking(model.readout, stages[-1], readout, dt, discretisation)  # type: ignore[arg-type]
        else:
            ro = model.readout
            weight, bias = _scaled(stages[-1].proj, readout.gain)
            _copy(ro.input.weight.data, weight)
            _copy(ro.input.bias.data, np.zeros(n_outputs) if bias is None else bias)
            meta = dict(stages[-1].node.metadata or {})
            graph_tau = _broadcast(stages[-1].node, "tau", n_outputs)
            _set_tau(ro.tau_m, readout.tau, meta.get("hrsnn_theta_tau"), graph_tau, ro.neuron.dt, dt, discretisation)
    return model


def load_nir(path: str | Path, **options: Any) -> RSNN:
    """Read a NIR HDF5 file and build the network with :func:`from_nir` (same keyword options).

    Raises:
        DataNotFoundError: when ``path`` does not exist.
        DataFormatError: naming the file when it is not a readable NIR file.
    """
    import nir

    if not Path(path).is_file():
        raise DataNotFoundError(f"NIR file not found: {path}")
    try:
        graph = nir.read(path)
    except (OSError, KeyError, ValueError, TypeError, AssertionError) as exc:
        raise DataFormatError("NIR file", str(path), f"is not a readable NIR graph ({exc})") from None
    return from_nir(graph, **options)


# ---------------------------------------------------------------------------------------------------------- CLI


def _print_warnings(caught: list[warnings.WarningMessage]) -> None:
    for item in caught:
        print(f"hrsnn: warning: {item.message}", file=sys.stderr)


def cmd_nir_export(args: argparse.Namespace) -> int:
    """``hrsnn nir export MODEL OUT``: a saved model (safetensors) to a NIR file."""
    from hrsnn.network import load_model

    model = load_model(args.model)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        save_nir(
            model, args.out, alif=args.alif, soft_reset=args.soft_reset, discretisation=args.discretisation,
            dt=args.dt, absorb_r=args.absorb_r,
        )  # fmt: skip
    _print_warnings(caught)
    sizes = ", ".join(str(layer.size) for layer in model.layers)
    print(f"wrote {args.out}: NIR graph of {model.config.n_inputs} inputs, layers [{sizes}], readout "
          f"{model.config.readout.kind} ({model.config.n_outputs})")  # fmt: skip
    return 0


def cmd_nir_import(args: argparse.Namespace) -> int:
    """``hrsnn nir import IN OUT``: a NIR file to a saved model (safetensors)."""
    from hrsnn.network import save_model

    model = load_nir(args.graph, dt=args.dt, discretisation=args.discretisation)
    save_model(model, args.out)
    kinds = ", ".join(f"{layer.config.neuron.kind}({layer.size})" for layer in model.layers)
    print(f"wrote {args.out}: {model.config.n_inputs} inputs, layers [{kinds}], readout {model.config.readout.kind}")
    return 0


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``hrsnn nir export`` and ``hrsnn nir import`` (handlers import torch and nir when they run)."""
    p = subparsers.add_parser(
        "nir",
        help="export a network to NIR, or import one from NIR (snnTorch, Norse, SpikingJelly, Sinabs, hardware)",
        description="Move networks to and from the Neuromorphic Intermediate Representation (nir HDF5 files).",
    )
    sub = p.add_subparsers(dest="nir_command", required=True)
    ex = sub.add_parser("export", help="write a saved model (.safetensors) as a NIR file")
    ex.add_argument("model", help="model file written by hrsnn (save_model / hrsnn train)")
    ex.add_argument("out", help="NIR file to write (HDF5, e.g. model.nir)")
    ex.add_argument(
        "--alif", choices=POLICIES, default="custom",
        help="ALIF populations: the documented hrsnn ALIF node with a warning (custom), or an error (refuse)",
    )  # fmt: skip
    ex.add_argument(
        "--soft-reset", choices=POLICIES, default="custom",
        help="soft-reset (lif/alif) populations: metadata with a warning (custom), or an error (refuse)",
    )  # fmt: skip
    ex.add_argument(
        "--discretisation", choices=DISCRETISATIONS, default="exp",
        help="the importer's discretisation: exp (alpha = exp(-dt/tau), exact) or euler (1 - dt/tau: snnTorch, Norse)",
    )  # fmt: skip
    ex.add_argument(
        "--dt", type=float, help="the importer's step in its time unit (default: the model's dt; snnTorch 1e-4)"
    )
    ex.add_argument("--absorb-r", action="store_true", help="fold the input gain r into the weights (Norse, Sinabs)")
    ex.set_defaults(func=cmd_nir_export)
    im = sub.add_parser("import", help="build an hrsnn model from a NIR file and save it (.safetensors)")
    im.add_argument("graph", help="NIR file (HDF5)")
    im.add_argument("out", help="model file to write (.safetensors)")
    im.add_argument("--dt", type=float, help="the step the graph was made for (default: the graph's; snnTorch 1e-4)")
    im.add_argument("--discretisation", choices=DISCRETISATIONS, help="default: the graph's, else exp")
    im.set_defaults(func=cmd_nir_import)
