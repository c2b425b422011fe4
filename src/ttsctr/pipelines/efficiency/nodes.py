"""Nodes of ``kedro run --pipelines efficiency``."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ttsctr.baselines import report
from ttsctr.baselines.efficiency_study import efficiency_table
from ttsctr.baselines.fitting import baseline_training, load_splits
from ttsctr.baselines.settings import check_keys

KEYS = ("models", "scale", "dimensions", "batch_size", "repeats", "processes", "epochs")


def run_efficiency(model_input_summary: dict[str, Any], efficiency: dict[str, Any], baselines: dict[str, Any],
                   tts_training: dict[str, Any]) -> pd.DataFrame:
    check_keys(efficiency, KEYS, "efficiency")
    training = baseline_training(tts_training, baselines)
    splits = load_splits(model_input_summary["model_input_dir"], model_input_summary["data_version"],
                         what="efficiency")
    table = efficiency_table(splits, efficiency.get("models"), dict(efficiency.get("dimensions") or {}),
                             training, dataset=model_input_summary["dataset"], scale=efficiency.get("scale", 8),
                             preset=baselines.get("preset", "small"), batch_size=int(efficiency.get("batch_size", 4096)),
                             repeats=int(efficiency.get("repeats", 20)), processes=int(efficiency.get("processes", 2)),
                             epochs=int(efficiency.get("epochs", 1)))
    table.insert(1, "data_version", splits.data_version)
    return table


def report_efficiency(table: pd.DataFrame, model_input_summary: dict[str, Any],
                      efficiency: dict[str, Any]) -> tuple[str, Any]:
    dataset = model_input_summary["dataset"]
    notes = [f"Data version {model_input_summary['data_version']}. Measured in one run on this machine; "
             "parallel rows include process round trips (pipes). Compare ratios, not absolute times."]
    metrics = {}
    for r in table.itertuples():
        key = f"{r.model}.{r.method.split(' (')[0].replace(' ', '_')}"
        metrics[f"{key}.seconds_per_epoch"] = r.seconds_per_epoch
        metrics[f"{key}.latency_p50_ms"] = r.latency_p50_ms
    return report.publish("efficiency", table, dataset, notes, efficiency, metrics)
