"""Gather what the pipelines wrote under ``data/08_reporting/<dataset>/`` for the HTML report.

For each dataset: the prediction-merging scaling tables (``<ensemble>/scaling.{csv,md,png}``), the
six baseline comparisons (``<comparison>/table.{csv,md}``, ``plot.png``) and the analyses
(``analysis/``), each with its provenance: dataset, data version, sizes and seeds, and the MLflow
run(s) it was logged in (looked up in the tracking store by the tags the pipelines set; a store
that does not exist is never created here). The encoded data's summary and the logistic-regression
reference come from ``data/05_model_input`` and ``data/06_models``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ttsctr.errors import ConfigError
from ttsctr.experiment import ensemble_description, plan_ensemble
from ttsctr.report.results import DatasetResults, EnsembleResult

log = logging.getLogger(__name__)

__all__ = ["COMPARISONS", "DatasetReport", "RunIndex", "Section", "collect_dataset", "discover_datasets"]

COMPARISONS = ("param_scaling", "width_scaling", "model_merging", "orthogonality", "training_free", "efficiency")
_SKIP_DIRS = {"registry", "analysis", *COMPARISONS}


@dataclass(frozen=True, eq=False)
class Section:
    """One table or figure of the report: its Markdown (as the pipeline wrote it), images and
    provenance (``dataset``, ``data_version``, ``sizes``, ``mlflow_runs``, ``files``)."""

    kind: str          # "ensemble", a comparison name, or "analysis"
    name: str
    title: str
    markdown: str | None
    images: tuple[Path, ...]
    provenance: Mapping[str, Any]


@dataclass(frozen=True, eq=False)
class DatasetReport:
    dataset: str
    summary: Mapping[str, Any] | None          # data/05_model_input/<dataset>.summary.json
    logistic: Mapping[str, Any] | None         # data/06_models/<dataset>/logistic_reference.json
    results: DatasetResults                    # what the claims are computed from
    sections: tuple[Section, ...] = field(default=())


class RunIndex:
    """MLflow runs of the pipelines, found by their tags in an existing tracking store."""

    def __init__(self, tracking_uri: str | None, root: Path) -> None:
        self._client = None
        if not tracking_uri:
            return
        if tracking_uri.startswith("sqlite:///"):
            path = Path(tracking_uri[len("sqlite:///"):])
            path = path if path.is_absolute() else root / path
            if not path.exists():
                return
            tracking_uri = f"sqlite:///{path}"
        import mlflow
        from mlflow.exceptions import MlflowException

        try:
            client = mlflow.MlflowClient(tracking_uri=tracking_uri)
            self._experiments = [e.experiment_id for e in client.search_experiments()]
        except (MlflowException, OSError) as exc:  # an unusable store: the report says "not found"
            log.warning("report: MLflow tracking store %s unusable (%s); runs are not linked", tracking_uri, exc)
            return
        self._client = client

    def _search(self, tags: Mapping[str, str]) -> list[Any]:
        if self._client is None or not self._experiments:
            return []
        query = " and ".join(f"tags.{k} = '{v}'" for k, v in tags.items())
        return self._client.search_runs(self._experiments, query, order_by=["attributes.start_time DESC"],
                                        max_results=200)

    def latest(self, tags: Mapping[str, str], data_version: str | None = None) -> dict[str, Any] | None:
        """The newest run with ``tags``; with ``data_version``, the newest tagged with it, else the
        newest run not tagged with any data version (logged before runs carried one)."""
        runs = self._search(tags)
        if data_version:
            runs = ([r for r in runs if r.data.tags.get("data_version") == data_version]
                    or [r for r in runs if "data_version" not in r.data.tags])
        if not runs:
            return None
        run = runs[0]
        return {"run_id": run.info.run_id, "run_name": run.info.run_name, "params": dict(run.data.params)}

    def by_scale(self, tags: Mapping[str, str]) -> dict[int, str]:
        out: dict[int, str] = {}
        for run in self._search(tags):  # newest first: keep the latest run of each scale
            scale = run.data.tags.get("scale")
            if scale is not None and int(scale) not in out:
                out[int(scale)] = run.info.run_id
        return dict(sorted(out.items()))


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from exc


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not a readable CSV table ({exc})") from exc


def _text(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.exists() else None


def discover_datasets(reporting: Path) -> list[str]:
    """Datasets with at least one scaling table, comparison table or analysis under ``reporting``."""
    if not reporting.is_dir():
        return []
    found = []
    for d in sorted(p for p in reporting.iterdir() if p.is_dir()):
        if any(d.glob("*/scaling.csv")) or any(d.glob("*/table.csv")) or (d / "analysis" / "summary.json").exists():
            found.append(d.name)
    return found


def _stale(found: str | None, current: str | None) -> str | None:
    """Why a table cannot stand for the dataset's current encoding, or None when it can."""
    if current is None or found == current:
        return None
    return (f"computed from data version {found or 'unknown (written before tables recorded one)'}, but the "
            f"dataset is now encoded as {current}: left out of the claims; rerun its pipeline")


def _data_version(table: pd.DataFrame) -> str | None:
    if "data_version" in table.columns and len(table):
        versions = sorted({str(v) for v in table["data_version"].dropna()})
        return ", ".join(versions) if versions else None
    return None


def _ensemble_section(root: Path, folder: Path, dataset: str, tts: Mapping[str, Any], runs: RunIndex,
                      current: str | None) -> tuple[Section, EnsembleResult | None]:
    name = folder.name
    table = _read_csv(folder / "scaling.csv")
    description = _read_json(folder / "ensemble.json")  # written by the merging node
    catalog = tts.get("ensemble_catalog") or {}
    reconstructed = description is None and name in catalog
    if reconstructed:  # tables merged before ensemble.json existed
        defaults = {k: v for k, v in (tts.get("defaults") or {}).items() if k != "baseline"}
        description = ensemble_description(plan_ensemble(name, catalog[name], defaults))
    result, sizes = None, {"configuration": f"{name}: no ensemble.json beside the table and not in "
                                            "tts.ensemble_catalog; its layout is unknown (rerun its merging)"}
    if description is not None:
        seeds = description["seeds"]
        sizes = {"layout": description["layout"], "backbones": "+".join(description["backbones"]),
                 "members": description["members"], "presets": ", ".join(description["presets"]),
                 "seeds": f"{min(seeds)}–{max(seeds)}", "group_size": description["group_size"],
                 "scales": ", ".join(f"{s}×" for s in description["scales"]), "merge rule": description["merge_rule"]}
        if description.get("baseline"):
            sizes["tested against"] = description["baseline"]
        if reconstructed:
            sizes["configuration"] = "reconstructed from the current tts.ensemble_catalog (no ensemble.json)"
        result = EnsembleResult(name=name, layout=description["layout"], backbones=tuple(description["backbones"]),
                                group_size=int(description["group_size"]), baseline=description.get("baseline"),
                                table=table)
    version = _data_version(table)
    stale = _stale(version, current)
    if stale:
        sizes["stale"], result = stale, None
    tags = {"ensemble": name, "dataset": dataset, **({"data_version": version} if version and "," not in version else {})}
    provenance = {"dataset": dataset, "data_version": version, "sizes": sizes,
                  "mlflow_runs": {f"{s}×": r for s, r in runs.by_scale(tags).items()},
                  "files": [str(p.relative_to(root)) for p in sorted(folder.glob("*")) if p.is_file()]}
    images = tuple(p for p in (folder / "scaling.png",) if p.exists())
    section = Section("ensemble", name, f"Test-time scaling: {name}", _text(folder / "scaling.md"), images, provenance)
    return section, result


def _comparison_section(root: Path, folder: Path, dataset: str, runs: RunIndex, current: str | None
                        ) -> tuple[Section, pd.DataFrame | None]:
    name = folder.name
    table = _read_csv(folder / "table.csv")
    version = _data_version(table)
    run = runs.latest({"comparison": name, "dataset": dataset}, version)
    params = (run or {}).get("params", {})
    sizes = {k: v for k, v in sorted(params.items())} or {"parameters": "not found in MLflow"}
    if "draws" in table.columns:
        sizes["draws per cell"] = ", ".join(str(int(v)) for v in sorted(table["draws"].dropna().unique()))
    stale = _stale(version, current)
    if stale:
        sizes["stale"] = stale
    provenance = {"dataset": dataset, "data_version": version, "sizes": sizes,
                  "mlflow_runs": {run["run_name"]: run["run_id"]} if run else {},
                  "files": [str(p.relative_to(root)) for p in sorted(folder.glob("*")) if p.is_file()]}
    images = tuple(p for p in (folder / "plot.png",) if p.exists())
    title = name.replace("_", " ").capitalize()
    return Section(name, name, title, _text(folder / "table.md"), images, provenance), None if stale else table


def _analysis_section(root: Path, folder: Path, dataset: str, runs: RunIndex) -> Section | None:
    summary = _read_json(folder / "summary.json")
    if summary is None:
        return None
    sizes = {e["name"]: f"{e['layout']} {'+'.join(e['backbones'])}, {e['members']} members, seeds "
                        f"{e['seeds'][0]}–{e['seeds'][-1]}, group size {e['group_size']}" for e in summary["ensembles"]}
    settings = summary.get("settings") or {}
    sizes["draws per scale (before removing repeats)"] = settings.get("draws")
    run = runs.latest({"analysis": "analysis", "dataset": dataset}, summary.get("data_version"))
    provenance = {"dataset": dataset, "data_version": summary.get("data_version"), "sizes": sizes,
                  "mlflow_runs": {run["run_name"]: run["run_id"]} if run else {},
                  "files": [str(p.relative_to(root)) for p in sorted(folder.glob("*")) if p.is_file()]}
    images = tuple(p for p in (folder / f"{n}.png" for n in ("separation", "diversity", "selection")) if p.exists())
    return Section("analysis", "analysis", "Why merging works (§3.6)", _text(folder / "analysis.md"), images, provenance)


def collect_dataset(root: Path, dataset: str, tts: Mapping[str, Any], runs: RunIndex,
                    reporting: str = "data/08_reporting", model_input: str = "data/05_model_input",
                    models: str = "data/06_models") -> DatasetReport:
    """Everything the report shows for ``dataset`` (paths relative to the project ``root``)."""
    base = root / reporting / dataset
    summary = _read_json(root / model_input / f"{dataset}.summary.json")
    current = (summary or {}).get("data_version")
    sections: list[Section] = []
    ensembles: dict[str, EnsembleResult] = {}
    for folder in sorted(p for p in base.iterdir() if p.is_dir() and p.name not in _SKIP_DIRS):
        if (folder / "scaling.csv").exists():
            section, result = _ensemble_section(root, folder, dataset, tts, runs, current)
            sections.append(section)
            if result is not None:
                ensembles[result.name] = result
    baselines: dict[str, pd.DataFrame] = {}
    for name in COMPARISONS:
        if (base / name / "table.csv").exists():
            section, table = _comparison_section(root, base / name, dataset, runs, current)
            sections.append(section)
            if table is not None:
                baselines[name] = table
    analysis = _analysis_section(root, base / "analysis", dataset, runs)
    if analysis is not None:
        sections.append(analysis)
    return DatasetReport(
        dataset=dataset,
        summary=summary,
        logistic=_read_json(root / models / dataset / "logistic_reference.json"),
        results=DatasetResults(dataset=dataset, ensembles=ensembles, baselines=baselines),
        sections=tuple(sections),
    )
