"""Lazy imports of the graph / optimisation packages, with a one-line error when one is missing."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from hrsnn.errors import MissingDependencyError


def require(module: str, field: str, value: Any, *, extra: str | None = None) -> ModuleType:
    """Import ``module`` (imported only when an option needs it: these packages are slow to import).

    Args:
        module: import name, also its PyPI name (``"igraph"``, ``"networkx"``, ``"optuna"``).
        field, value: the option that needs it, named in the error (e.g. ``"betweenness_backend"``, ``"igraph"``).
        extra: the hrsnn extra that provides it; None for a default dependency.

    Raises:
        MissingDependencyError: the package is not installed (a ConfigError: the CLI prints one line, exit 2).
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependencyError(field, value, module, extra) from None
