"""Register each merged ensemble at every scale and write the paper-layout tables.

Every scale K of an ensemble becomes one version of the MLflow pyfunc model
``ttsctr-<dataset>-<ensemble>`` holding the first K units' groups (whole training groups), so
``mlflow.pyfunc.load_model("models:/ttsctr-<dataset>-<ensemble>/<version>")`` turns raw rows into
the merged probabilities that the pipeline measured.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd

from ttsctr import tracking
from ttsctr.data.io import atomic_file
from ttsctr.experiment import EnsemblePlan
from ttsctr.reporting import grouping_markdown, metrics_json, scaling_markdown
from ttsctr.serving import log_ensemble_model

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
    dataset = model_input_summary["dataset"]
    report: dict[str, Any] = {"ensemble": ensemble.name, "dataset": dataset, "registered": []}
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
    for row in table.itertuples():
        mlflow.log_metrics({f"{ensemble.name}.auc_{row.scale}x": float(row.auc_mean),
                            f"{ensemble.name}.logloss_{row.scale}x": float(row.logloss_mean)})
    if not registry.get("register_ensembles", True):
        return report
    model_name = tracking.ensemble_model_name(dataset, ensemble.name)
    for scale in ensemble.scales:
        groups = groups_at_scale(ensemble, scale, list(trained))
        tags = {"scale": str(scale), "ensemble": ensemble.name, "dataset": dataset,
                "config_hashes": ",".join(g["config_hash"] for g in groups),
                "data_version": model_input_summary["data_version"]}
        existing = tracking.find_model_version(model_name, tags)
        if existing is None:
            info = log_ensemble_model(name=f"{ensemble.name}_x{scale}", model_input_dir=model_input_summary["model_input_dir"],
                                      group_checkpoints=[g["checkpoint"] for g in groups],
                                      registered_model_name=model_name, tags=tags)
            version = str(info.registered_model_version)
        else:
            version = str(existing.version)
        report["registered"].append({"scale": scale, "model": model_name, "version": version,
                                     "uri": f"models:/{model_name}/{version}"})
    return report


def summarise_experiment(model_input_summary: dict[str, Any], paths: dict[str, Any], *inputs: Any,
                         ensembles: tuple[EnsemblePlan, ...]) -> dict[str, Any]:
    """Tables 1–3 in the paper's layout, printed and written; the DVC metrics as the output."""
    dataset = model_input_summary["dataset"]
    tables = dict(zip((e.name for e in ensembles), inputs[: len(ensembles)]))
    reports = inputs[len(ensembles):]
    parts = [f"# Test-time scaling on {dataset}\n"]
    if model_input_summary.get("bayes_optimal_auc") is not None:
        parts.append(f"Bayes-optimal test AUC (planted model): {model_input_summary['bayes_optimal_auc']:.4f}\n")
    for layout, title in (("homogeneous", "Table 1: homogeneous"), ("heterogeneous", "Table 2: heterogeneous")):
        chosen = {e.label if e.group_size == 1 else f"{e.label} (g={e.group_size})": tables[e.name]
                  for e in ensembles if e.layout == layout}
        if chosen:
            parts.append(f"## {title}\n\n" + scaling_markdown(chosen, layout=layout, dataset=dataset))
    grouping = {e.name: {s: e.group_size for s in e.scales} for e in ensembles}
    parts.append("## Table 3: group size M/K per scale\n\n" + grouping_markdown({dataset: grouping}))
    registered = [r for rep in reports for r in rep.get("registered", [])]
    if registered:
        parts.append("## Registered ensembles\n\n" + "\n".join(f"- {r['uri']} (scale {r['scale']}×)" for r in registered) + "\n")
    text = "\n".join(parts)
    out = Path(paths["reporting"]) / dataset / "scaling_tables.md"
    with atomic_file(out) as tmp:
        tmp.write_text(text, encoding="utf-8")
    print(text, flush=True)
    if tracking.tracking_active():
        mlflow.log_artifact(str(out), artifact_path="scaling")
    metrics = {"dataset": dataset, **metrics_json(tables)}
    if model_input_summary.get("bayes_optimal_auc") is not None:
        metrics["bayes_optimal_auc"] = model_input_summary["bayes_optimal_auc"]
    return metrics
