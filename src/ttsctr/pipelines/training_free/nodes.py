"""Nodes of ``kedro run --pipelines training_free``."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ttsctr.baselines import report
from ttsctr.baselines.fitting import baseline_training, fits_root, load_splits
from ttsctr.baselines.training_free_study import training_free_table
from ttsctr.baselines.settings import check_keys, name_list

SETTINGS = ("seed", "dropout_trained_rate", "mc_rate", "mc_passes", "keep_fraction", "mask_paths")


def run_training_free(model_input_summary: dict[str, Any], training_free: dict[str, Any], baselines: dict[str, Any],
                      tts_training: dict[str, Any]) -> pd.DataFrame:
    dataset = model_input_summary["dataset"]
    check_keys(training_free, ("models", *SETTINGS), "training_free")
    models = name_list(training_free.get("models"), "training_free.models")
    training = baseline_training(tts_training, baselines)
    splits = load_splits(model_input_summary["model_input_dir"], model_input_summary["data_version"],
                         what="training_free")
    settings = {k: training_free[k] for k in SETTINGS if k in training_free}
    tables = [training_free_table(splits, m, training, fits_root(baselines, dataset, "training_free"), dataset=dataset,
                                  preset=baselines.get("preset", "small"), **settings) for m in models]
    table = pd.concat(tables, ignore_index=True)
    table.insert(1, "data_version", splits.data_version)
    return table


def report_training_free(table: pd.DataFrame, model_input_summary: dict[str, Any],
                         training_free: dict[str, Any]) -> tuple[str, Any]:
    dataset = model_input_summary["dataset"]
    parts = []
    for model, d in table.groupby("model", sort=False):
        notes = [f"Backbone {model}; data version {model_input_summary['data_version']}; MC-dropout rate "
                 f"{training_free.get('mc_rate', 0.1)} × {training_free.get('mc_passes', 8)} passes; feature masking "
                 f"keep fraction {training_free.get('keep_fraction', 0.9)} × {training_free.get('mask_paths', 8)} "
                 "paths. Each source is one trained model (one draw)."]
        parts.append(report.training_free_markdown(d, dataset, notes))
    markdown = "\n".join(parts)
    first = table[table["model"] == table["model"].iloc[0]]
    image = report.training_free_figure(first, dataset)
    gains = table[table["i"] < table["j"]]
    metrics = {f"{r.model}.{r.source_i}+{r.source_j}.auc_gain": r.auc_gain for r in gains.itertuples()}
    report.log_comparison("training_free", dataset, table, markdown, image, training_free, metrics)
    return markdown, image
