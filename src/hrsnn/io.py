"""Atomic, code-free serialisation: safetensors for tensors, JSON for everything else.

Nothing here ever pickles. Every writer goes through :func:`atomic_write_bytes`, so a crash mid-save leaves
either the previous file or the new one, never a truncated mix.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path, PurePath
from typing import Any, TypeVar

import safetensors
import safetensors.torch
import torch
from safetensors import SafetensorError

from hrsnn.errors import ConfigError, DataFormatError, DataNotFoundError

__all__ = [
    "CHECKPOINT_STATE_KEY",
    "atomic_write_bytes",
    "atomic_write_text",
    "flatten_state_dict",
    "load_checkpoint",
    "load_json",
    "load_metadata",
    "load_shapes",
    "load_tensors",
    "save_checkpoint",
    "save_json",
    "save_tensors",
    "to_jsonable",
    "unflatten_state_dict",
]

CHECKPOINT_STATE_KEY = "hrsnn_state"
"""Safetensors metadata key under which :func:`save_checkpoint` stores the JSON state."""

_CHECKPOINT_FORMAT_KEY = "hrsnn_format"
_CHECKPOINT_FORMAT = "checkpoint/1"
_FLAT_FORMAT = "hrsnn-flat/1"


# ----------------------------------------------------------------------------------------------------------
# atomic writes
# ----------------------------------------------------------------------------------------------------------


def _new_file_mode(target: Path) -> int:
    """Permission bits for the new file: the old file's mode, else 0o666 minus the process umask."""
    with contextlib.suppress(OSError):
        return target.stat().st_mode & 0o7777
    umask = 0o022
    # Reading the umask via os.umask() would briefly change it for every thread; /proc is race-free on Linux.
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                umask = int(line.split()[1], 8)
                break
    return 0o666 & ~umask


def _fsync_dir(directory: Path) -> None:
    """Persist a rename by syncing its directory (best effort; not possible on every platform)."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    try:
        fd = os.open(directory, flags)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically.

    The bytes go to a temporary file in the same directory, which is flushed, fsynced and then moved over
    ``path`` with :func:`os.replace`. Parent directories are created as needed.

    Args:
        path: destination file.
        data: the complete new contents.

    Raises:
        ConfigError: if ``data`` is not bytes-like or ``path`` is an existing directory.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ConfigError("data", type(data).__name__, "must be bytes, bytearray or memoryview")
    target = Path(path)
    if target.is_dir():
        raise ConfigError("path", str(target), "is a directory")
    target.parent.mkdir(parents=True, exist_ok=True)
    mode = _new_file_mode(target)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(OSError):
            os.chmod(tmp_name, mode)
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    _fsync_dir(target.parent)


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write_bytes`); no newline translation is done.

    Args:
        path: destination file.
        text: the complete new contents.
        encoding: text encoding.

    Raises:
        ConfigError: if ``text`` is not a string.
    """
    if not isinstance(text, str):
        raise ConfigError("text", type(text).__name__, "must be a str")
    atomic_write_bytes(path, text.encode(encoding))


# ----------------------------------------------------------------------------------------------------------
# JSON
# ----------------------------------------------------------------------------------------------------------


def _key_repr(key: Any) -> str:
    return f"[{key!r}]"


def to_jsonable(obj: Any, *, path: str = "$") -> Any:
    """Return a copy of ``obj`` made only of JSON types, for an exact round trip through :mod:`json`.

    Mappings become dicts (keys must be ``str``), tuples and lists become lists, :class:`~pathlib.PurePath`
    becomes ``str`` and numpy scalars become Python numbers. NaN and infinities are kept (Python's json reads
    them back).

    Args:
        obj: the value to convert.
        path: where ``obj`` sits, used in error messages (``$`` is the root).

    Returns:
        A structure of dict, list, str, int, float, bool and None.

    Raises:
        TypeError: naming the key path (e.g. ``$['model']['layers'][2]``) of the first value that JSON cannot
            hold exactly, such as a tensor, a set or a mapping with a non-string key.
    """
    if obj is None or isinstance(obj, bool | int | float | str):
        # bool/int/float/str subclasses (e.g. IntEnum, StrEnum) are reduced to their plain value.
        if isinstance(obj, bool):
            return bool(obj)
        if isinstance(obj, int):
            return int(obj)
        if isinstance(obj, float):
            return float(obj)
        return obj if obj is None else str.__str__(obj)
    if isinstance(obj, PurePath):
        return str(obj)
    if isinstance(obj, Mapping):
        out: dict[str, Any] = {}
        for key, value in obj.items():
            if not isinstance(key, str):
                raise TypeError(
                    f"cannot serialise key {key!r} ({type(key).__name__}) at {path}: JSON object keys must be str"
                )
            out[str(key)] = to_jsonable(value, path=path + _key_repr(key))
        return out
    if isinstance(obj, list | tuple):
        return [to_jsonable(value, path=f"{path}[{i}]") for i, value in enumerate(obj)]
    # numpy scalars (np.float32(0.5), np.int64(3), np.bool_) without importing numpy here.
    if type(obj).__module__ == "numpy" and hasattr(obj, "item") and getattr(obj, "ndim", None) == 0:
        return to_jsonable(obj.item(), path=path)
    hint = " (convert tensors with .item() or .tolist())" if isinstance(obj, torch.Tensor) else ""
    raise TypeError(f"cannot serialise value of type {type(obj).__name__} at {path}{hint}")


def _dumps(obj: Any, *, indent: int | None = None) -> str:
    return json.dumps(to_jsonable(obj), sort_keys=indent is not None, indent=indent, allow_nan=True)


def save_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Atomically write ``obj`` as JSON (sorted keys, indent 2, trailing newline).

    Args:
        path: destination file.
        obj: a JSON-able structure; tuples and paths are converted (see :func:`to_jsonable`).

    Raises:
        TypeError: naming the key path of an unserialisable value; nothing is written in that case.
    """
    atomic_write_text(path, _dumps(obj, indent=2) + "\n")


def load_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file written by :func:`save_json` (or any JSON file).

    Args:
        path: the file to read.

    Returns:
        The decoded value.
    """
    return json.loads(Path(path).read_text(encoding="utf-8"))


# ----------------------------------------------------------------------------------------------------------
# safetensors
# ----------------------------------------------------------------------------------------------------------


def _prepare_tensors(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Validate and copy tensors to contiguous CPU tensors that share no storage (as safetensors requires)."""
    if not isinstance(tensors, Mapping):
        raise ConfigError("tensors", type(tensors).__name__, "must be a mapping of str to torch.Tensor")
    prepared: dict[str, torch.Tensor] = {}
    seen_storages: set[int] = set()
    for name, tensor in tensors.items():
        if not isinstance(name, str) or not name:
            raise ConfigError("tensors", name, "keys must be non-empty strings")
        if not isinstance(tensor, torch.Tensor):
            raise ConfigError(f"tensors[{name!r}]", type(tensor).__name__, "must be a torch.Tensor")
        if tensor.layout != torch.strided:
            raise ConfigError(f"tensors[{name!r}]", str(tensor.layout), "must be dense (call .to_dense())")
        out = tensor.detach().to("cpu").contiguous()
        ptr = out.untyped_storage().data_ptr()
        if ptr != 0 and out.numel() > 0:
            if ptr in seen_storages:
                out = out.clone()
            else:
                seen_storages.add(ptr)
        prepared[name] = out
    return prepared


def _check_metadata(metadata: Mapping[str, str] | None) -> dict[str, str] | None:
    if metadata is None:
        return None
    if not isinstance(metadata, Mapping):
        raise ConfigError("metadata", type(metadata).__name__, "must be a mapping of str to str")
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ConfigError(f"metadata[{key!r}]", value, "metadata keys and values must be str")
    return dict(metadata)


def save_tensors(
    path: str | os.PathLike[str],
    tensors: Mapping[str, torch.Tensor],
    metadata: Mapping[str, str] | None = None,
) -> None:
    """Atomically save named tensors to a safetensors file.

    Tensors are detached, moved to CPU and made contiguous; tensors that share storage are copied apart.

    Args:
        path: destination file (conventionally ``*.safetensors``).
        tensors: name → tensor.
        metadata: optional str → str pairs stored in the file header.

    Raises:
        ConfigError: for a non-tensor value, a non-string key or non-string metadata.
    """
    data = safetensors.torch.save(_prepare_tensors(tensors), metadata=_check_metadata(metadata))
    atomic_write_bytes(path, data)


def _safetensors_error(path: str | os.PathLike[str], err: Exception) -> ConfigError:
    return ConfigError("path", str(path), f"is not a readable safetensors file ({err})")


def _check_not_dir(path: str | os.PathLike[str]) -> None:
    if Path(path).is_dir():
        raise ConfigError("path", str(path), "is a directory, not a safetensors file")


def load_tensors(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Load every tensor of a safetensors file.

    Args:
        path: the file to read.
        device: where to put the tensors.

    Returns:
        name → tensor.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ConfigError: if ``path`` is not a safetensors file.
    """
    _check_not_dir(path)
    try:
        return safetensors.torch.load_file(path, device=str(device))
    except SafetensorError as err:
        raise _safetensors_error(path, err) from err


def load_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """Read the header metadata of a safetensors file without loading any tensor.

    Args:
        path: the file to read.

    Returns:
        The str → str metadata (empty if the file has none).

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ConfigError: if ``path`` is not a safetensors file.
    """
    _check_not_dir(path)
    try:
        with safetensors.safe_open(path, framework="pt", device="cpu") as handle:
            return dict(handle.metadata() or {})
    except SafetensorError as err:
        raise _safetensors_error(path, err) from err


def load_shapes(path: str | os.PathLike[str]) -> dict[str, tuple[int, ...]]:
    """Read the name and shape of every tensor of a safetensors file from its header, without loading any.

    Args:
        path: the file to read.

    Returns:
        name → shape.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ConfigError: if ``path`` is not a safetensors file.
    """
    _check_not_dir(path)
    try:
        with safetensors.safe_open(path, framework="pt", device="cpu") as handle:
            return {name: tuple(handle.get_slice(name).get_shape()) for name in handle.keys()}  # noqa: SIM118
    except SafetensorError as err:
        raise _safetensors_error(path, err) from err


def save_checkpoint(
    path: str | os.PathLike[str],
    tensors: Mapping[str, torch.Tensor],
    state: Mapping[str, Any],
) -> None:
    """Atomically save a training checkpoint: flat tensors plus a JSON state, in one safetensors file.

    Args:
        path: destination file.
        tensors: flat name → tensor (e.g. model parameters and :func:`flatten_state_dict` output, merged).
        state: JSON-able dict (epoch, RNG seeds, the spec from :func:`flatten_state_dict`, ...); stored as
            ``json.dumps(state)`` under the metadata key :data:`CHECKPOINT_STATE_KEY`.

    Raises:
        ConfigError: for bad tensors or a ``state`` that is not a mapping.
        TypeError: naming the key path of a ``state`` value JSON cannot hold.
    """
    if not isinstance(state, Mapping):
        raise ConfigError("state", type(state).__name__, "must be a mapping")
    metadata = {_CHECKPOINT_FORMAT_KEY: _CHECKPOINT_FORMAT, CHECKPOINT_STATE_KEY: _dumps(state)}
    save_tensors(path, tensors, metadata)


def load_checkpoint(
    path: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Load a checkpoint written by :func:`save_checkpoint`.

    Args:
        path: the checkpoint file.
        device: where to put the tensors.

    Returns:
        ``(tensors, state)``.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ConfigError: if ``path`` is not an hrsnn checkpoint.
    """
    _check_not_dir(path)
    try:
        with safetensors.safe_open(path, framework="pt", device=str(device)) as handle:
            metadata = dict(handle.metadata() or {})
            if CHECKPOINT_STATE_KEY not in metadata:
                reason = f"is not an hrsnn checkpoint (no {CHECKPOINT_STATE_KEY!r} metadata)"
                raise ConfigError("path", str(path), reason)
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118 (not a dict)
    except SafetensorError as err:
        raise _safetensors_error(path, err) from err
    state = json.loads(metadata[CHECKPOINT_STATE_KEY])
    if not isinstance(state, dict):
        raise ConfigError("path", str(path), "holds a checkpoint state that is not a JSON object")
    return tensors, state


# ----------------------------------------------------------------------------------------------------------
# nested state dicts <-> flat tensors + JSON skeleton
# ----------------------------------------------------------------------------------------------------------
#
# Skeleton encoding: JSON scalars (None, bool, int, float, str) stand for themselves; lists are JSON lists;
# every other node is a one-key JSON object: {"tensor": name}, {"tuple": [...]} or
# {"dict": [[key, value], ...]} (a list of pairs keeps key order and non-string keys such as the integer
# parameter ids of optimizer state).


def _path_name(parts: list[str]) -> str:
    return ".".join(parts) if parts else "_"


class _Flattener:
    """One flattening pass: collects tensors under unique names and builds the skeleton."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.tensors: dict[str, torch.Tensor] = {}
        self.names_by_id: dict[int, str] = {}

    def tensor_name(self, tensor: torch.Tensor, parts: list[str]) -> str:
        known = self.names_by_id.get(id(tensor))
        if known is not None:  # the same tensor object twice: store once, alias again on load
            return known
        base = self.prefix + _path_name(parts)
        name, n = base, 1
        while name in self.tensors:
            name, n = f"{base}#{n}", n + 1
        self.tensors[name] = tensor
        self.names_by_id[id(tensor)] = name
        return name

    def encode(self, obj: Any, parts: list[str], where: str) -> Any:
        if obj is None or isinstance(obj, str):
            return obj if obj is None else str.__str__(obj)
        if isinstance(obj, bool):
            return bool(obj)
        if isinstance(obj, int):
            return int(obj)
        if isinstance(obj, float):
            return float(obj)
        if isinstance(obj, torch.Tensor):
            return {"tensor": self.tensor_name(obj, parts)}
        if isinstance(obj, list):
            return [self.encode(v, [*parts, str(i)], f"{where}[{i}]") for i, v in enumerate(obj)]
        if isinstance(obj, tuple):
            return {"tuple": [self.encode(v, [*parts, str(i)], f"{where}[{i}]") for i, v in enumerate(obj)]}
        if isinstance(obj, Mapping):
            pairs = []
            for key, value in obj.items():
                encoded_key = self.encode_key(key, where)
                pairs.append([encoded_key, self.encode(value, [*parts, str(key)], where + _key_repr(key))])
            return {"dict": pairs}
        raise TypeError(f"cannot flatten value of type {type(obj).__name__} at {where}")

    def encode_key(self, key: Any, where: str) -> Any:
        if key is None or isinstance(key, bool | int | float | str):
            return self.encode(key, [], where)
        if isinstance(key, tuple):
            return {"tuple": [self.encode_key(k, where) for k in key]}
        raise TypeError(f"cannot flatten dict key {key!r} ({type(key).__name__}) at {where}")


def flatten_state_dict(nested: Any, *, prefix: str = "") -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split a nested structure (e.g. ``optimizer.state_dict()``) into flat tensors and a JSON-able skeleton.

    Supported nodes: dict (str/int/float/bool/None/tuple keys, order kept), list, tuple, tensor, str, int,
    float, bool and None. :func:`unflatten_state_dict` rebuilds the structure exactly, including tuples vs
    lists and integer keys. Tensors are not copied.

    Args:
        nested: the structure to flatten.
        prefix: prepended to every tensor name (e.g. ``"optimizer."``) so several flattenings can share one
            file.

    Returns:
        ``(tensors, spec)``: dotted-path name → tensor, and a JSON-able spec to keep in checkpoint state.

    Raises:
        ConfigError: if ``prefix`` is not a string.
        TypeError: naming the key path of an unsupported value.
    """
    if not isinstance(prefix, str):
        raise ConfigError("prefix", prefix, "must be a str")
    flattener = _Flattener(prefix)
    tree = flattener.encode(nested, [], "$")
    return flattener.tensors, {"format": _FLAT_FORMAT, "tree": tree}


def _decode(node: Any, tensors: Mapping[str, torch.Tensor], where: str) -> Any:
    if node is None or isinstance(node, bool | int | str):
        return node
    if isinstance(node, float):
        return node
    if isinstance(node, list):
        return [_decode(v, tensors, f"{where}[{i}]") for i, v in enumerate(node)]
    if isinstance(node, dict) and len(node) == 1:
        ((tag, payload),) = node.items()
        if tag == "tensor" and isinstance(payload, str):
            if payload not in tensors:
                raise ConfigError("tensors", payload, f"missing: the spec needs it at {where}")
            return tensors[payload]
        if tag == "tuple" and isinstance(payload, list):
            return tuple(_decode(v, tensors, f"{where}[{i}]") for i, v in enumerate(payload))
        if tag == "dict" and isinstance(payload, list):
            out: dict[Any, Any] = {}
            for pair in payload:
                if not (isinstance(pair, list) and len(pair) == 2):
                    raise ConfigError("spec", pair, f"malformed dict entry at {where}")
                key = _decode(pair[0], tensors, where)
                out[key] = _decode(pair[1], tensors, where + _key_repr(key))
            return out
    raise ConfigError("spec", node, f"malformed node at {where}")


def unflatten_state_dict(tensors: Mapping[str, torch.Tensor], spec: Mapping[str, Any]) -> Any:
    """Rebuild the structure flattened by :func:`flatten_state_dict`.

    Args:
        tensors: name → tensor, e.g. from :func:`load_checkpoint` (extra names are ignored).
        spec: the spec returned by :func:`flatten_state_dict` (possibly after a JSON round trip).

    Returns:
        The nested structure, with the given tensors in place.

    Raises:
        ConfigError: if the spec is malformed or names a tensor missing from ``tensors``.
    """
    if not isinstance(spec, Mapping) or spec.get("format") != _FLAT_FORMAT or "tree" not in spec:
        shown = dict(spec) if isinstance(spec, Mapping) else spec
        raise ConfigError("spec", shown, f"is not a {_FLAT_FORMAT} spec")
    return _decode(spec["tree"], tensors, "$")


_C = TypeVar("_C")


def read_model_config(
    path: str | os.PathLike[str],
    fmt: str,
    parse: Callable[[Mapping[str, Any]], _C],
    tensor_shapes: Callable[[_C], Mapping[str, tuple[int, ...]]],
    *,
    what: str = "an hrsnn model",
) -> _C:
    """The config stored in a model file of format ``fmt``, checked against the file's tensors before any model is
    built: names and shapes come from the safetensors header, so a crafted config cannot make the caller allocate.

    Args:
        path: the model file.
        fmt: the format tag its metadata must hold.
        parse: config from the stored JSON object (raises ConfigError/TypeError for a bad one).
        tensor_shapes: the state-dict names and shapes a config implies.
        what: how to name the expected kind of file in messages.

    Raises:
        DataNotFoundError: when ``path`` does not exist.
        DataFormatError: naming the file when it is not of ``fmt``, its config is unreadable or invalid, or its
            tensors do not match the config (missing, unexpected or of another shape).
    """
    if not Path(path).exists():
        raise DataNotFoundError(f"model file not found: {path}")
    metadata = load_metadata(path)
    if metadata.get("format") != fmt:
        raise DataFormatError("model file", str(path), f"is not {what} (format {metadata.get('format')!r})")
    if "config" not in metadata:
        raise DataFormatError("model file", str(path), "has no stored config")
    try:
        config = parse(json.loads(metadata["config"]))
    except json.JSONDecodeError as exc:
        raise DataFormatError("model file", str(path), f"stored config is not valid JSON ({exc})") from None
    except (ConfigError, TypeError) as exc:
        raise DataFormatError("model file", str(path), f"stored config is invalid ({exc})") from None
    expected, found = tensor_shapes(config), load_shapes(path)
    problems = []
    if missing := sorted(expected.keys() - found.keys()):
        problems.append(f"missing tensor(s) {missing}")
    if unexpected := sorted(found.keys() - expected.keys()):
        problems.append(f"unexpected tensor(s) {unexpected}")
    problems += [
        f"{name} has shape {found[name]}, the config needs {shape}"
        for name, shape in expected.items()
        if name in found and found[name] != shape
    ]
    if problems:
        raise DataFormatError("model file", str(path), f"does not match its stored config: {'; '.join(problems)}")
    return config
