"""Great Expectations validation gates: each expectation fails on a crafted bad frame.

GX is imported and its ephemeral context created once per process (about 2-3 s); every
validation afterwards takes a few tens of milliseconds on these small frames.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from ttsctr.errors import ConfigError, TTSCTRError
from ttsctr.validation import (
    DataValidationError,
    Failure,
    ValidationReport,
    raise_if_failed,
    validate_encoded_split,
    validate_raw_sample,
    validate_split_sizes,
)

NUMERIC = ["I1", "I2"]
CATEGORICAL = ["C1", "C2"]
RAW_COLUMNS = ["label", *NUMERIC, *CATEGORICAL, "timestamp", "true_prob"]
RANGES = {"I1": (0, 10), "I2": (10, 5), "C1": (15, 100), "C2": (115, 3)}


def kinds(report: ValidationReport) -> list[tuple[str | None, str]]:
    return [(f.column, f.expectation) for f in report.failures]


def only(report: ValidationReport) -> Failure:
    assert not report.success
    assert len(report.failures) == 1, report.to_text()
    return report.failures[0]


# ------------------------------------------------------------------ raw reader output


def raw_table(**overrides: pa.Array) -> pa.Table:
    cols = {
        "label": pa.array([0, 1, 0, 1, 1], pa.int8()),
        "I1": pa.array([1, None, 3, 400, -2], pa.int64()),
        "I2": pa.array([0, 0, None, 7, 8], pa.int64()),
        "C1": pa.array(["a", "b", None, "a", "c"], pa.string()),
        "C2": pa.array(["x", "y", "z", None, "x"], pa.string()),
        "timestamp": pa.array([1, 2, 3, 4, 5], pa.int64()),
        "true_prob": pa.array([0.1, 0.2, 0.3, 0.4, 0.5], pa.float64()),
    }
    cols.update(overrides)
    return pa.table(cols)


def check_raw(data, columns=RAW_COLUMNS) -> ValidationReport:
    return validate_raw_sample(
        data,
        expected_columns=columns,
        numeric_columns=NUMERIC,
        categorical_columns=CATEGORICAL,
        source="raw/train.txt",
    )


def test_raw_good_table_and_frame_pass():
    report = check_raw(raw_table())
    assert report.success and report.failures == []
    assert report.rows == 5 and report.expectations == 8
    assert "passed 8 expectations on 5 rows" in report.to_text()
    # The same data as pandas frames: numpy int64 + pandas' default str dtype, and the
    # pyarrow-backed flavour, are both accepted.
    frame = raw_table().to_pandas().assign(I1=[1, 2, 3, 4, 5], I2=[0, 0, 6, 7, 8])
    assert check_raw(frame).success
    assert check_raw(raw_table().to_pandas(types_mapper=pd.ArrowDtype)).success


def test_raw_wrong_column_order():
    table = raw_table().select(["label", "I2", "I1", "C1", "C2", "timestamp", "true_prob"])
    f = only(check_raw(table))
    assert (f.column, f.expectation) == (None, "expect_table_columns_to_match_ordered_list")
    assert "position 1: expected 'I1', found 'I2'" in f.details
    assert "position 2: expected 'I2', found 'I1'" in f.details


def test_raw_missing_column_reported_once():
    table = raw_table().drop_columns(["C2"])
    f = only(check_raw(table))  # no column-level failures for the absent column
    assert f.expectation == "expect_table_columns_to_match_ordered_list"
    assert "missing ['C2']" in f.details


def test_raw_label_two_and_null():
    report = check_raw(raw_table(label=pa.array([0, 2, None, 1, 2], pa.int8())))
    assert kinds(report) == [
        ("label", "expect_column_values_to_not_be_null"),
        ("label", "expect_column_values_to_be_in_set"),
    ]
    null, in_set = report.failures
    assert (null.unexpected_count, null.element_count, null.offending_values) == (1, 5, [None])
    assert "rows: [2]" in null.details
    assert in_set.offending_values == [2] and in_set.unexpected_count == 2
    text = report.to_text()
    assert "raw/train.txt" in text and "column 'label'" in text
    assert "offending values: [2]" in text


def test_raw_numeric_column_with_strings_arrow():
    report = check_raw(raw_table(I2=pa.array(["0", "abc", None, "7", "x y"], pa.string())))
    f = only(report)
    assert (f.column, f.expectation) == ("I2", "expect_column_values_to_be_in_type_list")
    assert "observed 'str'" in f.details
    assert "expect_column_values_to_match_regex" in f.details
    assert f.offending_values == ["abc", "x y"] and f.unexpected_count == 2
    assert "'abc'" in report.to_text()


def test_raw_numeric_column_with_strings_object_frame():
    frame = raw_table().to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)
    frame["I1"] = pd.Series([1, "oops", 3, None, "7"], dtype=object)
    f = only(check_raw(frame))
    assert (f.column, f.expectation) == ("I1", "expect_column_values_to_be_in_type_list")
    assert f.offending_values == ["oops", "7"] and f.unexpected_count == 2


def test_raw_numeric_digits_as_strings_and_float_hint():
    report = check_raw(raw_table(I1=pa.array(["1", "2", None, "4", "5"])))
    f = only(report)
    assert f.column == "I1" and "look like integers stored as strings" in f.details
    frame = raw_table().to_pandas()  # nulls turn I1/I2 into float64
    report = check_raw(frame)
    assert kinds(report) == [
        ("I1", "expect_column_values_to_be_in_type_list"),
        ("I2", "expect_column_values_to_be_in_type_list"),
    ]
    assert "observed 'float64'" in report.failures[0].details
    assert "nullable Int64" in report.failures[0].details


def test_raw_categorical_column_not_string():
    f = only(check_raw(raw_table(C1=pa.array([1, 2, 3, 4, 5], pa.int64()))))
    assert (f.column, f.expectation) == ("C1", "expect_column_values_to_be_in_type_list")
    assert "string-typed" in f.details and "observed 'int64'" in f.details


# ------------------------------------------------------------------ encoded splits


def encoded(rows: int = 6, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cols: dict[str, np.ndarray] = {"label": rng.integers(0, 2, rows, dtype=np.int8)}
    for name, (offset, vocab) in RANGES.items():
        cols[name] = (offset + rng.integers(0, vocab, rows)).astype(np.int32)
    cols["timestamp"] = np.arange(rows, dtype=np.int64)
    return pd.DataFrame(cols)


def check_encoded(df, **kwargs) -> ValidationReport:
    return validate_encoded_split(
        df, split="train", field_ranges=RANGES, source="05_model_input/train.parquet", **kwargs
    )


def test_encoded_good_passes_frame_and_arrow():
    df = encoded()
    df.loc[0, "I2"], df.loc[1, "I2"] = 10, 14  # both ends of the range are in
    report = check_encoded(df, expected_rows=6, extra_columns=["timestamp"])
    assert report.success and report.failures == [], report.to_text()
    assert report.detail_rows is None  # no range failed, so no per-value pass
    assert check_encoded(pa.Table.from_pandas(df, preserve_index=False)).success


def test_encoded_id_out_of_range_shows_offending_id():
    df = encoded()
    df.loc[3, "C2"] = 118  # C2 owns [115, 117]
    df.loc[4, "C2"] = 118
    df.loc[5, "I2"] = 9  # below I2's offset: that is I1's last id
    report = check_encoded(df)
    assert kinds(report) == [
        ("I2", "expect_column_values_to_be_between"),
        ("C2", "expect_column_values_to_be_between"),
    ]
    i2, c2 = report.failures
    assert i2.offending_values == [9] and i2.unexpected_count == 1 and i2.element_count == 6
    assert "[10, 14] (offset 10, vocab_size 5)" in i2.details
    assert "expect_column_min_to_be_between failed" in i2.details
    assert c2.offending_values == [118] and c2.unexpected_count == 2
    assert "expect_column_max_to_be_between failed" in c2.details
    assert "first offending rows [3, 4]" in c2.details
    text = report.to_text()
    assert "encoded split 'train' (05_model_input/train.parquet)" in text
    assert "column 'C2'" in text and "offending values: [118]" in text


def test_encoded_null_ids():
    df = encoded()
    df["C1"] = df["C1"].astype("Int32")
    df.loc[2, "C1"] = pd.NA
    f = only(check_encoded(df))  # nullable Int32 is still int32: only the null fails
    assert (f.column, f.expectation) == ("C1", "expect_column_values_to_not_be_null")
    assert (f.unexpected_count, f.offending_values) == (1, [None])
    assert "rows: [2]" in f.details

    df = encoded()
    df["I1"] = df["I1"].astype("float64")
    df.loc[[1, 4], "I1"] = np.nan  # what a plain int column with nulls becomes
    report = check_encoded(df)
    assert kinds(report) == [
        ("I1", "expect_column_values_to_be_in_type_list"),
        ("I1", "expect_column_values_to_not_be_null"),
    ]
    assert "observed 'float64'" in report.failures[0].details
    assert report.failures[1].unexpected_count == 2


def test_encoded_label_and_dtype():
    df = encoded()
    df["label"] = df["label"].astype("Int8")
    df.loc[0, "label"] = 2
    df.loc[1, "label"] = pd.NA
    df["C1"] = df["C1"].astype(np.int64)
    report = check_encoded(df)
    assert kinds(report) == [
        ("label", "expect_column_values_to_not_be_null"),
        ("label", "expect_column_values_to_be_in_set"),
        ("C1", "expect_column_values_to_be_in_type_list"),
    ]
    assert report.failures[1].offending_values == [2]
    assert "ids must be int32; observed 'int64'" in report.failures[2].details


def test_encoded_columns_and_row_count():
    df = encoded()[["label", "I1", "C1", "I2", "C2", "timestamp"]]
    report = check_encoded(df, expected_rows=7)
    assert kinds(report) == [
        (None, "expect_table_columns_to_match_ordered_list"),
        (None, "expect_table_row_count_to_equal"),
    ]
    assert "position 2: expected 'I2', found 'C1'" in report.failures[0].details
    assert "observed 6" in report.failures[1].details
    report = check_encoded(encoded().drop(columns=["C1"]), extra_columns=["timestamp", "x"])
    f = only(report)
    assert "missing ['C1', 'x']" in f.details


def test_encoded_sampled_detail_verdict_stays_exact():
    df = encoded(rows=20_000)
    df.loc[12_345, "C1"] = 999  # a single bad id, most likely outside a 100-row sample
    report = check_encoded(df, sample_rows=100)
    f = only(report)
    assert report.rows == 20_000 and report.detail_rows == 100
    assert f.column == "C1" and "expect_column_max_to_be_between failed" in f.details
    assert "max 999" in f.details and f.offending_values == [999]
    assert "deterministic sample of 100 rows" in report.to_text()

    df.loc[df.index % 2 == 0, "C1"] = 5000  # half the rows: the sample finds them
    first, second = (check_encoded(df, sample_rows=100) for _ in range(2))
    assert first.failures == second.failures  # deterministic sample
    f = only(first)
    assert f.expectation == "expect_column_values_to_be_between"
    assert f.offending_values == [5000] and f.element_count == 100
    assert 30 <= f.unexpected_count <= 70


def test_encoded_bad_field_ranges_are_config_errors():
    with pytest.raises(ConfigError, match="'I1'"):
        validate_encoded_split(encoded(), split="x", field_ranges={"I1": (0, 0)}, source="s")


# ------------------------------------------------------------------ split sizes & raising


def test_split_sizes():
    assert validate_split_sizes({"train": 8, "validation": 1, "test": 1}, 10, "fm.json").success
    report = validate_split_sizes({"train": 8, "validation": 0, "test": 3}, 12, "fm.json")
    assert kinds(report) == [
        ("rows", "expect_column_values_to_be_between"),
        ("rows", "expect_column_sum_to_be_between"),
    ]
    positive, total = report.failures
    assert positive.offending_values == [0] and "split: ['validation']" in positive.details
    assert "must add up to 12 rows" in total.details and "observed 11" in total.details


def test_raise_if_failed_lists_everything():
    good = validate_split_sizes({"train": 1}, 1, "ok.json")
    raise_if_failed(good)  # nothing to raise
    raise_if_failed()
    bad_raw = check_raw(raw_table(label=pa.array([0, 3, 1, 1, 1], pa.int8())))
    df = encoded()
    df.loc[0, "I1"] = 77
    bad_split = check_encoded(df)
    with pytest.raises(DataValidationError) as info:
        raise_if_failed(good, bad_raw, bad_split)
    err = info.value
    assert isinstance(err, TTSCTRError)
    assert err.reports == (bad_raw, bad_split)
    assert [(f.column, f.expectation) for f in err.failures] == [
        ("label", "expect_column_values_to_be_in_set"),
        ("I1", "expect_column_values_to_be_between"),
    ]
    msg = str(err)
    assert msg.startswith("Data validation failed: 2 failure(s) in 2 dataset(s)")
    for needle in ("raw/train.txt", "offending values: [3]", "train.parquet",
                   "column 'I1'", "offending values: [77]", "1 of 6 values unexpected"):
        assert needle in msg
    assert "ok.json" not in msg
    json.dumps([r.to_dict() for r in err.reports])  # serialisable for logs / MLflow


def test_context_is_cached_and_quiet(capfd):
    from ttsctr import validation

    first = validation._gx()
    validate_split_sizes({"a": 1}, 1, "x")
    assert validation._gx() is first
    out, err = capfd.readouterr()
    assert "Calculating Metrics" not in out + err


def test_encoded_empty_split_has_no_range_failure():
    empty = encoded().iloc[:0]
    assert check_encoded(empty).success  # no id can be out of range
    f = only(check_encoded(empty, expected_rows=6))  # the row count catches it
    assert (f.expectation, f.details) == (
        "expect_table_row_count_to_equal", "split must have 6 rows; observed 0"
    )
