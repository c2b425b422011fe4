"""Nodes of ``kedro run --pipelines model_merging``."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ttsctr.baselines import report
from ttsctr.baselines.fitting import baseline_training, fits_root, load_splits
from ttsctr.baselines.model_merging import model_merging_table
from ttsctr.baselines.settings import check_keys


def run_model_merging(model_input_summary: dict[str, Any], model_merging: dict[str, Any], baselines: dict[str, Any],
                      tts_training: dict[str, Any]) -> pd.DataFrame:
    dataset = model_input_summary["dataset"]
    check_keys(model_merging, ("models", "counts"), "model_merging")
    training = baseline_training(tts_training, baselines)
    splits = load_splits(model_input_summary["model_input_dir"], model_input_summary["data_version"],
                         what="model_merging")
    table = model_merging_table(splits, model_merging.get("models"), model_merging.get("counts"),
                                training, fits_root(baselines, dataset, "model_merging"), dataset=dataset,
                                preset=baselines.get("preset", "small"))
    table.insert(1, "data_version", splits.data_version)
    return table


def report_model_merging(table: pd.DataFrame, model_input_summary: dict[str, Any],
                         model_merging: dict[str, Any]) -> tuple[str, Any]:
    dataset = model_input_summary["dataset"]
    notes = [f"Data version {model_input_summary['data_version']}. pred: prediction merging; weights: weight "
             "averaging (the paper's K×-Model); weights_aligned: after weight matching of MLP hidden units; "
             "*_shared_init: members sharing member 0's initialisation, differing in data order. One set of K "
             "members per row (one draw)."]
    metrics = {f"{r.model}.{r.method}_{r.members}.test_auc": r.test_auc for r in table.itertuples()}
    return report.publish("model_merging", table, dataset, notes, model_merging, metrics)
