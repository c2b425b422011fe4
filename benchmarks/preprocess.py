"""Benchmark: full preprocessing vs. a bare pyarrow CSV parse of the same synthetic Criteo file.

    .venv/bin/python benchmarks/preprocess.py --rows 1000000

Generates ``--rows`` synthetic Criteo-format rows (``ttsctr.data.synthetic``), then times, in the
same process and on the same (page-cached) file:

* ``parse``: ``pyarrow.csv.read_csv`` with its default block size and the reader's column types
  (TAB, no quoting) -- the floor for any reader of this file (also shown: all types inferred);
* ``preprocess``: ``ttsctr.data.preprocess.preprocess`` (read + validate + count + threshold +
  encode + write parquet/vocabulary/feature map).

Prints rows/s for both and their ratio (target: preprocess <= 3x parse time).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from ttsctr.data.preprocess import PreprocessConfig, preprocess  # noqa: E402
from ttsctr.data.readers import get_reader  # noqa: E402
from ttsctr.data.synthetic import generate_synthetic  # noqa: E402


def bare_parse(path: Path, typed: bool = True) -> tuple[float, int]:
    """``pyarrow.csv.read_csv`` with its default block size; ``typed``: the reader's column types."""
    reader = get_reader("synthetic")
    names = ["label", *reader.field_names]
    types = {"label": pa.int8(), **{f.name: f.arrow_type for f in reader.fields}}
    t0 = time.perf_counter()
    if typed:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=names),
            parse_options=pacsv.ParseOptions(delimiter="\t", quote_char=False),
            convert_options=pacsv.ConvertOptions(column_types=types, null_values=[""], strings_can_be_null=True),
        )
    else:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=names),
            parse_options=pacsv.ParseOptions(delimiter="\t"),
        )
    return time.perf_counter() - t0, table.num_rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3, help="timed runs of each step, interleaved (best is reported)")
    ap.add_argument("--chunk-bytes", type=int, default=64 << 20)
    ap.add_argument("--min-count", type=int, default=10)
    ap.add_argument("--workdir", type=Path, default=None, help="where to write (default: a temp dir, removed)")
    ap.add_argument("--json", type=Path, default=None, help="also write the numbers as JSON here")
    args = ap.parse_args(argv)

    work = args.workdir or Path(tempfile.mkdtemp(prefix="ttsctr-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    raw = work / "synthetic.txt"
    try:
        t0 = time.perf_counter()
        summary = generate_synthetic(raw, n_rows=args.rows, seed=args.seed, compute_auc=False)
        t_gen = time.perf_counter() - t0
        size_mb = raw.stat().st_size / 1e6
        print(f"generated {args.rows:,} rows ({size_mb:.1f} MB) in {t_gen:.2f}s; base rate {summary.base_rate:.4f}")
        print(f"cpus: {os.cpu_count()}, pyarrow threads: {pa.cpu_count()}")

        parse_times, infer_times, prep_times = [], [], []
        config = PreprocessConfig(min_count=args.min_count, chunk_bytes=args.chunk_bytes)
        for _ in range(max(args.repeat, 1)):  # interleaved, so background load hits both alike
            t, n = bare_parse(raw)
            assert n == args.rows, (n, args.rows)
            parse_times.append(t)
            infer_times.append(bare_parse(raw, typed=False)[0])
            t0 = time.perf_counter()
            fmap = preprocess(get_reader("synthetic"), raw, work / "encoded", config, progress=False)
            prep_times.append(time.perf_counter() - t0)
        t_parse, t_infer, t_prep = min(parse_times), min(infer_times), min(prep_times)
        result = {
            "rows": args.rows,
            "raw_mb": round(size_mb, 1),
            "parse_s": round(t_parse, 3),
            "parse_rows_per_s": round(args.rows / t_parse),
            "preprocess_s": round(t_prep, 3),
            "preprocess_rows_per_s": round(args.rows / t_prep),
            "ratio_preprocess_over_parse": round(t_prep / t_parse, 2),
            "parse_inferred_types_s": round(t_infer, 3),
            "parse_runs_s": [round(t, 3) for t in parse_times],
            "preprocess_runs_s": [round(t, 3) for t in prep_times],
            "num_features": fmap["num_features"],
            "splits": {s: v["rows"] for s, v in fmap["splits"].items()},
        }
        print(f"bare parse (pyarrow.csv.read_csv): {t_parse:7.2f}s  {args.rows / t_parse:12,.0f} rows/s")
        print(f"  (same, types inferred          : {t_infer:7.2f}s  {args.rows / t_infer:12,.0f} rows/s)")
        print(f"full preprocess                  : {t_prep:7.2f}s  {args.rows / t_prep:12,.0f} rows/s")
        print(f"ratio preprocess / parse         : {t_prep / t_parse:7.2f}x  (target <= 3x)")
        print(f"num_features {fmap['num_features']:,}; splits {result['splits']}")
        if args.json:
            args.json.write_text(json.dumps(result, indent=2) + "\n")
        return 0
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
