"""The data_processing nodes on behaviour-sequence datasets (synthetic_seq, movielens_seq)."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from projecthelpers import REPO_ROOT, shared_file
from ttsctr.data.io import load_split
from ttsctr.errors import ConfigError
from ttsctr.pipelines.data_processing import nodes
from ttsctr.validation import DataValidationError

DATASETS = yaml.safe_load((REPO_ROOT / "conf" / "base" / "parameters_data_processing.yml").read_text())["datasets"]
NO_GX_STORE = {"gx_root": False}


def _datasets() -> dict:
    datasets = copy.deepcopy(DATASETS)
    datasets["synthetic_seq"]["generate"] = {"n_users": 30, "n_items": 40, "events_per_user": 10}
    datasets["synthetic_seq"]["sequence"] = {"user_len": 6, "candidate_len": 3, "content_dim": 8}
    return datasets


def _stage(dataset: str, raw_path, root: Path, datasets: dict) -> dict:
    source = nodes.resolve_raw_source(dataset, raw_path, datasets, str(root))
    raw_report = nodes.validate_raw_data(source, NO_GX_STORE)
    return nodes.encode_to_staging(source, raw_report, str(root))


def test_synthetic_sequences_are_validated_published_and_reused(tmp_path: Path) -> None:
    root = tmp_path / "05_model_input"
    staged = _stage("synthetic_seq", None, root, _datasets())
    report = nodes.validate_encoded_data(staged, NO_GX_STORE)
    summary = nodes.publish_model_input(staged, report, str(root))
    assert report["success"] and summary["rows"] == 300 and summary["sequence"]["user_len"] == 6
    assert 0.5 < summary["bayes_optimal_auc"] < 1.0
    again = _stage("synthetic_seq", None, root, _datasets())
    assert again["staging_dir"] is None  # same settings: the published folder is reused
    other = _datasets()
    other["synthetic_seq"]["sequence"]["user_len"] = 5
    assert _stage("synthetic_seq", None, root, other)["staging_dir"] is not None  # other settings: re-encoded


def test_a_staged_split_with_broken_padding_is_stopped_by_gx_and_never_published(tmp_path: Path) -> None:
    root = tmp_path / "05_model_input"
    staged = _stage("synthetic_seq", None, root, _datasets())
    path = Path(staged["staging_dir"]) / "test.parquet"
    table = pq.read_table(path)
    seq = table.column("user_seq").combine_chunks()
    ids = seq.flatten().to_numpy().reshape(len(seq), 6).copy()
    row = int(np.flatnonzero(table.column("user_seq_len").to_numpy() == 6)[0])
    ids[row, 2] = staged["feature_map"]["fields"][7 + 2]["padding_global_id"]  # a hole in a full history
    broken = pa.FixedSizeListArray.from_arrays(pa.array(ids.reshape(-1).astype(np.int32)), 6)
    pq.write_table(table.set_column(table.column_names.index("user_seq"), "user_seq", broken), path)
    with pytest.raises(DataValidationError) as info:
        nodes.validate_encoded_data(staged, NO_GX_STORE)
    text = str(info.value)
    assert "left-padded" in text and "non-padding slots" in text and f"[{row}]" in text
    assert not Path(staged["staging_dir"]).exists() and not (root / "synthetic_seq").exists()


def test_a_generated_log_refuses_a_raw_path() -> None:
    with pytest.raises(ConfigError, match="reads no raw file"):
        nodes.resolve_raw_source("synthetic_seq", "/tmp/x.txt", _datasets(), "/tmp/unused")


def test_movielens_sequences_from_the_real_sample(tmp_path: Path) -> None:
    raw = shared_file("movielens-100k", "u.data.gz")
    root = tmp_path / "05_model_input"
    datasets = _datasets()
    staged = _stage("movielens_seq", str(raw), root, datasets)
    summary = nodes.publish_model_input(staged, nodes.validate_encoded_data(staged, NO_GX_STORE), str(root))
    assert summary["rows"] == 100_000 and summary["splits"]["test"]["rows"] == 10_000
    assert summary["sequence"]["n_items"] == 1682 and summary["sequence"]["truncated_events"] > 0
    test = load_split(root / "movielens_seq", "test")
    train = load_split(root / "movielens_seq", "train")
    assert train.extras["timestamp"].max() <= test.extras["timestamp"].min()  # chronological split
