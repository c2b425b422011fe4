"""Nodes of the data_processing pipeline.

Encoding streams the raw file in chunks (memory bounded by the chunk size), so the splits are
written by ``ttsctr.data.preprocess`` into a staging folder rather than returned through the
catalog. Great Expectations validates the staged output before it is published with a rename:
a failed expectation stops the run and nothing reaches ``data/05_model_input/<dataset>/``.
A rerun with the same raw file and settings reuses the published output instead of re-encoding.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from ttsctr.data.preprocess import PreprocessConfig, preprocess
from ttsctr.data.readers import get_reader
from ttsctr.data.synthetic import generate_synthetic
from ttsctr.errors import ConfigError, DataFormatError
from ttsctr.metrics import roc_auc as auc
from ttsctr.validation import raise_if_failed, validate_encoded_split, validate_raw_sample, validate_split_sizes

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
FINGERPRINT_FILE = "fingerprint.json"


def _fingerprint(source: dict[str, Any]) -> str:
    raw = Path(source["raw_path"])
    stat = raw.stat()
    payload = {
        "format": source["format"],
        "reader_options": source["reader_options"],
        "preprocessing": source["preprocessing"],
        "raw": {"name": raw.name, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns},
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def resolve_raw_source(
    dataset: str, raw_path: str | None, datasets: dict[str, Any], model_input_root: str
) -> dict[str, Any]:
    """Pick the dataset entry, check the raw file exists (generating the synthetic default)."""
    if dataset not in datasets:
        raise ConfigError(f"unknown dataset {dataset!r}; known datasets: {', '.join(sorted(datasets))}")
    entry = datasets[dataset]
    fmt = entry["format"]
    path = raw_path or entry.get("default_raw_path")
    if fmt == "synthetic" and raw_path is None:
        ensure_synthetic(path, entry.get("generate") or {})
    if path is None or not Path(path).exists():
        hint = f" (default {entry.get('default_raw_path')!s} does not exist)" if raw_path is None else ""
        raise ConfigError(
            f"dataset {dataset!r} needs a raw {fmt} file: pass --params \"dataset={dataset},raw_path=<file>\"{hint}"
            if raw_path is None
            else f"raw_path {raw_path!r} for dataset {dataset!r} does not exist"
        )
    source = {
        "dataset": dataset,
        "format": fmt,
        "raw_path": str(path),
        "reader_options": dict(entry.get("reader_options") or {}),
        "preprocessing": dict(entry.get("preprocessing") or {}),
        "model_input_dir": str(Path(model_input_root) / dataset),
    }
    source["fingerprint"] = _fingerprint(source)
    return source


def ensure_synthetic(path: str, generate: dict[str, Any]) -> None:
    """Generate the embedded default click log unless one with the same settings is there."""
    meta_path = Path(f"{path}.meta.json")
    wanted = {"n_rows": int(generate.get("n_rows", 200_000)), "seed": int(generate.get("seed", 0))}
    if Path(path).exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if all(meta.get(k) == v for k, v in wanted.items()):
            return
    summary = generate_synthetic(path, **wanted, progress=True)
    log.info("generated %s: %d rows, Bayes-optimal AUC %.4f", path, wanted["n_rows"], summary.bayes_auc)


def _is_published(source: dict[str, Any]) -> bool:
    marker = Path(source["model_input_dir"]) / FINGERPRINT_FILE
    if not marker.exists():
        return False
    return json.loads(marker.read_text()).get("fingerprint") == source["fingerprint"]


def validate_raw_data(source: dict[str, Any], validation: dict[str, Any]) -> dict[str, Any]:
    """Great Expectations on the head of the raw file: columns and order, label in {0,1}, types."""
    if _is_published(source):
        return {"skipped": True, "reason": "model input already published for this raw file and settings"}
    reader = get_reader(source["format"], **source["reader_options"])
    limit = int(validation.get("raw_sample_rows", 100_000))
    chunks, rows = [], 0
    for chunk in reader.iter_chunks(source["raw_path"]):
        chunks.append(chunk)
        rows += chunk.num_rows
        if rows >= limit:
            break
    if not chunks:
        raise DataFormatError(source["raw_path"], found="no rows", expected="at least one data row")
    import pyarrow as pa

    sample = pa.concat_tables(chunks).slice(0, limit)
    report = validate_raw_sample(
        sample,
        expected_columns=["label", *(f.name for f in reader.fields), *reader.extra_columns],
        numeric_columns=[f.name for f in reader.fields if f.kind == "numeric"],
        categorical_columns=[f.name for f in reader.fields if f.kind == "categorical"],
        source=source["raw_path"],
    )
    raise_if_failed(report)
    return {"skipped": False, "rows_checked": sample.num_rows, **report.to_dict()}


def _staging_dir(root: str, dataset: str) -> Path:
    return Path(root) / f".staging-{dataset}"


def encode_to_staging(source: dict[str, Any], raw_report: dict[str, Any], model_input_root: str) -> dict[str, Any]:
    if _is_published(source):
        log.info("model input for %s is up to date (fingerprint %s); not re-encoding", source["dataset"], source["fingerprint"])
        return {"source": source, "staging_dir": None}
    staging = _staging_dir(model_input_root, source["dataset"])
    shutil.rmtree(staging, ignore_errors=True)
    reader = get_reader(source["format"], **source["reader_options"])
    config = PreprocessConfig.from_dict(source["preprocessing"])
    feature_map = preprocess(reader, source["raw_path"], staging, config, progress=True)
    return {"source": source, "staging_dir": str(staging), "feature_map": feature_map}


def _field_ranges(feature_map: dict[str, Any]) -> dict[str, tuple[int, int]]:
    return {f["name"]: (int(f["offset"]), int(f["vocab_size"])) for f in feature_map["fields"]}


def validate_encoded_data(staged: dict[str, Any], validation: dict[str, Any]) -> dict[str, Any]:
    """GX on the staged splits: ids within their field's range, no nulls, split sizes add up."""
    if staged["staging_dir"] is None:
        return {"skipped": True}
    staging = Path(staged["staging_dir"])
    feature_map = staged["feature_map"]
    ranges = _field_ranges(feature_map)
    sample_rows = validation.get("encoded_sample_rows")
    reports, split_rows = [], {}
    for split in SPLITS:
        table = pq.read_table(staging / f"{split}.parquet")
        split_rows[split] = table.num_rows
        reports.append(
            validate_encoded_split(
                table.to_pandas(), split=split, field_ranges=ranges, source=str(staging / f"{split}.parquet"),
                sample_rows=sample_rows,
            )
        )
    total = int(feature_map["total_rows"])
    reports.append(validate_split_sizes(split_rows, total, source=str(staging)))
    try:
        raise_if_failed(*reports)
    except Exception:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return {"skipped": False, "split_rows": split_rows, "success": True}


def _sha256_files(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def publish_model_input(staged: dict[str, Any], encoded_report: dict[str, Any], model_input_root: str) -> dict[str, Any]:
    """Rename the validated staging folder into place and summarise it (rows, rates, data version)."""
    source = staged["source"]
    final = Path(source["model_input_dir"])
    if staged["staging_dir"] is not None:
        staging = Path(staged["staging_dir"])
        (staging / FINGERPRINT_FILE).write_text(json.dumps({"fingerprint": source["fingerprint"]}))
        old = final.with_name(final.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if final.exists():
            os.replace(final, old)
        os.replace(staging, final)
        shutil.rmtree(old, ignore_errors=True)
    return summarise_model_input(final, source)


def summarise_model_input(model_input_dir: Path, source: dict[str, Any]) -> dict[str, Any]:
    feature_map = json.loads((model_input_dir / "feature_map.json").read_text())
    summary: dict[str, Any] = {
        "dataset": source["dataset"],
        "format": source["format"],
        "raw_path": source["raw_path"],
        "model_input_dir": str(model_input_dir),
        "data_version": _sha256_files([model_input_dir / f"{s}.parquet" for s in SPLITS]),
        "num_fields": len(feature_map["fields"]),
        "num_features": int(feature_map["num_features"]),
        "splits": {},
    }
    for split in SPLITS:
        table = pq.read_table(model_input_dir / f"{split}.parquet", columns=None)
        labels = table.column("label").to_numpy().astype(np.float64)
        info = {"rows": int(labels.size), "positive_rate": float(labels.mean()) if labels.size else float("nan")}
        if "true_prob" in table.column_names and labels.size:
            info["bayes_optimal_auc"] = float(auc(labels, table.column("true_prob").to_numpy()))
        summary["splits"][split] = info
    if "bayes_optimal_auc" in summary["splits"]["test"]:
        summary["bayes_optimal_auc"] = summary["splits"]["test"]["bayes_optimal_auc"]
        log.info("Bayes-optimal test AUC of %s: %.4f", source["dataset"], summary["bayes_optimal_auc"])
    return summary
