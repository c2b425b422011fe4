"""Timing of the data_processing pipeline's two GX gates on the default synthetic data (not a test).

    .venv/bin/python tests/validation/bench_pipeline.py [repeats] [raw file]

Runs ``resolve_raw_source`` and ``encode_to_staging`` once in a temporary project folder (the
current directory is switched there, so ``gx/`` lands in it), then times ``validate_raw_data``
and ``validate_encoded_data`` (the three encoded splits and the split sizes) ``repeats`` times
on that staged output. The staging folder is copied before each encoded run, since the node
removes it on a failure only. The first repeat also pays ``import great_expectations`` and the
creation of the context (and, with a file context, of its stored suites); later repeats are the
steady state of a project whose suites already exist.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "tests" / "pipelines" / "data_processing"))


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    raw = Path(sys.argv[2] if len(sys.argv) > 2 else REPO / "data" / "01_raw" / "synthetic" / "train.txt").resolve()
    from dphelpers import base_datasets

    from ttsctr.pipelines.data_processing import nodes

    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        root = Path(tmp) / "data" / "05_model_input"
        datasets = base_datasets()
        validation = {"raw_sample_rows": 100_000, "encoded_sample_rows": 200_000}
        source = nodes.resolve_raw_source("synthetic", str(raw), datasets, str(root))
        t = time.perf_counter()
        staged = nodes.encode_to_staging(source, {"skipped": False}, str(root))
        print(f"encode (not timed below): {time.perf_counter() - t:.2f} s")
        keep = Path(tmp) / "staged-copy"
        shutil.copytree(staged["staging_dir"], keep)
        times: dict[str, list[float]] = {"raw wall": [], "raw cpu": [], "encoded wall": [], "encoded cpu": []}
        for i in range(repeats):
            t, c = time.perf_counter(), time.process_time()
            nodes.validate_raw_data(source, validation)
            times["raw wall"].append(time.perf_counter() - t)
            times["raw cpu"].append(time.process_time() - c)
            shutil.rmtree(staged["staging_dir"], ignore_errors=True)
            shutil.copytree(keep, staged["staging_dir"])
            t, c = time.perf_counter(), time.process_time()
            nodes.validate_encoded_data(staged, validation)
            times["encoded wall"].append(time.perf_counter() - t)
            times["encoded cpu"].append(time.process_time() - c)
            print(f"run {i + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()))
        if repeats > 1:
            # CPU time of this process: less sensitive than wall time to other load on the machine
            print(f"steady state (median of runs 2..{repeats}): " + ", ".join(
                f"{k} {statistics.median(v[1:]):.2f} s" for k, v in times.items()))
        os.chdir(REPO)


if __name__ == "__main__":
    main()
