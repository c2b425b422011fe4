"""Nodes of ``kedro run --pipelines param_scaling``: check the plan, tune and train, report."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ttsctr import tracking
from ttsctr.baselines import report
from ttsctr.baselines.fitting import baseline_training, fits_root, load_splits
from ttsctr.baselines.param_scaling import scaling_plan
from ttsctr.baselines.settings import check_keys, name_list, whole_numbers
from ttsctr.baselines.scaling_study import (
    check_search_space,
    check_studies,
    comparison_table,
    scaled_from_dict,
    study_name,
    trial_settings,
    tts_members,
    tune_plan,
)
from ttsctr.baselines.tuning import StudySettings, open_storage, search_space
from ttsctr.errors import ConfigError
from ttsctr.features import FeatureSpec
from pathlib import Path


KEYS = ("models", "dimensions", "scales", "flops_tolerance", "study")


def model_dimensions(param_scaling: dict[str, Any], models: Any, where: str = "param_scaling.models") -> dict[str, Any]:
    """{model: its dimensions} of the models listed in ``models``, from ``param_scaling.dimensions``."""
    models = name_list(models, where)
    dimensions = param_scaling.get("dimensions") or {}
    missing = [m for m in models if m not in dimensions]
    if missing:
        raise ConfigError(f"param_scaling.dimensions has no entry for {missing}; add e.g. {missing[0]}: [width]")
    return {m: dimensions[m] for m in models}


def study_setup(param_scaling: dict[str, Any]) -> tuple[dict, Any, StudySettings]:
    study = param_scaling.get("study") or {}
    settings = StudySettings.from_dict(study)  # unknown keys and bad values, before the storage is opened
    space = search_space(study.get("search_space"))
    storage = open_storage(study.get("storage", "sqlite:///data/06_models/optuna.db"))
    return space, storage, settings


def plan_param_scaling(model_input_summary: dict[str, Any], param_scaling: dict[str, Any],
                       baselines: dict[str, Any], tts_training: dict[str, Any]) -> dict[str, Any]:
    """Every configuration, its FLOPs multiple, the storage and the search space, checked before training."""
    check_keys(param_scaling, KEYS, "param_scaling")
    training = baseline_training(tts_training, baselines)
    # TTS at k× merges k members: whole multiples only
    scales = whole_numbers(param_scaling.get("scales"), "param_scaling.scales")
    if 1 not in scales:
        raise ConfigError(f"param_scaling.scales must include 1 (the base configuration), got {scales!r}")
    spec = FeatureSpec.load(Path(model_input_summary["model_input_dir"]) / "feature_map.json")
    plan = scaling_plan(model_dimensions(param_scaling, param_scaling.get("models")), scales, spec,
                        preset=baselines.get("preset", "small"), tolerance=param_scaling.get("flops_tolerance", 0.15))
    space, storage, _ = study_setup(param_scaling)
    check_search_space(space, plan)
    dataset, version = model_input_summary["dataset"], model_input_summary["data_version"]
    check_studies(storage, {study_name(dataset, version, s): trial_settings(s, training) for s in plan}, space)
    return {"configurations": [s.to_dict() for s in plan]}


def run_param_scaling(model_input_summary: dict[str, Any], plan: dict[str, Any], param_scaling: dict[str, Any],
                      baselines: dict[str, Any], tts_training: dict[str, Any]) -> pd.DataFrame:
    dataset = model_input_summary["dataset"]
    splits = load_splits(model_input_summary["model_input_dir"], model_input_summary["data_version"],
                         what="param_scaling")
    training = baseline_training(tts_training, baselines)
    space, storage, settings = study_setup(param_scaling)
    root = fits_root(baselines, dataset, "param_scaling")
    configurations = [scaled_from_dict(d) for d in plan["configurations"]]
    with tracking.nested_run("baselines.param_scaling.studies", tags={"dataset": dataset}):
        tuned = tune_plan(splits, configurations, training, space, storage, settings, root, dataset=dataset,
                          mlflow_tracking=tracking.tracking_active())
    k_max = int(max(s.target for s in configurations))
    bases = {t.scaled.model: t for t in tuned if t.scaled.target == 1}  # every dimension shares the 1x study
    members = {model: tts_members(splits, t, training, k_max, root) for model, t in bases.items()}
    table = comparison_table(dataset, tuned, members, splits)
    table.insert(1, "data_version", splits.data_version)
    return table


def report_param_scaling(table: pd.DataFrame, model_input_summary: dict[str, Any],
                         param_scaling: dict[str, Any]) -> tuple[str, Any]:
    dataset = model_input_summary["dataset"]
    notes = [f"Data version {model_input_summary['data_version']}. Each AUC rests on one trained configuration "
             "(parameter scaling: the best trial of its study by validation AUC) or one set of K members (TTS); "
             "p: two-sided DeLong test of TTS against the best parameter-scaled configuration of the same scale. "
             "Tuning seconds of TTS are those of the 1× study (tuned once)."]
    tts = table[table["method"] == "tts"]
    metrics = {f"{r.model}.tts_{r.scale:g}x.test_auc": r.test_auc for r in tts.itertuples()}
    best = table[table["best_of_scale"]]
    metrics.update({f"{r.model}.param_{r.scale:g}x.test_auc": r.test_auc for r in best.itertuples()})
    return report.publish("param_scaling", table, dataset, notes, param_scaling, metrics)
