"""One rule for NaN in categorical serving fields: ``null`` is missing, a float NaN is a number (400).

The frames are built by MLflow's own JSON parsing (``scoring_server.infer_and_parse_data``, what
the scoring server calls) in both orientations, then encoded column by column as
``FeatureEncoder.encode_raw_frame`` does (``empty_text_as_missing``, then ``_frame_column``).
Over real HTTP: ``tests/pipelines/test_serving_http.py``.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pytest
from mlflow.pyfunc.scoring_server import infer_and_parse_data

from ttsctr.data.preprocess import _frame_column, empty_text_as_missing
from ttsctr.data.readers import FieldSpec
from ttsctr.errors import DataFormatError

NAN = float("nan")
C1 = FieldSpec("C1", "categorical")
I1 = FieldSpec("I1", "numeric")


def _parsed(values: list[Any], orient: str) -> Any:
    """The frame MLflow's scoring server hands to predict for column C1 = values (I1 = 1)."""
    if orient == "records":
        payload = {"dataframe_records": [{"I1": 1, "C1": v} for v in values]}
    else:
        payload = {"dataframe_split": {"columns": ["I1", "C1"], "data": [[1, v] for v in values]}}
    return infer_and_parse_data(json.loads(json.dumps(payload, allow_nan=True)))


def _encoded(values: list[Any], orient: str) -> list[Any]:
    frame = empty_text_as_missing(_parsed(values, orient))
    return _frame_column(frame["C1"], C1).to_pylist()


@pytest.mark.parametrize("orient", ["records", "split"])
def test_null_stays_missing_in_every_shape(orient: str) -> None:
    assert _encoded([None], orient) == [None]
    assert _encoded([None, None], orient) == [None, None]
    assert _encoded(["68fd1e64", None], orient) == ["68fd1e64", None]
    assert _encoded(["68fd1e64", "", None], orient) == ["68fd1e64", None, None]
    assert _encoded(["", None], orient) == [None, None]


@pytest.mark.parametrize("orient", ["records", "split"])
@pytest.mark.parametrize("values", [[NAN], [NAN, None], [None, NAN, NAN]], ids=["NaN", "NaN+null", "null+NaN+NaN"])
def test_float_nan_is_a_number_like_12345(orient: str, values: list[Any]) -> None:
    frame = _parsed(values, orient)
    assert frame["C1"].dtype == "float64"  # what MLflow's parsing makes of it
    with pytest.raises(DataFormatError, match="float NaN") as exc:
        _frame_column(empty_text_as_missing(frame)["C1"], C1)
    assert exc.value.field == "C1" and "None/null" in str(exc.value)
    with pytest.raises(DataFormatError) as exc:
        _frame_column(_parsed([12345], orient)["C1"], C1)
    assert exc.value.field == "C1"


@pytest.mark.parametrize("orient", ["records", "split"])
def test_nan_among_strings_cannot_be_told_from_null_after_parsing(orient: str) -> None:
    """pandas stores null among strings as NaN: the model cannot see the difference, the guard refuses the literal."""
    frame = _parsed(["68fd1e64", NAN], orient)
    assert frame["C1"].tolist()[1] != frame["C1"].tolist()[1]  # NaN, exactly as for null
    assert str(_parsed(["68fd1e64", None], orient)["C1"].dtype) == str(frame["C1"].dtype)


def test_numeric_fields_keep_nan_as_missing() -> None:
    import pandas as pd

    assert _frame_column(pd.Series([1.0, NAN]), I1).to_pylist() == [1, None]
    assert _frame_column(pd.Series([NAN]), I1).to_pylist() == [None]
    assert _frame_column(pd.Series([None], dtype=object), C1).type == pa.string()
