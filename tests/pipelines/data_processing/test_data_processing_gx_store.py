"""The data_processing gates keep their Great Expectations trace: a file GX project (``gx/``),
stored suites, validation definitions and checkpoints reused across runs, validation results,
Data Docs, and the results attached to the run's MLflow run.

In-process node runs keep ``gx/`` next to their model input folder (it is in no Kedro project);
``kedro run`` keeps it at the project root.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from dphelpers import criteo_format_file, new_project, one_line, run_dp, run_nodes

DEFINITIONS = ("raw", "encoded", "splits")
INDEX = Path("gx") / "uncommitted" / "data_docs" / "local_site" / "index.html"


def as_path(url: str) -> Path:
    assert url.startswith("file://"), url
    return Path(unquote(urlparse(url).path))


def stored(project: Path, dataset: str) -> dict[str, list[str]]:
    gx = project / "gx"
    return {
        "expectations": sorted(str(p.relative_to(gx / "expectations")) for p in (gx / "expectations").rglob("*.json")),
        "validation_definitions": sorted(p.name for p in (gx / "validation_definitions").glob("*.json")),
        "checkpoints": sorted(p.name for p in (gx / "checkpoints").glob("*.json")),
    }


def expected_definitions(dataset: str) -> dict[str, list[str]]:
    return {
        "expectations": [f"{dataset}/{s}.json" for s in sorted(DEFINITIONS)],
        "validation_definitions": [f"{dataset}.{s}.json" for s in sorted(DEFINITIONS)],
        "checkpoints": [f"{dataset}.{s}.json" for s in sorted(DEFINITIONS)],
    }


def results(project: Path, dataset: str) -> list[tuple[str, str]]:
    """(stage, run name) of every stored validation result of ``dataset``."""
    base = project / "gx" / "uncommitted" / "validations" / dataset
    return sorted((p.relative_to(base).parts[0], p.relative_to(base).parts[1]) for p in base.rglob("*.json"))


def suite(project: Path, dataset: str, stage: str) -> dict:
    return json.loads((project / "gx" / "expectations" / dataset / f"{stage}.json").read_text())


def ranges_in_suite(project: Path, dataset: str) -> dict[str, tuple[float, float]]:
    return {e["kwargs"]["column"]: (e["kwargs"]["min_value"], e["kwargs"]["max_value"])
            for e in suite(project, dataset, "encoded")["expectations"] if e["meta"]["ttsctr_key"].startswith("max:")}


def ranges_in_feature_map(feature_map: dict) -> dict[str, tuple[int, int]]:
    return {f["name"]: (f["offset"], f["offset"] + f["vocab_size"] - 1) for f in feature_map["fields"]}


# ---- nodes in this process ---------------------------------------------------------------------
def test_nodes_store_reuse_and_document(tmp_path: Path) -> None:
    raw = criteo_format_file(tmp_path / "raw" / "train.txt", n_rows=1500)
    root = tmp_path / "05_model_input"
    first = run_nodes("criteo", str(raw), root, preprocessing={"min_count": 2})
    assert stored(tmp_path, "criteo") == expected_definitions("criteo")
    runs = [("encoded", "test"), ("encoded", "train"), ("encoded", "validation"), ("raw", "train.txt"),
            ("splits", "sizes")]
    assert results(tmp_path, "criteo") == runs
    index = tmp_path / INDEX
    assert first["raw_report"]["data_docs"] == first["encoded_report"]["data_docs"] == index.as_uri()
    for report in first["raw_report"]["reports"]:
        assert report["gx"]["suite"] == "criteo.raw" and as_path(report["gx"]["data_docs"]).is_file()
    assert ranges_in_suite(tmp_path, "criteo") == ranges_in_feature_map(first["staged"]["feature_map"])
    raw_suite = (tmp_path / "gx" / "expectations" / "criteo" / "raw.json").read_text()
    ids = {f: json.loads((tmp_path / "gx" / f / "criteo.encoded.json").read_text())["id"]
           for f in ("validation_definitions", "checkpoints")}

    # another encoding of the same file: the encoded suite now holds its ranges, nothing is duplicated
    second = run_nodes("criteo", str(raw), root, preprocessing={"min_count": 3})
    assert ranges_in_feature_map(second["staged"]["feature_map"]) != ranges_in_feature_map(first["staged"]["feature_map"])
    assert ranges_in_suite(tmp_path, "criteo") == ranges_in_feature_map(second["staged"]["feature_map"])
    assert (tmp_path / "gx" / "expectations" / "criteo" / "raw.json").read_text() == raw_suite
    assert stored(tmp_path, "criteo") == expected_definitions("criteo")
    assert {f: json.loads((tmp_path / "gx" / f / "criteo.encoded.json").read_text())["id"]
            for f in ("validation_definitions", "checkpoints")} == ids
    assert results(tmp_path, "criteo") == sorted(runs * 2)
    pages = list((index.parent / "validations" / "criteo" / "encoded" / "train").rglob("*.html"))
    assert len(pages) == 2 and index.is_file()


def test_gx_root_parameter(tmp_path: Path) -> None:
    raw = criteo_format_file(tmp_path / "raw" / "train.txt", n_rows=500)
    elsewhere = tmp_path / "elsewhere"
    out = run_nodes("criteo", str(raw), tmp_path / "a" / "05_model_input", preprocessing={"min_count": 2},
                    validation={"gx_root": str(elsewhere)})
    assert out["encoded_report"]["data_docs"] == (elsewhere / INDEX).as_uri()
    assert stored(elsewhere, "criteo") == expected_definitions("criteo")
    assert not (tmp_path / "a" / "gx").exists()
    # false: the in-memory context, nothing written anywhere
    out = run_nodes("criteo", str(raw), tmp_path / "b" / "05_model_input", preprocessing={"min_count": 2},
                    validation={"gx_root": False})
    assert out["encoded_report"]["data_docs"] is None and not (tmp_path / "b" / "gx").exists()
    assert all(r["gx"]["root"] is None for r in out["raw_report"]["reports"])


# ---- kedro run ---------------------------------------------------------------------------------
N_ROWS = 3000


@dataclass
class Runs:
    project: Path
    first: subprocess.CompletedProcess
    second: subprocess.CompletedProcess


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, mlflow_db: Path) -> Runs:
    project = new_project(tmp_path_factory.mktemp("dp_gx"), {"datasets": {"synthetic": {"generate": {"n_rows": N_ROWS}}}},
                          mlflow_db)
    assert not (project / "gx").exists()
    first = run_dp(project)
    second = run_dp(project, {"datasets.synthetic.preprocessing.min_count": 2})  # re-encodes
    return Runs(project, first, second)


def test_kedro_run_creates_the_gx_project_and_data_docs(runs: Runs) -> None:
    project = runs.project
    assert (project / "gx" / "great_expectations.yml").is_file()
    assert stored(project, "synthetic") == expected_definitions("synthetic")
    index = project / INDEX
    out = one_line(runs.first.stdout)
    assert "created the Great Expectations project" in out
    assert f"GX Data Docs: {index.as_uri()}" in out
    html = index.read_text()
    for stage, run in (("raw", "train.txt"), ("encoded", "train"), ("encoded", "validation"), ("encoded", "test"),
                       ("splits", "sizes")):
        pages = sorted((index.parent / "validations" / "synthetic" / stage / run).rglob("*.html"))
        assert len(pages) == 2, (stage, run)  # one per run
        assert all(p.relative_to(index.parent).as_posix() in html for p in pages)


def test_second_run_replaces_the_encoded_suite_without_duplicates(runs: Runs) -> None:
    out = one_line(runs.second.stdout)
    assert "updated GX expectation suite 'synthetic.encoded'" in out
    assert "stored GX expectation suite" not in out and "created the Great Expectations project" not in out
    assert "updated GX expectation suite 'synthetic.raw'" not in out
    feature_map = json.loads((runs.project / "data" / "05_model_input" / "synthetic" / "feature_map.json").read_text())
    assert ranges_in_suite(runs.project, "synthetic") == ranges_in_feature_map(feature_map)
    assert stored(runs.project, "synthetic") == expected_definitions("synthetic")


def test_results_attached_to_the_mlflow_runs(runs: Runs) -> None:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{runs.project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("ttsctr")
    found = client.search_runs([experiment.experiment_id])
    assert len(found) == 2
    for run in found:
        data = run.data
        artifacts = as_path(run.info.artifact_uri) if run.info.artifact_uri.startswith("file:") else Path(
            run.info.artifact_uri)
        for stage, name in (("raw", "train.txt"), ("encoded", "train"), ("encoded", "validation"),
                            ("encoded", "test"), ("splits", "sizes")):
            logged = json.loads((artifacts / "gx" / "synthetic" / stage / f"{name}.json").read_text())
            assert logged["success"] is True
            key = f"gx.synthetic.{stage}.{name}"
            assert data.metrics[f"{key}.success"] == 1.0
            assert data.metrics[f"{key}.evaluated_expectations"] == logged["statistics"]["evaluated_expectations"] > 0
            assert data.tags[f"{key}.success"] == "true"
            assert as_path(data.tags[f"{key}.data_docs"]).is_file()
        assert data.metrics["gx.synthetic.encoded.train.evaluated_expectations"] == 160  # 39 fields x 4 + 4
