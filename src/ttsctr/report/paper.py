"""The paper's published numbers, for reports that set them beside this project's results.

``paper_results.yaml`` (next to this module) holds the full-data AUC and Logloss of Tables 1, 2,
4, 5 and 6 of Lyu et al., "Exploring Test-time Scaling via Prediction Merging on Large-Scale
Recommendation" (SIGIR 2026), on Avazu, Criteo and KDD12. The numbers are copied verbatim from the
paper's tables, not recomputed and not measured here; cells that look garbled or inconsistent in
the source keep their printed values and carry a ``note`` saying why. Anything that shows them
must label them as the paper's data, not ours.

Table names: ``homogeneous`` (Table 1), ``heterogeneous`` (Table 2), ``width_scaling`` (Table 4),
``orthogonality`` (Table 5), ``model_merging`` (Table 6).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from ttsctr.errors import ConfigError

__all__ = ["PaperResults", "TABLES", "DATASETS", "COLUMNS", "DEFAULT_PATH", "load_paper_results",
           "paper_counterpart"]

DEFAULT_PATH = Path(__file__).with_name("paper_results.yaml")
TABLES = ("homogeneous", "heterogeneous", "width_scaling", "orthogonality", "model_merging")
DATASETS = ("avazu", "criteo", "kdd12")
COLUMNS = ("table", "dataset", "model", "method", "scale", "auc", "logloss", "note")
_REQUIRED = ("table", "dataset", "model", "method", "scale", "auc", "logloss")
_AUC_RANGE = (0.4, 1.0)


@dataclass(frozen=True)
class PaperResults:
    """The paper's numbers: where they come from and one row per (table, dataset, model, method, scale)."""

    citation: str
    source: str
    note: str
    records: pd.DataFrame


def _metric(value: Any, path: Path, index: int, field: str) -> float | None:
    where = f"{path}: record {index}, field {field!r}"
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where}: found {value!r}; expected a number or null")
    value = float(value)
    if not math.isfinite(value):
        raise ConfigError(f"{where}: found {value!r}; expected a finite number")
    if field == "auc" and not _AUC_RANGE[0] <= value <= _AUC_RANGE[1]:
        raise ConfigError(f"{where}: found {value!r}; expected an AUC in [{_AUC_RANGE[0]}, {_AUC_RANGE[1]}]")
    if field == "logloss" and value < 0:
        raise ConfigError(f"{where}: found {value!r}; expected a non-negative logloss")
    return value


def _record(raw: Any, path: Path, index: int) -> dict[str, Any]:
    where = f"{path}: record {index}"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: found {raw!r}; expected a mapping with keys {', '.join(_REQUIRED)}")
    for key in _REQUIRED:
        if key not in raw:
            raise ConfigError(f"{where}, field {key!r}: missing; expected keys {', '.join(_REQUIRED)}")
    unknown = sorted(set(raw) - set(COLUMNS))
    if unknown:
        raise ConfigError(f"{where}, field {unknown[0]!r}: unknown key; expected only {', '.join(COLUMNS)}")
    if raw["table"] not in TABLES:
        raise ConfigError(f"{where}, field 'table': found {raw['table']!r}; expected one of {', '.join(TABLES)}")
    if raw["dataset"] not in DATASETS:
        raise ConfigError(f"{where}, field 'dataset': found {raw['dataset']!r}; expected one of {', '.join(DATASETS)}")
    for key in ("model", "method"):
        if not isinstance(raw[key], str) or not raw[key]:
            raise ConfigError(f"{where}, field {key!r}: found {raw[key]!r}; expected a non-empty string")
    scale = raw["scale"]
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ConfigError(f"{where}, field 'scale': found {scale!r}; expected a positive integer")
    note = raw.get("note")
    if note is not None and not isinstance(note, str):
        raise ConfigError(f"{where}, field 'note': found {note!r}; expected a string")
    return {
        "table": raw["table"], "dataset": raw["dataset"], "model": raw["model"], "method": raw["method"],
        "scale": scale,
        "auc": _metric(raw["auc"], path, index, "auc"),
        "logloss": _metric(raw["logloss"], path, index, "logloss"),
        "note": note,
    }


def load_paper_results(path: str | Path | None = None) -> PaperResults:
    """Read and validate the paper's numbers (default: the ``paper_results.yaml`` shipped with ttsctr).

    Raises :class:`~ttsctr.errors.ConfigError` naming the file, and for a bad record its index
    (0-based, in file order) and field.
    """
    path = Path(path) if path is not None else DEFAULT_PATH
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the paper's results ({exc})") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: found {type(data).__name__}; expected a mapping with citation, source, note, records")
    for key in ("citation", "source", "note"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise ConfigError(f"{path}, field {key!r}: found {data.get(key)!r}; expected a non-empty string")
    raw_records = data.get("records")
    if not isinstance(raw_records, list) or not raw_records:
        raise ConfigError(f"{path}, field 'records': found {raw_records!r}; expected a non-empty list")
    rows = [_record(raw, path, i) for i, raw in enumerate(raw_records)]
    records = pd.DataFrame(rows, columns=list(COLUMNS))
    records["scale"] = records["scale"].astype("int64")
    records["auc"] = records["auc"].astype("float64")
    records["logloss"] = records["logloss"].astype("float64")
    return PaperResults(citation=data["citation"], source=data["source"], note=data["note"], records=records)


def paper_counterpart(results: PaperResults, table: str, model: str | None = None,
                      method: str | None = None) -> pd.DataFrame:
    """The paper's rows of ``table`` (all three datasets), optionally for one model and/or method."""
    if table not in TABLES:
        raise ConfigError(f"unknown paper table {table!r}; expected one of {', '.join(TABLES)}")
    df = results.records
    mask = df["table"] == table
    if model is not None:
        mask &= df["model"] == model
    if method is not None:
        mask &= df["method"] == method
    return df[mask].reset_index(drop=True)
