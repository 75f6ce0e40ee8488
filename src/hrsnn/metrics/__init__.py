"""Efficiency accounting: operation counts of RSNNs from their recorded activity, of classical RNN baselines, and
energy estimates (NeuroBench's metric names where one exists).

- :func:`measure_efficiency` runs a model over a data set and returns an :class:`EfficiencyReport` (per projection:
  dense and effective synaptic ACs/MACs; per population: firing rate, activation sparsity, state-update
  operations; connection sparsity, parameter count, footprint); :func:`count_from_spikes` counts given activity.
  Definitions: :mod:`hrsnn.metrics.counting`.
- :func:`classical_macs` counts an Elman RNN, GRU or LSTM (:mod:`hrsnn.metrics.classical`).
- :func:`energy` prices counts with :class:`EnergyConstants` (:data:`FLOAT32_45NM`, :data:`INT32_45NM` or
  user-given); :func:`compare` gives the energy ratio of a baseline over an SRNN (:mod:`hrsnn.metrics.energy`).
- :func:`format_table` renders a report as text.
"""

from hrsnn.metrics.classical import CLASSICAL_CELLS, CellCost, ClassicalLayerOps, ClassicalOps, classical_macs
from hrsnn.metrics.counting import (
    NEURON_UPDATE_COSTS,
    Data,
    EfficiencyReport,
    NeuronUpdateCost,
    PopulationCounts,
    ProjectionCounts,
    count_from_spikes,
    measure_efficiency,
)
from hrsnn.metrics.energy import (
    DEFAULT_ENERGY_SETS,
    ENERGY_CONSTANTS,
    FLOAT32_45NM,
    INT32_45NM,
    Comparison,
    Energy,
    EnergyConstants,
    OperationCounts,
    compare,
    energy,
    energy_constants,
)
from hrsnn.metrics.tables import format_table

__all__ = [
    "CLASSICAL_CELLS",
    "DEFAULT_ENERGY_SETS",
    "ENERGY_CONSTANTS",
    "FLOAT32_45NM",
    "INT32_45NM",
    "NEURON_UPDATE_COSTS",
    "CellCost",
    "ClassicalLayerOps",
    "ClassicalOps",
    "Comparison",
    "Data",
    "EfficiencyReport",
    "Energy",
    "EnergyConstants",
    "NeuronUpdateCost",
    "OperationCounts",
    "PopulationCounts",
    "ProjectionCounts",
    "classical_macs",
    "compare",
    "count_from_spikes",
    "energy",
    "energy_constants",
    "format_table",
    "measure_efficiency",
]
