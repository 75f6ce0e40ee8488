"""Typed configuration: frozen dataclasses built from plain dicts (TOML/YAML/JSON) with errors naming the field.

``from_dict(cls, data, field)`` walks the dataclass's type hints: nested dataclasses, tuples, optionals, literals,
numbers, booleans, strings and free-form mappings. Unknown keys and wrong types raise
:class:`hrsnn.errors.ConfigError` with the dotted path of the field (``"model.layers[0].size"``).
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

import yaml

from hrsnn.errors import ConfigError

T = TypeVar("T")


def _convert(tp: Any, value: Any, field: str) -> Any:
    origin = get_origin(tp)
    args = get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _convert(arg, value, field)
            except ConfigError as exc:
                errors.append(exc.reason)
        raise ConfigError(field, value, " or ".join(errors))
    if origin is Literal:
        if value not in args:
            raise ConfigError(field, value, f"must be one of {list(args)}")
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        return from_dict(tp, value, field)  # type: ignore[arg-type]
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(field, value, "must be a list")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{field}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise ConfigError(field, value, f"must have {len(args)} entries")
        return tuple(_convert(a, v, f"{field}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True)))
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise ConfigError(field, value, "must be a table/mapping")
        return types.MappingProxyType(dict(value))
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(field, value, "must be true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(field, value, "must be an integer")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(field, value, "must be a number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(field, value, "must be a string")
        return value
    raise TypeError(f"unsupported config type {tp!r} for field {field}")


def from_dict(cls: type[T], data: Any, field: str) -> T:
    """Build dataclass ``cls`` from a mapping, checking every key and type; errors name ``field.key``."""
    if not isinstance(data, Mapping):
        raise ConfigError(field, data, "must be a table/mapping")
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{field}.{unknown[0]}", data[unknown[0]], f"unknown field; known: {sorted(fields)}")
    kwargs = {k: _convert(hints[k], v, f"{field}.{k}") for k, v in data.items()}
    missing = [
        name
        for name, f in fields.items()
        if name not in data and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(f"{field}.{missing[0]}", None, "is required and missing")
    return cls(**kwargs)


def to_dict(obj: Any) -> Any:
    """Plain JSON-able form of a config dataclass (tuples become lists, mappings dicts)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init}
    if isinstance(obj, Mapping):
        return {str(k): to_dict(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_dict(v) for v in obj]
    return obj


_LOADERS: Mapping[str, Callable[[str], Any]] = types.MappingProxyType(
    {".toml": tomllib.loads, ".yaml": yaml.safe_load, ".yml": yaml.safe_load, ".json": json.loads}
)


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML, YAML or JSON file into a dict (chosen by suffix); errors name the file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError("config", str(p), "file not found")
    loader = _LOADERS.get(p.suffix)
    if loader is None:
        raise ConfigError("config", str(p), f"suffix must be one of {sorted(_LOADERS)}")
    try:
        data = loader(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, yaml.YAMLError, json.JSONDecodeError) as exc:
        raise ConfigError("config", str(p), f"cannot be parsed: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError("config", str(p), "top level must be a table/mapping")
    return data


def deep_update(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Recursively merge ``override`` into a copy of ``base`` (mappings merge, everything else replaces)."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_update(out[key], value)
        else:
            out[key] = value
    return out


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``a.b.c=value`` pairs (value parsed as YAML: numbers, booleans, lists) → nested dict."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError("--set", item, "must look like section.field=value")
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = yaml.safe_load(raw)
    return out
