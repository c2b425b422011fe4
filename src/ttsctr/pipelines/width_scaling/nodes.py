"""Nodes of ``kedro run --pipelines width_scaling``."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ttsctr.baselines import report
from ttsctr.baselines.fitting import baseline_training, fits_root, load_splits
from ttsctr.baselines.width_scaling import width_scaling_table
from ttsctr.baselines.settings import check_keys, name_list, whole_numbers
from ttsctr.errors import ConfigError


def run_width_scaling(model_input_summary: dict[str, Any], width_scaling: dict[str, Any], baselines: dict[str, Any],
                      tts_training: dict[str, Any]) -> pd.DataFrame:
    dataset = model_input_summary["dataset"]
    check_keys(width_scaling, ("configurations", "experts", "dmoe_weight", "seeds"), "width_scaling")
    seeds = whole_numbers(width_scaling.get("seeds", [0]), "width_scaling.seeds", minimum=0)
    training = baseline_training(tts_training, baselines)
    names = name_list(width_scaling.get("configurations"), "width_scaling.configurations")
    experts = width_scaling.get("experts") or {}
    missing = [n for n in names if n not in experts]
    if missing:
        raise ConfigError(f"width_scaling.experts has no entry for {missing}; add e.g. {missing[0]!r}: [wukong, wukong]")
    splits = load_splits(model_input_summary["model_input_dir"], model_input_summary["data_version"],
                         what="width_scaling")
    table = width_scaling_table(splits, {n: experts[n] for n in names}, training, fits_root(baselines, dataset, "width_scaling"),
                                dataset=dataset, preset=baselines.get("preset", "small"),
                                dmoe_weight=float(width_scaling.get("dmoe_weight", 0.01)),
                                seeds=seeds)
    table.insert(1, "data_version", splits.data_version)
    return table


def report_width_scaling(table: pd.DataFrame, model_input_summary: dict[str, Any],
                         width_scaling: dict[str, Any]) -> tuple[str, Any]:
    dataset = model_input_summary["dataset"]
    seeds = table["seed"].nunique()
    notes = [f"Data version {model_input_summary['data_version']}. Means over {seeds} draw(s) (seeds). PM vs: the "
             "better of ME and D-MoE by validation AUC; p (* < 0.05): two-sided DeLong test on the test rows for one "
             "draw, a paired t-test over draws for several (the paper's test)."]
    means = table.groupby(["configuration", "method"])["test_auc"].mean()
    metrics = {f"{c}.{m}.test_auc": v for (c, m), v in means.items()}
    return report.publish("width_scaling", table, dataset, notes, width_scaling, metrics)
