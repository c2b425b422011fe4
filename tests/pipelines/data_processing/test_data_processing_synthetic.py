"""`kedro run --pipelines data_processing` on the embedded synthetic click log (the default dataset).

One throwaway project, three runs: the default run (5 000 generated rows via conf/local), the same
command again (must reuse the published output) and a run with another ``min_count`` (must
re-encode). Everything is checked on what the runs wrote and logged.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
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
    snapshot,
    summary,
)

from ttsctr.data.readers import CRITEO_CATEGORICAL, CRITEO_NUMERIC

N_ROWS = 4000
FIELDS = [*CRITEO_NUMERIC, *CRITEO_CATEGORICAL]


@dataclass
class Runs:
    project: Path
    first: subprocess.CompletedProcess
    after_first: dict
    rerun: subprocess.CompletedProcess
    after_rerun: dict
    changed: subprocess.CompletedProcess
    after_changed: dict
    summary_first: dict


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, mlflow_db: Path) -> Runs:
    project = new_project(tmp_path_factory.mktemp("dp_synthetic"), {"datasets": {"synthetic": {"generate": {"n_rows": N_ROWS}}}}, mlflow_db)
    watched = lambda: {**snapshot(project / MODEL_INPUT / "synthetic"), **snapshot(project / "data" / "01_raw")}  # noqa: E731
    first = run_dp(project)
    after_first, summary_first = watched(), summary(project, "synthetic")
    rerun = run_dp(project)
    after_rerun = watched()
    changed = run_dp(project, {"datasets.synthetic.preprocessing.min_count": 2})
    return Runs(project, first, after_first, rerun, after_rerun, changed, watched(), summary_first)


def test_default_run_publishes_validated_splits(runs: Runs) -> None:
    project = runs.project
    # the first run's outputs (the later runs are checked below)
    info = runs.summary_first
    assert info["dataset"] == "synthetic" and info["rows"] == N_ROWS
    assert (project / "data" / "01_raw" / "synthetic" / "train.txt").is_file()
    rows = {s: info["splits"][s]["rows"] for s in ("train", "validation", "test")}
    assert sum(rows.values()) == N_ROWS
    for split, share in (("train", 0.8), ("validation", 0.1), ("test", 0.1)):
        assert rows[split] / N_ROWS == pytest.approx(share, abs=0.02), rows
    assert 0.2 < info["positive_rate"] < 0.3  # planted base rate 25 %
    assert 0.7 < info["bayes_optimal_auc"] < 0.95
    assert info["bayes_optimal_auc"] == info["splits"]["test"]["bayes_optimal_auc"]
    # GX gates ran and passed on the raw sample and on every encoded split
    out = one_line(runs.first.stdout)
    assert "passed" in out and "encoded split 'train'" in out and "encoded split 'test'" in out
    assert "published model input for synthetic" in out


def test_splits_hold_ids_within_their_field_ranges(runs: Runs) -> None:
    project = runs.project
    folder = assert_published_outputs(project, "synthetic")
    fmap = feature_map(project, "synthetic")
    assert_feature_map_consistent(fmap, FIELDS)
    total = 0
    for split in ("train", "validation", "test"):
        table = pq.read_table(folder / f"{split}.parquet")
        assert table.column_names == ["label", *FIELDS, "true_prob"]
        assert str(table.schema.field("label").type) == "int8"
        total += table.num_rows
        assert table.num_rows == fmap["splits"][split]["rows"]
        for f in fmap["fields"]:
            col = table.column(f["name"])
            assert str(col.type) == "int32" and col.null_count == 0
            ids = col.to_numpy()
            assert ids.min() >= f["offset"] and ids.max() < f["offset"] + f["vocab_size"], f["name"]
    assert total == N_ROWS


def test_rerun_reuses_the_published_output(runs: Runs) -> None:
    assert runs.after_rerun == runs.after_first  # nothing re-generated, re-encoded or re-written
    out = one_line(runs.rerun.stdout)
    assert "model input for synthetic is up to date" in out and "not re-encoding" in out
    assert "published model input" not in out
    assert leftovers(runs.project) == []


def test_changed_parameter_re_encodes(runs: Runs) -> None:
    project = runs.project
    before, after = runs.after_first, runs.after_changed
    raw = "synthetic/train.txt"
    assert after[raw] == before[raw]  # the raw file is not regenerated
    for name in ("train.parquet", "feature_map.json", "vocabulary.parquet"):
        assert after[name] != before[name], name
    assert "not re-encoding" not in one_line(runs.changed.stdout)
    fmap = feature_map(project, "synthetic")
    assert fmap["preprocess"]["min_count"] == 2
    assert all(f["min_count"] == 2 for f in fmap["fields"])
    info = summary(project, "synthetic")
    assert info["num_features"] > runs.summary_first["num_features"]  # a lower threshold keeps more values
    assert info["data_version"] != runs.summary_first["data_version"]
    assert info["rows"] == N_ROWS
    assert_published_outputs(project, "synthetic")
