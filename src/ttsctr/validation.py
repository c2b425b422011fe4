"""Data validation with Great Expectations 1.x: quality gates the Kedro pipeline calls from nodes.

How this fits Kedro
-------------------
Kedro's documentation ("How to validate data in your Kedro workflow using Great
Expectations", docs/integrations-and-plugins/great_expectations.md) describes two ways of
running GX expectations in a Kedro project:

1. **Explicit validation nodes** ("As part of a pipeline run"). A node takes the data,
   validates it and raises when it is bad. Because the node fails, Kedro stops the run and
   no downstream node runs, so nothing derived from bad data is written; the gate is
   visible in Kedro-Viz and can be selected or skipped with tags.
2. **A hook** ("As a Kedro hook"). A ``DataValidationHooks`` class registered in
   ``settings.HOOKS`` validates node inputs in ``before_node_run`` and outputs in
   ``after_node_run`` (``after_dataset_loaded`` works too) without touching the pipeline.

ttsctr follows approach 1, and this module is the "dedicated Python module that holds the
expectations" that the Kedro page recommends: the suites are built in code (from the column
lists and from the feature map's per-field ``(offset, vocab_size)``), so the same suites
serve nodes, tests and ad-hoc checks. A node calls the ``validate_*`` functions, which only
*report*, then :func:`raise_if_failed`, which raises :class:`DataValidationError` listing
every failure at once::

    def validate_encoded_splits(train, validation, test, feature_map):
        ranges = {f["name"]: (f["offset"], f["vocab_size"]) for f in feature_map["fields"]}
        raise_if_failed(*(
            validate_encoded_split(df, split=name, field_ranges=ranges, source=f"{name}.parquet")
            for name, df in (("train", train), ("validation", validation), ("test", test))
        ))

Kedro saves a node's outputs only after the node returns, so calling this inside the
node that produces the data (e.g. preprocessing, before returning the encoded splits) means
bad data is never written; a separate validation node placed between the producer and its
consumers stops the run before anything downstream runs or writes (the producer's own
output is already saved by then). Switching to the hook alternative
needs no change here: the hook's ``before_node_run``/``after_node_run`` calls the same
functions and :func:`raise_if_failed`. (Kedro 1.7 also has catalog-level dataset
validation, a ``validator:`` key whose class exposes ``validate(data)``; a thin adapter
around these functions would plug in there as well.)

GX objects used
---------------
One **ephemeral** Data Context per process (``gx.get_context(mode="ephemeral")``: nothing
is written to disk, no ``gx/`` folder), created lazily on first use and cached; progress
bars are switched off in its config and the ``great_expectations`` logger is lowered to
WARNING unless the application configured it. On it: one pandas Data Source
(``data_sources.add_pandas``), one dataframe Data Asset (``add_dataframe_asset``) and one
whole-dataframe Batch Definition (``add_batch_definition_whole_dataframe``). Each check
builds an ``ExpectationSuite`` of ``gx.expectations.*`` objects and validates the batch
``batch_definition.get_batch(batch_parameters={"dataframe": df})`` against it with
``result_format="SUMMARY"`` (``Batch.validate``, as in Kedro's GX page; it runs the same GX
``Validator`` as ``ValidationDefinition.run``). Suites are rebuilt per call from the column
lists and field ranges, so they are not saved: saving through ``context.suites.add_or_update``
and ``validation_definitions.add_or_update`` compares every expectation with every stored one
and took several seconds for the 160-expectation encoded-split suite, versus < 0.1 s to
build it; the ephemeral context would also keep every result in memory. Offending values
come from GX's result (``partial_unexpected_list``, ``unexpected_count``,
``partial_unexpected_index_list``, ``observed_value``). GX is not thread-safe, so runs are
serialised by a lock; ``import great_expectations`` (about 2-3 s) happens on first use.

Checks
------
* :func:`validate_raw_sample` (a reader chunk or a sample of it):
  ``ExpectTableColumnsToMatchOrderedList`` (names and exact order); label
  ``ExpectColumnValuesToNotBeNull`` + ``ExpectColumnValuesToBeInSet({0, 1})`` +
  integer ``ExpectColumnValuesToBeInTypeList``; numeric fields integer-typed, categorical
  fields string-typed (``ExpectColumnValuesToBeInTypeList``). A numeric field that arrives
  string-typed also gets ``ExpectColumnValuesToMatchRegex`` (integer literal) so the report
  can show which values are not integers.
* :func:`validate_encoded_split`: label and fields first, in ``field_ranges`` order, then
  the extra columns (``ExpectTableColumnsToMatchOrderedList``); no nulls in label or fields
  (``ExpectColumnValuesToNotBeNull``); label in {0, 1}; fields ``int32``
  (``ExpectColumnValuesToBeInTypeList``); ids within ``[offset, offset + vocab_size)`` of
  their field; optional ``ExpectTableRowCountToEqual``.
* :func:`validate_split_sizes`: GX on a 1-row-per-split frame
  (``ExpectColumnValuesToBeBetween`` strictly > 0, ``ExpectColumnSumToBeBetween`` == total).

Cost on big splits, and ``sample_rows``
---------------------------------------
``ExpectColumnValuesToBeBetween`` on pandas is GX's slow path: about 0.1 M rows/s for 39
int32 fields (1 M rows x 39 fields took 9.3 s here), while the column aggregates
(``ExpectColumnMinToBeBetween``/``ExpectColumnMaxToBeBetween``, not-null, dtype) run at
several M rows/s. So the id-range check is done in two stages:

1. **All rows, always**: per field ``ExpectColumnMinToBeBetween`` and
   ``ExpectColumnMaxToBeBetween`` with the field's ``[offset, offset + vocab_size - 1]``.
   The ids are in range iff both pass, so the verdict is exact over every row; label
   in-set, not-null and dtype checks also run on all rows.
2. **Detail, only for the fields whose min or max failed**: ``ExpectColumnValuesToBeBetween``
   gives the offending ids, their rows and the count. It runs on all rows when
   ``sample_rows`` is ``None`` or the split has at most ``sample_rows`` rows; otherwise on a
   deterministic sample of ``sample_rows`` rows (``numpy.random.default_rng(0)`` picks row
   positions without replacement, sorted; same data and ``sample_rows`` give the same
   sample). When the sample holds none of the bad rows, the observed out-of-range min/max
   from stage 1 are reported as the offending values.

Measured on the shared 2-core dev box (``tests/validation/bench_encoded.py``, numbers vary
with load): a good 1,000,000-row x 39-field int32 split validates in 0.56-0.87 s (about
1.1-1.8 M rows/s; 3 M rows: 1.3 s), part of it GX hashing the frame for its batch id and
per-expectation overhead on the 160 expectations. Running ``ExpectColumnValuesToBeBetween`` on
every field over all rows instead took 9.3 s (0.1 M rows/s). A failing field adds about
0.25 s per million detail rows (2 bad fields: 1.2 s on all 1 M rows, 0.8 s with
``sample_rows=100_000``). The first call in a process also pays ``import
great_expectations`` and context creation (2-3 s).
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from ttsctr.errors import ConfigError, TTSCTRError

__all__ = [
    "DEFAULT_SAMPLE_ROWS",
    "DataValidationError",
    "Failure",
    "ValidationReport",
    "raise_if_failed",
    "validate_encoded_split",
    "validate_raw_sample",
    "validate_split_sizes",
]

logger = logging.getLogger(__name__)

#: Offending values shown per failure.
MAX_OFFENDING = 5
#: Default cap on the rows used for the per-value detail of failing id-range checks.
DEFAULT_SAMPLE_ROWS = 1_000_000
#: Seed of the deterministic row sample.
SAMPLE_SEED = 0

LABEL = "label"

# Type names understood by GX's pandas type check (numpy names, pandas extension dtype
# class names, native "int"/"str" for object columns checked value by value).
INTEGER_TYPES: tuple[str, ...] = (
    *(f"{p}int{b}" for p in ("", "u") for b in (8, 16, 32, 64)),
    *(f"{p}Int{b}Dtype" for p in ("", "U") for b in (8, 16, 32, 64)),
    "int",
)
STRING_TYPES: tuple[str, ...] = ("StringDtype", "str")
ID_TYPES: tuple[str, ...] = ("int32", "Int32Dtype")
_INTEGER_LITERAL = r"^\s*[+-]?\d+\s*$"


class DataValidationError(TTSCTRError):
    """Data failed a validation gate; the message lists every failure.

    ``reports`` holds the failed :class:`ValidationReport` objects, ``failures`` all their
    failures, for code that wants to inspect them.
    """

    def __init__(self, reports: Sequence[ValidationReport]) -> None:
        self.reports = tuple(reports)
        self.failures = [f for r in self.reports for f in r.failures]
        head = (
            f"Data validation failed: {len(self.failures)} failure(s) in "
            f"{len(self.reports)} dataset(s)"
        )
        super().__init__("\n".join([head, *(r.to_text() for r in self.reports)]))


@dataclass(frozen=True)
class Failure:
    """One failed expectation (or a merged group for the same column and problem)."""

    column: str | None
    expectation: str
    details: str
    offending_values: list[Any] = field(default_factory=list)
    unexpected_count: int | None = None
    element_count: int | None = None

    def to_text(self) -> str:
        where = f"column {self.column!r}" if self.column is not None else "table"
        parts = [f"{where}: {self.expectation}: {self.details}"]
        if self.unexpected_count is not None:
            of = f" of {self.element_count:,}" if self.element_count is not None else ""
            parts.append(f"{self.unexpected_count:,}{of} values unexpected")
        if self.offending_values:
            parts.append(f"offending values: {self.offending_values!r}")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "expectation": self.expectation,
            "details": self.details,
            "offending_values": list(self.offending_values),
            "unexpected_count": self.unexpected_count,
            "element_count": self.element_count,
        }


@dataclass
class ValidationReport:
    """Outcome of one validation: ``success`` and the list of failures."""

    success: bool
    failures: list[Failure]
    dataset: str = ""
    source: str = ""
    rows: int | None = None
    #: Rows the per-value detail ran on (smaller than ``rows`` when sampled).
    detail_rows: int | None = None
    expectations: int = 0
    seconds: float = 0.0

    @property
    def name(self) -> str:
        if self.dataset and self.source:
            return f"{self.dataset} ({self.source})"
        return self.dataset or self.source or "<data>"

    def to_text(self) -> str:
        rows = f" on {self.rows:,} rows" if self.rows is not None else ""
        if self.success:
            return f"{self.name}: passed {self.expectations} expectations{rows}"
        lines = [
            f"{self.name}: FAILED with {len(self.failures)} failure(s) from "
            f"{self.expectations} expectations{rows}"
        ]
        if self.detail_rows is not None and self.rows is not None and self.detail_rows < self.rows:
            lines[0] += f" (per-value detail on a deterministic sample of {self.detail_rows:,} rows)"
        lines += [f"  - {f.to_text()}" for f in self.failures]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "success": self.success,
            "dataset": self.dataset,
            "source": self.source,
            "rows": self.rows,
            "detail_rows": self.detail_rows,
            "expectations": self.expectations,
            "seconds": self.seconds,
            "failures": [f.to_dict() for f in self.failures],
        }


def raise_if_failed(*reports: ValidationReport) -> None:
    """Raise :class:`DataValidationError` listing the failures of every failed report."""
    failed = [r for r in reports if not r.success]
    if failed:
        raise DataValidationError(failed)


# --------------------------------------------------------------------------------------
# GX plumbing
# --------------------------------------------------------------------------------------

_GX_LOCK = threading.RLock()
_GX_STATE: dict[int, tuple[Any, Any, Any]] = {}  # pid -> (gx module, context, batch definition)


def _gx() -> tuple[Any, Any, Any]:
    """The per-process ephemeral context and its whole-dataframe batch definition."""
    pid = os.getpid()  # a forked worker must not reuse its parent's context
    with _GX_LOCK:
        state = _GX_STATE.get(pid)
        if state is None:
            gx_logger = logging.getLogger("great_expectations")
            if gx_logger.level == logging.NOTSET:
                gx_logger.setLevel(logging.WARNING)
            import great_expectations as gx
            from great_expectations.data_context.types.base import ProgressBarsConfig

            context = gx.get_context(mode="ephemeral")
            context.variables.progress_bars = ProgressBarsConfig(
                globally=False, metric_calculations=False
            )
            asset = context.data_sources.add_pandas("ttsctr_in_memory").add_dataframe_asset(
                "dataframe"
            )
            batch_definition = asset.add_batch_definition_whole_dataframe("whole_dataframe")
            state = (gx, context, batch_definition)
            _GX_STATE.clear()
            _GX_STATE[pid] = state
        return state


@dataclass
class _Spec:
    """One expectation to run plus how to describe its failure."""

    key: str
    column: str | None
    expectation: Any  # a gx.expectations.Expectation
    what: str  # what was expected, in words
    row_column: str | None = None  # index name identifying rows (split sizes)


@dataclass
class _Outcome:
    spec: _Spec
    success: bool
    result: dict[str, Any]
    error: str | None


_OK = _Outcome(_Spec("", None, None, ""), True, {}, None)


def _run(name: str, specs: list[_Spec], df: pd.DataFrame) -> dict[str, _Outcome]:
    """Run ``specs`` as one GX suite on ``df`` (whole-dataframe batch, SUMMARY results)."""
    gx, context, batch_definition = _gx()
    by_key = {s.key: s for s in specs}
    expectations = []
    for s in specs:
        s.expectation.meta = {**(s.expectation.meta or {}), "ttsctr_key": s.key}
        expectations.append(s.expectation)
    suite = gx.ExpectationSuite(name=f"ttsctr_{name}", expectations=expectations)
    with _GX_LOCK:
        batch = batch_definition.get_batch(batch_parameters={"dataframe": df})
        result = batch.validate(suite, result_format="SUMMARY")
    outcomes: dict[str, _Outcome] = {}
    for r in result.results:
        key = (r.expectation_config.meta or {}).get("ttsctr_key")
        if key not in by_key:  # pragma: no cover - GX always echoes meta
            continue
        outcomes[key] = _Outcome(by_key[key], bool(r.success), dict(r.result or {}), _error(r))
    return outcomes


def _error(r: Any) -> str | None:
    info = r.exception_info or {}
    if info.get("raised_exception"):
        return str(info.get("exception_message"))
    messages = [
        str(v.get("exception_message"))
        for v in info.values()
        if isinstance(v, dict) and v.get("raised_exception")
    ]
    return "; ".join(messages) or None


def _plain(value: Any) -> Any:
    """numpy/pandas scalars to plain Python, missing values to None."""
    if isinstance(value, np.generic):
        value = value.item()
    try:
        if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
            return None
    except (TypeError, ValueError):  # pragma: no cover
        pass
    return value


def _distinct(values: Sequence[Any], limit: int = MAX_OFFENDING) -> list[Any]:
    out: list[Any] = []
    seen: set[Any] = set()
    for v in values:
        v = _plain(v)
        k = (type(v).__name__, repr(v))
        if k not in seen:
            seen.add(k)
            out.append(v)
            if len(out) == limit:
                break
    return out


def _rows(result: Mapping[str, Any], row_column: str | None) -> list[Any]:
    rows = []
    for entry in result.get("partial_unexpected_index_list") or []:
        if isinstance(entry, dict):
            entry = entry.get(row_column) if row_column else next(iter(entry.values()), None)
        rows.append(_plain(entry))
    return _distinct(rows)


def _failure(o: _Outcome, *, extra: str = "") -> Failure:
    res, spec = o.result, o.spec
    details = spec.what
    if o.error:
        details += f"; GX could not evaluate it: {o.error}"
    if "observed_value" in res:
        details += f"; observed {_plain(res['observed_value'])!r}"
    mismatched = (res.get("details") or {}).get("mismatched")
    if mismatched:
        details += "; mismatches: " + ", ".join(
            f"position {m.get('Expected Column Position')}: expected {m.get('Expected')!r}, "
            f"found {m.get('Found')!r}"
            for m in mismatched[:MAX_OFFENDING]
        )
    rows = _rows(res, spec.row_column)
    if rows:
        details += f"; first offending {spec.row_column or 'rows'}: {rows}"
    if extra:
        details += f"; {extra}"
    count = res.get("unexpected_count")
    return Failure(
        column=spec.column,
        expectation=spec.expectation.expectation_type,
        details=details,
        offending_values=_distinct(res.get("partial_unexpected_list") or []),
        unexpected_count=None if count is None else int(count),
        element_count=None if res.get("element_count") is None else int(res["element_count"]),
    )


# --------------------------------------------------------------------------------------
# Frames
# --------------------------------------------------------------------------------------


def _arrow_to_pandas_dtype(t: Any) -> Any:
    """pyarrow type -> pandas dtype keeping nullable ints and strings recognisable to GX."""
    import pyarrow as pa

    if pa.types.is_integer(t):
        name = f"{'U' if pa.types.is_unsigned_integer(t) else ''}Int{t.bit_width}"
        return pd.api.types.pandas_dtype(name)
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pd.StringDtype()
    if pa.types.is_boolean(t):
        return pd.BooleanDtype()
    return None


def _as_frame(data: Any) -> pd.DataFrame:
    """A pandas frame whose dtypes GX's type checks understand.

    pyarrow Tables/RecordBatches convert with nullable integer dtypes (a nullable int64
    column stays an integer column instead of becoming float64) and pandas' ``string``
    dtype; in a pandas frame, pyarrow-backed columns and the other ``StringDtype``
    flavours (``str``, python storage) are cast to the same dtypes. Values never change.
    """
    if isinstance(data, pd.DataFrame):
        out = data
        for name in data.columns:
            dtype = data[name].dtype
            target = None
            if isinstance(dtype, pd.ArrowDtype):
                target = _arrow_to_pandas_dtype(dtype.pyarrow_dtype)
            elif isinstance(dtype, pd.StringDtype) and dtype != pd.StringDtype():
                target = pd.StringDtype()
            if target is not None:
                if out is data:
                    out = data.copy(deep=False)
                out[name] = data[name].astype(target)
        return out
    try:
        import pyarrow as pa
    except ImportError:  # pragma: no cover
        pa = None
    if pa is not None and isinstance(data, (pa.Table, pa.RecordBatch)):
        return data.to_pandas(types_mapper=_arrow_to_pandas_dtype)
    raise TypeError(f"expected a pandas DataFrame or a pyarrow Table, got {type(data).__name__}")


def _sample(df: pd.DataFrame, sample_rows: int | None) -> pd.DataFrame:
    """Deterministic sample of ``sample_rows`` rows (all rows when None or not larger)."""
    if sample_rows is not None and sample_rows <= 0:
        raise ConfigError(f"sample_rows must be positive or None, got {sample_rows}")
    if sample_rows is None or len(df) <= sample_rows:
        return df
    positions = np.random.default_rng(SAMPLE_SEED).choice(len(df), size=sample_rows, replace=False)
    positions.sort()
    return df.iloc[positions]


def _finish(
    dataset: str,
    source: str,
    started: float,
    failures: list[Failure],
    *,
    rows: int | None,
    expectations: int,
    detail_rows: int | None = None,
) -> ValidationReport:
    report = ValidationReport(
        success=not failures,
        failures=failures,
        dataset=dataset,
        source=source,
        rows=rows,
        detail_rows=detail_rows,
        expectations=expectations,
        seconds=round(time.perf_counter() - started, 3),
    )
    level = logging.INFO if report.success else logging.WARNING
    logger.log(level, "%s [%.2f s]", report.to_text().splitlines()[0], report.seconds)
    return report


# --------------------------------------------------------------------------------------
# Public checks
# --------------------------------------------------------------------------------------


def validate_raw_sample(
    table_or_df: Any,
    *,
    expected_columns: Sequence[str],
    numeric_columns: Sequence[str],
    categorical_columns: Sequence[str],
    source: str,
    sample_rows: int | None = None,
) -> ValidationReport:
    """Validate a chunk (or sample) of raw reader output.

    Checks the column names and their exact order (``expected_columns``, label first,
    passthrough columns included), that ``label`` is never null and only 0 or 1 and is
    integer-typed, that ``numeric_columns`` are integer-typed and ``categorical_columns``
    string-typed. Columns absent from the data are reported once, by the column-order
    expectation. ``sample_rows`` optionally restricts everything to a deterministic sample.
    """
    started = time.perf_counter()
    gx, _, _ = _gx()
    E = gx.expectations
    df = _sample(_as_frame(table_or_df), sample_rows)
    present = set(df.columns)
    specs = [
        _Spec(
            "order",
            None,
            E.ExpectTableColumnsToMatchOrderedList(column_list=list(expected_columns)),
            f"columns must be exactly {list(expected_columns)} in this order"
            + _column_diff(list(expected_columns), list(df.columns)),
        )
    ]
    if LABEL in present:
        specs += [
            _Spec("label_null", LABEL, E.ExpectColumnValuesToNotBeNull(column=LABEL),
                  "label must not be null"),
            _Spec("label_set", LABEL, E.ExpectColumnValuesToBeInSet(column=LABEL, value_set=[0, 1]),
                  "label must be 0 or 1"),
            _Spec("label_type", LABEL,
                  E.ExpectColumnValuesToBeInTypeList(column=LABEL, type_list=list(INTEGER_TYPES)),
                  "label must be integer-typed"),
        ]
    diagnostics: dict[str, str] = {}
    for col in numeric_columns:
        if col not in present:
            continue
        what = "numeric field must be integer-typed (e.g. int64)"
        if pd.api.types.is_float_dtype(df[col].dtype):
            what += (" (a float column often means nulls in an int column converted by "
                     "pandas: pass the pyarrow Table or use a nullable Int64 column)")
        specs.append(_Spec(f"type:{col}", col, E.ExpectColumnValuesToBeInTypeList(
            column=col, type_list=list(INTEGER_TYPES)), what))
        if pd.api.types.is_string_dtype(df[col].dtype) and not pd.api.types.is_object_dtype(
            df[col].dtype
        ):
            # String-typed numeric column: GX's dtype check reports only the dtype, so also
            # ask GX which values are not integer literals.
            diagnostics[f"type:{col}"] = f"literal:{col}"
            specs.append(_Spec(f"literal:{col}", col, E.ExpectColumnValuesToMatchRegex(
                column=col, regex=_INTEGER_LITERAL), "values must be integer literals"))
    for col in categorical_columns:
        if col in present:
            specs.append(_Spec(f"type:{col}", col, E.ExpectColumnValuesToBeInTypeList(
                column=col, type_list=list(STRING_TYPES)), "categorical field must be string-typed"))

    outcomes = _run("raw_sample", specs, df)
    merged = set(diagnostics.values())
    failures: list[Failure] = []
    for spec in specs:
        o = outcomes[spec.key]
        if o.success or spec.key in merged:
            continue
        f = _failure(o)
        diag = outcomes.get(diagnostics.get(spec.key, ""))
        if diag is not None:
            if diag.success:
                f = replace(f, details=f.details + "; all non-null values look like integers "
                             "stored as strings (expect_column_values_to_match_regex passed)")
            else:
                d = _failure(diag)
                rows = _rows(diag.result, None)
                f = replace(
                    f,
                    details=f.details + "; expect_column_values_to_match_regex "
                    f"{_INTEGER_LITERAL!r} failed: values that are not integers"
                    + (f", first at rows {rows}" if rows else ""),
                    offending_values=d.offending_values,
                    unexpected_count=d.unexpected_count,
                    element_count=d.element_count,
                )
        failures.append(f)
    return _finish("raw sample", source, started, failures, rows=len(df),
                   expectations=len(specs) - len(merged))


def _column_diff(expected: list[str], found: list[str]) -> str:
    missing = [c for c in expected if c not in set(found)]
    unexpected = [c for c in found if c not in set(expected)]
    out = ""
    if missing:
        out += f"; missing {missing}"
    if unexpected:
        out += f"; unexpected {unexpected}"
    return out


def validate_encoded_split(
    df: Any,
    *,
    split: str,
    field_ranges: Mapping[str, tuple[int, int]],
    source: str,
    extra_columns: Sequence[str] | None = None,
    expected_rows: int | None = None,
    sample_rows: int | None = DEFAULT_SAMPLE_ROWS,
) -> ValidationReport:
    """Validate one encoded split (``label`` then one int32 global-id column per field).

    ``field_ranges`` maps each field, in column order, to ``(offset, vocab_size)``; its ids
    must lie in ``[offset, offset + vocab_size)``. ``extra_columns``: the exact passthrough
    columns after the fields (default: whatever follows, in any order).
    ``expected_rows``: also check the row count (e.g. from ``feature_map.json``).

    Every verdict covers all rows. ``sample_rows`` only bounds the per-value detail
    (offending ids, their rows and counts) of fields whose id range failed; see the module
    docstring.
    """
    started = time.perf_counter()
    gx, _, _ = _gx()
    E = gx.expectations
    frame = _as_frame(df)
    fields = list(field_ranges)
    expected_head = [LABEL, *fields]
    if extra_columns is None:
        extras = [c for c in frame.columns if c not in set(expected_head)]
    else:
        extras = list(extra_columns)
    expected = expected_head + extras
    present = set(frame.columns)
    specs = [
        _Spec("order", None, E.ExpectTableColumnsToMatchOrderedList(column_list=expected),
              f"columns must be {LABEL!r}, then the {len(fields)} fields in feature-map order, "
              "then the extra columns" + _column_diff(expected, list(frame.columns))),
    ]
    if expected_rows is not None:
        specs.append(_Spec("rows", None, E.ExpectTableRowCountToEqual(value=int(expected_rows)),
                           f"split must have {int(expected_rows):,} rows"))
    if LABEL in present:
        specs += [
            _Spec("null:label", LABEL, E.ExpectColumnValuesToNotBeNull(column=LABEL),
                  "label must not be null"),
            _Spec("set:label", LABEL, E.ExpectColumnValuesToBeInSet(column=LABEL, value_set=[0, 1]),
                  "label must be 0 or 1"),
            _Spec("type:label", LABEL, E.ExpectColumnValuesToBeInTypeList(
                column=LABEL, type_list=list(INTEGER_TYPES)), "label must be integer-typed"),
        ]
    ranges: dict[str, tuple[int, int, int, int]] = {}
    for name in fields:
        if name not in present:
            continue
        offset, vocab = (int(x) for x in field_ranges[name])
        if vocab <= 0 or offset < 0:
            raise ConfigError(
                f"field_ranges[{name!r}] = {field_ranges[name]!r}: expected (offset >= 0, "
                "vocab_size > 0)"
            )
        lo, hi = offset, offset + vocab - 1
        ranges[name] = (offset, vocab, lo, hi)
        specs += [
            _Spec(f"type:{name}", name, E.ExpectColumnValuesToBeInTypeList(
                column=name, type_list=list(ID_TYPES)), "ids must be int32"),
            _Spec(f"null:{name}", name, E.ExpectColumnValuesToNotBeNull(column=name),
                  "ids must not be null"),
        ]
        if pd.api.types.is_numeric_dtype(frame[name].dtype) and not pd.api.types.is_bool_dtype(
            frame[name].dtype
        ):
            specs += [
                _Spec(f"min:{name}", name, E.ExpectColumnMinToBeBetween(
                    column=name, min_value=lo, max_value=hi), ""),
                _Spec(f"max:{name}", name, E.ExpectColumnMaxToBeBetween(
                    column=name, min_value=lo, max_value=hi), ""),
            ]
    outcomes = _run("encoded_split", specs, frame)

    # Stage 2: per-value detail for fields whose min or max is out of range.
    bad_range = [
        n for n in ranges
        if (not outcomes.get(f"min:{n}", _OK).success or not outcomes.get(f"max:{n}", _OK).success)
        and not _no_ids(n, outcomes)
    ]
    detail: dict[str, _Outcome] = {}
    detail_rows = None
    if bad_range:
        sample = _sample(frame, sample_rows)
        detail_rows = len(sample)
        dspecs = [
            _Spec(f"between:{n}", n, E.ExpectColumnValuesToBeBetween(
                column=n, min_value=ranges[n][2], max_value=ranges[n][3]), "")
            for n in bad_range
        ]
        detail = _run("encoded_split_detail", dspecs, sample)

    failures: list[Failure] = []
    for spec in specs:
        o = outcomes[spec.key]
        kind, _, name = spec.key.partition(":")
        if kind in ("min", "max"):
            if kind == "max" or name not in bad_range:
                continue
            failures.append(_range_failure(name, ranges[name], outcomes, detail.get(f"between:{name}"),
                                           len(frame), detail_rows))
        elif not o.success:
            failures.append(_failure(o))
    return _finish(f"encoded split {split!r}", source, started, failures, rows=len(frame),
                   expectations=len(specs), detail_rows=detail_rows)


def _no_ids(name: str, outcomes: Mapping[str, _Outcome]) -> bool:
    """True when the field has no non-null id at all (empty split or all null): GX fails
    min/max with an observed ``None``, but no id is out of range (nulls and row counts have
    their own expectations)."""
    outs = [outcomes.get(f"{k}:{name}") for k in ("min", "max")]
    return all(
        o is not None and o.error is None and o.result.get("observed_value") is None for o in outs
    )


def _range_failure(
    name: str,
    rng: tuple[int, int, int, int],
    outcomes: Mapping[str, _Outcome],
    detail: _Outcome | None,
    rows: int,
    detail_rows: int | None,
) -> Failure:
    offset, vocab, lo, hi = rng
    mn = _plain(outcomes[f"min:{name}"].result.get("observed_value"))
    mx = _plain(outcomes[f"max:{name}"].result.get("observed_value"))
    failed = [k for k in ("min", "max") if not outcomes[f"{k}:{name}"].success]
    details = (
        f"ids must be in [{lo}, {hi}] (offset {offset}, vocab_size {vocab}); over all {rows:,} "
        f"rows observed min {mn!r}, max {mx!r} "
        f"({' and '.join(f'expect_column_{k}_to_be_between' for k in failed)} failed)"
    )
    errors = [outcomes[f"{k}:{name}"].error for k in failed if outcomes[f"{k}:{name}"].error]
    if errors:
        details += f"; GX could not evaluate it: {'; '.join(errors)}"
    extremes = [v for v in (mn, mx) if v is not None and not (lo <= v <= hi)]
    if detail is None:
        return Failure(name, f"expect_column_{failed[0]}_to_be_between", details, _distinct(extremes))
    sampled = detail_rows is not None and detail_rows < rows
    scope = f"a deterministic sample of {detail_rows:,} rows" if sampled else "all rows"
    res = detail.result
    count = res.get("unexpected_count")
    values = _distinct(res.get("partial_unexpected_list") or [])
    rows_idx = _rows(res, None)
    details += f"; expect_column_values_to_be_between on {scope}"
    if rows_idx:
        details += f", first offending rows {rows_idx}"
    if not values:  # the sample missed the bad rows: show the observed extremes
        details += (" found none" + (" (the sample missed them)" if sampled else "")
                    + "; offending values are the observed extremes")
        values = _distinct(extremes)
    return Failure(
        column=name,
        expectation="expect_column_values_to_be_between",
        details=details,
        offending_values=values,
        unexpected_count=None if count is None else int(count),
        element_count=None if res.get("element_count") is None else int(res["element_count"]),
    )


def validate_split_sizes(
    split_rows: Mapping[str, int], total_rows: int, source: str
) -> ValidationReport:
    """Check that every split has rows and that the split sizes add up to ``total_rows``."""
    started = time.perf_counter()
    gx, _, _ = _gx()
    E = gx.expectations
    frame = pd.DataFrame(
        {"rows": np.array([int(v) for v in split_rows.values()], dtype=np.int64)},
        index=pd.Index([str(k) for k in split_rows], name="split"),
    )
    sizes = ", ".join(f"{k}={int(v):,}" for k, v in split_rows.items())
    specs = [
        _Spec("positive", "rows", E.ExpectColumnValuesToBeBetween(
            column="rows", min_value=0, strict_min=True), "every split must have > 0 rows",
              row_column="split"),
        _Spec("sum", "rows", E.ExpectColumnSumToBeBetween(
            column="rows", min_value=int(total_rows), max_value=int(total_rows)),
              f"split sizes ({sizes}) must add up to {int(total_rows):,} rows"),
    ]
    outcomes = _run("split_sizes", specs, frame)
    failures = [_failure(outcomes[s.key]) for s in specs if not outcomes[s.key].success]
    return _finish("split sizes", source, started, failures, rows=len(frame),
                   expectations=len(specs))
