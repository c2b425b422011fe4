"""Timing of validate_encoded_split on a synthetic split (not a test; run by hand).

    .venv/bin/python tests/validation/bench_encoded.py [rows] [fields] [gx]

With a third argument ``gx`` the good split is also validated with the file GX context (in a
temporary folder, as the data_processing node does it: the stored validation definition, then
one Data Docs build), to show the context's fixed cost next to the in-memory run.
"""

from __future__ import annotations

import sys
import tempfile
import time

import numpy as np
import pandas as pd

from ttsctr.validation import build_data_docs, validate_encoded_split, validate_split_sizes


def make_split(rows: int, fields: int, vocab: int = 1000, seed: int = 0):
    rng = np.random.default_rng(seed)
    cols = {"label": rng.integers(0, 2, rows, dtype=np.int8)}
    ranges = {}
    for i in range(fields):
        name = f"f{i}"
        ranges[name] = (i * vocab, vocab)
        cols[name] = (rng.integers(0, vocab, rows) + i * vocab).astype(np.int32)
    cols["true_prob"] = rng.random(rows)
    return pd.DataFrame(cols), ranges


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    fields = int(sys.argv[2]) if len(sys.argv) > 2 else 39
    t = time.perf_counter()
    validate_split_sizes({"a": 1}, 1, "warm-up")  # import GX + create the context
    print(f"GX import + context: {time.perf_counter() - t:.2f} s")
    df, ranges = make_split(rows, fields)
    for label, frame in [("good", df)]:
        for _ in range(2):
            t = time.perf_counter()
            r = validate_encoded_split(frame, split="bench", field_ranges=ranges, source=label)
            dt = time.perf_counter() - t
            print(f"{label}: {rows:,} x {fields}: {dt:.2f} s ({rows / dt:,.0f} rows/s) success={r.success}")
    if len(sys.argv) > 3 and sys.argv[3] == "gx":
        with tempfile.TemporaryDirectory() as root:
            for i in range(3):
                t = time.perf_counter()
                r = validate_encoded_split(df, split="bench", field_ranges=ranges, source="good", gx_root=root,
                                           dataset_name="bench", build_docs=False)
                dv = time.perf_counter() - t
                t = time.perf_counter()
                build_data_docs(r)
                dd = time.perf_counter() - t
                print(f"good, file context (run {i + 1}): validation {dv:.2f} s + Data Docs {dd:.2f} s "
                      f"= {dv + dd:.2f} s ({rows / (dv + dd):,.0f} rows/s) success={r.success}")
    bad = df.copy()
    bad.loc[bad.index[::100_000], "f3"] = 10**6  # 10 bad ids in one field
    bad.loc[bad.index[7], "f5"] = -1
    for sample in (None, 100_000):
        t = time.perf_counter()
        r = validate_encoded_split(bad, split="bench", field_ranges=ranges, source="bad",
                                   sample_rows=sample)
        dt = time.perf_counter() - t
        print(f"bad (2 fields), sample_rows={sample}: {dt:.2f} s")
        print(r.to_text())


if __name__ == "__main__":
    main()
