"""Lazy imports of the optional graph / optimisation packages, with a clear error when one is missing."""

from __future__ import annotations

import importlib
from types import ModuleType


def require(module: str, package: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise an ImportError saying which package to install and why.

    Args:
        module: import name (e.g. ``"igraph"``).
        package: distribution name on PyPI (e.g. ``"igraph"``).
        purpose: what needs it, e.g. ``"betweenness_backend='igraph'"``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(
            f"{purpose} needs the optional package {package!r}: install it with `pip install {package}` "
            "(or the hrsnn extra that provides it), or choose an alternative that needs no extra package"
        ) from err
