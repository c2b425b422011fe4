"""The result tables of one dataset, as plain values (no I/O).

:class:`EnsembleResult` holds one prediction-merging scaling table (``scaling.csv`` of
:func:`ttsctr.merging.scaling.scaling_table`) with what the claims need to know about the
ensemble; :class:`DatasetResults` gathers a dataset's ensembles and baseline comparison tables
(``table.csv`` of ``param_scaling``, ``width_scaling``, ``model_merging``, ``orthogonality``,
``training_free``, ``efficiency``). A comparison that was not run is simply absent.

Both classes compare by identity (``eq=False``): their fields hold DataFrames, whose ``==`` is
element-wise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import pandas as pd

from ttsctr.errors import ConfigError

__all__ = ["LAYOUTS", "EnsembleResult", "DatasetResults"]

LAYOUTS = ("homogeneous", "heterogeneous")


@dataclass(frozen=True, eq=False)
class EnsembleResult:
    """One ensemble's scaling table.

    ``layout``: ``"homogeneous"`` (one backbone) or ``"heterogeneous"`` (one member of each
    backbone per unit); ``group_size``: members trained together (1 = independently trained);
    ``baseline``: for grouped ensembles, the independently trained ensemble they are tested
    against; ``table``: the scaling table, one row per scale.
    """

    name: str
    layout: str
    backbones: tuple[str, ...]
    group_size: int
    baseline: str | None
    table: pd.DataFrame

    def __post_init__(self) -> None:
        where = f"ensemble {self.name!r}"
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"ensemble name must be a non-empty string, got {self.name!r}")
        if self.layout not in LAYOUTS:
            raise ConfigError(f"{where}: layout must be one of {LAYOUTS}, got {self.layout!r}")
        backbones = tuple(self.backbones) if not isinstance(self.backbones, str) else (self.backbones,)
        if not backbones or not all(isinstance(b, str) and b for b in backbones):
            raise ConfigError(f"{where}: backbones must be a non-empty sequence of names, got {self.backbones!r}")
        if self.layout == "homogeneous" and len(backbones) != 1:
            raise ConfigError(f"{where}: a homogeneous ensemble has one backbone, got {list(backbones)}")
        object.__setattr__(self, "backbones", backbones)
        if isinstance(self.group_size, bool) or not isinstance(self.group_size, int) or self.group_size < 1:
            raise ConfigError(f"{where}: group_size must be a whole number >= 1, got {self.group_size!r}")
        if self.baseline is not None and (not isinstance(self.baseline, str) or not self.baseline):
            raise ConfigError(f"{where}: baseline must be an ensemble name or None, got {self.baseline!r}")
        if not isinstance(self.table, pd.DataFrame):
            raise ConfigError(f"{where}: table must be a DataFrame, got {type(self.table).__name__}")


@dataclass(frozen=True, eq=False)
class DatasetResults:
    """A dataset's ensembles (name -> :class:`EnsembleResult`, may be empty) and baseline
    comparison tables (comparison name -> ``table.csv``; comparisons not run are absent)."""

    dataset: str
    ensembles: Mapping[str, EnsembleResult] = field(default_factory=dict)
    baselines: Mapping[str, pd.DataFrame] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.dataset, str) or not self.dataset:
            raise ConfigError(f"dataset must be a non-empty string, got {self.dataset!r}")
        for key, e in self.ensembles.items():
            if not isinstance(e, EnsembleResult):
                raise ConfigError(f"dataset {self.dataset!r}: ensemble {key!r} must be an EnsembleResult, "
                                  f"got {type(e).__name__}")
            if e.name != key:
                raise ConfigError(f"dataset {self.dataset!r}: ensemble stored under {key!r} is named {e.name!r}")
        for key, t in self.baselines.items():
            if not isinstance(t, pd.DataFrame):
                raise ConfigError(f"dataset {self.dataset!r}: comparison {key!r} must be a DataFrame, "
                                  f"got {type(t).__name__}")
