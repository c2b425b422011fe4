"""The data version is a content hash of everything a model reads, and the check names both versions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ttsctr.data.version import (
    MARKER_FILE,
    VERSIONED_FILES,
    DataVersionError,
    compute_data_version,
    published_data_version,
    require_data_version,
    require_same_version,
)


def _folder(tmp_path: Path, name: str = "ds") -> Path:
    folder = tmp_path / name
    folder.mkdir()
    for file in VERSIONED_FILES:
        (folder / file).write_bytes(f"contents of {file}".encode())
    (folder / "feature_map.json").write_text(json.dumps({"num_features": 10, "created_at": "2026-11-30T20:00:00"}))
    return folder


def test_every_versioned_file_changes_the_version(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    base = compute_data_version(folder)
    assert base == compute_data_version(_folder(tmp_path, "copy"))  # content, not place
    seen = {base}
    for file in VERSIONED_FILES:
        original = (folder / file).read_bytes()
        changed = original.replace(b"10", b"11") if file == "feature_map.json" else original + b"!"
        (folder / file).write_bytes(changed)
        seen.add(compute_data_version(folder))
        (folder / file).write_bytes(original)
    assert len(seen) == len(VERSIONED_FILES) + 1
    # re-encoding the same rows later (another time stamp, raw file elsewhere) is the same version
    (folder / "feature_map.json").write_text(json.dumps(
        {"num_features": 10, "created_at": "2026-12-01T09:00:00", "elapsed_s": 3.2, "raw": {"path": "/elsewhere"}}))
    assert compute_data_version(folder) == base
    (folder / MARKER_FILE).write_text("{}")
    assert compute_data_version(folder) == base  # the marker is not data


def test_require_names_the_expected_and_the_published_version(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    assert published_data_version(folder) is None
    with pytest.raises(DataVersionError, match="holds no published data"):
        require_data_version(folder, "aaaa", what="training x/group_00")
    (folder / MARKER_FILE).write_text(json.dumps({"fingerprint": "f", "data_version": "bbbb"}))
    require_data_version(folder, "bbbb", what="training x/group_00")
    with pytest.raises(DataVersionError) as err:
        require_data_version(folder, "aaaa", what="training x/group_00")
    assert (err.value.expected, err.value.found) == ("aaaa", "bbbb")
    assert "training x/group_00" in str(err.value) and "aaaa" in str(err.value) and "bbbb" in str(err.value)
    with pytest.raises(DataVersionError, match="records no data version"):
        require_data_version(folder, None, what="an old checkpoint")


def test_an_artefact_without_a_version_never_matches() -> None:
    require_same_version("cccc", "cccc", what="merging", source="predictions")
    with pytest.raises(DataVersionError, match="no data version"):
        require_same_version(None, "cccc", what="merging", source="predictions of e/group_00")
    with pytest.raises(DataVersionError, match="predictions of e/group_00 was computed from data version dddd"):
        require_same_version("dddd", "cccc", what="merging", source="predictions of e/group_00")
