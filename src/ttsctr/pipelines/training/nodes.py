"""Train one group of members on the BCE of its averaged prediction (Algorithm 1, Eq. 11–12).

A group whose members, training settings and data version hash to a finished result is not
retrained; an interrupted one resumes from its last epoch checkpoint. Each trained group is a
nested MLflow run, and each member is registered as ``ttsctr-<dataset>-<backbone>``.

The run's data version is the one in ``model_input_summary`` (taken when the run published or
found its data). It is checked against the published folder before the splits are read and
again after, recorded in the result and in the checkpoint, and a result is reused only with the
same version (:mod:`ttsctr.data.version`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import mlflow

from ttsctr.data.io import atomic_write_json, load_splits
from ttsctr.data.version import require_data_version
from ttsctr.experiment import EnsemblePlan, GroupPlan, config_hash
from ttsctr.features import FeatureSpec
from ttsctr.flops import model_cost
from ttsctr.training import TrainConfig, build_group, evaluate, save_group, train
from ttsctr import tracking

log = logging.getLogger(__name__)


def group_dir(paths: dict[str, Any], dataset: str, ensemble: str, group: str) -> Path:
    return Path(paths["models"]) / dataset / ensemble / group


def group_config_hash(group: GroupPlan, training: dict[str, Any], data_version: str) -> str:
    return config_hash({"members": [m.to_dict() for m in group.members], "training": training, "data": data_version})


def train_group(
    model_input_summary: dict[str, Any],
    training: dict[str, Any],
    paths: dict[str, Any],
    registry: dict[str, Any],
    *,
    group: GroupPlan,
    ensemble: EnsemblePlan,
) -> dict[str, Any]:
    dataset = model_input_summary["dataset"]
    model_input = Path(model_input_summary["model_input_dir"])
    data_version = model_input_summary["data_version"]
    what = f"training {ensemble.name}/{group.name}"
    require_data_version(model_input, data_version, what=what)
    chash = group_config_hash(group, training, data_version)
    out = group_dir(paths, dataset, ensemble.name, group.name)
    result_path = out / f"result-{chash}.json"
    own = json.loads(result_path.read_text()) if result_path.exists() else None
    if own is not None and _usable(own, data_version):
        log.info("%s/%s already trained with config %s; reusing it", ensemble.name, group.name, chash)
        result = own
    elif (trained_elsewhere := _find_trained(paths, dataset, chash, data_version)) is not None:
        # Same members, settings and data (the hash covers all three): training is deterministic, so
        # another ensemble's group (e.g. wukong_x16's seed 3 inside wukong_rankmixer_x16) is this group.
        log.info("%s/%s: config %s was trained as %s; reusing it", ensemble.name, group.name, chash, trained_elsewhere.parent)
        result = json.loads(trained_elsewhere.read_text())
        result.update({"ensemble": ensemble.name, "group": group.name, "group_index": group.index,
                       "member_indices": list(group.member_indices), "reused_from": str(trained_elsewhere)})
        atomic_write_json(result_path, result)
    else:
        result = None
    reused = result is not None  # not part of the result: the catalog's trained_group.json stays the same on a rerun
    register = registry.get("register_members", True) and _registers_members(group, result)
    if result is not None and not (register and tracking.tracking_active() and _unregistered(result, dataset)):
        return result  # its run was logged when it was trained; nothing new to log
    # One nested run per trained group, open while it trains: per-epoch metrics arrive live.
    tags = {"ensemble": ensemble.name, "group": group.name, "config_hash": chash, "dataset": dataset}
    with tracking.nested_run(f"{ensemble.name}.{group.name}", tags=tags) as run:
        if result is None:
            result = _train(model_input, dataset, data_version, training, group, ensemble, chash, out,
                            on_epoch_end=_log_epoch if run is not None else None)
            atomic_write_json(result_path, result)
        if run is not None:
            _log_group(result, dataset, ensemble, group, training, model_input, reused=reused)
            if register:
                _register_members(result, model_input_summary, ensemble, group)
    return result


def _registers_members(group: GroupPlan, result: dict[str, Any] | None) -> bool:
    """A jointly trained member was fitted to be averaged with its group (Eq. 11): it is no single
    model, so only independently trained members are registered one by one. A group reused from
    another ensemble was registered with that ensemble: same weights."""
    return len(group.members) == 1 and (result is None or "reused_from" not in result)


def _unregistered(result: dict[str, Any], dataset: str) -> bool:
    """Whether a member of a finished group has no registered version (e.g. a new MLflow database)."""
    return any(tracking.find_model_version(tracking.member_model_name(dataset, m["backbone"]), _member_tags(result, i))
               is None for i, m in enumerate(result["members"]))


def _log_epoch(record: dict[str, Any]) -> None:
    keys = ("train_loss", "valid_auc", "valid_logloss", "learning_rate", "rows_per_s")
    mlflow.log_metrics(tracking.finite_metrics({k: record.get(k) for k in keys}), step=int(record["epoch"]))


def _log_group(result: dict[str, Any], dataset: str, ensemble: EnsemblePlan, group: GroupPlan,
               training: dict[str, Any], model_input: Path, *, reused: bool) -> None:
    """Flat parameters, best and test metrics and the splits of one group's run (same names as the
    ensembles' runs: ``test_auc``, ``test_logloss``, ``members``, ``flops_per_row``)."""
    members = result["members"]
    tracking.log_flat_params({
        "dataset": dataset, "ensemble": ensemble.name, "group": group.name, "layout": ensemble.layout,
        "backbones": ",".join(m["backbone"] for m in members), "presets": ",".join(m["preset"] for m in members),
        "seeds": ",".join(str(m["seed"]) for m in members), "group_size": len(members),
        "config_hash": result["config_hash"], "data_version": result["data_version"],
        "protocol": result["protocol"], "precision": result["precision"], "batch_size": result["batch_size"],
        "reused": reused,
    })
    tracking.log_flat_params({k: v for k, v in training.items() if k not in ("protocol", "precision")}, prefix="training")
    costs = result["member_costs"]
    mlflow.log_metrics(tracking.finite_metrics({
        "best_valid_auc": result["valid_auc"], "best_valid_logloss": result["valid_logloss"],
        "best_epoch": result["best_epoch"], "epochs": result["epochs_completed"],
        "test_auc": result["test_auc"], "test_logloss": result["test_logloss"],
        "train_seconds": result["train_seconds"], "members": len(members),
        "flops_per_row": sum(c["flops_per_row"] for c in costs),
        "dense_params": sum(c["dense_params"] for c in costs),
        "embedding_params": sum(c["embedding_params"] for c in costs),
    }))
    tracking.log_split_inputs(model_input, dataset, result["data_version"],
                              {"train": "training", "validation": "validation", "test": "test"})


def _usable(result: dict[str, Any], data_version: str) -> bool:
    """A finished result of ``data_version`` whose checkpoint is still there (an older result that
    records no data version is trained again)."""
    return result.get("data_version") == data_version and Path(result["checkpoint"]).exists()


def _find_trained(paths: dict[str, Any], dataset: str, chash: str, data_version: str) -> Path | None:
    """A finished group of the same configuration hash in any ensemble of ``dataset``, if any."""
    for path in sorted((Path(paths["models"]) / dataset).glob(f"*/*/result-{chash}.json")):
        result = json.loads(path.read_text())
        if "reused_from" not in result and _usable(result, data_version):
            return path
    return None


def _train(model_input: Path, dataset: str, data_version: str, training: dict[str, Any], group: GroupPlan,
           ensemble: EnsemblePlan, chash: str, out: Path, on_epoch_end: Any = None) -> dict[str, Any]:
    # all three splits of one version (the folder may be swapped while they are read)
    splits = load_splits(model_input, data_version, what=f"training {ensemble.name}/{group.name}")
    spec = splits.spec
    config = TrainConfig.from_dict(training)
    model = build_group(spec, group.members, weight_init=config.weight_init)
    fit = train(model, splits.train, splits.validation, config,
                checkpoint_dir=out / f"checkpoint-{chash}", on_epoch_end=on_epoch_end)
    # in the precision training early-stopped in
    test_metrics = evaluate(model, *splits.test, batch_size=config.eval_batch_size)
    checkpoint = out / f"group-{chash}.pt"
    save_group(model, group.members, spec, checkpoint, data_version=data_version)
    member_costs = []
    for member in model.members:
        cost = model_cost(member)
        member_costs.append({"dense_params": cost.dense_params, "embedding_params": cost.embedding_params,
                             "flops_per_row": cost.flops_per_row})
    return {
        "dataset": dataset,
        "ensemble": ensemble.name,
        "group": group.name,
        "group_index": group.index,
        "member_indices": list(group.member_indices),
        "members": [m.to_dict() for m in group.members],
        "config_hash": chash,
        "data_version": data_version,
        "checkpoint": str(checkpoint),
        "history": fit.history,
        "protocol": config.protocol,
        "precision": config.precision,
        "batch_size": fit.batch_size,
        "order_key": list(fit.order_key),
        "epochs_completed": fit.epochs_completed,
        "stopped_early": fit.stopped_early,
        "best_epoch": fit.best_epoch,
        "valid_auc": fit.best_valid_auc,
        "valid_logloss": fit.best_valid_logloss,
        "test_auc": test_metrics["auc"],
        "test_logloss": test_metrics["logloss"],
        "member_test_auc": test_metrics.get("member_auc"),
        "train_seconds": fit.train_seconds,  # all epochs, also across a resume
        "member_costs": member_costs,
    }


def _member_tags(result: dict[str, Any], position: int) -> dict[str, str]:
    member = result["members"][position]
    return {"ensemble": result["ensemble"], "group": result["group"], "seed": str(member["seed"]),
            "member_index": str(result["member_indices"][position]), "config_hash": result["config_hash"],
            "data_version": result["data_version"]}


def _register_members(result: dict[str, Any], model_input_summary: dict[str, Any], ensemble: EnsemblePlan,
                      group: GroupPlan) -> None:
    """One registered version per member: a single-member pyfunc model taking raw rows, or events
    with their history for a sequence dataset (with a real one as input example), logged in the group's run with the member's own test metrics."""
    from ttsctr.serving import log_ensemble_model, raw_input_example
    from ttsctr.training import load_group

    dataset = model_input_summary["dataset"]
    model_input = Path(model_input_summary["model_input_dir"])
    example = None

    model, members, spec = load_group(result["checkpoint"])
    # the registered model carries the published vocabulary: it must be the one the member learnt
    require_data_version(model_input, model.data_version, what=f"registering the members of {ensemble.name}/{group.name}")
    member_auc = result.get("member_test_auc") or [result["test_auc"]] * len(members)
    for position, (member_spec, member_index) in enumerate(zip(members, result["member_indices"])):
        name = tracking.member_model_name(dataset, member_spec.backbone)
        tags = _member_tags(result, position)
        if tracking.find_model_version(name, tags) is not None:
            continue
        single = _single_member_checkpoint(model, members, spec, position, Path(result["checkpoint"]))
        if example is None:
            example = raw_input_example(model_input_summary, model_input)
        info = log_ensemble_model(name=f"{ensemble.name}-m{member_index:03d}-{member_spec.backbone}-s{member_spec.seed}",
                                  model_input_dir=model_input, group_checkpoints=[single], tags=tags,
                                  input_example=example)
        mlflow.log_metrics(tracking.finite_metrics({"test_auc": member_auc[position]}), model_id=info.model_id)
        version = tracking.register_version(info.model_uri, name, tags)
        mlflow.MlflowClient().update_model_version(
            name, version, description=(f"{member_spec.backbone} ({member_spec.preset}) seed {member_spec.seed}, member "
                                        f"{member_index} of {ensemble.name} on {dataset}, trained alone; test AUC "
                                        f"{member_auc[position]:.4f}; data version {result['data_version']}"))


def _single_member_checkpoint(model: Any, members: Any, spec: FeatureSpec, position: int, checkpoint: Path) -> Path:
    from ttsctr.training import GroupModel, save_group

    path = checkpoint.with_name(checkpoint.stem + f".member{position}.pt")
    if not path.exists():
        single = GroupModel([model.members[position]])
        save_group(single, [members[position]], spec, path, data_version=model.data_version)
    return path


def fit_logistic_reference(model_input_summary: dict[str, Any], reference: dict[str, Any],
                           paths: dict[str, Any]) -> dict[str, Any]:
    """Logistic regression on the same encoded splits (see :mod:`ttsctr.baselines.logistic`).

    Reused while the data version and the settings are unchanged.
    """
    from ttsctr.baselines import fit_logistic_regression
    from ttsctr.baselines.logistic import DEFAULT_C_GRID

    dataset = model_input_summary["dataset"]
    settings = {"c_grid": [float(c) for c in reference.get("c_grid", DEFAULT_C_GRID)],
                "max_train_rows": reference.get("max_train_rows", 2_000_000)}
    # a behaviour-sequence dataset: one-hot position slots make a weaker floor than N alone
    # (MovieLens sequences: 0.6586 against 0.6946), so the floor is fitted on N
    context_only = "sequence" in model_input_summary
    if context_only:
        settings["fields"] = "non-behavioural (N)"
    data_version = model_input_summary["data_version"]
    model_input = Path(model_input_summary["model_input_dir"])
    require_data_version(model_input, data_version, what="the logistic-regression reference")
    chash = config_hash({"logistic": settings, "data": data_version})
    path = Path(paths["models"]) / dataset / "logistic_regression" / f"result-{chash}.json"
    if path.exists():
        return json.loads(path.read_text())
    splits = load_splits(model_input, data_version, what="the logistic-regression reference")
    parts, num_features = (splits.train, splits.validation, splits.test), splits.spec.num_features
    if context_only:
        context = splits.spec.context_spec()
        parts, num_features = tuple((x[:, :context.num_fields], y) for x, y in parts), context.num_features
    fitted = fit_logistic_regression(*parts, num_features, c_grid=settings["c_grid"],
                                     max_train_rows=settings["max_train_rows"])
    result = {"dataset": dataset, "data_version": data_version, **fitted.to_dict(),
              **({"fields": settings["fields"]} if context_only else {})}
    log.info("logistic regression on %s: test AUC %.4f (C=%g, %d rows, %.1f s)", dataset, fitted.test_auc,
             fitted.C, fitted.train_rows, fitted.seconds)
    atomic_write_json(path, result)
    return result
