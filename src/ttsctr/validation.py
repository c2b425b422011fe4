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
expectations" that the Kedro page recommends: the expectations are derived in code (from the
column lists and from the feature map's per-field ``(offset, vocab_size)``), so the same checks
serve nodes, tests and ad-hoc use. A node calls the ``validate_*`` functions, which only
*report*, then :func:`raise_if_failed`, which raises :class:`DataValidationError` listing
every failure at once::

    def validate_encoded_splits(train, validation, test, feature_map):
        ranges = {f["name"]: (f["offset"], f["vocab_size"]) for f in feature_map["fields"]}
        reports = [
            validate_encoded_split(df, split=name, field_ranges=ranges, source=f"{name}.parquet",
                                   gx_root=".", dataset_name="criteo", build_docs=False)
            for name, df in (("train", train), ("validation", validation), ("test", test))
        ]
        build_data_docs(*reports)  # one Data Docs build for the three splits
        raise_if_failed(*reports)

Kedro saves a node's outputs only after the node returns, so calling this inside the
node that produces the data (e.g. preprocessing, before returning the encoded splits) means
bad data is never written; a separate validation node placed between the producer and its
consumers stops the run before anything downstream runs or writes (the producer's own
output is already saved by then). Switching to the hook alternative
needs no change here: the hook's ``before_node_run``/``after_node_run`` calls the same
functions and :func:`raise_if_failed`. (Kedro 1.7 also has catalog-level dataset
validation, a ``validator:`` key whose class exposes ``validate(data)``; a thin adapter
around these functions would plug in there as well.)

Where GX keeps things (``gx_root``)
-----------------------------------
With ``gx_root`` (a project folder; the data_processing nodes pass the Kedro project root)
validations use a **file-backed Data Context** in ``<gx_root>/gx/`` (GX's own layout, created
on demand by ``gx.get_context(mode="file")`` when it is absent):

* ``gx/great_expectations.yml``: one pandas Data Source ``ttsctr`` with one dataframe Data
  Asset per stage (``raw_sample``, ``encoded_split``, ``split_sizes``), each with a
  ``whole_dataframe`` Batch Definition; progress bars off; the Data Docs index lists the
  newest :data:`DOCS_INDEX_LIMIT` validation runs.
* Per dataset and stage an **Expectation Suite** ``<dataset>.<stage>`` (stages ``raw``,
  ``encoded``, ``splits``; files ``gx/expectations/<dataset>/<stage>.json``), a
  **Validation Definition** of the same name (suite + the stage's Batch Definition,
  ``gx/validation_definitions/``) and a **Checkpoint** of the same name (that definition and
  an ``UpdateDataDocsAction``, ``gx/checkpoints/``). They are created on first use and
  reused afterwards: each call derives the expectations in code, compares them with the
  stored suite (a few ms) and rewrites the suite only when they differ, e.g. when a new
  encoding changes the id ranges; the log says what changed. Row counts are suite
  parameters (``$PARAMETER``: ``expected_rows``, ``total_rows``) so the suite is the same for
  every split. The suites do not depend on the data's dtypes or on which columns are present:
  expectations on a missing column (reported once, by the column-order expectation) or the
  min/max of a non-numeric column (reported by its dtype expectation) are evaluated by GX
  and shown in its result, but left out of ttsctr's report.
* **Validation results** (``gx/uncommitted/validations/<dataset>/<stage>/<run>/<time>/``,
  run name = split, raw file name or ``sizes``) and **Data Docs**
  (``gx/uncommitted/data_docs/local_site/index.html``, one page per validation run and per
  suite), both git-ignored.

A single call with ``build_docs=True`` (the default) runs the Checkpoint, whose action builds
the Data Docs for that run. A caller that validates several frames in a row (the encoded
splits) passes ``build_docs=False``, so each call runs the Validation Definition (which stores
its result), and then builds the Data Docs once for all of them with
:func:`build_data_docs` -- it is what the action does, without rebuilding the index and the
suite page per split (about 0.3-0.6 s each). Suite pages are rebuilt only when the suite
changed or its page is missing (the Checkpoint's action always rebuilds it). Without
``gx_root`` (library default) one **ephemeral** context per process is used as before: suites
are built in memory per call, nothing is written, no Data Docs.

When an MLflow run is active (``mlflow.active_run()``, e.g. kedro-mlflow's run of a
``kedro run``), each validation attaches its GX result to it: the artifact
``gx/<dataset>/<stage>/<run>.json`` (the stored result file; with the in-memory context
``ExpectationSuiteValidationResult.to_json_dict()``),
``gx/<dataset>/<stage>/<run>.failures.txt`` (ttsctr's report) when it failed, metrics
``gx.<dataset>.<stage>.<run>.{success,evaluated_expectations,successful_expectations,
unsuccessful_expectations}`` and tags ``gx.<dataset>.<stage>.<run>.success`` and ``.data_docs``
(the URL of the run's Data Docs page). Nothing is logged without an active run; MLflow is not
imported by this module.

Other GX details: progress bars are switched off and the ``great_expectations`` logger is
lowered to WARNING unless the application configured it; GX is not thread-safe, so runs are
serialised by a lock (and, across processes, writes under ``gx/`` by a ``flock`` on
``gx/uncommitted/ttsctr.lock``); ``import great_expectations`` (about 2-3 s) happens on first
use. Offending values come from GX's result (``partial_unexpected_list``,
``unexpected_count``, ``partial_unexpected_index_list``, ``observed_value``, SUMMARY result
format). Diagnostics that only run after a failure (the per-value id detail below, the
integer-literal regex of string-typed numeric columns) run on the in-memory context and are
not stored; their findings are in ttsctr's report (the error message, and the MLflow
``failures.txt``).

Checks
------
* :func:`validate_raw_sample` (a reader chunk or a sample of it):
  ``ExpectTableColumnsToMatchOrderedList`` (names and exact order); label
  ``ExpectColumnValuesToNotBeNull`` + ``ExpectColumnValuesToBeInSet({0, 1})`` +
  integer ``ExpectColumnValuesToBeInTypeList``; numeric fields integer-typed, categorical
  fields string-typed (``ExpectColumnValuesToBeInTypeList``). A numeric field that arrives
  string-typed is also checked with ``ExpectColumnValuesToMatchRegex`` (integer literal) so the
  report can show which values are not integers.
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

The file context adds a fixed cost per validation, independent of the rows (CPU time on the
dev box): storing the result (GX serialises it, about 0.04 s for the 160-expectation encoded
suite), GX's freshness check of the stored definition and suite before each run (0.025 s; a
Checkpoint run checks the checkpoint too, about 0.1 s more), comparing the derived
expectations with the stored suite (0.01 s), and per Data Docs build: each validation page
(0.06-0.1 s), the suite page when it changed (0.3 s), the index (GX reads every listed result:
up to :data:`DOCS_INDEX_LIMIT`, about 0.1 s) and GX's copy of the site's static files (0.05 s).
On the default synthetic data (120k rows; ``tests/validation/bench_pipeline.py``) the two
gates of the data_processing pipeline went from 0.35 + 1.23 s to 0.52 + 1.85 s (raw + encoded,
about 1.5x); on a 1 M-row split the validation plus its Data Docs take 0.73 s instead of 0.59 s
(``tests/validation/bench_encoded.py 1000000 39 gx``), and the share keeps falling with size.
An MLflow run adds about 0.01 s per validation.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import re
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ttsctr.errors import ConfigError, TTSCTRError

__all__ = [
    "DEFAULT_SAMPLE_ROWS",
    "DataValidationError",
    "Failure",
    "GXRecord",
    "ValidationReport",
    "build_data_docs",
    "gx_context",
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

#: Folder of the file-backed GX project, below ``gx_root``.
GX_DIR = "gx"
#: Data Source holding one dataframe asset per stage, and the assets' batch definition.
DATASOURCE = "ttsctr"
BATCH_DEFINITION = "whole_dataframe"
#: Stage -> Data Asset; the stage is the second part of the suite name ``<dataset>.<stage>``.
STAGE_ASSETS: dict[str, str] = {"raw": "raw_sample", "encoded": "encoded_split", "splits": "split_sizes",
                                 "sequences": "sequence_padding"}
#: The Data Docs site ttsctr reports (GX's default local site).
DOCS_SITE = "local_site"
#: Validation runs listed on the Data Docs index (GX reads each listed result to build it).
DOCS_INDEX_LIMIT = 15
RESULT_FORMAT = "SUMMARY"
_LOCK_FILE = "ttsctr.lock"
_GX_NAME = re.compile(r"^[A-Za-z0-9_-]+$")

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
class GXRecord:
    """Where GX keeps one validation: names of its stored objects, result and Data Docs page.

    ``root`` is ``None`` for the ephemeral context (nothing stored: no definition, checkpoint,
    result file or Data Docs). ``mlflow_artifact`` is set once the result is attached to an
    MLflow run.
    """

    root: str | None
    suite: str
    run_name: str
    validation_definition: str | None = None
    checkpoint: str | None = None
    #: Validation result file, relative to ``root``.
    result: str | None = None
    #: URL of the run's Data Docs page (``file://...``); the page exists once ``docs_built``.
    data_docs: str | None = None
    docs_built: bool = False
    mlflow_artifact: str | None = None
    result_key: Any = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "suite": self.suite,
            "validation_definition": self.validation_definition,
            "checkpoint": self.checkpoint,
            "run_name": self.run_name,
            "result": self.result,
            "data_docs": self.data_docs,
            "docs_built": self.docs_built,
            "mlflow_artifact": self.mlflow_artifact,
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
    #: Where GX keeps this validation (suite, result, Data Docs page).
    gx: GXRecord | None = field(default=None, compare=False)

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
        if self.gx is not None and self.gx.data_docs:
            lines.append(f"  GX suite {self.gx.suite!r}, Data Docs: {self.gx.data_docs}")
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
            "gx": None if self.gx is None else self.gx.to_dict(),
        }


def raise_if_failed(*reports: ValidationReport) -> None:
    """Raise :class:`DataValidationError` listing the failures of every failed report."""
    failed = [r for r in reports if not r.success]
    if failed:
        raise DataValidationError(failed)


# --------------------------------------------------------------------------------------
# GX plumbing: contexts; stored suites, validation definitions and checkpoints
# --------------------------------------------------------------------------------------

_GX_LOCK = threading.RLock()


@dataclass
class _Stored:
    """A suite as stored, with its validation definition and checkpoint (same name)."""

    signature: str
    suite: Any
    validation_definition: Any
    checkpoint: Any


@dataclass
class _GXState:
    gx: Any  # the great_expectations module
    context: Any
    root: Path | None  # the folder holding gx/; None: the ephemeral context
    batch_definitions: dict[str, Any]  # stage (or "adhoc") -> whole-dataframe batch definition
    stored: dict[str, _Stored] = field(default_factory=dict)  # suite name -> stored objects
    #: suites created or changed by this process whose Data Docs page is not rebuilt yet
    stale_pages: set[str] = field(default_factory=set)


# (pid, resolved root or None) -> state; a forked worker must not reuse its parent's contexts
_GX_STATE: dict[tuple[int, str | None], _GXState] = {}


def _gx(root: str | os.PathLike[str] | None = None) -> _GXState:
    """The per-process context: ephemeral without ``root``, else the file context in ``root/gx``."""
    pid = os.getpid()
    key = (pid, None if root is None else str(Path(root).resolve()))
    with _GX_LOCK:
        state = _GX_STATE.get(key)
        if state is None:
            for other in [k for k in _GX_STATE if k[0] != pid]:
                del _GX_STATE[other]
            gx = _gx_module()
            state = _ephemeral_state(gx) if key[1] is None else _file_state(gx, Path(key[1]))
            _GX_STATE[key] = state
        return state


def _gx_module() -> Any:
    """``great_expectations`` (imported on first use, its logger lowered to WARNING unless set)."""
    gx_logger = logging.getLogger("great_expectations")
    if gx_logger.level == logging.NOTSET:
        gx_logger.setLevel(logging.WARNING)
    import great_expectations as gx

    return gx


def gx_context(root: str | os.PathLike[str]) -> Any:
    """The file-backed GX Data Context in ``root/gx`` (created when absent), as ttsctr uses it.

    For notebooks and scripts: ``gx_context(".").checkpoints.get("synthetic.encoded")``.
    """
    return _gx(root).context


def _ephemeral_state(gx: Any) -> _GXState:
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    asset = context.data_sources.add_pandas("ttsctr_in_memory").add_dataframe_asset("dataframe")
    batch_definition = asset.add_batch_definition_whole_dataframe(BATCH_DEFINITION)
    return _GXState(gx, context, None, {"adhoc": batch_definition})


def _project_lock(root: Path) -> Any:
    """Exclusive ``flock`` on ``gx/uncommitted/ttsctr.lock``: one process writes below gx/ at a time.

    Taken only while holding ``_GX_LOCK`` (never nested), so threads never wait on it.
    """
    from ttsctr.data.lock import exclusive_file_lock

    return exclusive_file_lock(root / GX_DIR / "uncommitted" / _LOCK_FILE)


def _file_state(gx: Any, root: Path) -> _GXState:
    from great_expectations.data_context.types.base import ProgressBarsConfig

    folder = root / GX_DIR
    with _project_lock(root):
        created = not (folder / "great_expectations.yml").is_file()
        context = gx.get_context(mode="file", project_root_dir=str(root))
        variables = context.variables
        changed = False
        if variables.progress_bars is None:
            variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
            changed = True
        sites = variables.data_docs_sites or {}
        index = (sites.get(DOCS_SITE) or {}).get("site_index_builder")
        if isinstance(index, dict) and "validation_results_limit" not in index:
            index["validation_results_limit"] = DOCS_INDEX_LIMIT
            variables.data_docs_sites = sites
            changed = True
        if created and context.config.analytics_enabled is None:
            context.config.analytics_enabled = False
            changed = True
        if changed:
            variables.save()
        batch_definitions = {stage: _batch_definition(context, asset) for stage, asset in STAGE_ASSETS.items()}
    if created:
        logger.info("created the Great Expectations project %s (file Data Context)", folder)
    return _GXState(gx, context, root, batch_definitions)


def _batch_definition(context: Any, asset_name: str) -> Any:
    try:
        source = context.data_sources.get(DATASOURCE)
    except LookupError:
        source = context.data_sources.add_pandas(DATASOURCE)
    try:
        asset = source.get_asset(asset_name)
    except LookupError:
        asset = source.add_dataframe_asset(asset_name)
    try:
        return asset.get_batch_definition(BATCH_DEFINITION)
    except LookupError:
        return asset.add_batch_definition_whole_dataframe(BATCH_DEFINITION)


def _expectation_dict(expectation: Any) -> dict[str, Any]:
    out = expectation.configuration.to_json_dict()
    out.pop("id", None)
    out.pop("rendered_content", None)
    return out


def _signature(expectations: Sequence[Any]) -> str:
    return json.dumps([_expectation_dict(e) for e in expectations], sort_keys=True, default=str)


def _describe_changes(old: Sequence[Any], new: Sequence[Any]) -> str:
    def by_key(expectations: Sequence[Any]) -> dict[str, dict[str, Any]]:
        out = {}
        for e in expectations:
            d = _expectation_dict(e)
            out[str((d.get("meta") or {}).get("ttsctr_key") or json.dumps(d, sort_keys=True, default=str))] = d
        return out

    before, after = by_key(old), by_key(new)
    added = [k for k in after if k not in before]
    removed = [k for k in before if k not in after]
    changed = [k for k in after if k in before and before[k] != after[k]]
    parts = []
    for label, keys in (("changed", changed), ("added", added), ("removed", removed)):
        if keys:
            shown = keys[:MAX_OFFENDING]
            if label == "changed":
                shown = [f"{k} {_kwargs_diff(before[k], after[k])}" for k in shown]
            more = f" and {len(keys) - len(shown)} more" if len(keys) > len(shown) else ""
            parts.append(f"{len(keys)} {label} ({', '.join(shown)}{more})")
    return "; ".join(parts) or "expectations reordered"


def _kwargs_diff(before: dict[str, Any], after: dict[str, Any]) -> str:
    a, b = before.get("kwargs") or {}, after.get("kwargs") or {}
    diff = {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}
    return ", ".join(f"{k}: {x!r} -> {y!r}" for k, (x, y) in diff.items())


def _stored(state: _GXState, dataset: str, stage: str, expectations: list[Any]) -> _Stored:
    """The stored suite ``<dataset>.<stage>`` holding ``expectations`` (created or rewritten
    when it differs), with its validation definition and checkpoint. Cached per process."""
    name = f"{dataset}.{stage}"
    signature = _signature(expectations)
    cached = state.stored.get(name)
    if cached is not None and cached.signature == signature:
        return cached
    from great_expectations.exceptions import DataContextError

    gx, context = state.gx, state.context
    assert state.root is not None
    with _project_lock(state.root):
        try:
            suite = context.suites.get(name)
        except DataContextError:
            suite = None
        if suite is None:
            suite = context.suites.add(gx.ExpectationSuite(name=name, expectations=expectations))
            state.stale_pages.add(name)
            logger.info("stored GX expectation suite %r (%d expectations) in %s", name, len(expectations),
                        state.root / GX_DIR)
        elif _signature(suite.expectations) != signature:
            changes = _describe_changes(suite.expectations, expectations)
            suite.expectations = list(expectations)
            suite.save()
            state.stale_pages.add(name)
            logger.info("updated GX expectation suite %r (what it checks changed): %s", name, changes)
        batch_definition = state.batch_definitions[stage]
        try:
            definition = context.validation_definitions.get(name)
        except DataContextError:
            definition = None
        if definition is not None and (definition.suite.id != suite.id or definition.data.id != batch_definition.id):
            context.validation_definitions.delete(name)  # points at another suite or batch definition
            definition = None
        if definition is None:
            definition = context.validation_definitions.add(
                gx.ValidationDefinition(name=name, data=batch_definition, suite=suite)
            )
        try:
            checkpoint = context.checkpoints.get(name)
        except DataContextError:
            checkpoint = None
        if checkpoint is not None and [v.id for v in checkpoint.validation_definitions] != [definition.id]:
            context.checkpoints.delete(name)
            checkpoint = None
        if checkpoint is None:
            checkpoint = context.checkpoints.add(gx.Checkpoint(
                name=name,
                validation_definitions=[definition],
                actions=[gx.checkpoint.UpdateDataDocsAction(name="update_data_docs")],
                result_format=RESULT_FORMAT,
            ))
    stored = _Stored(signature, suite, definition, checkpoint)
    state.stored[name] = stored
    return stored


@dataclass
class _Spec:
    """One expectation to run plus how to describe its failure."""

    key: str
    column: str | None
    expectation: Any  # a gx.expectations.Expectation
    what: str  # what was expected, in words
    row_column: str | None = None  # index name identifying rows (split sizes)
    #: False when the data makes it moot (a missing column, min/max of a non-numeric column):
    #: still in the stored suite, but left out of the report (and of ephemeral runs).
    applies: bool = True


@dataclass
class _Outcome:
    spec: _Spec
    success: bool
    result: dict[str, Any]
    error: str | None


_OK = _Outcome(_Spec("", None, None, ""), True, {}, None)


@dataclass
class _Target:
    """Where and under which names a validation is kept, and what follows it."""

    root: Path | None
    dataset: str
    run_name: str
    build_docs: bool
    mlflow: bool


def _target(gx_root: Any, dataset_name: str, run_name: str, build_docs: bool, mlflow: bool) -> _Target:
    if not _GX_NAME.match(dataset_name or ""):
        raise ConfigError(
            f"dataset_name {dataset_name!r}: expected letters, digits, '_' or '-' (it names GX suites "
            "<dataset>.<stage> and MLflow keys)"
        )
    run = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(run_name)).strip("._") or "run"
    return _Target(None if gx_root is None else Path(gx_root), dataset_name, run, build_docs, mlflow)


def _keyed(specs: Sequence[_Spec]) -> list[Any]:
    expectations = []
    for s in specs:
        s.expectation.meta = {**(s.expectation.meta or {}), "ttsctr_key": s.key}
        expectations.append(s.expectation)
    return expectations


def _outcomes(result: Any, specs: Sequence[_Spec]) -> dict[str, _Outcome]:
    by_key = {s.key: s for s in specs if s.applies}
    outcomes: dict[str, _Outcome] = {}
    for r in result.results:
        key = (r.expectation_config.meta or {}).get("ttsctr_key")
        if key not in by_key:  # not applicable to this data (or not ours)
            continue
        outcomes[key] = _Outcome(by_key[key], bool(r.success), dict(r.result or {}), _error(r))
    return outcomes


def _run_adhoc(name: str, specs: list[_Spec], df: pd.DataFrame,
               params: Mapping[str, Any] | None = None) -> tuple[dict[str, _Outcome], Any]:
    """Run ``specs`` as an unsaved suite on the in-memory context (SUMMARY results)."""
    state = _gx()
    suite = state.gx.ExpectationSuite(name=f"ttsctr_{name}", expectations=_keyed(specs))
    with _GX_LOCK:
        batch = state.batch_definitions["adhoc"].get_batch(batch_parameters={"dataframe": df})
        result = batch.validate(suite, result_format=RESULT_FORMAT, expectation_parameters=dict(params or {}))
    return _outcomes(result, specs), result


def _validate(stage: str, specs: list[_Spec], df: pd.DataFrame, target: _Target,
              params: Mapping[str, Any] | None = None) -> tuple[dict[str, _Outcome], Any, GXRecord]:
    """Validate ``df`` against the stage's suite: stored (file context) or built in memory."""
    suite_name = f"{target.dataset}.{stage}"
    if target.root is None:
        outcomes, result = _run_adhoc(stage, [s for s in specs if s.applies], df, params)
        return outcomes, result, GXRecord(root=None, suite=suite_name, run_name=target.run_name)
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )
    from great_expectations.exceptions.resource_freshness import (
        ResourceFreshnessAggregateError,
        ResourceFreshnessError,
    )

    state = _gx(target.root)
    expectations = _keyed(specs)
    with _GX_LOCK:
        for attempt in (1, 2):
            stored = _stored(state, target.dataset, stage, expectations)
            run_id = RunIdentifier(run_name=target.run_name, run_time=dt.datetime.now(dt.timezone.utc))
            try:
                if target.build_docs:
                    checkpoint_result = stored.checkpoint.run(
                        batch_parameters={"dataframe": df}, expectation_parameters=dict(params or {}), run_id=run_id
                    )
                    ((key, result),) = checkpoint_result.run_results.items()
                else:
                    result = stored.validation_definition.run(
                        batch_parameters={"dataframe": df}, expectation_parameters=dict(params or {}),
                        result_format=RESULT_FORMAT, run_id=run_id,
                    )
                    key = ValidationResultIdentifier(
                        expectation_suite_identifier=ExpectationSuiteIdentifier(name=suite_name),
                        run_id=run_id, batch_identifier=result.batch_id,
                    )
                break
            except (ResourceFreshnessAggregateError, ResourceFreshnessError):
                # another process changed the stored objects: read them again, once
                if attempt == 2:
                    raise
                state.stored.pop(suite_name, None)
                expectations = _keyed(specs)
        record = GXRecord(
            root=str(state.root),
            suite=suite_name,
            run_name=target.run_name,
            validation_definition=stored.validation_definition.name,
            checkpoint=stored.checkpoint.name,
            result=str(Path(GX_DIR, "uncommitted", "validations", *key.to_tuple()[:-1], f"{key.to_tuple()[-1]}.json")),
            data_docs=_docs_url(state, key),
            result_key=key,
        )
        if target.build_docs:
            state.stale_pages.discard(suite_name)  # the checkpoint's action rebuilt it
            record.docs_built = True
            logger.info("GX Data Docs: %s (this validation: %s)", _docs_url(state), record.data_docs)
    return _outcomes(result, specs), result, record


def _docs_url(state: _GXState, resource: Any = None, *, only_if_exists: bool = False) -> str | None:
    """URL of the Data Docs page of ``resource`` (the index without one) on ttsctr's site."""
    sites = state.context.get_docs_sites_urls(resource_identifier=resource, only_if_exists=only_if_exists)
    urls = {s["site_name"]: s["site_url"] for s in sites}
    return urls.get(DOCS_SITE, next(iter(urls.values()), None))


def build_data_docs(*reports: ValidationReport) -> list[str]:
    """Build the Data Docs pages of the stored validation results of ``reports`` (one build per
    GX project: their validation pages, the suite pages that changed or are missing, the index).

    Reports of the ephemeral context, or whose pages are built already, are skipped. Returns the
    index URLs. A failure to build is logged as a warning, never raised: Data Docs are a record
    of the gate, not the gate.
    """
    by_root: dict[str, list[GXRecord]] = {}
    for report in reports:
        record = report.gx
        if record is not None and record.root is not None and record.result_key is not None and not record.docs_built:
            by_root.setdefault(record.root, []).append(record)
    urls = []
    for root, records in by_root.items():
        try:
            from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier

            state = _gx(root)
            with _GX_LOCK:
                suites = list(dict.fromkeys(r.suite for r in records))
                pages = [
                    ExpectationSuiteIdentifier(name=s) for s in suites
                    if s in state.stale_pages
                    or _docs_url(state, ExpectationSuiteIdentifier(name=s), only_if_exists=True) is None
                ]
                with _project_lock(state.root):
                    state.context.build_data_docs(resource_identifiers=[r.result_key for r in records] + pages)
                state.stale_pages.difference_update(suites)
                index = _docs_url(state)
        except Exception as exc:  # noqa: BLE001 - reported, the validation itself stands
            logger.warning("could not build the GX Data Docs in %s: %s: %s", Path(root) / GX_DIR,
                           type(exc).__name__, exc)
            continue
        for r in records:
            r.docs_built = True
        urls.append(index)
        logger.info("GX Data Docs: %s (pages of %s)", index, ", ".join(f"{r.suite} {r.run_name}" for r in records))
        for r in records:
            logger.debug("GX Data Docs page of %s %s: %s", r.suite, r.run_name, r.data_docs)
    return urls


_MLFLOW_KEY = re.compile(r"[^A-Za-z0-9_.\- /]")


def _attach_to_mlflow(report: ValidationReport, result: Any, stage: str, target: _Target) -> None:
    """Log the GX result (and ttsctr's report when it failed) to the active MLflow run, if any."""
    if not target.mlflow:
        return
    mlflow = sys.modules.get("mlflow")  # not imported: no run can be active
    if mlflow is None:
        return
    try:
        if mlflow.active_run() is None:
            return
        base = f"gx/{target.dataset}/{stage}/{target.run_name}"
        stored = Path(report.gx.root, report.gx.result) if report.gx and report.gx.root and report.gx.result else None
        if stored is not None and stored.is_file():  # what GX wrote: no second serialisation
            payload = json.loads(stored.read_text(encoding="utf-8"))
        else:
            payload = result.to_json_dict()
        mlflow.log_dict(payload, f"{base}.json")
        if not report.success:
            mlflow.log_text(report.to_text(), f"{base}.failures.txt")
        key = _MLFLOW_KEY.sub("_", f"gx.{target.dataset}.{stage}.{target.run_name}")
        stats = result.statistics or {}
        metrics = {
            f"{key}.success": float(report.success),
            **{f"{key}.{k}": float(stats[k]) for k in
               ("evaluated_expectations", "successful_expectations", "unsuccessful_expectations") if k in stats},
        }
        tags = {f"{key}.success": str(report.success).lower()}
        if report.gx is not None and report.gx.data_docs:
            tags[f"{key}.data_docs"] = report.gx.data_docs
        from mlflow.entities import Metric, RunTag

        now = int(time.time() * 1000)
        mlflow.MlflowClient().log_batch(  # metrics and tags in one write
            mlflow.active_run().info.run_id,
            metrics=[Metric(k, v, now, 0) for k, v in metrics.items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
        )
    except Exception as exc:  # noqa: BLE001 - tracking must not change the gate's verdict
        logger.warning("could not attach the GX result of %s to the MLflow run: %s: %s", report.name,
                       type(exc).__name__, exc)
        return
    if report.gx is not None:
        report.gx.mlflow_artifact = f"{base}.json"

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
    record: GXRecord | None = None,
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
        gx=record,
    )
    level = logging.INFO if report.success else logging.WARNING
    logger.log(level, "%s [%.2f s]", report.to_text().splitlines()[0], report.seconds)
    return report


def _done(report: ValidationReport, result: Any, stage: str, target: _Target) -> ValidationReport:
    _attach_to_mlflow(report, result, stage, target)
    return report


# --------------------------------------------------------------------------------------
# Public checks
# --------------------------------------------------------------------------------------
#
# Each takes, besides the data:
#   gx_root: folder holding the file GX project gx/ (created when absent); None (default): the
#       in-memory context, nothing stored.
#   dataset_name: names the stored objects ("<dataset_name>.<stage>") and the MLflow keys.
#   run_name: the GX run name (validation result folder, Data Docs page, MLflow artifact).
#   build_docs: with gx_root, run the Checkpoint, whose action builds the Data Docs now; False:
#       run the Validation Definition and leave the Data Docs to build_data_docs(*reports).
#   log_to_mlflow: attach the result to the active MLflow run, if there is one.


def validate_raw_sample(
    table_or_df: Any,
    *,
    expected_columns: Sequence[str],
    numeric_columns: Sequence[str],
    categorical_columns: Sequence[str],
    source: str,
    sample_rows: int | None = None,
    gx_root: str | os.PathLike[str] | None = None,
    dataset_name: str = "data",
    run_name: str | None = None,
    build_docs: bool = True,
    log_to_mlflow: bool = True,
) -> ValidationReport:
    """Validate a chunk (or sample) of raw reader output (suite ``<dataset_name>.raw``).

    Checks the column names and their exact order (``expected_columns``, label first,
    passthrough columns included), that ``label`` is never null and only 0 or 1 and is
    integer-typed, that ``numeric_columns`` are integer-typed and ``categorical_columns``
    string-typed. Columns absent from the data are reported once, by the column-order
    expectation. ``sample_rows`` optionally restricts everything to a deterministic sample.
    ``run_name`` defaults to the file name of ``source``. See the module docstring for the GX
    arguments.
    """
    started = time.perf_counter()
    target = _target(gx_root, dataset_name, run_name or Path(str(source)).name or "sample", build_docs,
                     log_to_mlflow)
    gx = _gx_module()
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
        ),
        _Spec("label_null", LABEL, E.ExpectColumnValuesToNotBeNull(column=LABEL),
              "label must not be null", applies=LABEL in present),
        _Spec("label_set", LABEL, E.ExpectColumnValuesToBeInSet(column=LABEL, value_set=[0, 1]),
              "label must be 0 or 1", applies=LABEL in present),
        _Spec("label_type", LABEL,
              E.ExpectColumnValuesToBeInTypeList(column=LABEL, type_list=list(INTEGER_TYPES)),
              "label must be integer-typed", applies=LABEL in present),
    ]
    literal_specs: list[_Spec] = []  # diagnostics, run only for string-typed numeric columns
    for col in numeric_columns:
        what = "numeric field must be integer-typed (e.g. int64)"
        if col in present and pd.api.types.is_float_dtype(df[col].dtype):
            what += (" (a float column often means nulls in an int column converted by "
                     "pandas: pass the pyarrow Table or use a nullable Int64 column)")
        specs.append(_Spec(f"type:{col}", col, E.ExpectColumnValuesToBeInTypeList(
            column=col, type_list=list(INTEGER_TYPES)), what, applies=col in present))
        if col in present and pd.api.types.is_string_dtype(df[col].dtype) and not pd.api.types.is_object_dtype(
            df[col].dtype
        ):
            # String-typed numeric column: GX's dtype check reports only the dtype, so also
            # ask GX which values are not integer literals.
            literal_specs.append(_Spec(f"literal:{col}", col, E.ExpectColumnValuesToMatchRegex(
                column=col, regex=_INTEGER_LITERAL), "values must be integer literals"))
    for col in categorical_columns:
        specs.append(_Spec(f"type:{col}", col, E.ExpectColumnValuesToBeInTypeList(
            column=col, type_list=list(STRING_TYPES)), "categorical field must be string-typed",
            applies=col in present))

    outcomes, result, record = _validate("raw", specs, df, target)
    diagnostics: dict[str, _Outcome] = {}
    failing_literal = [s for s in literal_specs if not outcomes[f"type:{s.column}"].success]
    if failing_literal:
        diagnostics, _ = _run_adhoc("raw_literals", failing_literal, df)
    applicable = [s for s in specs if s.applies]
    failures: list[Failure] = []
    for spec in applicable:
        o = outcomes[spec.key]
        if o.success:
            continue
        f = _failure(o)
        diag = diagnostics.get(f"literal:{spec.column}") if spec.key.startswith("type:") else None
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
    report = _finish("raw sample", source, started, failures, rows=len(df),
                     expectations=len(applicable), record=record)
    return _done(report, result, "raw", target)


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
    gx_root: str | os.PathLike[str] | None = None,
    dataset_name: str = "data",
    run_name: str | None = None,
    build_docs: bool = True,
    log_to_mlflow: bool = True,
) -> ValidationReport:
    """Validate one encoded split (``label`` then one int32 global-id column per field).

    ``field_ranges`` maps each field, in column order, to ``(offset, vocab_size)``; its ids
    must lie in ``[offset, offset + vocab_size)``. ``extra_columns``: the exact passthrough
    columns after the fields (default: whatever follows, in any order).
    ``expected_rows``: also check the row count (e.g. from ``feature_map.json``; a suite
    parameter, so the splits share the suite ``<dataset_name>.encoded``). ``run_name``
    defaults to ``split``.

    Every verdict covers all rows. ``sample_rows`` only bounds the per-value detail
    (offending ids, their rows and counts) of fields whose id range failed; see the module
    docstring, also for the GX arguments.
    """
    started = time.perf_counter()
    target = _target(gx_root, dataset_name, run_name or split, build_docs, log_to_mlflow)
    gx = _gx_module()
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
    params: dict[str, Any] = {}
    if expected_rows is not None:
        params["expected_rows"] = int(expected_rows)
        specs.append(_Spec("rows", None, E.ExpectTableRowCountToEqual(value={"$PARAMETER": "expected_rows"}),
                           f"split must have {int(expected_rows):,} rows"))
    has_label = LABEL in present
    specs += [
        _Spec("null:label", LABEL, E.ExpectColumnValuesToNotBeNull(column=LABEL),
              "label must not be null", applies=has_label),
        _Spec("set:label", LABEL, E.ExpectColumnValuesToBeInSet(column=LABEL, value_set=[0, 1]),
              "label must be 0 or 1", applies=has_label),
        _Spec("type:label", LABEL, E.ExpectColumnValuesToBeInTypeList(
            column=LABEL, type_list=list(INTEGER_TYPES)), "label must be integer-typed", applies=has_label),
    ]
    ranges: dict[str, tuple[int, int, int, int]] = {}
    for name in fields:
        offset, vocab = (int(x) for x in field_ranges[name])
        if vocab <= 0 or offset < 0:
            raise ConfigError(
                f"field_ranges[{name!r}] = {field_ranges[name]!r}: expected (offset >= 0, "
                "vocab_size > 0)"
            )
        lo, hi = offset, offset + vocab - 1
        here = name in present
        numeric = here and pd.api.types.is_numeric_dtype(frame[name].dtype) and not pd.api.types.is_bool_dtype(
            frame[name].dtype
        )
        if here:
            ranges[name] = (offset, vocab, lo, hi)
        specs += [
            _Spec(f"type:{name}", name, E.ExpectColumnValuesToBeInTypeList(
                column=name, type_list=list(ID_TYPES)), "ids must be int32", applies=here),
            _Spec(f"null:{name}", name, E.ExpectColumnValuesToNotBeNull(column=name),
                  "ids must not be null", applies=here),
            _Spec(f"min:{name}", name, E.ExpectColumnMinToBeBetween(
                column=name, min_value=lo, max_value=hi), "", applies=numeric),
            _Spec(f"max:{name}", name, E.ExpectColumnMaxToBeBetween(
                column=name, min_value=lo, max_value=hi), "", applies=numeric),
        ]
    outcomes, result, record = _validate("encoded", specs, frame, target, params)

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
        detail, _ = _run_adhoc("encoded_split_detail", dspecs, sample)

    applicable = [s for s in specs if s.applies]
    failures: list[Failure] = []
    for spec in applicable:
        o = outcomes[spec.key]
        kind, _, name = spec.key.partition(":")
        if kind in ("min", "max"):
            if kind == "max" or name not in bad_range:
                continue
            failures.append(_range_failure(name, ranges[name], outcomes, detail.get(f"between:{name}"),
                                           len(frame), detail_rows))
        elif not o.success:
            failures.append(_failure(o))
    report = _finish(f"encoded split {split!r}", source, started, failures, rows=len(frame),
                     expectations=len(applicable), detail_rows=detail_rows, record=record)
    return _done(report, result, "encoded", target)


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
    split_rows: Mapping[str, int],
    total_rows: int,
    source: str,
    *,
    gx_root: str | os.PathLike[str] | None = None,
    dataset_name: str = "data",
    run_name: str = "sizes",
    build_docs: bool = True,
    log_to_mlflow: bool = True,
) -> ValidationReport:
    """Check that every split has rows and that the split sizes add up to ``total_rows``
    (suite ``<dataset_name>.splits``; ``total_rows`` is a suite parameter)."""
    started = time.perf_counter()
    target = _target(gx_root, dataset_name, run_name, build_docs, log_to_mlflow)
    gx = _gx_module()
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
            column="rows", min_value={"$PARAMETER": "total_rows"}, max_value={"$PARAMETER": "total_rows"}),
              f"split sizes ({sizes}) must add up to {int(total_rows):,} rows"),
    ]
    outcomes, result, record = _validate("splits", specs, frame, target, {"total_rows": int(total_rows)})
    failures = [_failure(outcomes[s.key]) for s in specs if not outcomes[s.key].success]
    report = _finish("split sizes", source, started, failures, rows=len(frame),
                     expectations=len(specs), record=record)
    return _done(report, result, "splits", target)


def validate_sequence_padding(
    slots: Mapping[str, tuple[np.ndarray, np.ndarray]],
    lengths: Mapping[str, np.ndarray],
    *,
    split: str,
    source: str,
    gx_root: str | os.PathLike[str] | None = None,
    dataset_name: str = "data",
    run_name: str | None = None,
    build_docs: bool = True,
    log_to_mlflow: bool = True,
) -> ValidationReport:
    """Lengths and padding of the behaviour sequences of one encoded split (suite
    ``<dataset_name>.sequences``).

    ``slots[name] = (ids (n, width), padding ids (width,))``: the global slot ids of sequence
    ``name`` (``user_seq``, ``cand_seq``) and the padding id of each slot; ``lengths[name]`` its
    stored length column. Per sequence: every length lies in ``[0, width]``, equals the number of
    non-padding slots (the mask the models build agrees with the length), and the padding comes
    first (left padding, most recent behaviour last). The id ranges are
    :func:`validate_encoded_split`'s (each slot is a field there).
    """
    started = time.perf_counter()
    target = _target(gx_root, dataset_name, run_name or f"{split}-sequences", build_docs, log_to_mlflow)
    gx = _gx_module()
    E = gx.expectations
    columns: dict[str, np.ndarray] = {}
    specs: list[_Spec] = []
    for name, (ids, padding) in slots.items():
        ids = np.asarray(ids)
        width = ids.shape[1]
        real = ids != np.asarray(padding)[None, :]
        # left-padded: once a real behaviour appears, no padding follows it
        left_padded = ~np.any(np.diff(real.astype(np.int8), axis=1) < 0, axis=1)
        columns[f"{name}_len"] = np.asarray(lengths[name], dtype=np.int64)
        columns[f"{name}_real"] = real.sum(axis=1).astype(np.int64)
        columns[f"{name}_left_padded"] = left_padded
        specs += [
            _Spec(f"len:{name}", f"{name}_len", E.ExpectColumnValuesToBeBetween(
                column=f"{name}_len", min_value=0, max_value=width), f"{name} lengths must lie in [0, {width}]",
                  row_column="row"),
            _Spec(f"mask:{name}", f"{name}_len", E.ExpectColumnPairValuesToBeEqual(
                column_A=f"{name}_len", column_B=f"{name}_real"),
                  f"{name}_len must equal the number of non-padding slots of {name}", row_column="row"),
            _Spec(f"left:{name}", f"{name}_left_padded", E.ExpectColumnValuesToBeInSet(
                column=f"{name}_left_padded", value_set=[True]),
                  f"{name} must be left-padded (padding slots before the behaviours)", row_column="row"),
        ]
    frame = pd.DataFrame(columns, index=pd.RangeIndex(len(next(iter(columns.values()), [])), name="row"))
    outcomes, result, record = _validate("sequences", specs, frame, target, {})
    failures = [_failure(outcomes[s.key]) for s in specs if not outcomes[s.key].success]
    report = _finish(f"sequence padding of split {split!r}", source, started, failures, rows=len(frame),
                     expectations=len(specs), record=record)
    return _done(report, result, "sequences", target)
