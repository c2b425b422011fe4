"""Helpers for the data_processing pipeline tests: throwaway projects, `kedro run`, output snapshots."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from projecthelpers import make_project, run_kedro

MODEL_INPUT = Path("data") / "05_model_input"
PUBLISHED_FILES = ("train.parquet", "validation.parquet", "test.parquet", "feature_map.json", "vocabulary.parquet")
# rich (Kedro's log and traceback handler) wraps at 80 columns when not on a terminal; run_dp asks
# for a wide console so that each log line and the exception message stay on one line to grep


def new_project(tmp_path: Path, parameters: dict[str, Any] | None, mlflow_db: Path | None) -> Path:
    """``make_project`` plus a copy of an initialised (empty) MLflow database, which saves
    each project the ~4 s of MLflow's table creation on its first run."""
    project = make_project(tmp_path, parameters)
    if mlflow_db is not None:
        shutil.copy2(mlflow_db, project / "mlflow.db")
    return project


def params_arg(params: dict[str, Any]) -> str:
    for key, value in params.items():
        if "," in f"{key}={value}":
            raise ValueError(f"--params cannot carry a comma: {key}={value}")
    return ",".join(f"{k}={v}" for k, v in params.items())


def run_dp(project: Path, params: dict[str, Any] | None = None, *, check: bool = True, columns: int = 250) -> subprocess.CompletedProcess:
    """``kedro run --pipelines data_processing [--params ...]`` in ``project``."""
    args = ["--pipelines", "data_processing"]
    if params:
        args += ["--params", params_arg(params)]
    return run_kedro(project, *args, check=check, timeout=300, env={"COLUMNS": str(columns)})


def one_line(text: str) -> str:
    """Whitespace collapsed (rich may still wrap very long lines)."""
    return re.sub(r"\s+", " ", text)


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """name -> (mtime_ns, size) of every data file under ``folder`` (empty when it does not exist).

    Datasets' lock files (``<dataset>.lock``, rewritten by every run that takes the lock) are no data.
    """
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(folder.rglob("*"))
            if p.is_file() and p.suffix != ".lock"}


def leftovers(project: Path) -> list[str]:
    """Staging, temporary or old folders left in data/05_model_input."""
    root = project / MODEL_INPUT
    if not root.exists():
        return []
    return sorted(p.name for p in root.iterdir() if p.name.startswith(".") or ".old" in p.name or "staging" in p.name)


def summary(project: Path, dataset: str) -> dict[str, Any]:
    return json.loads((project / MODEL_INPUT / f"{dataset}.summary.json").read_text())


def feature_map(project: Path, dataset: str) -> dict[str, Any]:
    return json.loads((project / MODEL_INPUT / dataset / "feature_map.json").read_text())


def assert_feature_map_consistent(fmap: dict[str, Any], field_names: list[str]) -> None:
    """Fields in reader order, offsets cumulative from 0, OOV/missing ids at offset+0/+1."""
    assert [f["name"] for f in fmap["fields"]] == field_names
    offset = 0
    for j, f in enumerate(fmap["fields"]):
        assert f["index"] == j and f["offset"] == offset, f
        assert f["vocab_size"] >= 2 and f["oov_global_id"] == offset and f["missing_global_id"] == offset + 1, f
        offset += f["vocab_size"]
    assert fmap["num_features"] == offset and fmap["num_fields"] == len(field_names)
    assert sum(s["rows"] for s in fmap["splits"].values()) == fmap["total_rows"]
    assert sum(s["positives"] for s in fmap["splits"].values()) == fmap["total_positives"]


def assert_published_outputs(project: Path, dataset: str) -> Path:
    folder = project / MODEL_INPUT / dataset
    for name in PUBLISHED_FILES:
        assert (folder / name).is_file(), f"{folder / name} missing"
    assert (project / MODEL_INPUT / f"{dataset}.summary.json").is_file()
    assert leftovers(project) == []
    return folder


# ---- in-process node runs (no Kedro session) -----------------------------------------------
def base_datasets() -> dict[str, Any]:
    """``datasets`` of conf/base/parameters_data_processing.yml (plain YAML below that key)."""
    import yaml

    from projecthelpers import REPO_ROOT

    params = yaml.safe_load((REPO_ROOT / "conf" / "base" / "parameters_data_processing.yml").read_text())
    return params["datasets"]


def criteo_format_file(path: Path, n_rows: int = 3000) -> Path:
    """A Criteo-format click log (the synthetic generator's text file, without its sidecars)."""
    from ttsctr.data.synthetic import generate_synthetic

    generate_synthetic(path, n_rows=n_rows, seed=1, compute_auc=False)
    for sidecar in path.parent.glob(path.name + ".*"):
        sidecar.unlink()
    return path


def run_nodes(dataset: str, raw_path: Any, root: Path, *, preprocessing: dict | None = None,
              validation: dict | None = None, until: str = "publish") -> dict[str, Any]:
    """The data_processing nodes in pipeline order, in this process; returns every output."""
    from ttsctr.pipelines.data_processing import nodes

    datasets = base_datasets()
    datasets[dataset]["preprocessing"].update(preprocessing or {})
    validation = {"raw_sample_rows": 100_000, "encoded_sample_rows": 200_000, **(validation or {})}
    out: dict[str, Any] = {"source": nodes.resolve_raw_source(dataset, raw_path, datasets, str(root))}
    if until == "resolve":
        return out
    out["raw_report"] = nodes.validate_raw_data(out["source"], validation)
    out["staged"] = nodes.encode_to_staging(out["source"], out["raw_report"], str(root))
    if until == "encode":
        return out
    out["encoded_report"] = nodes.validate_encoded_data(out["staged"], validation)
    out["summary"] = nodes.publish_model_input(out["staged"], out["encoded_report"], str(root))
    (root / f"{dataset}.summary.json").write_text(json.dumps(out["summary"]))  # what the catalog does
    return out
