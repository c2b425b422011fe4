"""The data_processing pipeline on the real samples in ../shared/data.

Criteo (train file), MovieLens-100K, the KDD12 fixture's failing default and its click_positive
mode go through `kedro run --pipelines data_processing --params ...` in a throwaway project; the
three-file Criteo glob and the KDD12 impression_expand mode call the nodes in this process (the
subprocess would add only what the other runs already show).

Row counts and positives are the ones the samples' ``SOURCE.md`` files state (checked against the
``SOURCE.md`` text too, so a changed sample fails loudly instead of silently re-baselining). The
files are read where they are (never copied into the repository); a test is skipped when its
sample is absent.
"""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from dphelpers import (
    MODEL_INPUT,
    assert_feature_map_consistent,
    assert_published_outputs,
    feature_map,
    leftovers,
    new_project,
    one_line,
    run_dp,
    run_nodes,
    summary,
)
from projecthelpers import shared_file

from ttsctr.data.readers import CRITEO_CATEGORICAL, CRITEO_NUMERIC

pytestmark = pytest.mark.shared_data

CRITEO_COLUMNS = ["label", *CRITEO_NUMERIC, *CRITEO_CATEGORICAL]
KDD12_FIELDS = ["DisplayURL", "AdID", "AdvertiserID", "Depth", "Position", "QueryID", "KeywordID", "TitleID", "DescriptionID", "UserID"]
MOVIELENS_FIELDS = ["user_id", "item_id", "age", "gender", "occupation", "zip_prefix", "genres"]


def source_md(*parts: str) -> str:
    return one_line(shared_file(*parts, "SOURCE.md").read_text())


def split_tables(project: Path, dataset: str) -> dict[str, "pq.ParquetFile"]:
    folder = project / MODEL_INPUT / dataset
    return {s: pq.read_table(folder / f"{s}.parquet") for s in ("train", "validation", "test")}


def assert_totals(project: Path, dataset: str, rows: int, positives: int) -> dict:
    info = summary(project, dataset)
    assert (info["rows"], info["positives"]) == (rows, positives)
    assert sum(s["rows"] for s in info["splits"].values()) == rows
    fmap = feature_map(project, dataset)
    assert (fmap["total_rows"], fmap["total_positives"]) == (rows, positives)
    return info


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, mlflow_db: Path) -> Path:
    """One project for the Criteo and MovieLens runs (each dataset publishes to its own folder)."""
    return new_project(tmp_path_factory.mktemp("dp_real"), None, mlflow_db)


# ---- Criteo ---------------------------------------------------------------------------------
def test_criteo_sample(project: Path) -> None:
    raw = shared_file("criteo", "wide-resdnn_train.txt.gz")
    assert re.search(r"\| wide-resdnn_train\.txt\.gz \| 7200 \| 1549 \|", source_md("criteo"))
    run_dp(project, {"dataset": "criteo", "raw_path": raw, "datasets.criteo.preprocessing.min_count": 2})
    assert_published_outputs(project, "criteo")
    info = assert_totals(project, "criteo", 7200, 1549)
    assert info["positive_rate"] == pytest.approx(0.2151, abs=5e-5)
    assert info["raw_files"] == [str(raw)] and "bayes_optimal_auc" not in info
    fmap = feature_map(project, "criteo")
    assert_feature_map_consistent(fmap, CRITEO_COLUMNS[1:])
    assert fmap["preprocess"]["min_count"] == 2 and fmap["dataset"] == "criteo"
    assert [f["kind"] for f in fmap["fields"]] == ["numeric"] * 13 + ["categorical"] * 26
    assert all(f["vocab_size"] > 2 for f in fmap["fields"])  # min_count 2 keeps values in every field
    for split, table in split_tables(project, "criteo").items():
        assert table.column_names == CRITEO_COLUMNS, split  # 40 columns in Kaggle order, no extras
        assert table.num_rows == info["splits"][split]["rows"]
    for split, share in (("train", 0.8), ("validation", 0.1), ("test", 0.1)):
        assert info["splits"][split]["rows"] / 7200 == pytest.approx(share, abs=0.02)


def test_criteo_sample_from_its_three_files(tmp_path: Path) -> None:
    """The sample comes as train/dev/test files: a glob reads them as one log, in name order.
    (On the nodes: ``raw_path`` reaches them as the same string from ``--params``.)"""
    files = [shared_file("criteo", f"wide-resdnn_{s}.txt.gz") for s in ("dev", "test", "train")]
    assert re.search(r"\| all \| 8000 \| 1728 \|", source_md("criteo"))
    root = tmp_path / "05_model_input"
    out = run_nodes("criteo", str(files[0].parent / "wide-resdnn_*.txt.gz"), root, preprocessing={"min_count": 2})
    info = out["summary"]
    assert (info["rows"], info["positives"]) == (7200 + 409 + 391, 1549 + 93 + 86)
    assert info["raw_files"] == [str(f) for f in files]
    fmap = out["staged"]["feature_map"]
    assert (fmap["total_rows"], fmap["total_positives"]) == (8000, 1728)
    assert [Path(f["path"]).name for f in fmap["raw"]["files"]] == [f.name for f in files]
    assert_feature_map_consistent(fmap, CRITEO_COLUMNS[1:])
    assert sorted(p.name for p in root.iterdir()) == ["criteo", "criteo.lock", "criteo.summary.json"]


# ---- MovieLens-100K -------------------------------------------------------------------------
def test_movielens_100k(project: Path) -> None:
    raw = shared_file("movielens-100k", "u.data.gz")
    text = source_md("movielens-100k")
    assert "| u.data.gz | 100000 |" in text and "55,375 / 100,000" in text
    run_dp(project, {"dataset": "movielens", "raw_path": raw})
    assert_published_outputs(project, "movielens")
    info = assert_totals(project, "movielens", 100_000, 55_375)
    assert info["raw_files"] == [str(raw)]
    fmap = feature_map(project, "movielens")
    assert_feature_map_consistent(fmap, MOVIELENS_FIELDS)
    assert fmap["extra_columns"] == ["timestamp"]
    sizes = {f["name"]: f["vocab_size"] - 2 for f in fmap["fields"]}  # values kept (min_count 1, fit on train)
    assert 900 <= sizes["user_id"] <= 943 and 1400 <= sizes["item_id"] <= 1682
    assert sizes["gender"] == 2 and sizes["occupation"] == 21
    # u.user and u.item were read too: both are in the provenance
    assert sorted(Path(f["path"]).name for f in fmap["raw"]["files"]) == ["u.data.gz", "u.item.gz", "u.user.gz"]
    tables = split_tables(project, "movielens")
    for split, table in tables.items():
        assert table.column_names == ["label", *MOVIELENS_FIELDS, "timestamp"], split
        assert str(table.schema.field("timestamp").type) == "int64"
    ts = tables["train"].column("timestamp").to_numpy()
    assert 874_000_000 < ts.min() and ts.max() < 894_000_000  # Sept 1997 - April 1998, unix seconds


# ---- KDD Cup 2012 fixture -------------------------------------------------------------------
@pytest.fixture(scope="module")
def kdd_md() -> str:
    text = source_md("kdd12")
    assert "| training.txt.gz | 11 | 12 |" in text and "positive rate 0/11" in text
    return text


def test_kdd12_default_split_is_too_small_and_says_how_to_fix_it(tmp_path: Path, mlflow_db: Path, kdd_md: str) -> None:
    """11 rows in a random 8:1:1 split leave the test split empty: the GX gate stops the run,
    names the split and the fix, and nothing is published."""
    raw = shared_file("kdd12", "training.txt.gz")
    project = new_project(tmp_path, None, mlflow_db)
    proc = run_dp(project, {"dataset": "kdd12", "raw_path": raw}, check=False)
    assert proc.returncode != 0
    err = one_line(proc.stderr)
    assert "Error: Data validation failed" in err
    assert "every split must have > 0 rows" in err and "first offending split: ['test']" in err
    assert "datasets.kdd12.preprocessing.split=chronological" in err
    assert not (project / MODEL_INPUT / "kdd12").exists()
    assert not (project / MODEL_INPUT / "kdd12.summary.json").exists()
    assert leftovers(project) == []


def _check_kdd12(fmap: dict, tables: dict, info: dict, label_mode: str, fields: list[str], min_count: int) -> None:
    assert (info["rows"], info["positives"]) == (11, 0)  # every line has Click=0, Impression=1
    assert (fmap["total_rows"], fmap["total_positives"]) == (11, 0)
    assert [info["splits"][s]["rows"] for s in ("train", "validation", "test")] == [9, 1, 1]
    assert fmap["reader_options"]["label"] == label_mode
    assert_feature_map_consistent(fmap, fields)
    assert all(f["kind"] == "categorical" and f["min_count"] == min_count for f in fmap["fields"])
    if min_count == 1:
        assert fmap["fields"][0]["vocab_size"] > 2  # training values get ids
    else:
        # min_count 10 on 9 training rows: every value is OOV (id 0) or missing (id 1)
        assert all(f["vocab_size"] == 2 for f in fmap["fields"])
    for table in tables.values():
        assert table.column_names == ["label", *fields]
        assert table.column("label").to_numpy().sum() == 0


def test_kdd12_fixture_click_positive_with_user_profile(tmp_path: Path, mlflow_db: Path, kdd_md: str) -> None:
    """``label: click_positive`` and the user profile join, set with nested ``--params``."""
    raw = shared_file("kdd12", "training.txt.gz")
    project = new_project(tmp_path, None, mlflow_db)
    run_dp(project, {
        "dataset": "kdd12",
        "raw_path": raw,
        "datasets.kdd12.reader_options.label": "click_positive",
        "datasets.kdd12.reader_options.user_profile": shared_file("kdd12", "user.txt.gz"),
        "datasets.kdd12.preprocessing.split": "chronological",
        "datasets.kdd12.preprocessing.min_count": 1,
    })
    assert_published_outputs(project, "kdd12")
    fmap = feature_map(project, "kdd12")
    _check_kdd12(fmap, split_tables(project, "kdd12"), summary(project, "kdd12"), "click_positive",
                 [*KDD12_FIELDS, "Gender", "Age"], 1)
    assert {Path(f["path"]).name for f in fmap["raw"]["files"]} == {"training.txt.gz", "user.txt.gz"}


def test_kdd12_fixture_impression_expand(tmp_path: Path, kdd_md: str) -> None:
    """The default label mode (each line expanded into Impression rows), on the nodes."""
    root = tmp_path / "05_model_input"
    out = run_nodes("kdd12", str(shared_file("kdd12", "training.txt.gz")), root, preprocessing={"split": "chronological"})
    tables = {s: pq.read_table(root / "kdd12" / f"{s}.parquet") for s in ("train", "validation", "test")}
    _check_kdd12(out["staged"]["feature_map"], tables, out["summary"], "impression_expand", KDD12_FIELDS, 10)
