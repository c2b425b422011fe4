"""Nodes of ``kedro run --pipelines orthogonality``: the parameter-scaling studies of the
configured models (dimensions and scales from ``param_scaling``) (reused from ``param_scaling`` when they are finished), then K seeds of each
scale's best configuration merged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ttsctr import tracking
from ttsctr.baselines import report
from ttsctr.baselines.fitting import baseline_training, fits_root, load_splits
from ttsctr.baselines.orthogonality import orthogonality_table
from ttsctr.baselines.param_scaling import scaling_plan
from ttsctr.baselines.scaling_study import check_studies, study_name, trial_settings, tune_plan
from ttsctr.baselines.settings import check_keys, name_list
from ttsctr.errors import ConfigError
from ttsctr.features import FeatureSpec
from ttsctr.pipelines.param_scaling.nodes import model_dimensions, study_setup


def run_orthogonality(model_input_summary: dict[str, Any], orthogonality: dict[str, Any], param_scaling: dict[str, Any],
                      baselines: dict[str, Any], tts_training: dict[str, Any]) -> pd.DataFrame:
    dataset, version = model_input_summary["dataset"], model_input_summary["data_version"]
    training = baseline_training(tts_training, baselines)
    check_keys(orthogonality, ("models", "tts_members"), "orthogonality")
    listed = name_list(orthogonality.get("models"), "orthogonality.models")
    outside = [m for m in listed if m not in (param_scaling.get("models") or [])]
    if outside:
        raise ConfigError(f"orthogonality.models {outside} are not in param_scaling.models "
                          f"{param_scaling.get('models')}: their parameter-scaled studies come from there")
    models = model_dimensions(param_scaling, listed, where="orthogonality.models")
    spec = FeatureSpec.load(Path(model_input_summary["model_input_dir"]) / "feature_map.json")
    plan = scaling_plan(models, param_scaling.get("scales"), spec,
                        preset=baselines.get("preset", "small"),
                        tolerance=float(param_scaling.get("flops_tolerance", 0.15)))
    space, storage, settings = study_setup(param_scaling)
    check_studies(storage, {study_name(dataset, version, s): trial_settings(s, training) for s in plan}, space)
    splits = load_splits(model_input_summary["model_input_dir"], version, what="orthogonality")
    with tracking.nested_run("baselines.orthogonality.studies", tags={"dataset": dataset}):
        # the parameter-scaling studies and their best fits (finished ones are read, not rerun)
        tuned = tune_plan(splits, plan, training, space, storage, settings, fits_root(baselines, dataset, "param_scaling"),
                          dataset=dataset, mlflow_tracking=tracking.tracking_active())
    table = orthogonality_table(splits, tuned, training, orthogonality.get("tts_members", 16),
                                fits_root(baselines, dataset, "orthogonality"), dataset=dataset,
                                reuse_from=[fits_root(baselines, dataset, "param_scaling")])  # its 1x TTS members
    table.insert(1, "data_version", version)
    return table


def report_orthogonality(table: pd.DataFrame, model_input_summary: dict[str, Any],
                         orthogonality: dict[str, Any]) -> tuple[str, Any]:
    dataset = model_input_summary["dataset"]
    notes = [f"Data version {model_input_summary['data_version']}. Per parameter scale the best dimension by "
             "validation AUC; gains in units of 1e-4; p: two-sided DeLong test of the merged K against the single "
             "model. One trained configuration and one set of K members per cell."]
    metrics = {f"{r.model}.param_{r.param_scale:g}x.auc_gain": r.auc_gain for r in table.itertuples()}
    return report.publish("orthogonality", table, dataset, notes, orthogonality, metrics)
