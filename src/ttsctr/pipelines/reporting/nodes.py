"""Register each merged ensemble at every scale and write the paper-layout tables.

Every scale K of an ensemble becomes one version of the MLflow pyfunc model
``ttsctr-<dataset>-<ensemble>`` holding the **first K units' groups** (whole training groups,
:func:`groups_at_scale`), merged with the ensemble's configured rule (``merge_rule``:
``mean_prob``, Eq. 10, or ``mean_logit``) exactly as the merging pipeline merges them, so
``mlflow.pyfunc.load_model("models:/ttsctr-<dataset>-<ensemble>/<version>")`` turns raw rows into
the merged probabilities of that ensemble.

Registration is bound to the data: the run's data version (``model_input_summary``), the
published folder whose vocabulary goes into the model, the scaling table and every trained group
must agree, or nothing is registered (:class:`ttsctr.data.version.DataVersionError`). A version is
identified by (ensemble, scale, merge rule, groups' configuration hashes, data version) and
registered once, also when two runs race (:func:`ttsctr.tracking.register_version`).
"""

from __future__ import annotations

import logging
import math
import tempfile
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd

from ttsctr import tracking
from ttsctr.data.io import atomic_file
from ttsctr.data.version import require_data_version, require_same_version
from ttsctr.experiment import EnsemblePlan
from ttsctr.pipelines.merging.nodes import DIVERSITY_SPLIT
from ttsctr.reporting import experiment_markdown, logistic_numbers, metrics_json
from ttsctr.serving import log_ensemble_model, raw_input_example

log = logging.getLogger(__name__)


def groups_at_scale(ensemble: EnsemblePlan, scale: int, trained: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The training groups whose members are the first ``scale`` units, in member order."""
    n_members = ensemble.members_at_scale(scale)
    ordered = sorted(trained, key=lambda t: t["member_indices"][0])
    chosen = [t for t in ordered if max(t["member_indices"]) < n_members]
    if sum(len(t["member_indices"]) for t in chosen) != n_members:
        raise ValueError(f"{ensemble.name}: scale {scale} does not consist of whole training groups")
    return chosen


def register_ensemble(model_input_summary: dict[str, Any], paths: dict[str, Any], registry: dict[str, Any],
                      table: pd.DataFrame, *trained: dict[str, Any], ensemble: EnsemblePlan) -> dict[str, Any]:
    """Log the scaling table and register the ensemble at every scale.

    Version for scale K = the first K units' whole training groups (:func:`groups_at_scale`),
    merged with ``ensemble.merge_rule`` inside groups (Eq. 11) and size-weighted across groups
    (Eq. 13). It is one particular K× ensemble — the table's AUC at K is the mean over its
    distinct draws, which equals this version's only at the top scale (the whole pool). The
    rule is a version tag, so a version registered under another rule is not reused.
    """
    dataset = model_input_summary["dataset"]
    data_version = model_input_summary["data_version"]
    what = f"registering {ensemble.name}"
    _require_table_version(table, data_version, what=what, source=f"the scaling table of {ensemble.name}")
    for group in trained:
        require_same_version(group.get("data_version"), data_version, what=what, source=group["checkpoint"])
    require_data_version(model_input_summary["model_input_dir"], data_version, what=what)
    report: dict[str, Any] = {"ensemble": ensemble.name, "dataset": dataset, "data_version": data_version,
                              "registered": []}
    if not tracking.tracking_active():
        return report
    folder = Path(paths["reporting"]) / dataset / ensemble.name
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "scaling.csv"
        table.to_csv(csv, index=False)
        mlflow.log_artifact(str(csv), artifact_path=f"scaling/{ensemble.name}")
    for name in ("scaling.md", "scaling.png"):
        if (folder / name).exists():
            mlflow.log_artifact(str(folder / name), artifact_path=f"scaling/{ensemble.name}")
    register = bool(registry.get("register_ensembles", True))
    model_name = tracking.ensemble_model_name(dataset, ensemble.name)
    example = (raw_input_example(model_input_summary, model_input_summary["model_input_dir"]) if register else None)
    rows = {int(r["scale"]): r for r in table.to_dict("records")}
    versions: dict[int, str] = {}
    for scale in ensemble.scales:
        row, groups = rows[int(scale)], groups_at_scale(ensemble, scale, list(trained))
        metrics = _scale_metrics(row, groups)
        tags = {"ensemble": ensemble.name, "scale": str(scale), "dataset": dataset, "data_version": data_version}
        # one run per (ensemble, scale) under the kedro run: MLflow's compare/chart views plot these
        with tracking.nested_run(f"{ensemble.name}@{scale}x", tags=tags):
            tracking.log_flat_params(_scale_params(ensemble, scale, row, data_version, dataset))
            mlflow.log_metrics(metrics)
            tracking.log_split_inputs(model_input_summary["model_input_dir"], dataset, data_version, {"test": "test"})
            if register:
                versions[scale] = _register_scale(model_input_summary, ensemble, scale, groups, metrics, model_name,
                                                  example)
    if register:
        client = mlflow.MlflowClient()
        for scale, version in versions.items():
            client.set_registered_model_alias(model_name, f"scale-{scale}", version)
        best = max(ensemble.scales, key=lambda k: (rows[int(k)]["auc_mean"], -k))  # ties: the cheaper scale
        client.set_registered_model_alias(model_name, "best", versions[best])
        # the alias addresses the scale on any database; the version number depends on what came before
        report["registered"] = [{"scale": k, "model": model_name, "version": v, "uri": f"models:/{model_name}@scale-{k}",
                                 "version_uri": f"models:/{model_name}/{v}"} for k, v in versions.items()]
        log.info("registered %s: %s; alias best = %d× (test AUC %.4f)", model_name,
                 ", ".join(f"{k}× v{v}" for k, v in versions.items()), best, rows[int(best)]["auc_mean"])
    return report


def _scale_params(ensemble: EnsemblePlan, scale: int, row: dict[str, Any], data_version: str,
                  dataset: str) -> dict[str, Any]:
    members = ensemble.members[: ensemble.members_at_scale(scale)]
    unique = lambda values: ",".join(dict.fromkeys(values))  # noqa: E731 - order kept, repeats dropped
    return {
        "dataset": dataset, "ensemble": ensemble.name, "layout": ensemble.layout, "scale": scale,
        "members": len(members), "backbones": unique(m.backbone for m in members),
        "presets": unique(m.preset for m in members), "seeds": ",".join(str(m.seed) for m in members),
        "group_size": ensemble.group_size, "draws": ensemble.draws, "n_draws": int(row["n_draws"]),
        "merge_rule": ensemble.merge_rule, "baseline": getattr(ensemble, "baseline", None) or "",
        "data_version": data_version,
    }


def _scale_metrics(row: dict[str, Any], groups: list[dict[str, Any]]) -> dict[str, float]:
    """The scale's numbers under the names every ttsctr run uses (test_auc, valid_auc, members, ...)."""
    costs = [c for g in groups for c in g["member_costs"]]
    return tracking.finite_metrics({
        "scale": row["scale"], "members": row["n_members"], "n_draws": row["n_draws"],
        "test_auc": row["auc_mean"], "test_auc_std": row["auc_std"], "test_logloss": row["logloss_mean"],
        "test_gauc": row.get("gauc_mean"),  # datasets with a user field only
        "valid_auc": row.get("valid_auc"), "auc_1x": row["auc_1x"], "delong_auc_diff": row["delong_auc_diff"],
        "p_delong": row["p_delong"], "p_ttest": row["p_ttest"], "significant": bool(row["significant"]),
        "pairwise_r": row["pairwise_r"], "pairwise_js": row["pairwise_js"],
        "flops_per_row": sum(c["flops_per_row"] for c in costs),  # the groups hold exactly the scale's members
    })


def _register_scale(summary: dict[str, Any], ensemble: EnsemblePlan, scale: int, groups: list[dict[str, Any]],
                    metrics: dict[str, float], model_name: str, example: pd.DataFrame | None) -> str:
    """The registered version of ``ensemble`` at ``scale`` (logged in the scale's run if new)."""
    tags = {"scale": str(scale), "ensemble": ensemble.name, "dataset": summary["dataset"],
            "merge_rule": ensemble.merge_rule, "config_hashes": ",".join(g["config_hash"] for g in groups),
            "data_version": summary["data_version"]}
    existing = tracking.find_model_version(model_name, tags)
    if existing is not None:
        return str(existing.version)
    info = log_ensemble_model(name=f"{ensemble.name}-{scale}x", model_input_dir=summary["model_input_dir"],
                              group_checkpoints=[g["checkpoint"] for g in groups], tags=tags,
                              merge_rule=ensemble.merge_rule, input_example=example)
    mlflow.log_metrics(metrics, model_id=info.model_id)  # this model's numbers only
    version = tracking.register_version(info.model_uri, model_name, tags)
    n = sum(len(g["member_indices"]) for g in groups)
    mlflow.MlflowClient().update_model_version(model_name, version, description=(
        f"{ensemble.label} at {scale}× on {summary['dataset']}: members 0-{n - 1} ({len(groups)} training group(s) of "
        f"{ensemble.group_size}), merged by {ensemble.merge_rule} within groups and size-weighted across them. "
        f"Test AUC {metrics.get('test_auc', float('nan')):.4f} is the mean over the scale's distinct draws "
        f"({int(metrics.get('n_draws', 1))}); data version {summary['data_version']}. Input: "
        + ("one event per record: user_id, item_id, history (the user's earlier item ids, oldest first)"
           if "sequence" in summary else "one raw row per record with exactly the dataset's raw fields")
        + "; output: the merged click probability."))
    return version


def _require_table_version(table: pd.DataFrame, data_version: str, *, what: str, source: str) -> None:
    """A scaling table is of ``data_version`` when its ``data_version`` column says so in every row."""
    found = set(table["data_version"].astype(str)) if "data_version" in table.columns else set()
    require_same_version(found.pop() if len(found) == 1 else None, data_version, what=what, source=source)


def _display_name(e: EnsemblePlan) -> str:
    return e.label if e.group_size == 1 else f"{e.label} (g={e.group_size})"


def summarise_experiment(model_input_summary: dict[str, Any], paths: dict[str, Any], merging: dict[str, Any],
                         logistic_reference: dict[str, Any] | None, *inputs: Any,
                         ensembles: tuple[EnsemblePlan, ...]) -> dict[str, Any]:
    """Tables 1–3 in the paper's layout with significance and diversity, printed and written to
    ``scaling_tables.md``; the DVC metrics (``metrics.json``) as the output.

    ``inputs``: one scaling table per ensemble, then one registration report per ensemble.
    The logistic-regression reference is reported on the split the tables were measured on
    (``merging.split``).
    """
    dataset = model_input_summary["dataset"]
    for e, table in zip(ensembles, inputs[: len(ensembles)]):
        _require_table_version(table, model_input_summary["data_version"], what="summarising the experiment",
                               source=f"the scaling table of {e.name}")
    split = merging.get("split", "test")
    names = [_display_name(e) for e in ensembles]
    if len(set(names)) != len(names):  # two ensembles of the same backbones: keep them apart
        names = [f"{n} [{e.name}]" for n, e in zip(names, ensembles)]
    tables = dict(zip(names, inputs[: len(ensembles)]))
    reports = inputs[len(ensembles):]
    text = experiment_markdown(
        dataset, tables, {n: e.layout for n, e in zip(names, ensembles)},
        bayes_auc=model_input_summary.get("bayes_optimal_auc"), logistic=logistic_reference, split=split,
        alpha=float(merging.get("alpha", 0.05)),
        references={n: getattr(e, "baseline", None) for n, e in zip(names, ensembles)},
        grouping={e.name: {s: e.group_size for s in e.scales} for e in ensembles},
        registered=[r for rep in reports for r in rep.get("registered", [])],
        diversity_split=DIVERSITY_SPLIT,
    )
    out = Path(paths["reporting"]) / dataset / "scaling_tables.md"
    with atomic_file(out) as tmp:
        tmp.write_text(text, encoding="utf-8")
    print(text, flush=True)
    if tracking.tracking_active():
        mlflow.log_artifact(str(out), artifact_path="scaling")
    per_ensemble = metrics_json(dict(zip((e.name for e in ensembles), inputs[: len(ensembles)])))
    metrics: dict[str, Any] = {"dataset": dataset, "data_version": model_input_summary["data_version"], **per_ensemble}
    if model_input_summary.get("bayes_optimal_auc") is not None:
        metrics["bayes_optimal_auc"] = model_input_summary["bayes_optimal_auc"]
    lr = logistic_numbers(logistic_reference, split)
    if lr is not None:
        metrics["lr_auc"], metrics["lr_logloss"] = (v if math.isfinite(v) else None for v in lr)
    return metrics
