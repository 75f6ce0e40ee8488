"""What training, evaluation and the runner need from a model, whatever its kind, and saving/loading any model.

Two kinds satisfy :class:`SequenceModel`: the spiking :class:`hrsnn.network.RSNN` and the classical
:class:`hrsnn.classical.ClassicalRNN` (LSTM, GRU, Elman). :func:`save_model` writes either as safetensors with its
config in the metadata under a format tag; :func:`load_model` reads the tag and rebuilds the right kind.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from hrsnn.classical import CLASSICAL_FORMAT, ClassicalConfig, ClassicalRNN, load_classical, save_classical
from hrsnn.errors import ConfigError, DataFormatError, DataNotFoundError
from hrsnn.io import load_metadata
from hrsnn.network import MODEL_FORMAT, RSNN, RSNNConfig
from hrsnn.network import load_model as load_rsnn
from hrsnn.network import save_model as save_rsnn


@runtime_checkable
class ModelOutput(Protocol):
    """What one forward pass returns: ``readout`` (B, T, C) read by the objectives, the spikes of every spiking
    layer (empty for a non-spiking model), those of spiking output units (None without), and the final state."""

    @property
    def readout(self) -> Tensor: ...

    @property
    def layer_spikes(self) -> tuple[Tensor, ...]: ...

    @property
    def output_spikes(self) -> Tensor | None: ...

    @property
    def state(self) -> Any: ...


@runtime_checkable
class SequenceModel(Protocol):
    """A trainable sequence model: the ``nn.Module`` methods the trainer calls, plus

    - ``initial_state(batch, generator)``: the state a sequence starts from (a tensor, or tuples/NamedTuples of
      tensors and None, so that :func:`detach_state` can cut it between truncated-BPTT windows);
    - ``model(x, state, generator=...)``: a :class:`ModelOutput` for inputs (B, T, n_inputs) from ``state``
      (a fresh initial state when None, random draws from ``generator``);
    - ``parameter_families()``: trainable parameters by optimiser group ("weights", τ families);
    - ``device``: where the parameters live.
    """

    training: bool

    @property
    def device(self) -> torch.device: ...

    def initial_state(self, batch: int, generator: torch.Generator | None = None) -> Any: ...

    def __call__(self, x: Tensor, state: Any = None, *, generator: torch.Generator | None = None) -> ModelOutput: ...

    def parameter_families(self) -> dict[str, list[nn.Parameter]]: ...

    def to(self, device: torch.device) -> Any: ...

    def train(self, mode: bool = True) -> Any: ...

    def eval(self) -> Any: ...

    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]: ...

    def named_parameters(self) -> Iterator[tuple[str, nn.Parameter]]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> Any: ...


def detach_state(state: Any) -> Any:
    """``state`` with every tensor detached from the graph: tensors, None, and tuples/NamedTuples of them."""
    if state is None:
        return None
    if isinstance(state, Tensor):
        return state.detach()
    if isinstance(state, tuple):
        parts = [detach_state(part) for part in state]
        return type(state)(*parts) if hasattr(state, "_fields") else tuple(parts)
    raise TypeError(f"cannot detach a model state part of type {type(state).__name__}")


ModelConfig = RSNNConfig | ClassicalConfig

_BUILDERS: Mapping[type, Callable[..., RSNN | ClassicalRNN]] = MappingProxyType(
    {RSNNConfig: RSNN, ClassicalConfig: ClassicalRNN}
)


def build_model(config: ModelConfig, *, seed: int = 0) -> RSNN | ClassicalRNN:
    """The model a config describes: an :class:`RSNN` for an :class:`RSNNConfig`, a :class:`ClassicalRNN` for a
    :class:`ClassicalConfig`."""
    builder = _BUILDERS.get(type(config))
    if builder is None:
        raise ConfigError("model", type(config).__name__, "must be an RSNNConfig or a ClassicalConfig")
    return builder(config, seed=seed)


_SAVERS: Mapping[type, Callable[..., None]] = MappingProxyType({RSNN: save_rsnn, ClassicalRNN: save_classical})

_LOADERS: Mapping[str, Callable[..., SequenceModel]] = MappingProxyType(
    {MODEL_FORMAT: load_rsnn, CLASSICAL_FORMAT: load_classical}
)


def save_model(model: SequenceModel, path: str | Path, *, extra: Mapping[str, Any] | None = None) -> None:
    """Atomically save an RSNN or a classical model (safetensors, config in the metadata, nothing pickled)."""
    for kind, saver in _SAVERS.items():
        if isinstance(model, kind):
            saver(model, path, extra=extra)
            return
    raise ConfigError("model", type(model).__name__, "must be an hrsnn RSNN or ClassicalRNN")


def load_model(path: str | Path, device: str | torch.device = "cpu") -> SequenceModel:
    """Load any model :func:`save_model` wrote, by the format tag in its metadata (see the kinds' loaders for the
    checks made before anything is built).

    Raises:
        DataNotFoundError: when ``path`` does not exist.
        DataFormatError: naming the file when its format tag is not a known model format, or as the kind's loader.
    """
    if not Path(path).exists():
        raise DataNotFoundError(f"model file not found: {path}")
    tag = load_metadata(path).get("format")
    loader = _LOADERS.get(tag) if tag is not None else None
    if loader is None:
        known = list(_LOADERS)
        raise DataFormatError("model file", str(path), f"is not an hrsnn model (format {tag!r}; known: {known})")
    return loader(path, device)
