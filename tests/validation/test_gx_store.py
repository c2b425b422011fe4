"""The file-backed GX project: stored suites, validation definitions and checkpoints, Data Docs, MLflow.

Every test keeps its GX project in ``tmp_path`` (``gx_root=tmp_path``), so ``tmp_path/gx`` is
created on demand, as in a throwaway Kedro project. ``_fresh_process()`` drops this process's
cached contexts to show what a later run (another process) finds on disk.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pandas as pd
import pytest

from ttsctr import validation
from ttsctr.errors import ConfigError
from ttsctr.validation import (
    DataValidationError,
    build_data_docs,
    gx_context,
    raise_if_failed,
    validate_encoded_split,
    validate_raw_sample,
    validate_split_sizes,
)

RANGES = {"I1": (0, 10), "I2": (10, 5), "C1": (15, 100), "C2": (115, 3)}
RAW_COLUMNS = ["label", "I1", "I2", "C1", "C2"]


def encoded(rows: int = 50, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cols: dict[str, np.ndarray] = {"label": rng.integers(0, 2, rows, dtype=np.int8)}
    for name, (offset, vocab) in RANGES.items():
        cols[name] = (offset + rng.integers(0, vocab, rows)).astype(np.int32)
    cols["true_prob"] = rng.random(rows)
    return pd.DataFrame(cols)


def check(df: pd.DataFrame, root: Path, split: str = "train", **kwargs) -> validation.ValidationReport:
    return validate_encoded_split(df, split=split, field_ranges=kwargs.pop("ranges", RANGES), source=f"{split}.parquet",
                                  gx_root=root, dataset_name="demo", **kwargs)


def page(url: str | None) -> Path:
    assert url and url.startswith("file://"), url
    return Path(unquote(urlparse(url).path))


def gx_files(root: Path, folder: str) -> list[str]:
    base = root / "gx" / folder
    return sorted(str(p.relative_to(base)) for p in base.rglob("*.json")) if base.exists() else []


def stored_json(root: Path, folder: str, name: str) -> dict:
    return json.loads((root / "gx" / folder / name).read_text())


def _fresh_process() -> None:
    validation._GX_STATE.clear()


@pytest.fixture(autouse=True)
def _no_cached_contexts():
    _fresh_process()
    yield
    _fresh_process()


def test_context_created_on_demand_with_data_docs(tmp_path: Path) -> None:
    assert not (tmp_path / "gx").exists()
    report = check(encoded(), tmp_path)
    assert report.success, report.to_text()
    record = report.gx
    assert record.root == str(tmp_path)
    assert (record.suite, record.validation_definition, record.checkpoint, record.run_name) == (
        "demo.encoded", "demo.encoded", "demo.encoded", "train")
    gx_dir = tmp_path / "gx"
    config = (gx_dir / "great_expectations.yml").read_text()
    for part in ("raw_sample", "encoded_split", "split_sizes", "whole_dataframe", "validation_results_limit"):
        assert part in config
    assert "uncommitted/" in (gx_dir / ".gitignore").read_text()
    # stored definitions (GX's layout: dots in the suite name are folders)
    assert gx_files(tmp_path, "expectations") == ["demo/encoded.json"]
    assert gx_files(tmp_path, "validation_definitions") == ["demo.encoded.json"]
    assert gx_files(tmp_path, "checkpoints") == ["demo.encoded.json"]
    checkpoint = stored_json(tmp_path, "checkpoints", "demo.encoded.json")
    assert [a["type"] for a in checkpoint["actions"]] == ["update_data_docs"]
    # the validation result and its Data Docs (the default build_docs=True runs the checkpoint)
    result = json.loads((tmp_path / record.result).read_text())
    assert record.result.startswith("gx/uncommitted/validations/demo/encoded/train/")
    assert result["success"] is True and result["statistics"]["evaluated_expectations"] == 20
    assert result["meta"]["checkpoint_id"] == checkpoint["id"]
    index = gx_dir / "uncommitted" / "data_docs" / "local_site" / "index.html"
    assert record.docs_built and index.is_file() and page(record.data_docs).is_file()
    assert page(record.data_docs).is_relative_to(index.parent / "validations" / "demo" / "encoded" / "train")
    assert page(record.data_docs).relative_to(index.parent).as_posix() in index.read_text()
    assert (index.parent / "expectations" / "demo" / "encoded.html").is_file()
    assert report.to_dict()["gx"]["data_docs"] == record.data_docs


def test_second_validation_reuses_the_stored_objects(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    check(encoded(), tmp_path)
    suite_file = tmp_path / "gx" / "expectations" / "demo" / "encoded.json"
    first = {f: stored_json(tmp_path, f, n) for f, n in (("expectations", "demo/encoded.json"),
                                                         ("validation_definitions", "demo.encoded.json"),
                                                         ("checkpoints", "demo.encoded.json"))}
    mtime = suite_file.stat().st_mtime_ns
    _fresh_process()  # what the next run finds on disk
    caplog.clear()  # the first run's records are captured too when an earlier test set ttsctr's level to INFO
    with caplog.at_level(logging.INFO, logger="ttsctr.validation"):
        for split in ("train", "validation", "test"):
            assert check(encoded(seed=len(split)), tmp_path, split).success
    assert "stored GX expectation suite" not in caplog.text and "updated GX" not in caplog.text
    assert suite_file.stat().st_mtime_ns == mtime  # not rewritten
    for folder, name in (("expectations", "demo/encoded.json"), ("validation_definitions", "demo.encoded.json"),
                         ("checkpoints", "demo.encoded.json")):
        assert stored_json(tmp_path, folder, name) == first[folder]  # same ids, same content
    assert gx_files(tmp_path, "expectations") == ["demo/encoded.json"]
    assert gx_files(tmp_path, "validation_definitions") == ["demo.encoded.json"]
    assert gx_files(tmp_path, "checkpoints") == ["demo.encoded.json"]
    results = gx_files(tmp_path, "uncommitted/validations")
    assert [r.split("/")[2] for r in results].count("train") == 2 and len(results) == 4


def test_new_ranges_replace_the_suite_in_place(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    check(encoded(), tmp_path, expected_rows=50)
    ids = {f: stored_json(tmp_path, f, n)["id"] for f, n in (("expectations", "demo/encoded.json"),
                                                             ("validation_definitions", "demo.encoded.json"),
                                                             ("checkpoints", "demo.encoded.json"))}
    suite_page = tmp_path / "gx" / "uncommitted" / "data_docs" / "local_site" / "expectations" / "demo" / "encoded.html"
    before = suite_page.read_text()
    _fresh_process()
    wider = {**RANGES, "C2": (115, 4)}  # a new encoding: C2 got one more id
    with caplog.at_level(logging.INFO, logger="ttsctr.validation"):
        report = check(encoded(), tmp_path, ranges=wider, expected_rows=50, build_docs=False)
        assert report.success
        build_data_docs(report)
    assert "updated GX expectation suite 'demo.encoded'" in caplog.text
    assert "max:C2 max_value: 117.0 -> 118.0" in caplog.text
    suite = stored_json(tmp_path, "expectations", "demo/encoded.json")
    c2_max = [e for e in suite["expectations"] if e["meta"]["ttsctr_key"] == "max:C2"]
    assert [e["kwargs"]["max_value"] for e in c2_max] == [118]
    rows = [e for e in suite["expectations"] if e["meta"]["ttsctr_key"] == "rows"]
    assert [e["kwargs"]["value"] for e in rows] == [{"$PARAMETER": "expected_rows"}]  # one suite for every split
    assert {f: stored_json(tmp_path, f, n)["id"] for f, n in (("expectations", "demo/encoded.json"),
                                                              ("validation_definitions", "demo.encoded.json"),
                                                              ("checkpoints", "demo.encoded.json"))} == ids
    assert gx_files(tmp_path, "expectations") == ["demo/encoded.json"]
    assert suite_page.read_text() != before  # the suite's page shows the new ranges
    assert "118" in suite_page.read_text()


def test_failure_names_columns_and_rows_and_still_gets_data_docs(tmp_path: Path) -> None:
    bad = encoded()
    bad.loc[[3, 7], "C1"] = 999
    bad.loc[5, "label"] = 2
    reports = [check(bad, tmp_path, build_docs=False),
               validate_split_sizes({"train": 8, "validation": 0}, 9, "fm.json", gx_root=tmp_path,
                                    dataset_name="demo", build_docs=False)]
    assert all(not r.gx.docs_built for r in reports)
    [index] = build_data_docs(*reports)
    assert page(index).is_file()
    with pytest.raises(DataValidationError) as exc:
        raise_if_failed(*reports)
    text = str(exc.value)
    assert text.startswith("Data validation failed: 4 failure(s) in 2 dataset(s)")
    c1 = next(f for f in exc.value.failures if f.column == "C1")
    assert (c1.expectation, c1.offending_values, c1.unexpected_count) == ("expect_column_values_to_be_between", [999], 2)
    assert "first offending rows [3, 7]" in c1.details
    for part in ("column 'C1'", "column 'label'", "offending values: [2]", "first offending split: ['validation']",
                 "Data Docs: file://"):
        assert part in text
    for report in reports:
        assert report.gx.docs_built and page(report.gx.data_docs).is_file()
        assert report.gx.data_docs in text
        assert json.loads((tmp_path / report.gx.result).read_text())["success"] is False
    assert gx_files(tmp_path, "expectations") == ["demo/encoded.json", "demo/splits.json"]


def test_suites_do_not_depend_on_the_data(tmp_path: Path) -> None:
    """Missing columns or a string id column change the report, not the stored suite."""
    check(encoded(), tmp_path)
    suite = stored_json(tmp_path, "expectations", "demo/encoded.json")
    broken = encoded().drop(columns=["I2"])
    broken["C1"] = broken["C1"].astype(str)
    report = check(broken, tmp_path, extra_columns=["true_prob"])
    assert [(f.column, f.expectation) for f in report.failures] == [
        (None, "expect_table_columns_to_match_ordered_list"),
        ("C1", "expect_column_values_to_be_in_type_list"),
    ]
    assert stored_json(tmp_path, "expectations", "demo/encoded.json") == suite
    raw = pd.DataFrame({"label": [0, 1], "I1": [1, 2], "C1": ["a", "b"]}).astype({"C1": "string"})
    first = validate_raw_sample(raw, expected_columns=RAW_COLUMNS, numeric_columns=["I1", "I2"],
                                categorical_columns=["C1", "C2"], source="raw/a.txt", gx_root=tmp_path,
                                dataset_name="demo")
    assert [f.expectation for f in first.failures] == ["expect_table_columns_to_match_ordered_list"]
    assert "missing ['I2', 'C2']" in first.failures[0].details
    raw_suite = stored_json(tmp_path, "expectations", "demo/raw.json")
    assert len(raw_suite["expectations"]) == 8  # every column's expectations, present or not
    assert first.gx.run_name == "a.txt"


def test_stored_checkpoint_runs_by_hand(tmp_path: Path) -> None:
    df = encoded()
    check(df, tmp_path)
    _fresh_process()
    context = gx_context(tmp_path)
    result = context.checkpoints.get("demo.encoded").run(batch_parameters={"dataframe": df})
    assert result.success
    assert len(gx_files(tmp_path, "uncommitted/validations")) == 2


def test_dataset_name_must_be_a_plain_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="dataset_name"):
        validate_encoded_split(encoded(), split="t", field_ranges=RANGES, source="s", gx_root=tmp_path,
                               dataset_name="a.b")
    assert not (tmp_path / "gx").exists()


def test_ephemeral_default_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    report = validate_encoded_split(encoded(), split="train", field_ranges=RANGES, source="s")
    assert report.success and report.gx.root is None and report.gx.data_docs is None
    assert build_data_docs(report) == [] and list(tmp_path.iterdir()) == []


@pytest.fixture
def mlflow_run(tmp_path: Path):
    """An active MLflow run on a sqlite store in tmp_path (artifacts in tmp_path too)."""
    mlflow = pytest.importorskip("mlflow")
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        experiment = mlflow.create_experiment("gx-test", artifact_location=(tmp_path / "artifacts").as_uri())
        with mlflow.start_run(experiment_id=experiment) as run:
            yield mlflow, run
    finally:
        mlflow.set_tracking_uri(previous)


def test_result_attached_to_the_active_mlflow_run(tmp_path: Path, mlflow_run) -> None:
    mlflow, run = mlflow_run
    root = tmp_path / "project"
    good = check(encoded(), root)
    bad = encoded()
    bad.loc[1, "I1"] = 77
    failed = check(bad, root, split="test")
    sizes = validate_split_sizes({"train": 1}, 1, "fm.json", dataset_name="demo")  # in-memory context
    assert good.gx.mlflow_artifact == "gx/demo/encoded/train.json"
    assert sizes.gx.mlflow_artifact == "gx/demo/splits/sizes.json"
    client = mlflow.MlflowClient()
    data = client.get_run(run.info.run_id).data
    assert data.metrics["gx.demo.encoded.train.evaluated_expectations"] == 20
    assert data.metrics["gx.demo.encoded.train.success"] == 1.0
    assert data.metrics["gx.demo.encoded.test.success"] == 0.0
    assert data.metrics["gx.demo.encoded.test.unsuccessful_expectations"] == 1
    assert data.tags["gx.demo.encoded.test.success"] == "false"
    assert data.tags["gx.demo.encoded.train.data_docs"] == good.gx.data_docs
    names = {f.path for f in client.list_artifacts(run.info.run_id, "gx/demo/encoded")}
    assert names == {"gx/demo/encoded/train.json", "gx/demo/encoded/test.json", "gx/demo/encoded/test.failures.txt"}
    artifacts = Path(unquote(urlparse(run.info.artifact_uri).path))
    logged = json.loads((artifacts / "gx/demo/encoded/train.json").read_text())
    assert logged == json.loads((root / good.gx.result).read_text())  # the stored GX result
    assert logged["success"] is True and logged["statistics"]["evaluated_expectations"] == 20
    text = (artifacts / "gx/demo/encoded/test.failures.txt").read_text()
    assert "column 'I1'" in text and "offending values: [77]" in text and failed.gx.data_docs in text
    assert json.loads((artifacts / "gx/demo/splits/sizes.json").read_text())["success"] is True


def test_nothing_logged_without_an_active_run(tmp_path: Path) -> None:
    mlflow = pytest.importorskip("mlflow")
    assert mlflow.active_run() is None
    report = check(encoded(), tmp_path)
    assert report.gx.mlflow_artifact is None
