"""Several raw files as one click log, on the nodes directly (the glob through `kedro run` is in
test_data_processing_real_samples.py). A YAML list in conf/local reaches the node as a Python list."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from dphelpers import criteo_format_file, run_nodes, snapshot

from ttsctr.errors import DataFormatError


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    whole = criteo_format_file(tmp_path_factory.mktemp("raw") / "whole.txt", n_rows=1500)
    lines = whole.read_text().splitlines(keepends=True)
    folder = whole.parent
    out = []
    for name, chunk in (("b.txt", lines[:700]), ("a.txt", lines[700:1200]), ("c.txt", lines[1200:])):
        (folder / name).write_text("".join(chunk))
        out.append(folder / name)
    return out


def test_list_is_read_in_order_as_one_log(parts: list[Path], tmp_path: Path) -> None:
    whole = parts[0].parent / "whole.txt"
    files = [str(p) for p in parts]
    one = run_nodes("criteo", str(whole), tmp_path / "one", preprocessing={"min_count": 2})
    three = run_nodes("criteo", files, tmp_path / "three", preprocessing={"min_count": 2})
    assert three["source"]["raw_files"] == files
    assert three["summary"]["rows"] == one["summary"]["rows"] == 1500 and three["summary"]["raw_path"] == files
    # same rows in the same order: the same split, vocabulary and ids as the single file
    for split in ("train", "validation", "test"):
        assert pq.read_table(tmp_path / "three" / "criteo" / f"{split}.parquet").equals(
            pq.read_table(tmp_path / "one" / "criteo" / f"{split}.parquet")
        )
    fmap = json.loads((tmp_path / "three" / "criteo" / "feature_map.json").read_text())
    assert [Path(f["path"]).name for f in fmap["raw"]["files"]] == ["b.txt", "a.txt", "c.txt"]
    assert fmap["total_rows"] == 1500

    # the same list again is up to date; another order or a changed file is not
    again = run_nodes("criteo", files, tmp_path / "three", preprocessing={"min_count": 2}, until="encode")
    assert again["staged"]["staging_dir"] is None
    reordered = run_nodes("criteo", files[::-1], tmp_path / "three", preprocessing={"min_count": 2}, until="resolve")
    assert reordered["source"]["fingerprint"] != three["source"]["fingerprint"]
    changed = tmp_path / "c_changed.txt"
    changed.write_text(parts[2].read_text() + parts[2].read_text().splitlines(keepends=True)[0])
    other = run_nodes("criteo", [*files[:2], str(changed)], tmp_path / "three", preprocessing={"min_count": 2}, until="resolve")
    assert other["source"]["fingerprint"] != three["source"]["fingerprint"]


def test_glob_is_sorted_by_name(parts: list[Path], tmp_path: Path) -> None:
    out = run_nodes("criteo", str(parts[0].parent / "?.txt"), tmp_path, until="resolve")
    assert [Path(p).name for p in out["source"]["raw_files"]] == ["a.txt", "b.txt", "c.txt"]
    assert out["source"]["raw_path"] == out["source"]["raw_files"]


def test_bad_line_is_reported_with_its_own_file_and_line(parts: list[Path], tmp_path: Path) -> None:
    bad = tmp_path / "c_bad.txt"
    lines = parts[2].read_text().splitlines(keepends=True)
    lines[41] = "1\t2\n"  # line 42 of the third file
    bad.write_text("".join(lines))
    root = tmp_path / "05_model_input"
    with pytest.raises(DataFormatError) as exc:
        # the raw GX sample (10 rows of each file) passes; the encoder finds the line
        run_nodes("criteo", [str(parts[0]), str(parts[1]), str(bad)], root, preprocessing={"min_count": 2, "chunk_bytes": 8192},
                  validation={"raw_sample_rows": 10})
    assert exc.value.path == str(bad) and exc.value.line == 42
    assert "found 2 TAB-separated fields; expected 40 fields" in str(exc.value)
    assert snapshot(root) == {}
    assert not root.exists() or list(root.iterdir()) == []
