"""Input checks shared across hrsnn (seeds, numbers, tensors, memory estimates); every failure raises
:class:`hrsnn.errors.ConfigError` naming the offending field."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from numbers import Integral, Real
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from hrsnn.errors import ConfigError

if TYPE_CHECKING:
    from hrsnn.network import RSNN, RSNNConfig

SEED_LIMIT = 2**64
"""Seeds lie in ``[0, SEED_LIMIT)``: the values ``torch.Generator.manual_seed`` keeps apart."""

MAX_BYTES_ENV_VAR = "HRSNN_MAX_BYTES"
"""Environment variable overriding the memory limit of :func:`memory_limit` (a whole number of bytes)."""


def check_int(field: str, value: Any, minimum: int) -> int:
    """Return ``value`` if it is an integer (not a bool) ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ConfigError(field, value, "must be an integer")
    if value < minimum:
        raise ConfigError(field, value, f"must be >= {minimum}")
    return int(value)


def check_seed(field: str, value: Any) -> int:
    """Return ``value`` as an int if it is a seed in ``[0, 2**64)``; the one seed check of hrsnn.

    ``torch.Generator.manual_seed`` takes Python ints in ``[-2**63, 2**64)`` and maps a negative seed ``s`` to
    ``s + 2**64`` (so -1 and 2**64 - 1 give the same stream); it refuses floats, bools and numpy integers.
    Refusing negative seeds keeps every accepted seed a distinct stream; numpy integers are accepted and
    converted.
    """
    if isinstance(value, bool) or not isinstance(value, Integral) or not 0 <= int(value) < SEED_LIMIT:
        raise ConfigError(field, value, "must be an integer seed in [0, 2**64)")
    return int(value)


RUN_SEED_LIMIT = 2**63
"""Seeds of recorded runs lie in ``[0, RUN_SEED_LIMIT)``: the run store keeps them as signed 64-bit integers, and
derived streams (``seed + 1``) stay within :data:`SEED_LIMIT`."""


def check_run_seed(field: str, value: Any) -> int:
    """Return ``value`` as an int if it is a valid seed of a recorded experiment: :func:`check_seed`'s rule, below
    :data:`RUN_SEED_LIMIT`."""
    if isinstance(value, bool) or not isinstance(value, Integral) or not 0 <= int(value) < RUN_SEED_LIMIT:
        raise ConfigError(field, value, "must be an integer seed in [0, 2**63) (the run store keeps 64-bit integers)")
    return int(value)


def check_real(
    field: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    strict: bool = False,
    allow_inf: bool = False,
) -> float:
    """Return ``value`` as a float if it is a real number (not a bool) in ``[low, high]`` (``(low, high]`` when
    ``strict``).

    It must be finite, except that ``allow_inf`` lets +inf through when there is no ``high`` (NaN is then
    reported as such, and a bound is checked before finiteness).
    """
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ConfigError(field, value, "must be a real number")
    out = float(value)
    if not allow_inf and not math.isfinite(out):
        raise ConfigError(field, value, "must be finite")
    if math.isnan(out):
        raise ConfigError(field, value, "must not be NaN")
    if low is not None and strict and out <= low:
        raise ConfigError(field, value, f"must be > {low:g}")
    if low is not None and out < low:
        raise ConfigError(field, value, f"must be >= {low:g}")
    if high is not None and out > high:
        raise ConfigError(field, value, f"must be <= {high:g}")
    if math.isinf(out) and (high is not None or out < 0):
        raise ConfigError(field, value, "must be finite")
    return out


def check_fraction(field: str, value: Any, *, open_low: bool = False) -> float:
    """Return ``value`` if it lies in [0, 1] (in (0, 1] when ``open_low``)."""
    out = check_real(field, value, low=0.0, high=1.0)
    if open_low and out == 0.0:
        raise ConfigError(field, value, "must be > 0")
    return out


def check_bool(field: str, value: Any) -> bool:
    """Return ``value`` if it is a bool."""
    if not isinstance(value, bool):
        raise ConfigError(field, value, "must be true or false")
    return value


def check_choice(field: str, value: Any, choices: Mapping[str, Any]) -> str:
    """Return ``value`` if it is one of the keys of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise ConfigError(field, value, f"must be one of {sorted(choices)}")
    return value


def check_generator(field: str, generator: Any) -> torch.Generator:
    """Return ``generator`` if it is a ``torch.Generator``."""
    if not isinstance(generator, torch.Generator):
        raise ConfigError(field, type(generator).__name__, "must be a torch.Generator")
    return generator


def check_model(model: Any) -> RSNN:
    """Return ``model`` if it is an :class:`hrsnn.network.RSNN` (field ``model``)."""
    from hrsnn.network import RSNN  # imported here so that this module stays importable by hrsnn.network's imports

    if not isinstance(model, RSNN):
        raise ConfigError("model", type(model).__name__, "must be an hrsnn.network.RSNN")
    return model


def check_tensor(field: str, x: Any, dim: int | tuple[int, ...] | None = None, *, finite: bool = False) -> Tensor:
    """Return ``x`` if it is a tensor with ``dim`` dimensions (one of them, when a tuple; any when None).

    With ``finite`` it must also be a floating-point tensor with finite entries.
    """
    if not isinstance(x, Tensor):
        raise ConfigError(field, type(x).__name__, "must be a torch.Tensor")
    dims = (dim,) if isinstance(dim, int) else dim
    if dims is not None and x.dim() not in dims:
        raise ConfigError(field, tuple(x.shape), f"must have {' or '.join(map(str, dims))} dimension(s)")
    if finite:
        _check_finite_entries(field, x)
    return x


def nonfinite_counts(named: Iterable[tuple[str, Tensor]]) -> list[tuple[str, int, int]]:
    """``(name, #NaN, #inf)`` of every floating-point tensor holding a non-finite value, in the given order (empty
    when all are finite, found with a single device synchronisation)."""
    floats = [(name, t) for name, t in named if torch.is_floating_point(t)]
    if not floats or bool(torch.stack([t.isfinite().all() for _, t in floats]).all()):
        return []
    return [
        (name, int(t.isnan().sum()), int(t.isinf().sum())) for name, t in floats if not bool(t.isfinite().all())
    ]


def _check_finite_entries(field: str, x: Tensor) -> None:
    if not torch.is_floating_point(x):
        raise ConfigError(field, str(x.dtype), "must be a floating-point tensor")
    if not bool(torch.isfinite(x).all()):
        raise ConfigError(field, "non-finite entries", "must be finite")


def check_square(field: str, x: Any, n: int | None = None) -> Tensor:
    """Return ``x`` if it is a square matrix (of size ``n`` when given)."""
    x = check_tensor(field, x, dim=2)
    if x.shape[0] != x.shape[1]:
        raise ConfigError(field, tuple(x.shape), "must be a square matrix (n, n)")
    if n is not None and x.shape[0] != n:
        raise ConfigError(field, tuple(x.shape), f"must have shape ({n}, {n})")
    return x


def check_vector(field: str, x: Any, n: int) -> Tensor:
    """Return ``x`` if it is a finite vector of length ``n``."""
    x = check_tensor(field, x, dim=1)
    if x.shape[0] != n:
        raise ConfigError(field, tuple(x.shape), f"must have shape ({n},)")
    if torch.is_floating_point(x) and not bool(torch.isfinite(x).all()):
        raise ConfigError(field, "non-finite entries", "must be finite")
    return x


def check_bool_matrix(field: str, x: Any, n: int | None = None) -> Tensor:
    """Return ``x`` if it is a square bool matrix."""
    x = check_square(field, x, n)
    if x.dtype != torch.bool:
        raise ConfigError(field, str(x.dtype), "must be a bool tensor")
    return x


def check_finite_matrix(field: str, x: Any, n: int | None = None) -> Tensor:
    """Return ``x`` if it is a square floating matrix with finite entries."""
    x = check_square(field, x, n)
    _check_finite_entries(field, x)
    return x


def float64_matrix(field: str, x: Any, n: int | None = None) -> Tensor:
    """:func:`check_finite_matrix`, then ``x`` detached as float64 on the CPU (no copy when it already is)."""
    return check_finite_matrix(field, x, n).detach().to(device="cpu", dtype=torch.float64)


def masked_float64_matrix(field: str, x: Any, mask: Tensor) -> Tensor:
    """``x ⊙ mask`` as float64 on the CPU, with masked entries exactly 0 whatever ``x`` holds there (NaN too);
    ``x`` must be a square matrix of ``mask``'s size with finite entries inside the mask."""
    x = check_square(field, x, mask.shape[0])
    masked = torch.where(mask.cpu(), x.detach().to(device="cpu", dtype=torch.float64), 0.0)
    _check_finite_entries(f"{field} (inside the mask)", masked)
    return masked


def off_diagonal(n: int, device: torch.device | None = None) -> Tensor:
    """Bool (n, n) matrix that is True off the diagonal."""
    return ~torch.eye(n, dtype=torch.bool, device=device)


def memory_limit() -> tuple[int, str] | None:
    """The bytes one process may plan to allocate, and a phrase saying where that limit comes from (e.g. "of
    physical memory"); None when unknown.

    ``$HRSNN_MAX_BYTES`` when set; else the physical memory (``os.sysconf``), lowered to a cgroup v2 limit
    (``/sys/fs/cgroup/memory.max``) when the process runs in a container that has one.

    Raises:
        ConfigError: naming ``HRSNN_MAX_BYTES`` when it is set but not a positive whole number.
    """
    override = os.environ.get(MAX_BYTES_ENV_VAR, "")
    if override:
        if not override.isdigit() or int(override) < 1:
            raise ConfigError(MAX_BYTES_ENV_VAR, override, "must be a positive whole number of bytes")
        return int(override), f"allowed by {MAX_BYTES_ENV_VAR}"
    try:
        limit, source = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "of physical memory"
    except (AttributeError, ValueError, OSError):  # no os.sysconf (Windows) or no such name
        return None
    try:
        cgroup = Path("/sys/fs/cgroup/memory.max").read_text().strip()
    except OSError:
        cgroup = "max"
    if cgroup.isdigit() and int(cgroup) < limit:
        limit, source = int(cgroup), "allowed by the container's memory limit"
    return (limit, source) if limit > 0 else None


def _gib(n_bytes: int) -> str:
    return f"{n_bytes / 2**30:.3g} GiB"


def check_memory(field: str, value: Any, n_bytes: int, what: str) -> None:
    """Raise :class:`ConfigError` naming ``field=value`` when ``what`` needs more than :func:`memory_limit`."""
    limit = memory_limit()
    if limit is not None and n_bytes > limit[0]:
        reason = f"{what} needs at least {_gib(n_bytes)}, more than the {_gib(limit[0])} {limit[1]}"
        if MAX_BYTES_ENV_VAR not in limit[1]:
            reason += f" (set {MAX_BYTES_ENV_VAR} to change the limit)"
        raise ConfigError(field, value, reason)


def rsnn_tensor_shapes(config: RSNNConfig) -> dict[str, tuple[int, ...]]:
    """Name and shape of every tensor in ``RSNN(config).state_dict()``, computed without building the network."""
    shapes: dict[str, tuple[int, ...]] = {}

    def spiking(prefix: str, n_in: int, n: int, *, recurrent: bool, bias: bool, kind: str) -> None:
        if recurrent:
            shapes[f"{prefix}.weight_rec"] = (n, n)
            if bias:
                shapes[f"{prefix}.bias_rec"] = (n,)
            shapes[f"{prefix}.mask"] = (n, n)
        shapes[f"{prefix}.input.weight"] = (n, n_in)
        if bias:
            shapes[f"{prefix}.input.bias"] = (n,)
        shapes[f"{prefix}.tau_m.theta"] = (n,)
        if kind == "alif":
            shapes[f"{prefix}.tau_adp.theta"] = (n,)

    n_in = config.n_inputs
    for i, layer in enumerate(config.layers):
        spiking(f"layers.{i}", n_in, layer.size, recurrent=layer.recurrent, bias=layer.bias, kind=layer.neuron.kind)
        n_in = layer.size
    n_out = config.n_outputs
    if config.readout.kind == "alif":
        spiking("readout", n_in, n_out, recurrent=False, bias=True, kind=config.readout.neuron.kind)
    else:
        shapes.update({"readout.input.weight": (n_out, n_in), "readout.input.bias": (n_out,)})
        shapes["readout.tau_m.theta"] = (n_out,)
    return shapes


def rsnn_memory_bytes(config: RSNNConfig) -> int:
    """Bytes of the tensors ``RSNN(config)`` holds: float32 weights, biases and τ, one byte per mask entry.

    A lower bound of what building the network allocates (construction also makes temporaries).
    """
    return sum(
        math.prod(shape) * (1 if name.endswith(".mask") else 4) for name, shape in rsnn_tensor_shapes(config).items()
    )


def check_rsnn_memory(config: RSNNConfig, field: str | None = None) -> None:
    """Refuse a network whose tensors (:func:`rsnn_memory_bytes`) exceed :func:`memory_limit`.

    The error names the largest layer's size under ``field`` (default ``model.layers[i].size``).
    """
    sizes = [layer.size for layer in config.layers]
    largest = max(range(len(sizes)), key=sizes.__getitem__)
    what = f"a network with layer sizes {sizes}"
    check_memory(field or f"model.layers[{largest}].size", sizes[largest], rsnn_memory_bytes(config), what)
