"""Readers and preprocessing on the real samples in ../shared/data (skipped when absent).

Expected numbers are those of each sample's SOURCE.md.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pytest

from datahelpers import shared_path
from ttsctr.data.io import load_split
from ttsctr.data.preprocess import PreprocessConfig, preprocess
from ttsctr.data.readers import get_reader, user_histories

pytestmark = pytest.mark.shared_data


@pytest.mark.parametrize(
    ("name", "rows", "positives"),
    [("wide-resdnn_train.txt.gz", 7200, 1549), ("wide-resdnn_dev.txt.gz", 409, 93), ("wide-resdnn_test.txt.gz", 391, 86)],
)
def test_criteo_sample_counts(name: str, rows: int, positives: int) -> None:
    t = get_reader("criteo").read_all(shared_path("criteo", name))
    assert t.num_rows == rows
    assert pc.sum(t.column("label")).as_py() == positives


def test_criteo_sample_first_line_and_missing_rates() -> None:
    t = get_reader("criteo").read_all(shared_path("criteo", "wide-resdnn_train.txt.gz"), chunk_bytes=1 << 16)
    first = t.slice(0, 1).to_pylist()[0]
    assert [first[f"I{i}"] for i in range(1, 14)] == [1, 1, 5, 0, 1382, 4, 15, 2, 181, 1, 2, None, 2]
    assert first["C1"] == "68fd1e64" and first["C2"] == "80e26c9b" and first["C22"] is None
    all_c = pc.utf8_length(pc.drop_null(t.column("C3")))
    assert pc.min(all_c).as_py() == 8 == pc.max(all_c).as_py()
    # SOURCE.md: I12 missing 78%, I1 45%
    assert t.column("I12").null_count / t.num_rows == pytest.approx(0.78, abs=0.03)
    assert t.column("I1").null_count / t.num_rows == pytest.approx(0.45, abs=0.03)
    assert pc.min(t.column("I2")).as_py() < 0  # I2 may be negative


def test_criteo_sample_preprocess_end_to_end(tmp_path: Path) -> None:
    fmap = preprocess("criteo", shared_path("criteo", "wide-resdnn_train.txt.gz"), tmp_path / "enc", PreprocessConfig(), progress=False)
    assert fmap["total_rows"] == 7200 and fmap["total_positives"] == 1549
    assert sum(s["rows"] for s in fmap["splits"].values()) == 7200
    tr = load_split(tmp_path / "enc", "train")
    assert tr.x.shape == (fmap["splits"]["train"]["rows"], 39)
    assert tr.x.max() < fmap["num_features"]


@pytest.mark.parametrize("label", ["impression_expand", "click_positive"])
def test_kdd12_sample_both_label_modes(label: str) -> None:
    t = get_reader("kdd12", label=label).read_all(shared_path("kdd12", "training.txt.gz"))
    assert t.num_rows == 11  # every row has Impression = 1
    assert pc.sum(t.column("label")).as_py() == 0
    assert t.column("DisplayURL")[0].as_py() == "4298118681424644510"


def test_kdd12_sample_user_profile() -> None:
    reader = get_reader("kdd12", user_profile=shared_path("kdd12", "user.txt.gz"))
    t = reader.read_all(shared_path("kdd12", "training.txt.gz"))
    assert t.num_rows == 11 and t.column_names[-2:] == ["Gender", "Age"]
    # sample user ids (490234, ...) are not among the profile's users 1..11: all missing, none dropped
    assert t.column("Gender").null_count == 11


def test_movielens_sample_counts_and_join() -> None:
    path = shared_path("movielens-100k", "u.data.gz")
    t = get_reader("movielens").read_all(path)
    assert t.num_rows == 100_000
    assert pc.sum(t.column("label")).as_py() == 55_375
    for name in ("age", "gender", "occupation", "zip_prefix", "genres"):
        assert t.column(name).null_count == 0, name
    assert set(pc.unique(t.column("gender")).to_pylist()) == {"M", "F"}
    first = t.slice(0, 1).to_pylist()[0]  # 196	242	3	881250949; movie 242 = Kolya (Comedy)
    assert (first["user_id"], first["item_id"], first["label"], first["timestamp"]) == ("196", "242", 0, 881250949)
    assert first["genres"] == "Comedy" and first["age"] == "49" and first["occupation"] == "writer"


def test_movielens_sample_histories() -> None:
    h = user_histories(shared_path("movielens-100k", "u.data.gz"))
    assert h.num_rows == 943
    lengths = pc.list_value_length(h.column("item_ids")).to_numpy()
    assert lengths.sum() == 100_000 and lengths.min() >= 20  # every ML-100K user rated >= 20 movies
    for ts in h.column("timestamps").to_pylist()[:50]:
        assert ts == sorted(ts)


def test_movielens_sample_chronological_split(tmp_path: Path) -> None:
    path = shared_path("movielens-100k", "u.data.gz")
    fmap = preprocess("movielens", path, tmp_path / "ml", {"split": "chronological", "min_count": 5}, progress=False)
    assert {s: v["rows"] for s, v in fmap["splits"].items()} == {"train": 80_000, "validation": 10_000, "test": 10_000}
    assert fmap["total_positives"] == 55_375
    tr, va, te = (load_split(tmp_path / "ml", s) for s in ("train", "validation", "test"))
    assert tr.extras["timestamp"].max() <= va.extras["timestamp"].min()
    assert va.extras["timestamp"].max() <= te.extras["timestamp"].min()
    assert np.isin(tr.y, [0.0, 1.0]).all()
