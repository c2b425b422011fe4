"""Streaming readers for the raw click-log formats.

Every reader turns one raw file (plain, gzip, bz2 or zstd -- detected from the first bytes, never
from the name) into a stream of :class:`pyarrow.Table` chunks with one fixed schema:

* ``label``: int8, 0/1, never null;
* one column per feature field, in ``reader.fields`` order: numeric fields are nullable int64,
  categorical fields nullable string (null = missing);
* then ``reader.extra_columns`` (pass-through, non-feature columns such as ``timestamp``).

Parsing is pyarrow's multi-threaded CSV reader (``open_csv``, quoting disabled); validation and
derived columns are vectorised. When pyarrow rejects a block (wrong field count, a value that does
not convert, invalid UTF-8) the reader rescans the lines of that block in Python -- only on that
error path -- to report the 1-based line number, the field, the value found and what was expected
as a :class:`~ttsctr.errors.DataFormatError`. A raw file that is missing, a directory or not
readable by this user (permission denied) is a DataFormatError naming it too.

What a numeric field or a label may look like: exactly what pyarrow's CSV integer conversion
accepts, read as the number it denotes -- spaces and TABs around the value are ignored, leading
zeros too (`` 5``, ``5 ``, ``05`` and ``5`` are all 5; label `` 1`` or ``01`` is 1; ``-0`` is 0),
and ``0x``/``0X`` with at most 16 hex digits (2 for a label) is read as a two's-complement bit
pattern (``0x10`` is 16, ``0xFFFFFFFFFFFFFFFF`` is -1). Rejected, with line and field: a ``+``
sign, a decimal point or exponent (``1.0``, ``1e3``), digit separators, other whitespace (vertical
tab, form feed), a field of blanks only, non-ASCII digits and values outside int64 (for a label:
anything but 0 or 1). An empty field is a missing value where the format allows one. Categorical
fields are text, taken verbatim (`` a`` and ``a`` are different values). A carriage return ends a
line for pyarrow, so one inside a line (not just before its line feed) is rejected too.

Formats (see the docstring of each reader): ``criteo``, ``avazu``, ``kdd12``, ``movielens``,
``synthetic``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator, Literal, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ttsctr.errors import ConfigError, DataFormatError

__all__ = [
    "FieldSpec",
    "RawReader",
    "CriteoReader",
    "AvazuReader",
    "KDD12Reader",
    "MovieLensReader",
    "SyntheticReader",
    "READERS",
    "get_reader",
    "user_histories",
    "open_raw_stream",
    "detect_compression",
    "synthetic_sidecar_paths",
]

LABEL = "label"
PARSE_BLOCK_BYTES = 4 << 20  # pyarrow parses 4 MiB blocks ~2-3x faster than 64 MiB ones
_INT_PADDING = b" \t"  # what pyarrow's CSV integer conversion trims around a value
_DECIMAL_RE = re.compile(rb"-?[0-9]+")
_HEX_RE = re.compile(rb"0[xX]([0-9a-fA-F]+)")


@dataclass(frozen=True)
class FieldSpec:
    """One feature field: its column name and whether it is ``numeric`` (int64) or ``categorical`` (string)."""

    name: str
    kind: Literal["numeric", "categorical"]

    def __post_init__(self) -> None:
        if self.kind not in ("numeric", "categorical"):
            raise ConfigError(f"field {self.name!r}: kind must be 'numeric' or 'categorical', not {self.kind!r}")

    @property
    def arrow_type(self) -> pa.DataType:
        return pa.int64() if self.kind == "numeric" else pa.string()


# --------------------------------------------------------------------------------------------
# opening (compression detected from magic bytes)
# --------------------------------------------------------------------------------------------
_MAGIC = ((b"\x1f\x8b", "gzip"), (b"\x28\xb5\x2f\xfd", "zstd"), (b"BZh", "bz2"))


def detect_compression(path: str | Path) -> str | None:
    """``"gzip"``, ``"zstd"``, ``"bz2"`` or ``None`` (plain), from the file's first bytes."""
    with open(path, "rb") as fh:
        head = fh.read(4)
    for magic, codec in _MAGIC:
        if head.startswith(magic):
            return codec
    return None


def _permission_denied(path: str | Path, what: str) -> DataFormatError:
    return DataFormatError(
        path,
        found=f"a file this user (uid {os.geteuid()}) may not read (permission denied)",
        expected=f"{what}, readable by this user (check the mode and owner of the file and its directories)",
    )


def _check_exists(path: str | Path, what: str) -> Path:
    """``path`` as a Path once it is a regular file this user may read, else the DataFormatError saying why.

    Read permission is tried by opening the file (the mode bits say nothing about root, ACLs or
    read-only mounts), after the stat checks: opening a FIFO would block.
    """
    if path is None:
        raise ConfigError(f"no raw path given; expected {what}")
    p = Path(path)
    try:
        if not p.exists():
            raise DataFormatError(p, found="no such file", expected=what)
        if not p.is_file():
            raise DataFormatError(p, found="a directory or special file", expected=what)
        with open(p, "rb"):
            pass
    except PermissionError:  # from open, or from stat when a directory above is not searchable
        raise _permission_denied(p, what) from None
    return p


def open_raw_stream(path: str | Path) -> pa.NativeFile:
    """An input stream over the decompressed bytes of ``path``."""
    codec = detect_compression(path)
    raw = pa.OSFile(str(path), "rb")
    if codec is None:
        return raw
    try:
        return pa.CompressedInputStream(raw, codec)
    except (pa.ArrowException, ValueError) as exc:  # codec not built into this pyarrow
        raw.close()
        raise DataFormatError(path, found=f"{codec}-compressed data ({exc})", expected="plain or gzip text") from exc


def _iter_lines(path: str | Path, start_line: int = 1, block: int = 1 << 20) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, line without its line end) from ``start_line`` on; stops quietly at a bad stream."""
    stream = open_raw_stream(path)
    line_no = 0
    buf = b""
    try:
        while True:
            try:
                data = stream.read(block)
            except (OSError, pa.ArrowException):
                return
            if not data:
                break
            buf += data
            newlines = buf.count(b"\n")
            if line_no + newlines < start_line:  # every complete line here comes before start_line
                line_no += newlines
                buf = buf[buf.rfind(b"\n") + 1 :]
                continue
            lines = buf.split(b"\n")
            buf = lines.pop()
            for ln in lines:
                line_no += 1
                if line_no >= start_line:
                    yield line_no, ln[:-1] if ln.endswith(b"\r") else ln
        if buf:
            line_no += 1
            if line_no >= start_line:
                yield line_no, buf[:-1] if buf.endswith(b"\r") else buf
    finally:
        stream.close()


def _first_line(path: str | Path) -> bytes | None:
    for _, ln in _iter_lines(path, 1, block=1 << 16):
        return ln
    return None


# --------------------------------------------------------------------------------------------
# delimited text with per-line diagnostics
# --------------------------------------------------------------------------------------------
def _show(value: bytes | str, limit: int = 60) -> str:
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            return repr(value[:limit]) + ("..." if len(value) > limit else "")
    return repr(value[:limit]) + ("..." if len(value) > limit else "")


@dataclass(frozen=True)
class _Col:
    """A raw column: its name, the arrow type pyarrow converts it to, and the per-line check.

    ``check`` is used only by the diagnostic rescan: ``int`` (optional integer), ``int_req``
    (required integer), ``str`` (optional UTF-8 text), ``str_req`` (required text), plus
    value rules ``label01``, ``nonneg``, ``pos``, ``yymmddhh``, ``rating``.
    """

    name: str
    type: pa.DataType
    check: str = "str"


_CHECK_EXPECT = {
    "int": "an integer or an empty field",
    "int_req": "an integer",
    "str": "UTF-8 text or an empty field",
    "str_req": "non-empty UTF-8 text",
    "label01": "0 or 1",
    "nonneg": "an integer >= 0",
    "pos": "an integer >= 1",
    "yymmddhh": "an hour YYMMDDHH (8 digits, valid date, hour 00-23)",
    "rating": "an integer rating 1-5",
}


def _valid_yymmddhh(v: int) -> bool:
    import datetime as _dt

    yy, mm, dd, hh = v // 1_000_000, v // 10_000 % 100, v // 100 % 100, v % 100
    if not (0 <= v <= 99_999_999) or hh > 23:
        return False
    try:
        _dt.date(2000 + yy, mm, dd)
    except ValueError:
        return False
    return True


def _parse_int(raw: bytes, bits: int) -> int | None:
    """The integer pyarrow's CSV conversion to a ``bits``-bit signed integer reads from ``raw``, or
    None where that conversion fails.

    The rescan uses this rule so that it flags exactly the values pyarrow rejected (probed on
    pyarrow 25; tests/data/test_data_integers.py compares it with pyarrow value by value): spaces and
    TABs around the value are trimmed; then either decimal digits with an optional ``-`` (no ``+``),
    any leading zeros, within the type's range; or ``0x``/``0X`` and at most ``bits / 4`` hex digits,
    read as a two's-complement bit pattern.
    """
    text = raw.strip(_INT_PADDING)
    if _DECIMAL_RE.fullmatch(text):
        value = int(text)
        return value if -(1 << (bits - 1)) <= value < 1 << (bits - 1) else None
    hex_digits = _HEX_RE.fullmatch(text)
    if hex_digits is None or len(hex_digits[1]) > bits // 4:
        return None
    value = int(hex_digits[1], 16)
    return value - (1 << bits) if value >> (bits - 1) else value


def _not_an_integer(raw: bytes, bits: int) -> str:
    """What the rescan reports for a value :func:`_parse_int` rejects."""
    text = raw.strip(_INT_PADDING)
    if text == b"":
        return f"only blanks {_show(raw)}"
    if text.startswith(b"+"):
        return f"{_show(raw)} (a '+' sign is not accepted)"
    if _DECIMAL_RE.fullmatch(text):
        return f"{_show(raw)} (out of the int{bits} range)"
    return _show(raw)


def _check_value(col: _Col, raw: bytes, encoding: str) -> str | None:
    """None if ``raw`` passes ``col``'s check, else a description of what was found."""
    check = col.check
    if check in ("str", "str_req"):
        try:
            raw.decode(encoding)
        except UnicodeDecodeError:
            return f"invalid {encoding.upper()} bytes {raw!r}"
        if check == "str_req" and raw == b"":
            return "an empty field"
        return None
    if raw == b"":
        return None if check == "int" else "an empty field"
    v = _parse_int(raw, col.type.bit_width)
    if v is None:
        return _not_an_integer(raw, col.type.bit_width)
    if check == "label01" and v not in (0, 1):
        return _show(raw)
    if check == "nonneg" and v < 0:
        return _show(raw)
    if check == "pos" and v < 1:
        return _show(raw)
    if check == "rating" and not (1 <= v <= 5):
        return _show(raw)
    if check == "yymmddhh" and not _valid_yymmddhh(v):
        return _show(raw)
    return None


class _DelimitedSource:
    """One delimited text format: column layout, delimiter, encoding, optional header line."""

    def __init__(
        self,
        columns: Sequence[_Col],
        delimiter: str,
        *,
        what: str,
        encoding: str = "utf-8",
        include: Sequence[str] | None = None,
        line_check: Callable[[list[bytes]], tuple[str, str, str] | None] | None = None,
    ) -> None:
        self.columns = tuple(columns)
        self.delimiter = delimiter
        self.what = what
        self.encoding = encoding
        self.include = list(include) if include is not None else None
        self.line_check = line_check  # extra cross-column rule: -> (field, found, expected)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def _options(self, block_bytes: int, skip_rows: int):
        ro = pacsv.ReadOptions(
            column_names=self.names,
            block_size=max(int(block_bytes), 1 << 12),
            skip_rows=skip_rows,
            encoding="utf8" if self.encoding.lower().replace("-", "") == "utf8" else self.encoding,
            use_threads=True,
        )
        po = pacsv.ParseOptions(delimiter=self.delimiter, quote_char=False, ignore_empty_lines=False)
        co = pacsv.ConvertOptions(
            column_types={c.name: c.type for c in self.columns},
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
            include_columns=self.include,
        )
        return ro, po, co

    def check_line(self, fields: list[bytes]) -> tuple[str | None, str, str] | None:
        """(field, found, expected) for the first problem in one split line, or None."""
        if len(fields) != len(self.columns):
            if len(fields) == 1 and fields[0] == b"":
                return None, "an empty line", f"{len(self.columns)} {self._sep_name()}-separated fields"
            return (
                None,
                f"{len(fields)} {self._sep_name()}-separated fields",
                f"{len(self.columns)} fields ({', '.join(self.names[:4])}, ...)",
            )
        for col, raw in zip(self.columns, fields):
            if b"\r" in raw:
                return (
                    col.name,
                    f"a carriage return inside the line, in {_show(raw)}",
                    "\\r only right before the line feed (pyarrow ends a line at any \\r)",
                )
            if self.include is not None and col.name not in self.include and col.check.startswith("str"):
                continue
            found = _check_value(col, raw, self.encoding)
            if found is not None:
                return col.name, found, _CHECK_EXPECT[col.check]
        if self.line_check is not None:
            return self.line_check(fields)
        return None

    def _sep_name(self) -> str:
        return {"\t": "TAB", ",": "comma", "|": "'|'"}.get(self.delimiter, repr(self.delimiter))

    def scan(self, path: str | Path, start_line: int) -> DataFormatError | None:
        """Rescan ``path`` line by line from ``start_line``; the first bad line as an error, else None."""
        sep = self.delimiter.encode()
        for line_no, ln in _iter_lines(path, start_line):
            problem = self.check_line(ln.split(sep))
            if problem is not None:
                field, found, expected = problem
                return DataFormatError(path, line=line_no, field=field, found=found, expected=expected)
        return None

    def batches(
        self, path: str | Path, block_bytes: int, *, header_lines: int = 0
    ) -> Iterator[tuple[pa.RecordBatch, int]]:
        """(record batch, 1-based line number of its first row); errors become DataFormatError."""
        path = _check_exists(path, self.what)
        rows = 0
        stream = None
        try:
            stream = open_raw_stream(path)
            ro, po, co = self._options(block_bytes, header_lines)
            reader = pacsv.open_csv(stream, read_options=ro, parse_options=po, convert_options=co)
            for batch in reader:
                if batch.num_rows == 0:
                    continue
                first = header_lines + rows + 1
                rows += batch.num_rows
                yield batch, first
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            raise self._diagnose(path, exc, header_lines + rows + 1, block_bytes) from None
        except (OSError, EOFError, pa.ArrowException) as exc:
            if isinstance(exc, PermissionError):  # its mode changed since _check_exists
                raise _permission_denied(path, self.what) from None
            if isinstance(exc, (FileNotFoundError, IsADirectoryError)):  # replaced since _check_exists
                raise
            where = f" after line {header_lines + rows}" if rows else ""
            raise DataFormatError(
                path,
                found=f"a corrupt or truncated compressed stream{where} ({exc})",
                expected=f"a complete {detect_compression(path) or 'plain'} file",
            ) from None
        finally:
            if stream is not None:
                stream.close()
        if rows == 0:
            raise DataFormatError(
                path,
                found="an empty file" if header_lines == 0 else "a header line but no data rows",
                expected=f"{self.what} with at least one row",
            )

    def _diagnose(self, path: Path, exc: Exception, start_line: int, block_bytes: int) -> DataFormatError:
        msg = str(exc)
        if "Empty CSV file" in msg:
            return DataFormatError(path, found="an empty file", expected=f"{self.what} with at least one row")
        err = self.scan(path, start_line)
        if err is not None:
            return err
        block = f"the parse block of up to {block_bytes} bytes that starts at line {start_line}"
        if "straddl" in msg:
            return DataFormatError(
                path,
                found=f"a line longer than {block}",
                expected=f"lines shorter than {block_bytes} bytes (chunk_bytes below {PARSE_BLOCK_BYTES} limits the block)",
            )
        return DataFormatError(path, found=f"data pyarrow cannot parse in {block} ({msg})", expected=self.what)

    def read_all(self, path: str | Path, *, header_lines: int = 0) -> tuple[pa.Table, Path]:
        path = _check_exists(path, self.what)
        batches = [b for b, _ in self.batches(path, PARSE_BLOCK_BYTES, header_lines=header_lines)]
        return pa.Table.from_batches(batches), path


def _first_bad(mask: np.ndarray) -> int | None:
    idx = np.flatnonzero(mask)
    return int(idx[0]) if idx.size else None


def _require(
    path: Path,
    col: pa.Array,
    first_line: int,
    name: str,
    bad: np.ndarray,
    expected: str,
    source: _DelimitedSource | None = None,
) -> None:
    """Raise for the first row flagged in ``bad`` (nulls in ``col`` count as bad).

    An empty value is re-checked with ``source``'s line scan, which tells an empty field from a
    blank line.
    """
    nulls = col.is_null().to_numpy(zero_copy_only=False) if col.null_count else None
    if nulls is not None:
        bad = bad | nulls
    i = _first_bad(bad)
    if i is not None:
        value = col[i].as_py()
        if value is None and source is not None:
            err = source.scan(path, first_line + i)
            if err is not None and err.line == first_line + i:
                raise err
        found = "an empty field" if value is None else _show(str(value))
        raise DataFormatError(path, line=first_line + i, field=name, found=found, expected=expected)


def _int_values(col: pa.Array, fill: int = 0) -> np.ndarray:
    if col.null_count:
        col = pc.fill_null(col, fill)
    return col.to_numpy(zero_copy_only=False)


def _check_label(
    path: Path, col: pa.Array, first_line: int, name: str = LABEL, source: _DelimitedSource | None = None
) -> pa.Array:
    v = _int_values(col, -1)
    _require(path, col, first_line, name, (v != 0) & (v != 1), "0 or 1", source)
    return col.cast(pa.int8()) if col.type != pa.int8() else col


# --------------------------------------------------------------------------------------------
# readers
# --------------------------------------------------------------------------------------------
class RawReader:
    """Base class: ``iter_chunks(path)`` yields tables ``label, *fields, *extra_columns``."""

    name: ClassVar[str] = ""
    option_names: ClassVar[tuple[str, ...]] = ()
    fields: tuple[FieldSpec, ...] = ()
    extra_columns: tuple[str, ...] = ()
    extra_types: tuple[pa.DataType, ...] = ()
    description: ClassVar[str] = ""

    def __init__(self, **options: Any) -> None:
        unknown = sorted(set(options) - set(self.option_names))
        if unknown:
            raise ConfigError(
                f"reader {self.name!r}: unknown option(s) {unknown}; known options: {list(self.option_names) or 'none'}"
            )
        self._options = dict(options)

    @property
    def options(self) -> dict[str, Any]:
        """The options this reader was built with (JSON-friendly), for provenance."""
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in self._options.items()}

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def schema(self) -> pa.Schema:
        """The schema of every chunk ``iter_chunks`` yields."""
        return pa.schema(
            [pa.field(LABEL, pa.int8(), nullable=False)]
            + [pa.field(f.name, f.arrow_type) for f in self.fields]
            + [pa.field(n, t) for n, t in zip(self.extra_columns, self.extra_types)]
        )

    def source_files(self, path: str | Path) -> list[Path]:
        """Every file ``iter_chunks(path)`` reads (for provenance: size + mtime)."""
        return [Path(path)]

    def iter_chunks(self, path: str | Path, chunk_bytes: int = 64 << 20) -> Iterator[pa.Table]:
        """Tables of about ``chunk_bytes`` (arrow size) each, in file order, with :attr:`schema`.

        The text is parsed in blocks of at most ``PARSE_BLOCK_BYTES`` (small blocks parse much
        faster); the parsed blocks are grouped, without copying, into one table per chunk, so
        columns may consist of several arrow chunks.
        """
        if not isinstance(chunk_bytes, int) or chunk_bytes < 1:
            raise ConfigError(f"chunk_bytes must be a positive integer, not {chunk_bytes!r}")
        group: list[pa.Table] = []
        size = 0
        for table in self._iter_tables(path, min(chunk_bytes, PARSE_BLOCK_BYTES)):
            group.append(table)
            size += table.nbytes
            if size >= chunk_bytes:
                yield pa.concat_tables(group)
                group, size = [], 0
        if group:
            yield pa.concat_tables(group)

    def _iter_tables(self, path: str | Path, block_bytes: int) -> Iterator[pa.Table]:
        """One output table per parsed block (implemented by each format)."""
        raise NotImplementedError

    def read_all(self, path: str | Path, chunk_bytes: int = 64 << 20) -> pa.Table:
        """The whole file as one table (small files and tests only)."""
        chunks = list(self.iter_chunks(path, chunk_bytes))
        return pa.concat_tables(chunks) if chunks else self.schema.empty_table()

    def _finish(self, columns: dict[str, pa.Array]) -> pa.Table:
        names = [LABEL, *self.field_names, *self.extra_columns]
        return pa.Table.from_arrays([columns[n] for n in names], schema=self.schema)

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self._options.items())
        return f"{type(self).__name__}({opts})"


# ---- Criteo ---------------------------------------------------------------------------------
CRITEO_NUMERIC = tuple(f"I{i}" for i in range(1, 14))
CRITEO_CATEGORICAL = tuple(f"C{i}" for i in range(1, 27))


class CriteoReader(RawReader):
    """Criteo Kaggle DAC ``train.txt``: TAB, no header, ``label, I1..I13, C1..C26``.

    I1..I13 are integers (may be negative), C1..C26 8-hex-digit strings; empty = missing.
    """

    name = "criteo"
    fields = tuple(FieldSpec(n, "numeric") for n in CRITEO_NUMERIC) + tuple(
        FieldSpec(n, "categorical") for n in CRITEO_CATEGORICAL
    )
    _source = _DelimitedSource(
        [_Col(LABEL, pa.int8(), "label01")]
        + [_Col(n, pa.int64(), "int") for n in CRITEO_NUMERIC]
        + [_Col(n, pa.string(), "str") for n in CRITEO_CATEGORICAL],
        "\t",
        what="a Criteo train.txt file (TAB-separated: label, I1..I13, C1..C26)",
    )

    def _criteo_batches(self, path: str | Path, block_bytes: int) -> Iterator[tuple[dict, int, Path]]:
        path = Path(path)
        for batch, first in self._source.batches(path, block_bytes):
            cols = dict(zip(batch.schema.names, batch.columns))
            cols[LABEL] = _check_label(path, cols[LABEL], first, source=self._source)
            yield cols, first, path

    def _iter_tables(self, path: str | Path, block_bytes: int) -> Iterator[pa.Table]:
        for cols, _, _ in self._criteo_batches(path, block_bytes):
            yield self._finish(cols)


# ---- synthetic (Criteo format + true probability sidecar) -------------------------------------
def synthetic_sidecar_paths(path: str | Path) -> tuple[Path, Path]:
    """(``<path>.proba.npy``, ``<path>.meta.json``): the true-probability array and the generator metadata."""
    p = Path(path)
    return p.with_name(p.name + ".proba.npy"), p.with_name(p.name + ".meta.json")


class SyntheticReader(CriteoReader):
    """Files written by :func:`ttsctr.data.synthetic.generate_synthetic`: Criteo format plus the
    sidecar ``<path>.proba.npy`` (float32, one true click probability per row), emitted as the
    extra column ``true_prob`` (float64)."""

    name = "synthetic"
    extra_columns = ("true_prob",)
    extra_types = (pa.float64(),)

    def source_files(self, path: str | Path) -> list[Path]:
        proba, meta = synthetic_sidecar_paths(path)
        return [Path(path), proba] + ([meta] if meta.exists() else [])

    def _iter_tables(self, path: str | Path, block_bytes: int) -> Iterator[pa.Table]:
        _check_exists(path, "a synthetic click log written by generate_synthetic()")
        proba_path, _ = synthetic_sidecar_paths(path)
        _check_exists(proba_path, f"the true-probability sidecar of {path} (generate_synthetic writes it)")
        try:
            proba = np.load(proba_path, mmap_mode="r")
        except (ValueError, OSError) as exc:
            raise DataFormatError(proba_path, found=f"an unreadable .npy file ({exc})", expected="a float32 .npy array") from exc
        if proba.ndim != 1 or proba.dtype.kind != "f":
            raise DataFormatError(proba_path, found=f"array {proba.dtype}{list(proba.shape)}", expected="a 1-D float array")
        done = 0
        for cols, first, p in self._criteo_batches(path, block_bytes):
            n = len(cols[LABEL])
            if done + n > proba.shape[0]:
                raise DataFormatError(
                    proba_path,
                    found=f"{proba.shape[0]} probabilities",
                    expected=f"one per row of {p} (it has more rows: line {first + proba.shape[0] - done} has none)",
                )
            cols["true_prob"] = pa.array(np.asarray(proba[done : done + n], dtype=np.float64))
            done += n
            yield self._finish(cols)
        if done != proba.shape[0]:
            raise DataFormatError(
                proba_path, found=f"{proba.shape[0]} probabilities", expected=f"{done}, one per row of {path}"
            )


# ---- Avazu ------------------------------------------------------------------------------------
AVAZU_COLUMNS = (
    "id,click,hour,C1,banner_pos,site_id,site_domain,site_category,app_id,app_domain,app_category,"
    "device_id,device_ip,device_model,device_type,device_conn_type,C14,C15,C16,C17,C18,C19,C20,C21"
).split(",")
AVAZU_DERIVED = ("hour_of_day", "weekday", "is_weekend")
_AVAZU_RAW_FEATURES = tuple(AVAZU_COLUMNS[3:])


class AvazuReader(RawReader):
    """Avazu Kaggle ``train.csv``: comma, 24 columns, header line optional (detected from the first line).

    ``id`` is dropped, ``click`` is the label, ``hour`` (YYMMDDHH) becomes the categorical fields
    ``hour_of_day`` (0-23), ``weekday`` (0 = Monday) and ``is_weekend`` (0/1); every other
    column is a categorical field, as text.
    """

    name = "avazu"
    fields = tuple(FieldSpec(n, "categorical") for n in AVAZU_DERIVED + _AVAZU_RAW_FEATURES)
    _source = _DelimitedSource(
        [_Col("id", pa.string(), "str"), _Col("click", pa.int8(), "label01"), _Col("hour", pa.int64(), "yymmddhh")]
        + [_Col(n, pa.string(), "str") for n in _AVAZU_RAW_FEATURES],
        ",",
        what="an Avazu train.csv file (comma-separated, 24 columns: id,click,hour,C1,...,C21)",
        include=["click", "hour", *_AVAZU_RAW_FEATURES],
    )

    @staticmethod
    def _has_header(path: Path) -> bool:
        first = _first_line(path)
        return first is not None and first.split(b",")[:2] == [b"id", b"click"]

    def _iter_tables(self, path: str | Path, block_bytes: int) -> Iterator[pa.Table]:
        path = _check_exists(path, self._source.what)
        header = 1 if self._has_header(path) else 0
        for batch, first in self._source.batches(path, block_bytes, header_lines=header):
            cols = dict(zip(batch.schema.names, batch.columns))
            label = _check_label(path, cols.pop("click"), first, "click", self._source)
            hour_col = cols.pop("hour")
            hour = _int_values(hour_col, -1)
            yy, mm, dd, hh = hour // 1_000_000, hour // 10_000 % 100, hour // 100 % 100, hour % 100
            month = ((2000 + yy - 1970) * 12 + (mm - 1)).astype("datetime64[M]")
            date = month.astype("datetime64[D]") + (dd - 1).astype("timedelta64[D]")
            ok = (hour >= 0) & (hour <= 99_999_999) & (mm >= 1) & (mm <= 12) & (dd >= 1) & (hh <= 23)
            ok &= date.astype("datetime64[M]") == month
            _require(path, hour_col, first, "hour", ~ok, _CHECK_EXPECT["yymmddhh"])
            weekday = (date.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
            cols[LABEL] = label
            cols["hour_of_day"] = pc.cast(pa.array(hh.astype(np.int8)), pa.string())
            cols["weekday"] = pc.cast(pa.array(weekday.astype(np.int8)), pa.string())
            cols["is_weekend"] = pc.cast(pa.array((weekday >= 5).astype(np.int8)), pa.string())
            yield self._finish(cols)


# ---- KDD Cup 2012 track 2 ----------------------------------------------------------------------
KDD12_COLUMNS = (
    "Click", "Impression", "DisplayURL", "AdID", "AdvertiserID", "Depth", "Position",
    "QueryID", "KeywordID", "TitleID", "DescriptionID", "UserID",
)  # fmt: skip
_KDD12_FEATURES = KDD12_COLUMNS[2:]


def _kdd_click_le_impression(fields: list[bytes]) -> tuple[str, str, str] | None:
    click, imp = _parse_int(fields[0], 64), _parse_int(fields[1], 64)  # both passed their column checks
    if click > imp:
        return "Click", f"Click={click} > Impression={imp}", "Click <= Impression"
    return None


class KDD12Reader(RawReader):
    """KDD Cup 2012 track 2 ``training.txt``: TAB, no header, 12 columns
    ``Click, Impression, DisplayURL, AdID, AdvertiserID, Depth, Position, QueryID, KeywordID,
    TitleID, DescriptionID, UserID``; every column but Click/Impression is a categorical field
    (as text: DisplayURL is an unsigned 64-bit hash).

    Options: ``label="impression_expand"`` (default: each line becomes ``Impression`` rows, the
    first ``Click`` of them positive) or ``"click_positive"`` (one row, label ``Click > 0``);
    ``user_profile=<userid_profile.txt>`` (TAB ``UserID, Gender, Age``) adds fields ``Gender`` and
    ``Age`` (null for users without a profile).
    """

    name = "kdd12"
    option_names = ("label", "user_profile")
    LABEL_MODES = ("impression_expand", "click_positive")
    _source = _DelimitedSource(
        [_Col("Click", pa.int64(), "nonneg"), _Col("Impression", pa.int64(), "pos")]
        + [_Col(n, pa.string(), "str") for n in _KDD12_FEATURES],
        "\t",
        what="a KDD Cup 2012 track 2 training.txt file (TAB-separated, 12 columns: Click, Impression, DisplayURL, ...)",
        line_check=_kdd_click_le_impression,
    )
    _profile_source = _DelimitedSource(
        [_Col("UserID", pa.int64(), "int_req"), _Col("Gender", pa.string(), "str"), _Col("Age", pa.string(), "str")],
        "\t",
        what="a KDD Cup 2012 userid_profile.txt file (TAB-separated: UserID, Gender, Age)",
    )

    def __init__(self, label: str = "impression_expand", user_profile: str | Path | None = None) -> None:
        if label not in self.LABEL_MODES:
            raise ConfigError(f"kdd12 reader: label={label!r} is not known; expected one of {list(self.LABEL_MODES)}")
        opts: dict[str, Any] = {"label": label}
        if user_profile is not None:
            opts["user_profile"] = str(user_profile)
        super().__init__(**opts)
        self.label_mode = label
        self.user_profile = Path(user_profile) if user_profile is not None else None
        names = _KDD12_FEATURES + (("Gender", "Age") if user_profile is not None else ())
        self.fields = tuple(FieldSpec(n, "categorical") for n in names)
        self._profile: tuple[np.ndarray, pa.Array, pa.Array] | None = None

    def source_files(self, path: str | Path) -> list[Path]:
        return [Path(path)] + ([self.user_profile] if self.user_profile is not None else [])

    def _load_profile(self) -> tuple[np.ndarray, pa.Array, pa.Array]:
        if self._profile is None:
            table, path = self._profile_source.read_all(self.user_profile)
            ids = table.column("UserID").to_numpy()
            order = np.argsort(ids, kind="stable")
            ids = ids[order]
            dup = _first_bad(ids[1:] == ids[:-1])
            if dup is not None:
                raise DataFormatError(
                    path, field="UserID", found=f"UserID {ids[dup]} listed twice", expected="one profile line per user"
                )
            take = pa.array(order)
            self._profile = (
                ids,
                table.column("Gender").combine_chunks().take(take),
                table.column("Age").combine_chunks().take(take),
            )
        return self._profile

    def _iter_tables(self, path: str | Path, block_bytes: int) -> Iterator[pa.Table]:
        path = _check_exists(path, self._source.what)
        profile = self._load_profile() if self.user_profile is not None else None
        for batch, first in self._source.batches(path, block_bytes):
            cols = dict(zip(batch.schema.names, batch.columns))
            click_col, imp_col = cols.pop("Click"), cols.pop("Impression")
            click, imp = _int_values(click_col, -1), _int_values(imp_col, 0)
            _require(path, click_col, first, "Click", click < 0, _CHECK_EXPECT["nonneg"], self._source)
            _require(path, imp_col, first, "Impression", imp < 1, _CHECK_EXPECT["pos"])
            i = _first_bad(click > imp)
            if i is not None:
                raise DataFormatError(
                    path, line=first + i, field="Click", found=f"Click={click[i]} > Impression={imp[i]}", expected="Click <= Impression"
                )
            if profile is not None:
                ids, gender, age = profile
                uid = self._user_ids(path, cols["UserID"], first)
                pos = np.searchsorted(ids, uid)
                pos_c = np.minimum(pos, max(len(ids) - 1, 0))
                hit = (pos < len(ids)) & (ids[pos_c] == uid) if len(ids) else np.zeros(len(uid), bool)
                idx = pa.array(pos_c, mask=~hit)
                cols["Gender"] = gender.take(idx) if len(ids) else pa.nulls(len(uid), pa.string())
                cols["Age"] = age.take(idx) if len(ids) else pa.nulls(len(uid), pa.string())
            if self.label_mode == "click_positive":
                cols[LABEL] = pa.array((click > 0).astype(np.int8))
                yield self._finish(cols)
                continue
            n_out = int(imp.sum())
            src = np.repeat(np.arange(len(imp)), imp)
            starts = np.repeat(np.cumsum(imp) - imp, imp)
            rank = np.arange(n_out) - starts
            cols[LABEL] = pa.array((rank < np.repeat(click, imp)).astype(np.int8))
            take = pa.array(src)
            for name in self.field_names:
                cols[name] = cols[name].take(take)
            yield self._finish(cols)

    @staticmethod
    def _user_ids(path: Path, col: pa.Array, first: int) -> np.ndarray:
        """The UserID column (text: it is also a categorical field) as the integers to join the profile
        on, read like the profile's int64 UserID column (see :func:`_parse_int`): the cast parses
        the same way once the padding is trimmed."""
        txt = pc.fill_null(col, "")
        try:
            return pc.cast(pc.utf8_trim(txt, _INT_PADDING.decode()), pa.int64()).to_numpy()
        except pa.ArrowInvalid:
            pass
        i, value = next((i, v) for i, v in enumerate(txt.to_pylist()) if _parse_int(v.encode(), 64) is None)
        raise DataFormatError(
            path,
            line=first + i,
            field="UserID",
            found="an empty field" if value == "" else _not_an_integer(value.encode(), 64),
            expected="an integer UserID (to join user_profile)",
        )


# ---- MovieLens 100K ----------------------------------------------------------------------------
MOVIELENS_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
    "War", "Western",
)  # fmt: skip


def _sibling(path: Path, name: str) -> Path:
    for cand in (path.with_name(name), path.with_name(name + ".gz")):
        if cand.is_file():
            return cand
    raise DataFormatError(
        path.with_name(name), found="no such file (nor .gz)", expected=f"MovieLens {name} next to {path.name}"
    )


class MovieLensReader(RawReader):
    """MovieLens-100K ``u.data`` (TAB: user_id, item_id, rating, timestamp) joined with ``u.user``
    and ``u.item`` from the same directory (plain or ``.gz``).

    Label ``rating >= 4``. Fields (all categorical): ``user_id, item_id, age, gender, occupation,
    zip_prefix`` (first 3 characters of the zip code), ``genres`` (the movie's genre names joined
    with ``|``; null when it has none). Extra column ``timestamp`` (int64, unix seconds).
    """

    name = "movielens"
    fields = tuple(
        FieldSpec(n, "categorical") for n in ("user_id", "item_id", "age", "gender", "occupation", "zip_prefix", "genres")
    )
    extra_columns = ("timestamp",)
    extra_types = (pa.int64(),)
    _source = _DelimitedSource(
        [_Col("user_id", pa.int64(), "int_req"), _Col("item_id", pa.int64(), "int_req"),
         _Col("rating", pa.int64(), "rating"), _Col("timestamp", pa.int64(), "int_req")],
        "\t",
        what="a MovieLens u.data file (TAB-separated: user_id, item_id, rating, timestamp)",
    )  # fmt: skip
    _user_source = _DelimitedSource(
        [_Col("user_id", pa.int64(), "int_req"), _Col("age", pa.string(), "str"), _Col("gender", pa.string(), "str"),
         _Col("occupation", pa.string(), "str"), _Col("zip", pa.string(), "str")],
        "|",
        what="a MovieLens u.user file ('|'-separated: user_id|age|gender|occupation|zip_code)",
    )  # fmt: skip
    _item_source = _DelimitedSource(
        [_Col("movie_id", pa.int64(), "int_req"), _Col("title", pa.string(), "str"), _Col("release_date", pa.string(), "str"),
         _Col("video_release_date", pa.string(), "str"), _Col("imdb_url", pa.string(), "str")]
        + [_Col(f"g{i}", pa.int64(), "int") for i in range(len(MOVIELENS_GENRES))],
        "|",
        what="a MovieLens u.item file ('|'-separated, ISO-8859-1, 24 columns: movie_id|title|...|19 genre flags)",
        encoding="latin-1",
    )  # fmt: skip

    def __init__(self) -> None:
        super().__init__()
        self._aux_cache: dict[tuple, tuple] = {}

    def source_files(self, path: str | Path) -> list[Path]:
        path = Path(path)
        return [path, _sibling(path, "u.user"), _sibling(path, "u.item")]

    @staticmethod
    def _lookup(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(positions into sorted ``keys``, hit mask) for ``values``."""
        pos = np.searchsorted(keys, values)
        pos_c = np.minimum(pos, len(keys) - 1)
        return pos_c, (pos < len(keys)) & (keys[pos_c] == values)

    def _aux(self, path: Path):
        user_path, item_path = _sibling(path, "u.user"), _sibling(path, "u.item")
        key = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in (user_path, item_path))
        if key in self._aux_cache:
            return self._aux_cache[key]
        users, _ = self._user_source.read_all(user_path)
        users = users.sort_by("user_id")
        uid = users.column("user_id").to_numpy()
        if len(uid) > 1 and (uid[1:] == uid[:-1]).any():
            raise DataFormatError(user_path, field="user_id", found="a user_id listed twice", expected="one line per user")
        user_cols = {
            "age": users.column("age").combine_chunks(),
            "gender": users.column("gender").combine_chunks(),
            "occupation": users.column("occupation").combine_chunks(),
            "zip_prefix": pc.utf8_slice_codeunits(users.column("zip").combine_chunks(), 0, 3),
        }
        items, _ = self._item_source.read_all(item_path)
        items = items.sort_by("movie_id")
        mid = items.column("movie_id").to_numpy()
        if len(mid) > 1 and (mid[1:] == mid[:-1]).any():
            raise DataFormatError(item_path, field="movie_id", found="a movie_id listed twice", expected="one line per movie")
        flags = np.stack([_int_values(items.column(f"g{i}").combine_chunks()) for i in range(len(MOVIELENS_GENRES))], 1)
        # per-movie genre string: small side table (one entry per movie, not per rating)
        genres = ["|".join(g for g, f in zip(MOVIELENS_GENRES, row) if f) or None for row in flags.tolist()]
        result = (uid, user_cols, mid, pa.array(genres, pa.string()))
        self._aux_cache = {key: result}
        return result

    def _iter_tables(self, path: str | Path, block_bytes: int) -> Iterator[pa.Table]:
        path = _check_exists(path, self._source.what)
        uid_keys, user_cols, mid_keys, genres = self._aux(path)
        for batch, first in self._source.batches(path, block_bytes):
            cols = dict(zip(batch.schema.names, batch.columns))
            rating_col = cols.pop("rating")
            rating = _int_values(rating_col, 0)
            _require(path, rating_col, first, "rating", (rating < 1) | (rating > 5), _CHECK_EXPECT["rating"], self._source)
            for nm in ("user_id", "item_id", "timestamp"):
                _require(path, cols[nm], first, nm, np.zeros(len(rating), bool), "an integer")
            u = cols["user_id"].to_numpy()
            m = cols["item_id"].to_numpy()
            upos, uhit = self._lookup(uid_keys, u)
            mpos, mhit = self._lookup(mid_keys, m)
            uidx, midx = pa.array(upos, mask=~uhit), pa.array(mpos, mask=~mhit)
            out = {
                LABEL: pa.array((rating >= 4).astype(np.int8)),
                "user_id": pc.cast(cols["user_id"], pa.string()),
                "item_id": pc.cast(cols["item_id"], pa.string()),
                **{k: v.take(uidx) for k, v in user_cols.items()},
                "genres": genres.take(midx),
                "timestamp": cols["timestamp"],
            }
            yield self._finish(out)

    def user_histories(self, path: str | Path) -> pa.Table:
        """Per-user chronological behaviour sequences from ``u.data``.

        Columns: ``user_id`` (int64, ascending), ``item_ids``, ``timestamps``, ``ratings``
        (list<int64>, sorted by timestamp, ties by original line order).
        """
        parts = [b for b, _ in self._source.batches(path, PARSE_BLOCK_BYTES)]
        table = pa.Table.from_batches(parts)
        u = table.column("user_id").to_numpy()
        t = table.column("timestamp").to_numpy()
        order = np.lexsort((np.arange(len(u)), t, u))
        u_sorted = u[order]
        starts = np.flatnonzero(np.r_[True, u_sorted[1:] != u_sorted[:-1]])
        offsets = pa.array(np.r_[starts, len(u)].astype(np.int32))
        take = pa.array(order)

        def lists(name: str) -> pa.Array:
            return pa.ListArray.from_arrays(offsets, table.column(name).combine_chunks().take(take))

        return pa.table(
            {
                "user_id": pa.array(u_sorted[starts]),
                "item_ids": lists("item_id"),
                "timestamps": lists("timestamp"),
                "ratings": lists("rating"),
            }
        )


def user_histories(path: str | Path) -> pa.Table:
    """Per-user chronologically sorted item sequences of a MovieLens ``u.data`` file (see
    :meth:`MovieLensReader.user_histories`)."""
    return MovieLensReader().user_histories(path)


# --------------------------------------------------------------------------------------------
READERS: dict[str, type[RawReader]] = {
    "criteo": CriteoReader,
    "avazu": AvazuReader,
    "kdd12": KDD12Reader,
    "movielens": MovieLensReader,
    "synthetic": SyntheticReader,
}


def get_reader(name: str, **options: Any) -> RawReader:
    """The reader for dataset ``name`` built with ``options`` (e.g. ``get_reader("kdd12", label="click_positive")``)."""
    try:
        cls = READERS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown dataset {name!r}; known datasets: {', '.join(sorted(READERS))}") from None
    try:
        return cls(**options)
    except TypeError as exc:
        raise ConfigError(
            f"reader {name!r}: bad options {sorted(options)} ({exc}); known options: {list(cls.option_names) or 'none'}"
        ) from exc
