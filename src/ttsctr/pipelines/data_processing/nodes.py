"""Nodes of the data_processing pipeline.

Encoding streams the raw file in chunks (memory bounded by the chunk size), so the splits are
written by ``ttsctr.data.preprocess`` into a staging folder rather than returned through the
catalog. Great Expectations validates the staged output before it is published with a rename:
a failed expectation stops the run and nothing reaches ``data/05_model_input/<dataset>/``
(the previous version, if any, stays as it was). Every failure path removes the staging folder.
A rerun with the same raw file(s) and settings reuses the published output instead of
re-encoding.

``raw_path`` is one file, a glob pattern (``.../wide-resdnn_*.txt.gz``, files in name order) or,
from a YAML parameters file, a list of files (in list order). Several files are read one after
the other as one click log: row numbers (and so the random split) run on across files, and a
bad line is reported with its own file and line.
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import json
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ttsctr.data.io import pid_alive, replace_dir
from ttsctr.data.lock import dataset_lock
from ttsctr.data.preprocess import FEATURE_MAP_VERSION, PreprocessConfig, preprocess
from ttsctr.data.readers import PARSE_BLOCK_BYTES, RawReader, get_reader
from ttsctr.data.sequence_store import (
    SEQUENCE_FORMATS,
    SEQUENCE_MAP_VERSION,
    build_sequence_data,
    is_sequence_map,
    sequence_validation_inputs,
    write_sequence_model_input,
)
from ttsctr.data.sequences import SequenceConfig
from ttsctr.data.synthetic import GENERATOR_VERSION, generate_synthetic
from ttsctr.data.version import MARKER_FILE, compute_data_version, published_data_version, read_marker
from ttsctr.errors import ConfigError, DataFormatError
from ttsctr.metrics import roc_auc as auc
from ttsctr.validation import (
    build_data_docs,
    raise_if_failed,
    validate_encoded_split,
    validate_raw_sample,
    validate_sequence_padding,
    validate_split_sizes,
)

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
FINGERPRINT_FILE = MARKER_FILE  # fingerprint of the raw input and settings + data version of the output
RAW_FORMAT_OF_SEQUENCE = {"movielens_seq": "movielens"}
PUBLISHED_FILES = ("train.parquet", "validation.parquet", "test.parquet", "feature_map.json", "vocabulary.parquet")
STAGING_PREFIX = ".staging-"
_GLOB_CHARS = frozenset("*?[")


# --------------------------------------------------------------------------------------------
# several raw files as one click log
# --------------------------------------------------------------------------------------------
class ConcatReader(RawReader):
    """Several raw files of one format read one after the other, as if they were one file.

    ``iter_chunks(path)`` ignores ``path`` (``preprocess`` passes the first file) and yields the
    chunks of every file in order; errors name the file and line they come from.
    """

    def __init__(self, inner: RawReader, paths: list[str | Path]) -> None:
        self._inner = inner
        self._paths = [Path(p) for p in paths]
        self._options = dict(inner.options)
        self.name = inner.name
        self.fields = inner.fields
        self.extra_columns = inner.extra_columns
        self.extra_types = inner.extra_types

    @property
    def options(self) -> dict[str, Any]:
        return self._inner.options

    def source_files(self, path: str | Path | None = None) -> list[Path]:
        return [f for p in self._paths for f in self._inner.source_files(p)]

    def iter_chunks(self, path: str | Path | None = None, chunk_bytes: int = 64 << 20) -> Iterator[pa.Table]:
        for p in self._paths:
            yield from self._inner.iter_chunks(p, chunk_bytes)

    def __repr__(self) -> str:
        return f"ConcatReader({self._inner!r}, {[str(p) for p in self._paths]})"


def _raw_format(fmt: str) -> str | None:
    """The reader format of ``fmt``'s raw files: a sequence dataset reads the raw files of its
    tabular counterpart (``movielens_seq``: MovieLens u.data, u.user, u.item); None when it is
    generated (``synthetic_seq``)."""
    if fmt in SEQUENCE_FORMATS:
        return RAW_FORMAT_OF_SEQUENCE.get(fmt)
    return fmt


def _reader(source: dict[str, Any]) -> RawReader:
    """The reader of ``source`` (a :class:`ConcatReader` over several files)."""
    reader = get_reader(_raw_format(source["format"]), **source["reader_options"])
    if len(source["raw_files"]) > 1:
        return ConcatReader(reader, source["raw_files"])
    return reader


# --------------------------------------------------------------------------------------------
# resolve the raw input
# --------------------------------------------------------------------------------------------
def _expand_raw_path(dataset: str, fmt: str, raw_path: Any) -> list[Path]:
    """The files ``raw_path`` names (a file, a glob pattern or a list of either)."""
    if isinstance(raw_path, (list, tuple)):
        items = list(raw_path)
        if not items:
            raise ConfigError(f"raw_path for dataset {dataset!r} is an empty list; expected one or more {fmt} files")
    else:
        items = [raw_path]
    files: list[Path] = []
    for item in items:
        if not isinstance(item, (str, os.PathLike)) or str(item).strip() == "":
            raise ConfigError(f"raw_path for dataset {dataset!r}: {item!r} is not a file path; expected a {fmt} file")
        text = os.path.expanduser(str(item))
        if _GLOB_CHARS & set(text):
            matches = sorted(p for p in glob.glob(text) if Path(p).is_file())
            if not matches:
                raise ConfigError(f"raw_path pattern {text!r} for dataset {dataset!r} matches no file; expected {fmt} file(s)")
            files += [Path(p) for p in matches]
            continue
        path = Path(text)
        try:
            exists, is_file = path.exists(), path.is_file()
        except PermissionError:  # a folder above it may not be searched by this user
            raise ConfigError(f"raw_path {text!r} for dataset {dataset!r} cannot be reached: permission denied "
                              f"(this user may not search a folder above it); expected a readable {fmt} file") from None
        if not exists:
            raise ConfigError(f"raw_path {text!r} for dataset {dataset!r} does not exist; expected a {fmt} file")
        if not is_file:
            raise ConfigError(f"raw_path {text!r} for dataset {dataset!r} is not a file; expected a {fmt} file")
        files.append(path)
    seen: set[Path] = set()
    for f in files:
        if f.resolve() in seen:
            raise ConfigError(f"raw_path for dataset {dataset!r} lists {str(f)!r} twice; each file may be read once")
        seen.add(f.resolve())
    return files


def _fingerprint(source: dict[str, Any], reader: RawReader) -> str:
    """Hash of everything the encoded output depends on: files (path, size, mtime) and settings."""
    from ttsctr import __version__

    files = []
    for path in (reader.source_files(source["raw_files"][0]) if reader is not None else []):
        if not path.is_file():
            raise DataFormatError(
                path, found="no such file",
                expected=f"a file the {source['format']} reader reads besides {', '.join(source['raw_files'])}",
            )
        stat = path.stat()
        files.append({"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns})
    payload = {
        "format": source["format"],
        "reader_options": source["reader_options"],
        "preprocessing": source["preprocessing"],
        "files": files,
        "feature_map_version": FEATURE_MAP_VERSION,
        "ttsctr_version": __version__,
    }
    if source["format"] in SEQUENCE_FORMATS:
        payload.update(sequence=source["sequence"], generate=source["generate"], sequence_map_version=SEQUENCE_MAP_VERSION)
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def check_dataset_config(dataset: Any, raw_path: Any, datasets: dict[str, Any], *,
                         generate: bool = True) -> tuple[dict[str, Any], str, list[Path]]:
    """The dataset's entry, format and raw files; every configuration mistake as a ConfigError.

    ``generate``: write the synthetic default file when needed (``False``: a missing synthetic
    default is no mistake, the run generates it; its files are then not listed).
    """
    if not isinstance(dataset, str) or dataset not in datasets:
        raise ConfigError(f"unknown dataset {dataset!r}; known datasets: {', '.join(sorted(datasets))}")
    entry = datasets[dataset] or {}
    fmt = entry.get("format")
    if fmt is None:
        raise ConfigError(f"datasets.{dataset} has no 'format' (one of criteo, avazu, kdd12, movielens, synthetic)")
    if fmt == "synthetic_seq":
        if raw_path is not None:
            raise ConfigError(f"dataset {dataset!r} (synthetic_seq) is generated from datasets.{dataset}.generate; "
                              f"it reads no raw file (got raw_path={raw_path!r})")
        return entry, fmt, []
    if raw_path is None:
        default = entry.get("default_raw_path")
        if fmt == "synthetic" and default is not None:
            if not generate:
                return entry, fmt, []
            ensure_synthetic(default, entry.get("generate") or {})
        if default is None or not Path(default).is_file():
            hint = f" (its default file {default} does not exist)" if default is not None else ""
            raise ConfigError(
                f"dataset {dataset!r} needs a raw {fmt} file{hint}: "
                f"pass --params \"dataset={dataset},raw_path=<file>\""
            )
        raw_path = default
    return entry, fmt, _expand_raw_path(dataset, fmt, raw_path)


def resolve_raw_source(
    dataset: str, raw_path: Any, datasets: dict[str, Any], model_input_root: str
) -> dict[str, Any]:
    """Pick the dataset entry, check the raw file(s), reader options and preprocessing settings.

    Generates the synthetic default file when needed. Every configuration mistake is reported
    here, before anything is read or written.
    """
    entry, fmt, files = check_dataset_config(dataset, raw_path, datasets)
    # whatever this run decides about re-encoding: leftovers of killed runs of this dataset go
    _remove_stale_staging(model_input_root, dataset)
    source = {
        "dataset": dataset,
        "format": fmt,
        "raw_path": str(files[0]) if len(files) == 1 else [str(f) for f in files],
        "raw_files": [str(f) for f in files],
        "reader_options": dict(entry.get("reader_options") or {}),
        "preprocessing": dict(entry.get("preprocessing") or {}),
        "model_input_dir": str(Path(model_input_root) / dataset),
    }
    if fmt in SEQUENCE_FORMATS:
        SequenceConfig.from_dict(entry.get("sequence"))  # bad settings -> ConfigError
        source.update(sequence=dict(entry.get("sequence") or {}), generate=dict(entry.get("generate") or {}))
        reader = _reader(source) if _raw_format(fmt) else None
    else:
        reader = _reader(source)  # bad reader options -> ConfigError
        PreprocessConfig.from_dict(source["preprocessing"]).validate(reader)  # bad settings -> ConfigError
    source["fingerprint"] = _fingerprint(source, reader)  # missing side files (u.user, ...) -> DataFormatError
    return source


def ensure_synthetic(path: str, generate: dict[str, Any]) -> None:
    """Generate the embedded default click log unless one with the same settings is there."""
    meta_path = Path(f"{path}.meta.json")
    wanted = {"n_rows": int(generate.get("n_rows", 120_000)), "seed": int(generate.get("seed", 0))}
    if Path(path).exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        # a file of an older generator has other planted signal: regenerate rather than reuse it
        same_generator = (meta.get("generator") or {}).get("version") == GENERATOR_VERSION
        if same_generator and all(meta.get(k) == v for k, v in wanted.items()):
            return
    summary = generate_synthetic(path, **wanted, progress=True)
    log.info("generated %s: %d rows, Bayes-optimal AUC %.4f", path, wanted["n_rows"], summary.bayes_auc)


def _is_published(source: dict[str, Any]) -> bool:
    """Whether the published folder was encoded from this raw input with these settings.

    A folder published before data versions were recorded counts as not published (re-encoded).
    """
    folder = Path(source["model_input_dir"])
    marker = read_marker(folder)
    if marker is None or not all((folder / name).is_file() for name in PUBLISHED_FILES):
        return False
    return marker.get("fingerprint") == source["fingerprint"] and isinstance(marker.get("data_version"), str)


# --------------------------------------------------------------------------------------------
# raw validation
# --------------------------------------------------------------------------------------------
def gx_root(source: dict[str, Any], validation: dict[str, Any]) -> Path | None:
    """The folder whose ``gx/`` holds the file GX project of the validations (created when absent).

    ``validation.gx_root`` when set (``false``: the in-memory context, nothing stored); else the
    Kedro project that holds the model input folder (for ``kedro run``, the project root); else,
    for data outside any Kedro project (library use, tests), the folder above ``model_input_root``.
    """
    explicit = validation.get("gx_root")
    if explicit is False:
        return None
    if explicit not in (None, ""):
        return Path(os.path.expanduser(str(explicit))).resolve()
    from kedro.utils import find_kedro_project

    model_input_root = Path(source["model_input_dir"]).resolve().parent
    return find_kedro_project(model_input_root) or model_input_root.parent


def _unique_names(paths: list[str]) -> list[str]:
    """GX run names of the raw files: their file names, numbered when two share one."""
    names = [Path(p).name for p in paths]
    return [f"{i + 1}-{n}" if names.count(n) > 1 else n for i, n in enumerate(names)]


def validate_raw_data(source: dict[str, Any], validation: dict[str, Any]) -> dict[str, Any]:
    """Great Expectations on the head of each raw file: columns and order, label in {0,1}, types.

    Suite ``<dataset>.raw`` of the project's GX context (see :func:`gx_root`), one validation
    run per raw file (named after it); the Data Docs are built once for all of them, also when
    the check fails.
    """
    if _is_published(source):
        return {"skipped": True, "reason": "model input already published for this raw file and settings"}
    if _raw_format(source["format"]) is None:
        return {"skipped": True, "reason": f"{source['format']} is generated; it has no raw file"}
    reader = get_reader(_raw_format(source["format"]), **source["reader_options"])
    limit = int(validation.get("raw_sample_rows", 100_000))
    # read small chunks: the sample is the head of the file, not the first 64 MiB chunk
    chunk_bytes = min(PARSE_BLOCK_BYTES, int(source["preprocessing"].get("chunk_bytes", PARSE_BLOCK_BYTES)))
    root = gx_root(source, validation)
    reports, rows_checked = [], 0
    try:
        for path, run_name in zip(source["raw_files"], _unique_names(source["raw_files"])):
            chunks, rows = [], 0
            for chunk in reader.iter_chunks(path, chunk_bytes):
                chunks.append(chunk)
                rows += chunk.num_rows
                if rows >= limit:
                    break
            if not chunks:
                raise DataFormatError(path, found="no rows", expected="at least one data row")
            sample = pa.concat_tables(chunks).slice(0, limit)
            rows_checked += sample.num_rows
            reports.append(
                validate_raw_sample(
                    sample,
                    expected_columns=["label", *(f.name for f in reader.fields), *reader.extra_columns],
                    numeric_columns=[f.name for f in reader.fields if f.kind == "numeric"],
                    categorical_columns=[f.name for f in reader.fields if f.kind == "categorical"],
                    source=str(path),
                    gx_root=root, dataset_name=source["dataset"], run_name=run_name, build_docs=False,
                )
            )
    finally:
        docs = build_data_docs(*reports)
    raise_if_failed(*reports)
    return {"skipped": False, "rows_checked": rows_checked, "reports": [r.to_dict() for r in reports],
            "data_docs": docs[0] if docs else None}


# --------------------------------------------------------------------------------------------
# encoding into a staging folder
# --------------------------------------------------------------------------------------------
def _staging_dir(root: str, dataset: str) -> Path:
    return Path(root) / f"{STAGING_PREFIX}{dataset}-{os.getpid()}"


def _remove_stale_staging(root: str, dataset: str) -> None:
    """Leftovers of ``dataset`` runs that were killed (their process is gone): staging folders,
    the encoder's temporary folders inside them and set-aside previous versions."""
    folder = Path(root)
    if not folder.is_dir():
        return
    patterns = (
        re.compile(rf"^{re.escape(STAGING_PREFIX + dataset)}-(\d+)$"),  # .staging-<dataset>-<pid>
        re.compile(rf"^\.{re.escape(STAGING_PREFIX + dataset)}-(\d+)\..*$"),  # ..staging-<dataset>-<pid>.tmp-... (atomic_dir)
        re.compile(rf"^\.{re.escape(dataset)}\.old-(\d+)-.*$"),  # .<dataset>.old-<pid>-<id> (replace_dir)
    )
    for entry in folder.iterdir():
        for pattern in patterns:
            match = pattern.match(entry.name)
            if match and (int(match.group(1)) == os.getpid() or not pid_alive(int(match.group(1)))):
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
                break


def encode_to_staging(source: dict[str, Any], raw_report: dict[str, Any], model_input_root: str) -> dict[str, Any]:
    """Encode the raw file(s) with ``ttsctr.data.preprocess`` into a per-run staging folder."""
    if _is_published(source):
        log.info(
            "model input for %s is up to date (fingerprint %s, same raw files and settings); not re-encoding",
            source["dataset"], source["fingerprint"],
        )
        return {"source": source, "staging_dir": None}
    staging = _staging_dir(model_input_root, source["dataset"])
    if source["format"] in SEQUENCE_FORMATS:
        data = build_sequence_data(source["format"], source["raw_files"], source["sequence"], source["generate"])
        log.info("sequences of %s: %s", source["dataset"], data.summary())
        feature_map = write_sequence_model_input(data, staging, dataset=source["dataset"], fmt=source["format"],
                                                 provenance={"files": source["raw_files"]})
        return {"source": source, "staging_dir": str(staging), "feature_map": feature_map}
    config = PreprocessConfig.from_dict(source["preprocessing"])
    # preprocess writes into a temporary sibling and renames it onto `staging` only on success
    feature_map = preprocess(_reader(source), source["raw_files"][0], staging, config, progress=True)
    return {"source": source, "staging_dir": str(staging), "feature_map": feature_map}


def _field_ranges(feature_map: dict[str, Any]) -> dict[str, tuple[int, int]]:
    return {f["name"]: (int(f["offset"]), int(f["vocab_size"])) for f in feature_map["fields"]}


def _empty_split_hint(source: dict[str, Any], split_rows: dict[str, int], total: int) -> str | None:
    empty = [s for s, n in split_rows.items() if n == 0]
    if not empty:
        return None
    pre = source["preprocessing"]
    ds = source["dataset"]
    if pre.get("split", "random") == "random":
        fix = (
            f"use a larger file, or split by position: --params "
            f"\"dataset={ds},datasets.{ds}.preprocessing.split=chronological\""
        )
    else:
        fix = "use a larger file or other split_ratios"
    return (
        f"the {total:,}-row input is too small for a {pre.get('split', 'random')} "
        f"{pre.get('split_ratios', [0.8, 0.1, 0.1])} split ({', '.join(empty)} got no rows): {fix}"
    )


def validate_encoded_data(staged: dict[str, Any], validation: dict[str, Any]) -> dict[str, Any]:
    """GX on the staged splits: ids within their field's range, no nulls, split sizes add up.

    Suites ``<dataset>.encoded`` (one validation run per split; the id ranges are those of this
    encoding's feature map) and ``<dataset>.splits``; the Data Docs are built once for the four
    runs, also when a check fails. On a failure (or any error) the staging folder is removed and
    nothing is published.
    """
    if staged["staging_dir"] is None:
        return {"skipped": True}
    staging = Path(staged["staging_dir"])
    source = staged["source"]
    try:
        root = gx_root(source, validation)
        gx_args = {"gx_root": root, "dataset_name": source["dataset"], "build_docs": False}
        feature_map = staged["feature_map"]
        ranges = _field_ranges(feature_map)
        sample_rows = validation.get("encoded_sample_rows")
        reports, split_rows = [], {}
        try:
            for split in SPLITS:
                path = staging / f"{split}.parquet"
                table = pq.read_table(path)
                split_rows[split] = table.num_rows
                if is_sequence_map(feature_map):  # slots spread into columns; lengths and padding checked too
                    frame, slots, lengths = sequence_validation_inputs(table, feature_map, path)
                    reports.append(validate_sequence_padding(slots, lengths, split=split, source=str(path), **gx_args))
                else:
                    frame = table.to_pandas()
                reports.append(
                    validate_encoded_split(
                        frame, split=split, field_ranges=ranges, source=str(path),
                        sample_rows=sample_rows, **gx_args,
                    )
                )
                del table, frame
            total = int(feature_map["total_rows"])
            size_report = validate_split_sizes(split_rows, total, source=str(staging), **gx_args)
            hint = _empty_split_hint(source, split_rows, total)
            if hint is not None and not size_report.success:
                size_report.failures = [dataclasses.replace(f, details=f"{f.details}; {hint}") for f in size_report.failures]
            reports.append(size_report)
        finally:
            docs = build_data_docs(*reports)
        raise_if_failed(*reports)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return {"skipped": False, "split_rows": split_rows, "success": True, "data_docs": docs[0] if docs else None}


# --------------------------------------------------------------------------------------------
# publishing
# --------------------------------------------------------------------------------------------
def publish_model_input(staged: dict[str, Any], encoded_report: dict[str, Any], model_input_root: str) -> dict[str, Any]:
    """Rename the validated staging folder into place and summarise it (rows, rates, data version).

    The data version (:func:`ttsctr.data.version.compute_data_version`) is computed in the staging
    folder and written to its marker, so data and version are published by one rename, under the
    dataset's lock (:mod:`ttsctr.data.lock`): no reader of this dataset runs meanwhile.
    """
    source = staged["source"]
    final = Path(source["model_input_dir"])
    if staged["staging_dir"] is not None:
        staging = Path(staged["staging_dir"])
        try:
            marker = {"fingerprint": source["fingerprint"], "data_version": compute_data_version(staging)}
            (staging / FINGERPRINT_FILE).write_text(json.dumps(marker))
            with dataset_lock(model_input_root, source["dataset"], what="publishing its model input"):
                replace_dir(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        log.info("published model input for %s to %s (data version %s)", source["dataset"], final,
                 marker["data_version"])
    return summarise_model_input(final, source)


def summarise_model_input(model_input_dir: Path, source: dict[str, Any]) -> dict[str, Any]:
    feature_map = json.loads((model_input_dir / "feature_map.json").read_text())
    data_version = published_data_version(model_input_dir)
    if data_version is None:
        raise DataFormatError(model_input_dir / FINGERPRINT_FILE, found="no data version",
                              expected="a folder published by the data_processing pipeline")
    summary: dict[str, Any] = {
        "dataset": source["dataset"],
        "format": source["format"],
        "raw_path": source["raw_path"],
        "raw_files": source["raw_files"],
        "model_input_dir": str(model_input_dir),
        "data_version": data_version,
        "num_fields": len(feature_map["fields"]),
        "num_features": int(feature_map["num_features"]),
        "rows": 0,
        "positives": 0,
        "splits": {},
    }
    for split in SPLITS:
        path = model_input_dir / f"{split}.parquet"
        columns = ["label"] + (["true_prob"] if "true_prob" in pq.read_schema(path).names else [])
        table = pq.read_table(path, columns=columns)
        labels = table.column("label").to_numpy().astype(np.float64)
        positives = int(labels.sum())
        info = {
            "rows": int(labels.size),
            "positives": positives,
            "positive_rate": positives / labels.size if labels.size else None,
        }
        if "true_prob" in columns and labels.size and 0 < positives < labels.size:
            info["bayes_optimal_auc"] = float(auc(labels, table.column("true_prob").to_numpy()))
        summary["splits"][split] = info
        summary["rows"] += info["rows"]
        summary["positives"] += positives
    summary["positive_rate"] = summary["positives"] / summary["rows"] if summary["rows"] else None
    if is_sequence_map(feature_map):
        seq = feature_map["sequence"]
        summary["sequence"] = {k: seq[k] for k in ("user_len", "candidate_len", "n_items", "content_dim",
                                                   "truncated_events", "context_fields")}
    if "bayes_optimal_auc" in summary["splits"]["test"]:
        summary["bayes_optimal_auc"] = summary["splits"]["test"]["bayes_optimal_auc"]
        log.info("Bayes-optimal test AUC of %s: %.4f", source["dataset"], summary["bayes_optimal_auc"])
    return summary
