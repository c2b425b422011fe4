"""Write ``data/07_model_output/<dataset>/<ensemble>/<group>/<split>.parquet``.

Columns: ``row_index`` (row position in the encoded split), ``label``, per member
``<member>_logit`` and ``<member>_prob`` (member = ``m<index>_<backbone>_s<seed>``), and
``group_prob``, the group's merged prediction (Eq. 11). Files are written atomically and reused
when the group's configuration hash and the data version have not changed (the manifest is
written last and records both). Predictions are made only when the trained group, the run and
the published folder agree on the data version, checked before and after the splits are read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ttsctr.data.io import atomic_file, load_split
from ttsctr.data.version import require_data_version, require_same_version
from ttsctr.experiment import EnsemblePlan, GroupPlan
from ttsctr.training import load_group, predict_logits

PREDICTION_SPLITS = ("validation", "test")


def member_column(member_index: int, member: dict[str, Any]) -> str:
    return f"m{member_index:03d}_{member['backbone']}_s{member['seed']}"


def predictions_table(logits: np.ndarray, labels: np.ndarray, names: list[str]) -> pa.Table:
    probs = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    columns: dict[str, Any] = {
        "row_index": np.arange(len(labels), dtype=np.int64),
        "label": labels.astype(np.int8),
    }
    for j, name in enumerate(names):
        columns[f"{name}_logit"] = logits[:, j].astype(np.float32)
        columns[f"{name}_prob"] = probs[:, j].astype(np.float32)
    columns["group_prob"] = probs.mean(axis=1)
    return pa.table(columns)


def predict_group(
    model_input_summary: dict[str, Any], trained: dict[str, Any], paths: dict[str, Any], *,
    group: GroupPlan, ensemble: EnsemblePlan,
) -> dict[str, Any]:
    dataset = model_input_summary["dataset"]
    data_version = model_input_summary["data_version"]
    model_input = model_input_summary["model_input_dir"]
    what = f"predicting {ensemble.name}/{group.name}"
    require_same_version(trained.get("data_version"), data_version, what=what, source="the trained group")
    require_data_version(model_input, data_version, what=what)
    out = Path(paths["model_output"]) / dataset / ensemble.name / group.name
    manifest_path = out / "manifest.json"
    manifest = _read_manifest(manifest_path)
    if manifest is not None:
        same = manifest.get("config_hash") == trained["config_hash"] and manifest.get("data_version") == data_version
        if same and all(Path(f).exists() for f in manifest["files"].values()):
            return manifest
    model, _, _ = load_group(trained["checkpoint"])
    require_same_version(model.data_version, data_version, what=what, source=trained["checkpoint"])
    names = [member_column(i, m) for i, m in zip(trained["member_indices"], trained["members"])]
    files = {}
    for split in PREDICTION_SPLITS:
        data = load_split(model_input, split)
        logits = predict_logits(model, data.x)
        require_data_version(model_input, data_version, what=what)  # the split read is of this version
        path = out / f"{split}.parquet"
        with atomic_file(path) as tmp:
            pq.write_table(predictions_table(logits, data.y, names), tmp)
        files[split] = str(path)
    manifest = {
        "ensemble": ensemble.name, "group": group.name, "config_hash": trained["config_hash"],
        "data_version": data_version,
        "members": names, "member_indices": trained["member_indices"], "files": files,
    }
    return manifest  # saved by the catalog as manifest.json, after the parquet files exist


def _read_manifest(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
