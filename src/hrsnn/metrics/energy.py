r"""Energy estimates from operation counts: :math:`E = E_{AC}\,\#AC + E_{MAC}\,\#MAC`.

Named constant sets (Horowitz, "Computing's energy problem", ISSCC 2014, 45 nm; E_AC = one addition, E_MAC = one
multiplication plus one addition):

===============  =========  ==========  ======================================
name             E_AC (pJ)  E_MAC (pJ)  from
===============  =========  ==========  ======================================
``float32_45nm`` 0.9        4.6         32-bit float: add 0.9, multiply 3.7
``int32_45nm``   0.1        3.2         32-bit integer: add 0.1, multiply 3.1
===============  =========  ==========  ======================================

Only arithmetic is priced: memory accesses, nonlinearities and control are not (they are reported separately where
counted). Which set the SRNN papers used is not known; reports therefore give both.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol

from hrsnn._validate import check_real
from hrsnn.errors import ConfigError

__all__ = [
    "DEFAULT_ENERGY_SETS",
    "ENERGY_CONSTANTS",
    "FLOAT32_45NM",
    "INT32_45NM",
    "Comparison",
    "Energy",
    "EnergyConstants",
    "OperationCounts",
    "compare",
    "energy",
    "energy_constants",
]


@dataclass(frozen=True)
class EnergyConstants:
    """Energy per operation.

    Attributes:
        name: a short label (non-empty).
        e_ac_pj: energy of one accumulate (an addition), in pJ; finite and > 0.
        e_mac_pj: energy of one multiply-accumulate, in pJ; finite and > 0.
        source: where the numbers come from.

    Raises:
        ConfigError: naming the bad field.
    """

    name: str
    e_ac_pj: float
    e_mac_pj: float
    source: str = "user-given"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError("energy.name", self.name, "must be a non-empty string")
        if not isinstance(self.source, str):
            raise ConfigError("energy.source", self.source, "must be a string")
        for field in ("e_ac_pj", "e_mac_pj"):
            value = check_real(f"energy.{field}", getattr(self, field), low=0.0, strict=True)
            object.__setattr__(self, field, value)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        return {"name": self.name, "e_ac_pj": self.e_ac_pj, "e_mac_pj": self.e_mac_pj, "source": self.source}


FLOAT32_45NM = EnergyConstants(
    "float32_45nm", 0.9, 4.6, "Horowitz, ISSCC 2014, 45 nm, 32-bit float: add 0.9 pJ, multiply 3.7 pJ"
)
INT32_45NM = EnergyConstants(
    "int32_45nm", 0.1, 3.2, "Horowitz, ISSCC 2014, 45 nm, 32-bit integer: add 0.1 pJ, multiply 3.1 pJ"
)

ENERGY_CONSTANTS: Mapping[str, EnergyConstants] = MappingProxyType({c.name: c for c in (FLOAT32_45NM, INT32_45NM)})
"""Read-only map from name to the named constant sets."""

DEFAULT_ENERGY_SETS: tuple[EnergyConstants, ...] = (FLOAT32_45NM, INT32_45NM)
"""The sets reports show by default: both 45 nm sets."""


def energy_constants(spec: str | EnergyConstants | Mapping[str, Any]) -> EnergyConstants:
    """Resolve constants from a name of :data:`ENERGY_CONSTANTS`, an :class:`EnergyConstants`, or a mapping with
    keys ``name``, ``e_ac_pj``, ``e_mac_pj`` and optionally ``source`` (e.g. a config table).

    Raises:
        ConfigError: naming ``energy`` (unknown name, wrong type, unknown or missing keys) or the bad field.
    """
    if isinstance(spec, EnergyConstants):
        return spec
    if isinstance(spec, str):
        if spec not in ENERGY_CONSTANTS:
            raise ConfigError("energy", spec, f"unknown constant set; choose one of {sorted(ENERGY_CONSTANTS)}")
        return ENERGY_CONSTANTS[spec]
    if not isinstance(spec, Mapping):
        raise ConfigError("energy", type(spec).__name__, "must be a set name, EnergyConstants or a mapping")
    allowed = {"name", "e_ac_pj", "e_mac_pj", "source"}
    if unknown := sorted(set(spec) - allowed):
        raise ConfigError("energy", unknown[0], f"is not a key of a constant set; use {sorted(allowed)}")
    if missing := sorted({"name", "e_ac_pj", "e_mac_pj"} - set(spec)):
        raise ConfigError("energy", dict(spec), f"misses the key(s) {missing}")
    return EnergyConstants(**spec)


class OperationCounts(Protocol):
    """Anything that can be priced: per-sample operation counts over ``n_steps`` steps."""

    @property
    def n_steps(self) -> int:
        """Sequence length the counts cover."""
        ...

    def counts(self, dense: bool = False) -> tuple[float, float]:
        """``(ACs, MACs)`` per sample; ``dense`` for the dense (sparsity-blind) counts."""
        ...


@dataclass(frozen=True)
class Energy:
    """Energy of ``acs`` accumulates and ``macs`` multiply-accumulates per sample under ``constants``."""

    constants: EnergyConstants
    acs: float
    macs: float
    n_steps: int

    @property
    def pj(self) -> float:
        """Energy per sample in pJ: ``e_ac_pj · acs + e_mac_pj · macs``."""
        return self.constants.e_ac_pj * self.acs + self.constants.e_mac_pj * self.macs

    @property
    def pj_per_step(self) -> float:
        """Energy per sample and time step in pJ."""
        return self.pj / self.n_steps

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        return {
            "constants": self.constants.name,
            "acs": self.acs,
            "macs": self.macs,
            "pj": self.pj,
            "pj_per_step": self.pj_per_step,
        }


def energy(counts: OperationCounts, constants: EnergyConstants = FLOAT32_45NM, *, dense: bool = False) -> Energy:
    """Energy per sample of ``counts`` (an :class:`~hrsnn.metrics.EfficiencyReport` or
    :class:`~hrsnn.metrics.ClassicalOps`); ``dense`` prices the dense counts instead of the effective ones."""
    if not isinstance(constants, EnergyConstants):
        raise ConfigError("constants", type(constants).__name__, "must be an EnergyConstants")
    acs, macs = counts.counts(dense)
    return Energy(constants, acs, macs, counts.n_steps)


@dataclass(frozen=True)
class Comparison:
    """Energy of an SRNN (effective counts) and of a classical baseline on sequences of the same length."""

    srnn: Energy
    classical: Energy

    @property
    def ratio(self) -> float:
        """E_classical / E_SRNN (how many times more energy the baseline needs; inf when the SRNN needs none)."""
        if self.srnn.pj == 0:
            return math.inf
        return self.classical.pj / self.srnn.pj

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (an infinite ratio becomes None)."""
        ratio = self.ratio
        return {
            "constants": self.srnn.constants.name,
            "srnn": self.srnn.to_dict(),
            "classical": self.classical.to_dict(),
            "ratio": ratio if math.isfinite(ratio) else None,
        }


def compare(srnn: OperationCounts, classical: OperationCounts, constants: EnergyConstants = FLOAT32_45NM) -> Comparison:
    """Energy ratio of a classical baseline over an SRNN (effective counts), per sample, under ``constants``.

    Raises:
        ConfigError: naming ``classical.n_steps`` when the two cover sequences of different lengths.
    """
    if classical.n_steps != srnn.n_steps:
        raise ConfigError(
            "classical.n_steps", classical.n_steps, f"must equal the SRNN report's sequence length {srnn.n_steps}"
        )
    return Comparison(energy(srnn, constants), energy(classical, constants))
