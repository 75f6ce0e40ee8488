"""Compiled CPU kernels for the fused recurrent layers, built at first use with the system C compiler.

``kernels.c`` (with ``kernels_body.h``) is plain C with OpenMP and no Python or torch headers. The first
:func:`kernels` call of a process compiles it (``cc -O3 -march=native -fopenmp -shared``, about a second) into a
per-user cache folder (``$HRSNN_NATIVE_CACHE``, else ``$XDG_CACHE_HOME/hrsnn/native``, else
``~/.cache/hrsnn/native``) under a name keyed by the sources, the compiler, its version and the CPU, and loads it
with :mod:`ctypes`; later processes load the cached library. Compilation writes a temporary file next to the
target and renames it into place, so concurrent processes never load a partial library. The flags fall back to
plainer sets (no ``-march=native``, then no OpenMP: one thread) where a compiler rejects them; a failed set leaves a
``.failed`` note in the cache folder so that later processes skip it (delete the folder to retry).

Without a working compiler (or when the build or the load fails) :func:`kernels` returns None after logging one
warning, and :mod:`hrsnn.fused` runs its PyTorch path; ``HRSNN_NATIVE=0`` turns the compiled kernels off.
The C compiler is ``$CC`` when set, else ``cc``.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported when the library is loaded, so that building needs no torch
    import torch
    from torch import Tensor

__all__ = ["ENV_CACHE", "ENV_SWITCH", "Kernels", "build", "kernels"]

ENV_SWITCH = "HRSNN_NATIVE"
"""Set to ``0`` to turn the compiled kernels off (the PyTorch path runs)."""

ENV_CACHE = "HRSNN_NATIVE_CACHE"
"""Folder for the compiled library (default ``$XDG_CACHE_HOME/hrsnn/native`` or ``~/.cache/hrsnn/native``)."""

ABI = 3
"""The calling convention the loader expects (``hrsnn_abi()`` of the library)."""

_SOURCES = ("kernels.c", "kernels_body.h")
_FLAG_SETS = (
    ("-O3", "-march=native", "-fopenmp"),
    ("-O3", "-fopenmp"),  # compilers without -march=native
    ("-O3",),  # compilers without OpenMP: one thread
)
_COMMON_FLAGS = ("-shared", "-fPIC", "-std=c99")
_logger = logging.getLogger(__name__)

_I64, _PTR, _DBL, _INT = ctypes.c_int64, ctypes.c_void_p, ctypes.c_double, ctypes.c_int
_SIGNATURES: dict[str, tuple[type | None, list[type]]] = {
    "event_matmul": (_INT, [_I64, _I64, *[_PTR] * 7, _INT]),
    "alif_forward_loop": (
        _I64,
        [*[_I64] * 4, _PTR, _PTR, _INT, _I64, _INT, _PTR, _INT, *[_PTR] * 8, _DBL, _DBL, _DBL, _INT, _INT],
    ),
    "csr_matmul_t": (None, [_I64, _I64, _PTR, _I64, _I64, *[_PTR] * 6, _INT]),
    "alif_backward_loop": (
        _INT,
        [*[_I64] * 4, _PTR, _INT, _INT, *[_PTR] * 11, *[_DBL] * 4, _PTR, _I64, _I64, *[_PTR] * 5, _I64, _INT],
    ),
    "csr_weight_grad": (_INT, [_I64, _I64, *[_PTR] * 8, _INT]),
    "csr_tile": (None, [_I64, _I64, *[_PTR] * 7]),
    "csr_transpose": (None, [_I64, *[_PTR] * 8, _INT]),
    "event_linear": (None, [_I64, _I64, _I64, *[_PTR] * 4, _INT]),
    "event_linear_grad": (_INT, [_I64, _I64, _I64, *[_PTR] * 3, _INT]),
    "packed_size": (_I64, [_I64, _I64]),
    "pack_panels": (None, [_I64, _I64, _PTR, _I64, _I64, _PTR, _INT]),
    "panel_matmul": (None, [_I64, _I64, _I64, _PTR, _I64, _PTR, _PTR, _PTR, _INT]),
}


class NativeBuildError(RuntimeError):
    """The C sources could not be compiled or the library could not be loaded."""


class Kernels:
    """The loaded library: per dtype (float32, float64) the functions of ``kernels.c`` (see its comments)."""

    def __init__(self, lib: ctypes.CDLL, path: Path) -> None:
        import torch

        self.path = path
        self._dtypes = (torch.float32, torch.float64)
        self._functions: dict[tuple[str, torch.dtype], ctypes._CFuncPtr] = {}
        for name, (restype, argtypes) in _SIGNATURES.items():
            for dtype, suffix in ((torch.float32, "f32"), (torch.float64, "f64")):
                fn = getattr(lib, f"{name}_{suffix}")
                fn.restype, fn.argtypes = restype, argtypes
                self._functions[(name, dtype)] = fn

    def supports(self, *tensors: Tensor) -> bool:
        """Whether the kernels take these tensors: CPU, one dtype among float32 and float64, contiguous."""
        dtype = tensors[0].dtype
        return dtype in self._dtypes and all(
            t.device.type == "cpu" and t.dtype == dtype and t.is_contiguous() for t in tensors
        )

    def function(self, name: str, dtype: torch.dtype) -> ctypes._CFuncPtr:
        """The kernel ``name`` for ``dtype`` (float32 or float64)."""
        return self._functions[(name, dtype)]


def _cache_dir() -> Path:
    if os.environ.get(ENV_CACHE):
        return Path(os.environ[ENV_CACHE])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "hrsnn" / "native"


def _cpu_signature() -> str:
    """What -march=native depends on: the machine and, on Linux, the CPU's model and feature flags."""
    parts = [platform.machine(), platform.system()]
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(("flags", "model name", "Features", "CPU part")):
                    parts.append(line.strip())
                if len(parts) > 6:
                    break
    except OSError:
        pass
    return "\n".join(parts)


def _compiler() -> str:
    name = os.environ.get("CC") or "cc"
    path = shutil.which(name)
    if path is None:
        raise NativeBuildError(f"no C compiler: {name!r} is not on PATH (set CC)")
    return path


def _run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)


def build(cache: Path | None = None) -> Path:
    """Compile the kernels into ``cache`` (default: the per-user cache folder) unless already there; return the
    library's path. Safe when several processes build at once (temporary file, atomic rename).

    Raises:
        NativeBuildError: no compiler, or every flag set failed to compile.
    """
    cache = _cache_dir() if cache is None else cache
    compiler = _compiler()
    here = Path(__file__).parent
    sources = b"".join((here / name).read_bytes() for name in _SOURCES)
    version = _run([compiler, "--version"]).stdout
    errors = []
    for flags in _FLAG_SETS:
        key = hashlib.sha256(
            b"\0".join(s.encode() for s in (compiler, version, _cpu_signature(), *flags, *_COMMON_FLAGS))
            + b"\0"
            + sources
        ).hexdigest()[:20]
        target = cache / f"hrsnn_kernels_{key}.so"
        failed = target.with_suffix(".failed")
        if target.exists():
            return target
        if failed.exists():
            errors.append(f"{' '.join(flags)}: failed before (see {failed})")
            continue
        cache.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=target.stem + ".", suffix=".tmp.so", dir=cache)
        os.close(fd)
        try:
            done = _run([compiler, *flags, *_COMMON_FLAGS, "-o", tmp, str(here / "kernels.c")])
            if done.returncode == 0:
                os.replace(tmp, target)
                return target
            errors.append(f"{' '.join(flags)}: {done.stderr.strip()[-500:]}")
            failed.write_text(done.stderr, encoding="utf-8")
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    raise NativeBuildError("compilation failed: " + " | ".join(errors))


@functools.cache
def _load() -> Kernels | None:
    try:
        path = build()
        lib = ctypes.CDLL(str(path))
        lib.hrsnn_abi.restype = ctypes.c_int
        if lib.hrsnn_abi() != ABI:
            raise NativeBuildError(f"{path} has calling convention {lib.hrsnn_abi()}, expected {ABI}")
        return Kernels(lib, path)
    except (OSError, subprocess.SubprocessError, NativeBuildError, AttributeError) as e:
        _logger.warning(
            "hrsnn: compiled kernels unavailable (%s); using the PyTorch path (set %s=0 to skip this attempt)",
            e,
            ENV_SWITCH,
        )
        return None


def kernels() -> Kernels | None:
    """The compiled kernels, built and loaded at the first call; None when ``HRSNN_NATIVE=0`` or unavailable."""
    if os.environ.get(ENV_SWITCH, "1").strip() in ("0", "false", "no", "off"):
        return None
    return _load()
