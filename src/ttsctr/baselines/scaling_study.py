"""Parameter scaling tuned by Optuna against test-time scaling at equal FLOPs (paper Fig. 3, Fig. 4a).

For every (model, dimension, scale) of :func:`ttsctr.baselines.param_scaling.scaling_plan` one
Optuna study (:mod:`ttsctr.baselines.tuning`) tunes the training hyperparameters of that
configuration on the validation AUC; its best trial is scored on the test split. Test-time
scaling at K× uses K members of the base (1×) configuration with the hyperparameters tuned for
the 1× study — one tuning, then K seeds (seed 0 is the tuned trial itself) — merged by their
mean probability (Eq. 10). Its FLOPs multiple is measured like the others (K × the base cost).

Hyperparameter names map to where they act: ``learning_rate``, ``weight_decay``,
``embedding_regularizer``, ``batch_size`` to the training settings (with ``batch_size`` tuned,
the "halve until 50 steps" rule is switched off so the sampled size is the one used); any other
name must be a config key of the model (``dropout``, ``num_layers``, ...).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ttsctr.baselines.fitting import FittedGroup, Splits, fit_group, merged_test_probability, scores
from ttsctr.baselines.param_scaling import ScaledConfig
from ttsctr.baselines.tuning import StudyOutcome, StudySettings, check_studies, run_study, suggest
from ttsctr.errors import ConfigError
from ttsctr.experiment import config_hash
from ttsctr.merging.significance import delong_test
from ttsctr.models import model_config
from ttsctr.training import MemberSpec, TrainConfig

__all__ = ["TRAINING_HYPERPARAMETERS", "split_hyperparameters", "study_name", "TunedConfig", "tune_config",
           "tts_members", "comparison_table", "tune_plan", "check_studies", "scaled_from_dict", "trial_settings",
           "check_search_space"]

TRAINING_HYPERPARAMETERS = ("learning_rate", "weight_decay", "embedding_regularizer", "batch_size")


def split_hyperparameters(params: Mapping[str, Any], model: str, preset: str,
                          where: str = "param_scaling.study.search_space") -> tuple[dict[str, Any], dict[str, Any]]:
    """(model overrides, training overrides) of one parameter set; an unknown name is an error."""
    known = {f.name for f in dataclasses.fields(model_config(model, preset))}
    model_part, training_part = {}, {}
    for name, value in params.items():
        if name in TRAINING_HYPERPARAMETERS:
            training_part[name] = value
        elif name in known:
            model_part[name] = value
        else:
            raise ConfigError(
                f"{where}.{name}: not a training setting {list(TRAINING_HYPERPARAMETERS)} nor a config key of "
                f"{model} ({sorted(known)})"
            )
    if "batch_size" in training_part:
        training_part["min_steps_per_epoch"] = None
    return model_part, training_part


def study_name(dataset: str, data_version: str, scaled: ScaledConfig) -> str:
    """One study per (dataset, data version, model and preset, dimension, scale): a re-encoded dataset
    starts afresh. At 1× every dimension is the base configuration, so they share one ``base`` study."""
    dimension = "base" if scaled.target == 1 else scaled.dimension
    return f"{dataset}@{data_version[:12]}.{scaled.model}-{scaled.preset}.{dimension}.{scaled.target:g}x"


def trial_settings(scaled: ScaledConfig, training: Mapping[str, Any], seed: int = 0) -> str:
    """Hash of what every trial of ``scaled``'s study trains besides the sampled parameters."""
    config = TrainConfig.from_dict(dict(training))
    return config_hash({"model": scaled.model, "preset": scaled.preset, "overrides": dict(scaled.overrides),
                        "training": {**config.trajectory(), "max_epochs": config.max_epochs,
                                     "patience": config.patience}, "seed": seed})


def check_search_space(space: Mapping[str, Any], plan: Sequence[ScaledConfig],
                       where: str = "param_scaling.study.search_space") -> None:
    """Every tuned name must act on every planned model, and none may undo a scaled dimension."""
    for scaled in plan:
        split_hyperparameters({name: None for name in space}, scaled.model, scaled.preset, where)
        clash = sorted(set(space) & set(scaled.overrides))
        if clash:
            raise ConfigError(f"{where}.{clash[0]}: tuning it would change what {scaled.model}'s "
                              f"{scaled.dimension!r} dimension scales (its FLOPs multiple); remove it from the space")


def tuned_member(scaled: ScaledConfig, params: Mapping[str, Any], seed: int,
                 training: Mapping[str, Any]) -> tuple[MemberSpec, dict[str, Any]]:
    """Member ``seed`` of ``scaled`` with the hyperparameters ``params``, and its training settings."""
    model_part, training_part = split_hyperparameters(params, scaled.model, scaled.preset)
    member = MemberSpec(scaled.model, seed, scaled.preset, {**scaled.overrides, **model_part})
    return member, {**training, **training_part, "progress": False}


@dataclass
class TunedConfig:
    scaled: ScaledConfig
    study: StudyOutcome
    best: FittedGroup


def tune_config(splits: Splits, scaled: ScaledConfig, training: Mapping[str, Any], space: Mapping[str, Any],
                storage: Any, settings: StudySettings, root: str | Path, *, dataset: str, seed: int = 0,
                mlflow_tracking: bool = False) -> TunedConfig:
    """Tune ``scaled`` with one Optuna study; every trial trains member ``seed`` of that configuration."""
    name = study_name(dataset, splits.data_version, scaled)
    root = Path(root)
    max_epochs = TrainConfig.from_dict(dict(training)).max_epochs

    def objective(trial: Any, report: Any) -> tuple[float, dict[str, Any]]:
        member, trial_training = tuned_member(scaled, suggest(trial, space), seed, training)
        fitted = fit_group(splits, [member], trial_training, root,
                           on_epoch_end=lambda record: report(record["valid_auc"], record["epoch"]))
        r = fitted.result
        return r["valid_auc"], {"config_hash": fitted.config_hash, "test_auc": r["test_auc"],
                                "test_logloss": r["test_logloss"], "epochs": r["epochs_completed"],
                                "train_seconds": r["train_seconds"]}

    outcome = run_study(name, objective, space, storage, settings, max_epochs=max_epochs,
                        mlflow_tracking=mlflow_tracking, trial_settings=trial_settings(scaled, training, seed))
    member, best_training = tuned_member(scaled, outcome.best_params, seed, training)
    best = fit_group(splits, [member], best_training, root)  # stored by the best trial: read back
    return TunedConfig(scaled, outcome, best)


def tts_members(splits: Splits, base: TunedConfig, training: Mapping[str, Any], k_max: int,
                root: str | Path) -> list[FittedGroup]:
    """``k_max`` independently trained members of the base configuration with its tuned
    hyperparameters; member 0 is the tuned trial itself (reused, not retrained)."""
    return [fit_group(splits, [member], settings, root)
            for member, settings in (tuned_member(base.scaled, base.study.best_params, seed, training)
                                     for seed in range(k_max))]


def comparison_table(dataset: str, tuned: Sequence[TunedConfig], members: Mapping[str, list[FittedGroup]],
                     splits: Splits) -> pd.DataFrame:
    """Fig. 3 and Fig. 4a in one table: one row per (model, method, scale).

    ``method`` is ``param:<dimension>`` (best tuned configuration; ``param:base`` at 1×, one study
    for every dimension) or ``tts`` (K merged members);
    ``p_value`` (DeLong, two-sided, on the test split) compares TTS with the best parameter-scaled
    configuration of the same model and scale; each AUC rests on one trained configuration or one
    set of K members (one draw).
    """
    labels, valid_labels = splits.test[1], splits.validation[1]
    rows = []
    by_model: dict[str, dict[float, list[TunedConfig]]] = {}
    for t in tuned:
        by_model.setdefault(t.scaled.model, {}).setdefault(t.scaled.target, []).append(t)
    for model, scales in by_model.items():
        base = scales[1.0][0]
        for scale, configs in sorted(scales.items()):
            best_param = max(configs, key=lambda t: t.best.result["valid_auc"])
            if scale == 1:  # every dimension's 1x is the same base study: one row
                configs = [best_param]
            for t in configs:
                r = t.best.result
                rows.append({
                    "dataset": dataset, "model": model, "scale": scale,
                    "method": "param:base" if scale == 1 else f"param:{t.scaled.dimension}",
                    "flops_multiple": t.scaled.flops_multiple, "flops_per_row": t.scaled.flops_per_row,
                    "dense_params": r["dense_params"], "test_auc": r["test_auc"], "test_logloss": r["test_logloss"],
                    "valid_auc": r["valid_auc"], "best_of_scale": t is best_param,
                    "trials": t.study.trials, "completed": t.study.completed, "pruned": t.study.pruned,
                    "tuning_seconds": t.study.wall_seconds, "trials_until_best": t.study.trials_until_best,
                    "train_seconds": r["train_seconds"], "study": t.study.study_name,
                    "config": str(dict(t.scaled.overrides)), "best_params": str(t.study.best_params),
                    "draws": 1, "p_value": np.nan,
                })
            k = int(round(scale))
            group = members[model][:k]
            if len(group) < k:
                continue
            merged = merged_test_probability(group)
            tts = scores(labels, merged)
            p = delong_test(labels, merged, best_param.best.test_probability).p_value if k > 1 else np.nan
            rows.append({
                "dataset": dataset, "model": model, "method": "tts", "scale": scale,
                "flops_multiple": k * base.scaled.flops_per_row / base.scaled.base_flops_per_row,
                "flops_per_row": k * base.scaled.flops_per_row,
                "dense_params": sum(g.result["dense_params"] for g in group),
                "test_auc": tts["auc"], "test_logloss": tts["logloss"],
                "valid_auc": scores(valid_labels, merged_test_probability(group, "validation"))["auc"],
                "best_of_scale": False, "trials": base.study.trials, "completed": base.study.completed,
                "pruned": base.study.pruned, "tuning_seconds": base.study.wall_seconds,
                "trials_until_best": base.study.trials_until_best,
                "train_seconds": sum(g.result["train_seconds"] for g in group), "study": base.study.study_name,
                "config": f"{k} x base", "best_params": str(base.study.best_params), "draws": 1, "p_value": p,
            })
    return pd.DataFrame(rows)



def tune_plan(splits: Splits, plan: Sequence[ScaledConfig], training: Mapping[str, Any], space: Mapping[str, Any],
              storage: Any, settings: StudySettings, root: str | Path, *, dataset: str,
              mlflow_tracking: bool = False) -> list[TunedConfig]:
    """Every configuration of ``plan`` tuned (1× first: the other scales' rows and TTS need it)."""
    ordered = sorted(plan, key=lambda s: (s.model, s.target != 1))
    return [tune_config(splits, s, training, space, storage, settings, root, dataset=dataset,
                        mlflow_tracking=mlflow_tracking) for s in ordered]


def scaled_from_dict(d: Mapping[str, Any]) -> ScaledConfig:
    return ScaledConfig(d["model"], d["preset"], d["dimension"], float(d["target"]),
                        {k: tuple(v) if isinstance(v, list) else v for k, v in d["overrides"].items()},
                        float(d["flops_per_row"]), float(d["base_flops_per_row"]), int(d["dense_params"]),
                        int(d["embedding_params"]))
