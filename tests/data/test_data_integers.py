"""What a numeric field or a label may look like: whatever pyarrow's CSV integer conversion accepts,
read as the number it denotes (padding and leading zeros are normalised); anything it rejects is a
DataFormatError naming the file, the line and the field -- in every reader, in any parse block."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from datahelpers import (
    CRITEO_ROWS,
    DELIMITERS,
    INTEGER_COLUMNS,
    criteo_line,
    criteo_text,
    make_dataset,
    rewrite_cells,
    run_failing,
    write,
)
from ttsctr.data.preprocess import preprocess
from ttsctr.data.readers import _parse_int

# Probed on pyarrow 25 (see the readers' module docstring): value -> what int64 conversion reads.
PROBED = {
    "5": 5, "-5": -5, " 5": 5, "5 ": 5, "\t5\t": 5, "05": 5, "-05": -5, "-0": 0, "0000000000000000000000005": 5,
    "0x10": 16, "0X1f": 31, "0xFFFFFFFFFFFFFFFF": -1, "0x8000000000000000": -(2**63),
    "9223372036854775807": 2**63 - 1, "-9223372036854775808": -(2**63),
    "+5": None, "+0": None, " +5": None, "+ 5": None, "- 5": None, "--5": None, "-": None, "+": None,
    "1.0": None, "1e3": None, "1_000": None, "1 2": None, "  ": None, "\v5": None, "5\f": None,
    "٥": None, "５": None, "0x": None, "-0x10": None, "+0x10": None, "00x10": None, "0x1g": None,
    "0x00000000000000001": None, "9223372036854775808": None, "-9223372036854775809": None,
}  # fmt: skip


def pyarrow_reads(value: str, type_: pa.DataType) -> int | None:
    """What pyarrow's CSV reader, configured like the readers, makes of ``value`` as ``type_``; None if it fails."""
    data = b"x|" + value.encode() + b"\n"
    options = dict(
        read_options=pacsv.ReadOptions(column_names=["x", "v"]),
        parse_options=pacsv.ParseOptions(delimiter="|", quote_char=False, ignore_empty_lines=False),
        convert_options=pacsv.ConvertOptions(column_types={"v": type_}, null_values=[""], strings_can_be_null=True),
    )
    try:
        return pacsv.read_csv(io.BytesIO(data), **options).column("v")[0].as_py()
    except pa.ArrowInvalid:
        return None


def test_probed_values_are_still_what_pyarrow_reads() -> None:
    """Pins the documented rule: a pyarrow upgrade that changes it fails here first."""
    assert {v: pyarrow_reads(v, pa.int64()) for v in PROBED} == PROBED


def test_rescan_reads_integers_exactly_like_pyarrow() -> None:
    """The diagnostic rescan flags a value if and only if pyarrow's conversion rejected it (and reads
    the same number otherwise), for int64 fields and int8 labels; so does the UserID join's cast."""
    rng = np.random.default_rng(0)
    alphabet = list(" \t+-0123456789xXaFg.e_\v")
    fuzz = ["".join(rng.choice(alphabet, size=int(rng.integers(1, 7)))) for _ in range(1500)]
    near_limits = [f"{sign}{zeros}{n}" for sign in ("", "-") for zeros in ("", "000") for n in
                   (2**63 - 1, 2**63, 2**63 + 1, 127, 128, 129)] + [f"0x{'0' * k}1" for k in range(20)]  # fmt: skip
    values = [v for v in [*PROBED, *fuzz, *near_limits] if v != ""]
    for type_ in (pa.int64(), pa.int8()):
        got = {v: _parse_int(v.encode(), type_.bit_width) for v in values}
        assert got == {v: pyarrow_reads(v, type_) for v in values}, type_
    for v in values:  # the kdd12 UserID column is text, cast to int64 to join the profile
        try:
            joined = pc.cast(pc.utf8_trim(pa.array([v]), " \t"), pa.int64())[0].as_py()
        except pa.ArrowInvalid:
            joined = None
        assert joined == _parse_int(v.encode(), 64), repr(v)


def respelled(line: int, value: bytes, tabs: bool) -> bytes:
    """``value`` (an integer cell) padded or spelled differently, the way chosen by ``line``; ``tabs``:
    TABs may pad it (the file is not TAB-separated)."""
    text = value.decode()
    number = int(text)
    ways = [
        f" {text}",
        f"{text}  ",
        f"-0{text[1:]}" if number < 0 else f"00{text}",
        f"0x{number:X}" if number >= 0 else f" -00{text[1:]} ",
    ] + ([f"\t{text}\t"] if tabs else [])
    return ways[line % len(ways)].encode()


@pytest.mark.parametrize("dataset", ["criteo", "synthetic", "avazu", "kdd12", "movielens"])
def test_padded_integers_read_as_the_same_numbers(tmp_path: Path, dataset: str) -> None:
    """Every integer cell of every file (labels, numeric fields, ids, hours, ratings, genre flags)
    written with blanks, leading zeros or in hex gives the same reader tables and the same encoded
    output as the plain file."""
    reader, plain = make_dataset(tmp_path / "plain", dataset)
    _, padded = make_dataset(tmp_path / "padded", dataset)
    for path in [p for p in padded.parent.iterdir() if p.name in INTEGER_COLUMNS]:
        columns, tabs = INTEGER_COLUMNS[path.name], DELIMITERS[path.name] != b"\t"
        changed = []

        def pad(line: int, col: int, cell: bytes) -> bytes:
            if col not in columns or not re.fullmatch(rb"-?[0-9]+", cell):  # empty cells, the Avazu header
                return cell
            changed.append(cell)
            return respelled(line + col, cell, tabs)

        rewrite_cells(path, pad)
        assert changed, path.name
    assert reader.read_all(padded).equals(reader.read_all(plain))
    for raw, out in ((plain, tmp_path / "out_plain"), (padded, tmp_path / "out_padded")):
        preprocess(reader, raw, out, {"min_count": 1}, progress=False)
    for part in sorted(p.name for p in (tmp_path / "out_plain").glob("*.parquet")):
        assert pq.read_table(tmp_path / "out_padded" / part).equals(pq.read_table(tmp_path / "out_plain" / part)), part


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip-small-chunks"])
def test_plus_sign_deep_in_a_file_names_line_and_field(tmp_path: Path, gz: bool) -> None:
    """pyarrow rejects ``+5``; the rescan used to accept it and report no line."""
    lines = [CRITEO_ROWS[i % len(CRITEO_ROWS)] for i in range(3000)]
    params = {"chunk_bytes": 4096} if gz else {}  # 4 KiB parse blocks: line 2000 is far from the first
    lines[1999] = criteo_line(1, [1, "+5", 3])
    raw = write(tmp_path / "big.txt", criteo_text(lines), gz=gz)
    err = run_failing("criteo", raw, tmp_path, **params)
    assert (err.line, err.field) == (2000, "I2") and err.found == "'+5' (a '+' sign is not accepted)"
    assert err.expected == "an integer or an empty field" and f"{raw}, line 2000, field 'I2'" in str(err)
    lines[1999] = CRITEO_ROWS[1]
    lines[2499] = "+1" + CRITEO_ROWS[1][1:]
    raw = write(tmp_path / "big.txt", criteo_text(lines), gz=gz)
    err = run_failing("criteo", raw, tmp_path, **params)
    assert (err.line, err.field, err.expected) == (2500, "label", "0 or 1") and "'+1'" in err.found


# (dataset, file, 1-based line, 0-based column, field): one integer cell of every kind in every reader
INTEGER_CELLS = [
    ("criteo", "train.txt", 2, 0, "label"),
    ("criteo", "train.txt", 3, 4, "I4"),
    ("synthetic", "s.txt", 1, 13, "I13"),
    ("avazu", "a.csv", 3, 1, "click"),  # line 3 = data row 2 (after the header)
    ("avazu", "a.csv", 4, 2, "hour"),
    ("kdd12", "k.txt", 2, 0, "Click"),
    ("kdd12", "k.txt", 3, 1, "Impression"),
    ("kdd12", "k.txt", 1, 11, "UserID"),  # text, parsed as an integer to join the profile
    ("kdd12", "profile.txt", 2, 0, "UserID"),
    ("movielens", "u.data", 2, 0, "user_id"),
    ("movielens", "u.data", 3, 1, "item_id"),
    ("movielens", "u.data", 4, 2, "rating"),
    ("movielens", "u.data", 5, 3, "timestamp"),
    ("movielens", "u.user", 2, 0, "user_id"),
    ("movielens", "u.item", 3, 0, "movie_id"),
    ("movielens", "u.item", 1, 8, "g3"),
]


@pytest.mark.parametrize(("dataset", "name", "line", "column", "field"), INTEGER_CELLS)
def test_plus_sign_rejected_in_every_integer_column(
    tmp_path: Path, dataset: str, name: str, line: int, column: int, field: str
) -> None:
    """``+`` before a valid value, in a raw or side file, on the fast path or the rescan alike."""
    reader, raw = make_dataset(tmp_path / "d", dataset)
    path = raw.parent / name
    rewrite_cells(path, lambda no, col, cell: b"+" + cell if (no, col) == (line, column) else cell)
    err = run_failing(reader, raw, tmp_path, about=path)
    assert (err.line, err.field) == (line, field)
    assert err.found.endswith("(a '+' sign is not accepted)")


@pytest.mark.parametrize(
    "value", ["+5", " +5", "1.0", "1e3", "1_000", "- 5", "  ", "\v5", "0x", "-0x10", "0x00000000000000001", "9223372036854775808"]
)
def test_numeric_values_pyarrow_rejects_name_line_and_field(tmp_path: Path, value: str) -> None:
    raw = write(tmp_path / "n.txt", criteo_text([*CRITEO_ROWS, criteo_line(0, [1, 2, 3, 4, value]), *CRITEO_ROWS]))
    err = run_failing("criteo", raw, tmp_path)
    assert (err.line, err.field, err.expected) == (5, "I5", "an integer or an empty field")
    assert repr(value) in err.found


@pytest.mark.parametrize("label", ["+1", "+0", "1.0", " ", "0x001", "128", "1e0"])
def test_labels_pyarrow_rejects_name_line_and_field(tmp_path: Path, label: str) -> None:
    raw = write(tmp_path / "l.txt", criteo_text([*CRITEO_ROWS, label + CRITEO_ROWS[1][1:]]))
    err = run_failing("criteo", raw, tmp_path)
    assert (err.line, err.field, err.expected) == (5, "label", "0 or 1") and repr(label) in err.found
