"""Bad input: every error names the file, the line (when there is one), what was found and what
was expected, and preprocessing leaves no partial output (new out_dir absent, old one untouched)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from datahelpers import AVAZU_HEADER, AVAZU_ROWS, CRITEO_ROWS, KDD12_ROWS, criteo_line, criteo_text, write
from ttsctr.data.preprocess import preprocess
from ttsctr.data.readers import get_reader
from ttsctr.errors import ConfigError, DataFormatError


def run_failing(dataset: str, raw: Path, tmp_path: Path, **params) -> DataFormatError:
    """Preprocess ``raw``; assert it fails with DataFormatError and leaves nothing behind."""
    out = tmp_path / "out"
    with pytest.raises(DataFormatError) as exc:
        preprocess(dataset, raw, out, {"min_count": 1, **params}, progress=False)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")], "temporary output left behind"
    err = exc.value
    assert str(raw) in str(err) or err.path != str(raw)  # the message names the file it is about
    return err


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
    err = run_failing("synthetic", raw, tmp_path)
    assert err.path.endswith("s.txt.proba.npy") and err.found == "no such file"
    np.save(tmp_path / "s.txt.proba.npy", np.full(3, 0.5, np.float32))  # 3 probabilities for 4 rows
    err = run_failing("synthetic", raw, tmp_path)
    assert "3 probabilities" in err.found
    (movielens_dir / "u.user").unlink()  # (gzip content under the plain name)
    err = run_failing("movielens", movielens_dir / "u.data", tmp_path)
    assert err.path.endswith("u.user") and "no such file" in err.found


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
