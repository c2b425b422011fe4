"""Bad input: every error names the file, the line (when there is one), what was found and what
was expected, and preprocessing leaves no partial output (new out_dir absent, old one untouched)."""

from __future__ import annotations

import ctypes
import gzip
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pytest

from datahelpers import (
    AVAZU_HEADER,
    AVAZU_ROWS,
    CRITEO_ROWS,
    KDD12_ROWS,
    criteo_line,
    criteo_text,
    make_dataset,
    run_failing,
    write,
)
from ttsctr.data.preprocess import preprocess
from ttsctr.data.readers import CriteoReader, get_reader, synthetic_sidecar_paths
from ttsctr.errors import ConfigError, DataFormatError


def lines_with(bad_line: str, at: int, n: int = 4) -> str:
    """``n`` good Criteo lines with line ``at`` (1-based) replaced by ``bad_line``."""
    lines = [CRITEO_ROWS[i % len(CRITEO_ROWS)] for i in range(n)]
    lines[at - 1] = bad_line
    return criteo_text(lines)


# ---- field count ------------------------------------------------------------------------------
def test_wrong_field_count_reports_line(tmp_path: Path) -> None:
    short = CRITEO_ROWS[2].rsplit("\t", 1)[0]  # 39 fields
    raw = write(tmp_path / "t.txt", lines_with(short, at=3))
    err = run_failing("criteo", raw, tmp_path)
    assert (err.path, err.line) == (str(raw), 3)
    assert "39 TAB-separated fields" in err.found and "40 fields" in err.expected
    assert f"{raw}, line 3" in str(err)


def test_wrong_field_count_deep_in_a_gzip_file_across_chunks(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    lines = [criteo_line(int(rng.integers(2)), rng.integers(0, 99, 13).tolist(), ["%08x" % v for v in rng.integers(0, 9, 26)]) for _ in range(3000)]
    lines[2499] += "\textra"  # 41 fields on line 2500
    raw = write(tmp_path / "big.txt", criteo_text(lines), gz=True)
    err = run_failing("criteo", raw, tmp_path, chunk_bytes=4096)
    assert err.line == 2500 and "41 TAB-separated fields" in err.found


def test_avazu_line_numbers_count_the_header(tmp_path: Path) -> None:
    rows = list(AVAZU_ROWS)
    rows[1] = rows[1].rsplit(",", 2)[0]  # 22 fields on data row 2 = file line 3
    raw = write(tmp_path / "a.csv", AVAZU_HEADER + "\n" + "\n".join(rows) + "\n")
    err = run_failing("avazu", raw, tmp_path)
    assert err.line == 3 and "22 comma-separated fields" in err.found and "24 fields" in err.expected


# ---- labels -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("label", "found"), [("2", "'2'"), ("x", "'x'"), ("", "an empty field"), ("-1", "'-1'")])
def test_label_not_0_or_1(tmp_path: Path, label: str, found: str) -> None:
    bad = label + CRITEO_ROWS[1][1:]
    raw = write(tmp_path / "t.txt", lines_with(bad, at=2))
    err = run_failing("criteo", raw, tmp_path)
    assert (err.line, err.field, err.found, err.expected) == (2, "label", found, "0 or 1")


def test_avazu_click_and_hour_checked(tmp_path: Path) -> None:
    rows = list(AVAZU_ROWS)
    rows[2] = rows[2].replace(",0,14102613,", ",0,14133113,")  # month 13
    raw = write(tmp_path / "a.csv", "\n".join(rows) + "\n")  # no header
    err = run_failing("avazu", raw, tmp_path)
    assert (err.line, err.field) == (3, "hour") and "14133113" in err.found and "YYMMDDHH" in err.expected
    rows = list(AVAZU_ROWS)
    rows[0] = rows[0].replace(",0,14102100,", ",3,14102100,")
    err = run_failing("avazu", write(tmp_path / "b.csv", "\n".join(rows) + "\n"), tmp_path)
    assert (err.line, err.field, err.found) == (1, "click", "'3'")


def test_kdd12_click_above_impression(tmp_path: Path) -> None:
    rows = list(KDD12_ROWS)
    rows[1] = "5" + rows[1][1:]  # Click=5 > Impression=3
    raw = write(tmp_path / "k.txt", "\n".join(rows) + "\n")
    err = run_failing("kdd12", raw, tmp_path)
    assert (err.line, err.field) == (2, "Click") and "Click=5 > Impression=3" in err.found


def test_movielens_rating_out_of_range(movielens_dir: Path, tmp_path: Path) -> None:
    write(movielens_dir / "u.data", "1\t10\t5\t300\n1\t11\t7\t100\n")
    err = run_failing("movielens", movielens_dir / "u.data", tmp_path)
    assert (err.line, err.field, err.found) == (2, "rating", "'7'") and "1-5" in err.expected


# ---- empty / truncated / encoding -------------------------------------------------------------
@pytest.mark.parametrize("gz", [False, True])
def test_empty_file(tmp_path: Path, gz: bool) -> None:
    raw = write(tmp_path / "empty.txt", b"", gz=gz)
    err = run_failing("criteo", raw, tmp_path)
    assert err.found == "an empty file" and err.line is None and "Criteo" in err.expected


def test_header_only_avazu_file(tmp_path: Path) -> None:
    err = run_failing("avazu", write(tmp_path / "h.csv", AVAZU_HEADER + "\n"), tmp_path)
    assert "no data rows" in err.found


def test_truncated_gzip(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    text = criteo_text([criteo_line(0, rng.integers(0, 9, 13).tolist(), ["%08x" % v for v in rng.integers(0, 2**32, 26)]) for _ in range(3000)])
    data = gzip.compress(text.encode())
    raw = tmp_path / "trunc.txt.gz"
    raw.write_bytes(data[: len(data) // 2])
    err = run_failing("criteo", raw, tmp_path, chunk_bytes=8192)
    assert "truncated" in err.found.lower() and "complete gzip file" in err.expected


def test_invalid_utf8_in_a_categorical_value(tmp_path: Path) -> None:
    good = CRITEO_ROWS[0].encode()
    bad = good.replace(b"fb936136", b"fb93\xff136")
    text = b"\n".join([good, good, bad, good]) + b"\n"
    raw = write(tmp_path / "u.txt", text)
    err = run_failing("criteo", raw, tmp_path)
    assert (err.line, err.field) == (3, "C3") and "invalid UTF-8" in err.found and "UTF-8" in err.expected


def test_carriage_return_inside_a_line(tmp_path: Path) -> None:
    """pyarrow ends a line at a lone \\r (the field count then breaks); the rescan names where it is."""
    bad = CRITEO_ROWS[0].replace("80e26c9b", "80e2\r6c9b")
    raw = write(tmp_path / "cr.txt", criteo_text([CRITEO_ROWS[1], bad, CRITEO_ROWS[2]]).replace("\n", "\r\n"))
    err = run_failing("criteo", raw, tmp_path)
    assert (err.line, err.field) == (2, "C2") and "carriage return" in err.found and "'80e2\\r6c9b'" in err.found


def test_unexplained_parse_error_names_the_block(tmp_path: Path, criteo_file: Path) -> None:
    """When the rescan finds no bad line, the message still says where the failing block starts
    (it used to say 'after line 0')."""
    exc = pa.ArrowInvalid("In CSV column #7: something new")
    err = CriteoReader._source._diagnose(criteo_file, exc, start_line=3, block_bytes=4096)
    assert err.path == str(criteo_file) and "line 0" not in str(err)
    assert "the parse block of up to 4096 bytes that starts at line 3" in err.found and "something new" in err.found


# ---- numeric values ---------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["1.5", "abc", "99999999999999999999"])
def test_non_integer_numeric_value(tmp_path: Path, value: str) -> None:
    bad = criteo_line(1, [1, 2, value, 4])
    raw = write(tmp_path / "n.txt", lines_with(bad, at=4))
    err = run_failing("criteo", raw, tmp_path)
    assert (err.line, err.field) == (4, "I3") and value in err.found and "integer" in err.expected


# ---- paths and names --------------------------------------------------------------------------
def test_missing_raw_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'criteo' needs raw_path"):
        preprocess("criteo", None, tmp_path / "out", progress=False)
    with pytest.raises(ConfigError, match="generate_synthetic"):
        preprocess("synthetic", None, tmp_path / "out", progress=False)
    missing = tmp_path / "nope" / "train.txt"
    with pytest.raises(DataFormatError) as exc:
        preprocess("criteo", missing, tmp_path / "out", progress=False)
    assert exc.value.path == str(missing) and exc.value.found == "no such file"
    with pytest.raises(DataFormatError, match="no such file"):
        list(get_reader("criteo").iter_chunks(missing))
    assert not (tmp_path / "out").exists()


def test_unknown_dataset_name(tmp_path: Path, criteo_file: Path) -> None:
    with pytest.raises(ConfigError, match="unknown dataset 'criteo_full'.*avazu, criteo, kdd12, movielens, synthetic"):
        preprocess("criteo_full", criteo_file, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_missing_sidecars(tmp_path: Path, movielens_dir: Path) -> None:
    raw = write(tmp_path / "s.txt", criteo_text(CRITEO_ROWS))
    proba, _ = synthetic_sidecar_paths(raw)
    err = run_failing("synthetic", raw, tmp_path, about=proba)
    assert err.found == "no such file"
    np.save(proba, np.full(3, 0.5, np.float32))  # 3 probabilities for 4 rows
    err = run_failing("synthetic", raw, tmp_path, about=proba)
    assert "3 probabilities" in err.found
    (movielens_dir / "u.user").unlink()  # (gzip content under the plain name)
    err = run_failing("movielens", movielens_dir / "u.data", tmp_path, about=movielens_dir / "u.user")
    assert "no such file" in err.found


# ---- unreadable files -------------------------------------------------------------------------
PR_CAPBSET_DROP, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 24, 1, 2  # linux/prctl.h, linux/capability.h

READ_IN_CHILD = """
import json, sys
from ttsctr.data.preprocess import preprocess
from ttsctr.data.readers import get_reader
from ttsctr.errors import DataFormatError

for case in json.loads(sys.argv[1]):
    reader = get_reader(case["dataset"], **case["options"])
    try:
        if case["out"]:
            preprocess(reader, case["raw"], case["out"], {"min_count": 1}, progress=False)
        else:
            reader.read_all(case["raw"])
    except DataFormatError as err:
        print(json.dumps({"path": err.path, "found": err.found, "expected": err.expected, "message": str(err)}))
    else:
        print(json.dumps(None))
"""


def bound_by_file_modes() -> Callable[[], None] | None:
    """A ``preexec_fn`` under which a child really gets "permission denied" for a mode-000 file.

    root reads any file (CAP_DAC_OVERRIDE), and the interpreter may sit where an unprivileged uid
    cannot execute it (/root), so a root child keeps its uid but loses CAP_DAC_OVERRIDE and
    CAP_DAC_READ_SEARCH from its capability bounding set: after exec it no longer has them.
    """
    if os.geteuid() != 0:
        return None
    libc = ctypes.CDLL(None, use_errno=True)

    def drop() -> None:
        for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
            if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")

    return drop


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="needs POSIX file modes")
def test_unreadable_files_name_the_path_and_permission(tmp_path: Path) -> None:
    """A raw or side file this user may not read (mode 000, or below a directory it may not
    search) is a DataFormatError naming that file, not a PermissionError traceback."""
    cases, locked = [], []

    def case(dataset: str, unreadable: str, *, via_preprocess: bool = True) -> Path:
        reader, raw = make_dataset(tmp_path / f"{dataset}-{len(cases)}", dataset)
        target = raw.parent / unreadable
        out = raw.parent / "out" if via_preprocess else None
        cases.append({"dataset": dataset, "options": reader.options, "raw": str(raw), "out": str(out) if out else None})
        locked.append(target)
        return target

    expected = [
        case("criteo", "train.txt"),
        case("avazu", "a.csv"),  # read first for its header
        case("kdd12", "profile.txt"),
        case("movielens", "u.user"),
        case("synthetic", "s.txt.proba.npy"),
    ]
    hidden = tmp_path / "criteo-hidden"
    hidden.mkdir()
    _, raw = make_dataset(hidden / "inner", "criteo")
    cases.append({"dataset": "criteo", "options": {}, "raw": str(raw), "out": None})  # stat fails too
    locked.append(hidden)
    expected.append(raw)
    for path in locked:
        path.chmod(0)
    try:
        preexec = bound_by_file_modes()
        try:
            probe = subprocess.run([sys.executable, "-c", "import sys; open(sys.argv[1], 'rb')", str(locked[0])],
                                   preexec_fn=preexec, capture_output=True, text=True)  # fmt: skip
        except subprocess.SubprocessError as exc:
            pytest.skip(f"running as root and cannot drop CAP_DAC_OVERRIDE (prctl refused: {exc}), so file modes do not apply")
        if probe.returncode == 0:
            pytest.skip("this user reads mode-000 files (capabilities or an LSM override file modes)")
        assert "PermissionError" in probe.stderr
        run = subprocess.run([sys.executable, "-c", READ_IN_CHILD, json.dumps(cases)],
                             preexec_fn=preexec, capture_output=True, text=True, timeout=300)  # fmt: skip
    finally:
        for path in locked:
            path.chmod(0o755 if path.is_dir() else 0o644)
    assert run.returncode == 0, run.stderr
    errors = [json.loads(line) for line in run.stdout.splitlines()]
    assert len(errors) == len(cases)
    for err, path, c in zip(errors, expected, cases):
        assert err is not None, f"{path}: read without error"
        assert err["path"] == str(path) and err["message"].startswith(str(path))
        assert err["found"] == f"a file this user (uid {os.geteuid()}) may not read (permission denied)"
        assert err["expected"].endswith("readable by this user (check the mode and owner of the file and its directories)")
        if c["out"]:
            assert not Path(c["out"]).exists()
    assert "Criteo" in errors[0]["expected"] and "sidecar" in errors[4]["expected"]


# ---- the previous output survives a failed run ------------------------------------------------
def test_failed_run_leaves_previous_output_untouched(tmp_path: Path, criteo_file: Path) -> None:
    out = tmp_path / "out"
    preprocess("criteo", criteo_file, out, {"min_count": 1}, progress=False)
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()}
    bad = write(tmp_path / "bad.txt", lines_with(CRITEO_ROWS[0] + "\tx", at=2))
    with pytest.raises(DataFormatError):
        preprocess("criteo", bad, out, {"min_count": 1}, progress=False)
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.txt", "out", "train.txt"]
