"""The Great Expectations gate between encoding and publishing, on the nodes directly.

A model input is published, then a re-encode with other settings is staged and corrupted the
way a broken encoder would (ids outside their field's range, a label outside {0, 1}). The gate
must list every broken column with its expectation and offending values, remove the staging
folder, and leave the published version exactly as it was. The failing validations are kept
in the GX project (``tmp_path/gx``: the model input folder is in no Kedro project, so its parent
holds it) with their Data Docs pages.
"""

from __future__ import annotations

from pathlib import Path

import json
from urllib.parse import unquote, urlparse

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dphelpers import criteo_format_file, run_nodes, snapshot

from ttsctr.pipelines.data_processing import nodes
from ttsctr.validation import DataValidationError


def _corrupt(path: Path, field: dict, rows: list[int], value: int) -> None:
    table = pq.read_table(path)
    ids = table.column(field["name"]).to_numpy().copy()
    ids[rows] = value
    table = table.set_column(table.column_names.index(field["name"]), field["name"], pa.array(ids, pa.int32()))
    label = table.column("label").to_numpy().copy()
    label[rows[0]] = 2
    table = table.set_column(0, "label", pa.array(label, pa.int8()))
    pq.write_table(table, path)


def test_gate_lists_failures_removes_staging_and_keeps_published(tmp_path: Path) -> None:
    raw = criteo_format_file(tmp_path / "raw" / "train.txt", n_rows=2000)
    root = tmp_path / "05_model_input"
    first = run_nodes("criteo", str(raw), root, preprocessing={"min_count": 2})
    published = root / "criteo"
    before = snapshot(root)
    assert set(before) >= {"criteo/train.parquet", "criteo/fingerprint.json", "criteo.summary.json"}

    # a new encoding (other min_count: another fingerprint) staged next to the published one
    out = run_nodes("criteo", str(raw), root, preprocessing={"min_count": 3}, until="encode")
    staging = Path(out["staged"]["staging_dir"])
    assert staging.parent == root and staging.is_dir() and out["source"]["fingerprint"] != first["source"]["fingerprint"]
    fields = {f["name"]: f for f in out["staged"]["feature_map"]["fields"]}
    c5, i3 = fields["C5"], fields["I3"]
    too_big = c5["offset"] + c5["vocab_size"] + 7
    _corrupt(staging / "train.parquet", c5, [3, 10, 11], too_big)
    _corrupt(staging / "test.parquet", i3, [0], i3["offset"] - 1)  # the previous field's last id

    with pytest.raises(DataValidationError) as exc:
        nodes.validate_encoded_data(out["staged"], {"encoded_sample_rows": 200_000})
    err = exc.value
    failures = {(f.column, f.expectation): f for f in err.failures}
    text = str(err)
    assert text.startswith("Data validation failed:")
    assert "encoded split 'train'" in text and "encoded split 'test'" in text
    c5_fail = [f for (col, _), f in failures.items() if col == "C5"]
    assert c5_fail and any(too_big in f.offending_values for f in c5_fail), text
    assert any(f.unexpected_count == 3 for f in c5_fail), text
    assert any(e.startswith("expect_column_") for _, e in failures)
    i3_fail = [f for (col, _), f in failures.items() if col == "I3"]
    assert i3_fail and any(i3["offset"] - 1 in f.offending_values for f in i3_fail), text
    assert any(col == "label" for col, _ in failures), text
    for part in ("column 'C5'", f"{too_big}", "column 'I3'", "column 'label'"):
        assert part in text
    # the failing runs are stored and have their Data Docs pages, named in the message
    assert [r.gx.run_name for r in err.reports] == ["train", "test"]
    for report in err.reports:
        assert report.gx.root == str(tmp_path) and report.gx.suite == "criteo.encoded"
        assert report.gx.docs_built and f"Data Docs: {report.gx.data_docs}" in text
        assert Path(unquote(urlparse(report.gx.data_docs).path)).is_file()
        assert json.loads((tmp_path / report.gx.result).read_text())["success"] is False
    assert (tmp_path / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html").is_file()

    assert not staging.exists()
    assert [p.name for p in root.iterdir() if p.name.startswith(".")] == []
    assert snapshot(root) == before  # published folder and summary untouched
    assert nodes._is_published(first["source"]) and not nodes._is_published(out["source"])
    # the published splits are still the valid ones
    published_c5 = next(f for f in first["staged"]["feature_map"]["fields"] if f["name"] == "C5")
    for split in ("train", "validation", "test"):
        table = pq.read_table(published / f"{split}.parquet")
        ids = table.column("C5").to_numpy()
        assert np.all((ids >= published_c5["offset"]) & (ids < published_c5["offset"] + published_c5["vocab_size"]))
        assert set(np.unique(table.column("label").to_numpy())) <= {0, 1}


def test_gate_failure_in_the_pipeline_removes_staging_even_on_unexpected_errors(tmp_path: Path) -> None:
    raw = criteo_format_file(tmp_path / "raw" / "train.txt", n_rows=500)
    root = tmp_path / "05_model_input"
    out = run_nodes("criteo", str(raw), root, preprocessing={"min_count": 2}, until="encode")
    staging = Path(out["staged"]["staging_dir"])
    (staging / "validation.parquet").write_bytes(b"not parquet")
    with pytest.raises(Exception):
        nodes.validate_encoded_data(out["staged"], {})
    assert not staging.exists() and not (root / "criteo").exists()
