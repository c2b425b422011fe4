"""Preprocessing with the OptFS protocol: tokenise, threshold rare values, encode to global ids, split.

Protocol (per field, in ``reader.fields`` order):

* numeric fields are tokenised first: ``token = floor(ln(x)^2)`` for ``x > 2``, else ``int(x)``
  (:func:`numeric_token`); a missing value is its own token;
* local id 0 = OOV (a value seen fewer than ``min_count`` times in the fit rows, and any value
  unseen at validation/test/serving time), local id 1 = missing (null), frequent values get
  2, 3, ... by descending count, ties by ascending value (byte order for text, numeric order for
  tokens);
* a field listed in ``hash_buckets`` is not thresholded: local id = ``2 + stable_hash(value) %
  buckets`` (:func:`stable_hash`, FNV-1a 64 + splitmix64 finaliser over the UTF-8 bytes of the
  value, or of the decimal token for numeric fields);
* global id = field offset + local id, offsets cumulative in field order.

Splits: row ``i`` (0-based, in reader order) goes to train/validation/test by
``u_i = splitmix64(splitmix64(seed ^ C) ^ i) / 2^64`` against the cumulative ``split_ratios``
(``random``), or by position (``chronological``: the first 80% of rows in file order, or in
``timestamp`` order when the reader has a ``timestamp`` column, ties by file order).
Neither depends on ``chunk_bytes``.

Passes: pass 1 parses the raw file once (the only parse), dictionary-encodes every field per
chunk (small int indices + the chunk's distinct values; numeric fields are tokenised on their
distinct values only), counts value frequencies on the fit rows and keeps the encoded chunks in
RAM up to ``PreprocessConfig.cache_bytes``, spilling the rest to lz4-compressed Arrow IPC files
inside the temporary output directory; pass 2 maps each chunk dictionary to ids (only the
distinct values are looked up) and writes the splits, parquet encoding overlapping with the
next chunk. Per-field work runs in a small thread pool (pyarrow and numpy release the GIL).
Memory is bounded by a few chunks, the vocabularies and ``cache_bytes``; disk by the outputs plus
the spilled intermediate (about 1-4 bytes per row and field, before compression).
"""

from __future__ import annotations

import json
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields as dc_fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from ttsctr.data.io import FEATURE_MAP_FILE, LABEL_COLUMN, SPLITS, VOCABULARY_FILE, atomic_dir, load_feature_map
from ttsctr.data.progress import progress_bar
from ttsctr.data.readers import FieldSpec, RawReader, get_reader
from ttsctr.errors import ConfigError, DataFormatError

__all__ = [
    "PreprocessConfig",
    "FeatureEncoder",
    "preprocess",
    "numeric_token",
    "numeric_tokens",
    "stable_hash",
    "stable_hash_array",
    "assign_random_splits",
    "OOV_ID",
    "MISSING_ID",
    "FEATURE_MAP_VERSION",
]

OOV_ID = 0
MISSING_ID = 1
FIRST_VALUE_ID = 2
FEATURE_MAP_VERSION = 1

# --------------------------------------------------------------------------------------------
# hashing: splitmix64 mixing and a stable string hash (never Python's salted hash())
# --------------------------------------------------------------------------------------------
_M64 = (1 << 64) - 1
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)
_SPLIT_SALT = 0x5EED5EED5EED5EED


def _mix64(z: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser (a bijection of uint64), vectorised; wraps modulo 2^64."""
    z = z.astype(np.uint64, copy=True)
    z ^= z >> np.uint64(30)
    z *= _MIX1
    z ^= z >> np.uint64(27)
    z *= _MIX2
    z ^= z >> np.uint64(31)
    return z


def _mix64_scalar(z: int) -> int:
    z &= _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def _to_unit(z: np.ndarray) -> np.ndarray:
    """uint64 -> float64 uniform in [0, 1) from the top 53 bits."""
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def stable_hash(value: str | bytes) -> int:
    """Stable 64-bit hash of one value: splitmix64 finaliser of FNV-1a-64 over its UTF-8 bytes.

    Reference (scalar) implementation of :func:`stable_hash_array`; identical across processes,
    platforms and Python versions.
    """
    data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    h = int(_FNV_OFFSET)
    for b in data:
        h = ((h ^ b) * int(_FNV_PRIME)) & _M64
    return _mix64_scalar(h)


def stable_hash_array(values: pa.Array) -> np.ndarray:
    """:func:`stable_hash` of every string in ``values`` (uint64; nulls hash as the empty string).

    Vectorised over strings; loops over byte positions (longest string first), so the cost is
    proportional to the total number of bytes.
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_large_string(values.type) or pa.types.is_null(values.type):
        values = values.cast(pa.string())
    if not pa.types.is_string(values.type):
        values = pc.cast(values, pa.string())
    n = len(values)
    h = np.full(n, _FNV_OFFSET, dtype=np.uint64)
    if n == 0:
        return h
    bufs = values.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int32, count=n + 1, offset=values.offset * 4).astype(np.int64)
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    starts = offsets[:-1]
    lens = offsets[1:] - starts
    if values.null_count:
        lens = np.where(values.is_null().to_numpy(zero_copy_only=False), 0, lens)
    order = np.argsort(-lens, kind="stable")
    neg_sorted = -lens[order]
    maxlen = int(lens.max()) if n else 0
    for pos in range(maxlen):
        k = int(np.searchsorted(neg_sorted, -pos, side="left"))  # strings longer than pos
        sel = order[:k]
        h[sel] = (h[sel] ^ data[starts[sel] + pos].astype(np.uint64)) * _FNV_PRIME
    return _mix64(h)


def assign_random_splits(rows: np.ndarray, seed: int, ratios: Sequence[float]) -> np.ndarray:
    """Split code (0 train, 1 validation, 2 test) of each global row index, independent of chunking."""
    key = np.uint64(_mix64_scalar((int(seed) ^ _SPLIT_SALT) & _M64))
    u = _to_unit(_mix64(rows.astype(np.uint64) ^ key))
    c1 = float(ratios[0])
    c2 = float(ratios[0]) + float(ratios[1])
    return ((u >= c1).astype(np.int8) + (u >= c2).astype(np.int8)).astype(np.int8)


# --------------------------------------------------------------------------------------------
# numeric tokens
# --------------------------------------------------------------------------------------------
def numeric_token(x: int) -> int:
    """OptFS/Criteo-winner transform of one integer: ``floor(ln(x)^2)`` if ``x > 2`` else ``int(x)``."""
    x = int(x)
    return int(math.floor(math.log(x) ** 2)) if x > 2 else x


def numeric_tokens(values: np.ndarray) -> np.ndarray:
    """:func:`numeric_token` over an int64 array (vectorised, same IEEE ``log`` as the scalar form)."""
    values = np.asarray(values, dtype=np.int64)
    out = values.copy()
    big = values > 2
    if big.any():
        out[big] = np.floor(np.log(values[big].astype(np.float64)) ** 2).astype(np.int64)
    return out


# --------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------
@dataclass
class PreprocessConfig:
    """Parameters of :func:`preprocess` (all recorded in ``feature_map.json``).

    ``cache_bytes``: how much of the dictionary-encoded intermediate (about 4 bytes per row and
    field plus each chunk's distinct values) is kept in RAM between the two passes; beyond it the
    chunks are spilled to compressed Arrow IPC files inside the temporary output directory.
    """

    min_count: int = 10
    min_count_per_field: dict[str, int] = field(default_factory=dict)
    hash_buckets: dict[str, int] = field(default_factory=dict)
    split_ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
    split: Literal["random", "chronological"] = "random"
    seed: int = 2024
    fit_on: Literal["train", "all"] = "train"
    chunk_bytes: int = 64 << 20
    cache_bytes: int = 2 << 30

    @classmethod
    def from_dict(cls, params: Mapping[str, Any] | None) -> "PreprocessConfig":
        """From a plain dict (e.g. Kedro parameters); unknown keys are a ConfigError."""
        params = dict(params or {})
        known = {f.name for f in dc_fields(cls)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ConfigError(f"preprocess: unknown parameter(s) {unknown}; known: {sorted(known)}")
        if "split_ratios" in params and params["split_ratios"] is not None:
            params["split_ratios"] = tuple(params["split_ratios"])
        return cls(**params)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["split_ratios"] = list(self.split_ratios)
        return d

    def validate(self, reader: RawReader | None = None) -> None:
        def bad(msg: str) -> ConfigError:
            return ConfigError(f"preprocess: {msg}")

        if not isinstance(self.min_count, int) or isinstance(self.min_count, bool) or self.min_count < 1:
            raise bad(f"min_count must be an integer >= 1, not {self.min_count!r}")
        if self.split not in ("random", "chronological"):
            raise bad(f"split must be 'random' or 'chronological', not {self.split!r}")
        if self.fit_on not in ("train", "all"):
            raise bad(f"fit_on must be 'train' or 'all', not {self.fit_on!r}")
        try:
            ratios = [float(r) for r in self.split_ratios]
        except (TypeError, ValueError):
            raise bad(f"split_ratios must be three numbers, not {self.split_ratios!r}") from None
        if len(ratios) != 3 or any(r < 0 or not math.isfinite(r) for r in ratios) or abs(sum(ratios) - 1) > 1e-6:
            raise bad(f"split_ratios must be three non-negative numbers summing to 1, not {self.split_ratios!r}")
        if ratios[0] <= 0:
            raise bad("split_ratios: the train share must be > 0")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise bad(f"seed must be an integer, not {self.seed!r}")
        if not isinstance(self.chunk_bytes, int) or self.chunk_bytes < 4096:
            raise bad(f"chunk_bytes must be an integer >= 4096, not {self.chunk_bytes!r}")
        if not isinstance(self.cache_bytes, int) or self.cache_bytes < 0:
            raise bad(f"cache_bytes must be an integer >= 0, not {self.cache_bytes!r}")
        for name, mapping, lo in (("min_count_per_field", self.min_count_per_field, 1), ("hash_buckets", self.hash_buckets, 1)):
            if not isinstance(mapping, Mapping):
                raise bad(f"{name} must be a mapping field -> int, not {mapping!r}")
            for k, v in mapping.items():
                if not isinstance(v, int) or isinstance(v, bool) or v < lo:
                    raise bad(f"{name}[{k!r}] must be an integer >= {lo}, not {v!r}")
            if reader is not None:
                unknown = sorted(set(mapping) - set(reader.field_names))
                if unknown:
                    raise bad(f"{name} names unknown field(s) {unknown}; {reader.name} fields: {list(reader.field_names)}")
        both = sorted(set(self.min_count_per_field) & set(self.hash_buckets))
        if both:
            raise bad(f"field(s) {both} are both thresholded (min_count_per_field) and hashed (hash_buckets); pick one")
        bound = self.hash_buckets and max(self.hash_buckets.values())
        if bound and bound > 2**31 - 3:
            raise bad("hash_buckets must be < 2^31 - 2")


# --------------------------------------------------------------------------------------------
# per-field codecs and the encoder (shared by pass 2 and serving)
# --------------------------------------------------------------------------------------------
def _as_array(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    return col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col


def _indices_np(dcol: pa.DictionaryArray) -> np.ndarray:
    """Dictionary indices as numpy; null indices (if any) map to ``len(dictionary)`` (= missing)."""
    idx = dcol.indices
    if idx.null_count:
        idx = pc.fill_null(idx.cast(pa.int32()), len(dcol.dictionary))
    return idx.to_numpy(zero_copy_only=False)


def _null_positions(dictionary: pa.Array) -> np.ndarray:
    """Positions of null entries in a dictionary (``null_encoding="encode"`` puts missing values there)."""
    if not dictionary.null_count:
        return np.zeros(0, np.int64)
    return np.flatnonzero(dictionary.is_null().to_numpy(zero_copy_only=False))


def dictionary_encode_field(col: pa.Array | pa.ChunkedArray, spec: FieldSpec, *, source: str | None = None) -> pa.DictionaryArray:
    """One raw field column -> dictionary array of its tokens (numeric) or values (categorical).

    A missing value becomes a null entry of the dictionary (``null_encoding="encode"``), so the
    indices are never null.

    This is step 1 of encoding, shared by pass 1 of :func:`preprocess` and :meth:`FeatureEncoder.transform`.
    """
    col = _as_array(col)
    if pa.types.is_dictionary(col.type):
        col = col.dictionary_decode()
    t = col.type
    if spec.kind == "categorical":
        if pa.types.is_null(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
            col = col.cast(pa.string())
        elif not pa.types.is_string(t):
            raise DataFormatError(source, field=spec.name, found=f"a column of type {t}", expected="text (string) values")
        return pc.dictionary_encode(col, null_encoding="encode")
    if pa.types.is_null(t):
        col = col.cast(pa.int64())
    elif not pa.types.is_integer(t):
        raise DataFormatError(source, field=spec.name, found=f"a column of type {t}", expected="integer values (or nulls)")
    if pa.types.is_uint64(t):
        too_big = pc.greater(col, pa.scalar(2**63 - 1, pa.uint64()))
        if pc.any(too_big).as_py():
            raise DataFormatError(source, field=spec.name, found="a value above 2^63-1", expected="int64 values")
    # tokenise the distinct raw values only, then re-index the rows onto the distinct tokens
    raw = pc.dictionary_encode(col.cast(pa.int64()), null_encoding="encode")
    values = raw.dictionary
    nulls = _null_positions(values)
    v = (pc.fill_null(values, 0) if nulls.size else values).to_numpy(zero_copy_only=False)
    tokens, inverse = np.unique(numeric_tokens(v), return_inverse=True)
    inverse = inverse.astype(np.int32)
    if nulls.size:
        inverse[nulls] = len(tokens)
        dictionary = pa.array(np.append(tokens, 0), pa.int64(), mask=np.arange(len(tokens) + 1) == len(tokens))
    else:
        dictionary = pa.array(tokens, pa.int64())
    indices = inverse[raw.indices.to_numpy(zero_copy_only=False)]
    return pa.DictionaryArray.from_arrays(pa.array(indices), dictionary)


def _narrow(dcol: pa.DictionaryArray) -> pa.DictionaryArray:
    """Store the indices in int8/int16 when the dictionary is small (smaller cache between the passes)."""
    k = len(dcol.dictionary)
    for bits, limit in ((pa.int8(), 127), (pa.int16(), 32767)):
        if k < limit:
            return pa.DictionaryArray.from_arrays(dcol.indices.cast(bits), dcol.dictionary)
    return dcol


@dataclass
class _FieldCodec:
    name: str
    kind: str
    offset: int
    min_count: int | None
    hash_buckets: int | None
    values: pa.Array | None  # frequent values in local-id order (local id = 2 + i)
    counts: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.hash_buckets is None and self.kind == "numeric" and self.values is not None:
            toks = self.values.to_numpy(zero_copy_only=False).astype(np.int64)
            order = np.argsort(toks, kind="stable")
            self._sorted_tokens = toks[order]
            self._sorted_ids = (order + FIRST_VALUE_ID).astype(np.int32)

    @property
    def vocab_size(self) -> int:
        if self.hash_buckets is not None:
            return FIRST_VALUE_ID + self.hash_buckets
        return FIRST_VALUE_ID + (len(self.values) if self.values is not None else 0)

    def local_ids(self, dictionary: pa.Array) -> np.ndarray:
        """Local id of every entry of a chunk dictionary (a null entry -> missing)."""
        ids = self._value_ids(dictionary)
        nulls = _null_positions(dictionary)
        if nulls.size:
            ids[nulls] = MISSING_ID
        return ids

    def _value_ids(self, dictionary: pa.Array) -> np.ndarray:
        n = len(dictionary)
        if n == 0:
            return np.zeros(0, np.int32)
        if self.hash_buckets is not None:
            h = stable_hash_array(dictionary)
            return (h % np.uint64(self.hash_buckets)).astype(np.int64).astype(np.int32) + FIRST_VALUE_ID
        if self.values is None or len(self.values) == 0:
            return np.full(n, OOV_ID, np.int32)
        if self.kind == "numeric":
            if dictionary.null_count:
                dictionary = pc.fill_null(dictionary, 0)
            toks = dictionary.to_numpy(zero_copy_only=False).astype(np.int64)
            pos = np.searchsorted(self._sorted_tokens, toks)
            pos_c = np.minimum(pos, len(self._sorted_tokens) - 1)
            hit = (pos < len(self._sorted_tokens)) & (self._sorted_tokens[pos_c] == toks)
            return np.where(hit, self._sorted_ids[pos_c], OOV_ID).astype(np.int32)
        idx = pc.index_in(dictionary, value_set=self.values)
        return (pc.fill_null(idx, OOV_ID - FIRST_VALUE_ID).to_numpy(zero_copy_only=False) + FIRST_VALUE_ID).astype(np.int32)

    def encode(self, dcol: pa.DictionaryArray) -> np.ndarray:
        """Global ids (int32) of a dictionary-encoded column; step 2 of encoding."""
        lut = np.empty(len(dcol.dictionary) + 1, np.int32)
        lut[:-1] = self.local_ids(dcol.dictionary)
        lut[-1] = MISSING_ID
        lut += np.int32(self.offset)
        return lut[_indices_np(dcol)]


class FeatureEncoder:
    """Raw field values -> global ids, exactly as :func:`preprocess` encoded the training data.

    ``FeatureEncoder.load(out_dir)`` reads ``feature_map.json`` and ``vocabulary.parquet``;
    :meth:`transform` runs the same two steps as pass 2 (dictionary-encode the chunk, map its
    distinct values), so unseen values become OOV (local id 0) and nulls missing (local id 1).
    """

    def __init__(self, dataset: str, fields: Sequence[FieldSpec], codecs: Sequence[_FieldCodec]) -> None:
        self.dataset = dataset
        self.fields = tuple(fields)
        self.codecs = tuple(codecs)

    # ---- metadata ----
    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def offsets(self) -> np.ndarray:
        return np.array([c.offset for c in self.codecs], dtype=np.int64)

    @property
    def vocab_sizes(self) -> np.ndarray:
        return np.array([c.vocab_size for c in self.codecs], dtype=np.int64)

    @property
    def num_features(self) -> int:
        return int(self.codecs[-1].offset + self.codecs[-1].vocab_size) if self.codecs else 0

    # ---- loading ----
    @classmethod
    def load(cls, out_dir: str | Path) -> "FeatureEncoder":
        out_dir = Path(out_dir)
        fmap = load_feature_map(out_dir)
        vpath = out_dir / VOCABULARY_FILE
        if not vpath.is_file():
            raise DataFormatError(vpath, found="no such file", expected=f"{VOCABULARY_FILE} written by preprocess()")
        vocab = pq.read_table(vpath)
        expected_cols = ["field", "value", "local_id", "count"]
        if vocab.column_names != expected_cols:
            raise DataFormatError(vpath, found=f"columns {vocab.column_names}", expected=f"columns {expected_cols}")
        vocab = vocab.sort_by([("field", "ascending"), ("local_id", "ascending")])
        specs, codecs = [], []
        for f in fmap["fields"]:
            spec = FieldSpec(f["name"], f["kind"])
            hb = f.get("hash_buckets")
            values = None
            if hb is None:
                sub = vocab.filter(pc.equal(vocab.column("field"), f["name"]))
                ids = sub.column("local_id").to_numpy()
                if len(ids) != f["vocab_size"] - FIRST_VALUE_ID or (len(ids) and not np.array_equal(ids, np.arange(2, 2 + len(ids)))):
                    raise DataFormatError(
                        vpath, field=f["name"], found=f"{len(ids)} values with local ids not 2..n",
                        expected=f"vocab_size-2 = {f['vocab_size'] - 2} values with local ids 2..{f['vocab_size'] - 1}",
                    )
                values = sub.column("value").combine_chunks()
                if spec.kind == "numeric":
                    values = pc.cast(values, pa.int64())
            codec = _FieldCodec(spec.name, spec.kind, int(f["offset"]), f.get("min_count"), hb, values)
            if codec.vocab_size != int(f["vocab_size"]):
                raise DataFormatError(vpath, field=spec.name, found=f"vocab size {codec.vocab_size}", expected=f"{f['vocab_size']}")
            specs.append(spec)
            codecs.append(codec)
        return cls(fmap.get("dataset", ""), specs, codecs)

    # ---- encoding ----
    def _dictionary_encode(self, table: pa.Table, source: str | None = None) -> list[pa.DictionaryArray]:
        missing = [n for n in self.field_names if n not in table.column_names]
        if missing:
            raise DataFormatError(source, found=f"missing columns {missing}", expected=f"the raw fields {list(self.field_names)}")
        return [dictionary_encode_field(table.column(f.name), f, source=source) for f in self.fields]

    def _encode_dictionaries(self, dcols: Sequence[pa.DictionaryArray]) -> list[np.ndarray]:
        return [codec.encode(d) for codec, d in zip(self.codecs, dcols)]

    def transform(self, table: "pa.Table | Any") -> np.ndarray:
        """(N, F) int32 global ids of a table of raw fields (extra columns are ignored).

        A pandas DataFrame goes through :meth:`encode_raw_frame` (strict column checks).
        """
        if not isinstance(table, (pa.Table, pa.RecordBatch)):
            import pandas as pd

            if isinstance(table, pd.DataFrame):
                return self.encode_raw_frame(table)
            raise DataFormatError(None, found=f"a {type(table).__name__}", expected="a pyarrow Table or a pandas DataFrame")
        if isinstance(table, pa.RecordBatch):
            table = pa.Table.from_batches([table])
        cols = self._encode_dictionaries(self._dictionary_encode(table))
        out = np.empty((table.num_rows, len(cols)), dtype=np.int32)
        for j, c in enumerate(cols):
            out[:, j] = c
        return out

    def encode_raw_frame(self, df: Any) -> np.ndarray:
        """(N, F) int32 global ids of a pandas DataFrame holding exactly the reader's raw fields.

        Categorical columns: text (``str``/``object`` of str, or all missing; ``""`` is missing, as
        the raw-file readers parse an empty field); numeric columns:
        integers, integral floats with NaN for missing, or objects of int/None. Missing or
        extra columns, or values of the wrong type, raise :class:`DataFormatError` naming them.
        """
        import pandas as pd

        if not isinstance(df, pd.DataFrame):
            raise DataFormatError(None, found=f"a {type(df).__name__}", expected="a pandas DataFrame of raw fields")
        cols = [str(c) for c in df.columns]
        missing = [n for n in self.field_names if n not in cols]
        extra = [c for c in cols if c not in self.field_names]
        dup = sorted({c for c in cols if cols.count(c) > 1})
        if missing or extra or dup:
            parts = []
            if missing:
                parts.append(f"missing columns {missing}")
            if extra:
                parts.append(f"unexpected columns {extra}")
            if dup:
                parts.append(f"duplicated columns {dup}")
            raise DataFormatError(None, found="; ".join(parts), expected=f"exactly the raw fields {list(self.field_names)}")
        df = empty_text_as_missing(df)
        arrays = [_frame_column(df[f.name], f) for f in self.fields]
        return self.transform(pa.Table.from_arrays(arrays, names=list(self.field_names)))


def empty_text_as_missing(frame: "pd.DataFrame") -> "pd.DataFrame":
    """``""`` -> missing in text/object columns, as the raw-file readers parse an empty field."""
    import pandas as pd

    out = None
    for i, (_, col) in enumerate(frame.items()):
        if not (col.dtype == object or pd.api.types.is_string_dtype(col.dtype)):
            continue
        if col.dtype == object:
            empty = col.map(lambda v: isinstance(v, str) and v == "").to_numpy(dtype=bool)
        else:
            empty = col.eq("").fillna(False).to_numpy(dtype=bool)
        if empty.any():
            if out is None:
                out = frame.copy()
            out.isetitem(i, col.astype(object).where(~empty, None))
    return frame if out is None else out


def _frame_column(s: Any, spec: FieldSpec) -> pa.Array:
    """One raw column of a serving/pandas frame -> a pyarrow array of the field's raw type.

    Categorical fields take text: ``str``/``object`` columns of ``str`` with missing values
    (``None``, ``pd.NA``, and the float NaN that pandas itself uses as the missing marker of its
    ``str`` dtype and writes when such a column becomes ``object``), or a column that is entirely
    ``None``. A number is never converted to text; that includes a float NaN in a float column:
    it is a number, not a missing value, and raises :class:`DataFormatError` naming the field like
    ``12345`` does. (MLflow's JSON parsing gives a float column when a categorical field holds only
    ``NaN``/``null`` values with at least one ``NaN`` -- or a record omits the field -- while
    ``null`` alone gives an ``object`` column of ``None``, and ``null`` among strings a ``str``
    column; a ``NaN`` literal among strings cannot be told from ``null`` here, which is why the
    HTTP guard, :mod:`ttsctr.http_guard`, refuses it before parsing.)

    Numeric fields take integers, integral floats with NaN for missing, or objects of int/None.
    """
    import pandas as pd

    def wrong(found: str) -> DataFormatError:
        exp = ("text values (str) or missing (None/null)" if spec.kind == "categorical"
               else "integer values or missing (None/NaN)")
        return DataFormatError(None, field=spec.name, found=found, expected=exp)

    notna = s.notna().to_numpy()
    dtype = s.dtype
    if spec.kind == "categorical":
        if pd.api.types.is_string_dtype(dtype) or dtype == object:
            vals = s[notna]
            bad = [v for v in vals.head(100_000) if not isinstance(v, str)] if dtype == object else []
            if dtype == object and len(vals) and not bad:
                bad = [v for v in vals if not isinstance(v, str)][:1]
            if bad:
                raise wrong(f"a value of type {type(bad[0]).__name__} ({bad[0]!r})")
            return pa.array(s.astype(object).where(notna, None).tolist(), pa.string())
        if isinstance(dtype, np.dtype) and dtype.kind == "f" and len(s) and not notna.any():
            raise wrong(f"the float NaN (a number, not a missing value) in every row (a column of dtype {dtype}); "
                        "send None/null for a missing value -- JSON has no NaN, and a record that omits the "
                        "field reads as NaN too")
        if not notna.any():
            return pa.nulls(len(s), pa.string())
        raise wrong(f"a column of dtype {dtype}")
    # numeric
    if pd.api.types.is_bool_dtype(dtype):
        raise wrong(f"a column of dtype {dtype}")
    if pd.api.types.is_integer_dtype(dtype):
        return pa.array(s, from_pandas=True).cast(pa.int64())
    if pd.api.types.is_float_dtype(dtype):
        v = s.to_numpy(dtype=np.float64, na_value=np.nan)
        fin = v[~np.isnan(v)]
        if fin.size and (not np.all(np.isfinite(fin)) or np.any(fin != np.floor(fin)) or np.any(np.abs(fin) > 2**53)):
            i = int(np.flatnonzero(~np.isnan(v) & ((v != np.floor(v)) | ~np.isfinite(v) | (np.abs(v) > 2**53)))[0])
            raise wrong(f"the non-integer value {float(v[i])!r} at row {i}")
        return pa.array(np.nan_to_num(v, nan=0.0).astype(np.int64), mask=np.isnan(v))
    if dtype == object or pd.api.types.is_string_dtype(dtype):
        out = []
        for i, v in enumerate(s.tolist()):
            if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
                out.append(None)
            elif isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
                raise wrong(f"the value {v!r} ({type(v).__name__}) at row {i}")
            else:
                out.append(int(v))
        try:
            return pa.array(out, pa.int64())
        except OverflowError as exc:
            raise wrong(f"an integer outside int64 ({exc})") from None
    if not notna.any():
        return pa.nulls(len(s), pa.int64())
    raise wrong(f"a column of dtype {dtype}")


# --------------------------------------------------------------------------------------------
# value counting across chunks
# --------------------------------------------------------------------------------------------
class _Counter:
    """Value -> count over many (distinct values, counts) parts, merged lazily with group_by."""

    def __init__(self, value_type: pa.DataType) -> None:
        self.value_type = value_type
        self.parts: list[tuple[pa.Array, np.ndarray]] = []
        self.pending = 0
        self.merged_len = 0
        self.nulls = 0
        self.rows = 0

    def add(self, values: pa.Array, counts: np.ndarray) -> None:
        keep = counts > 0
        if not keep.all():
            values = values.filter(pa.array(keep))
            counts = counts[keep]
        if len(counts):
            self.parts.append((values, counts.astype(np.int64)))
            self.pending += len(counts)
        if self.pending > max(2 * self.merged_len, 1 << 20):
            self._merge()

    def _merge(self) -> None:
        if len(self.parts) <= 1:
            self.merged_len = sum(len(c) for _, c in self.parts)
            self.pending = 0
            return
        t = pa.table(
            {
                "v": pa.concat_arrays([v for v, _ in self.parts]),
                "c": pa.array(np.concatenate([c for _, c in self.parts])),
            }
        )
        g = t.group_by("v", use_threads=False).aggregate([("c", "sum")])
        v, c = g.column("v").combine_chunks(), g.column("c_sum").to_numpy()
        self.parts = [(v, c)]
        self.merged_len = len(c)
        self.pending = 0

    def result(self) -> tuple[pa.Array, np.ndarray]:
        self._merge()
        if not self.parts:
            return pa.array([], self.value_type), np.zeros(0, np.int64)
        v, c = self.parts[0]
        return v, c


def _vocabulary(counter: _Counter, min_count: int, kind: str) -> tuple[pa.Array, np.ndarray, int, int]:
    """(values in local-id order, their counts, distinct values seen, fit rows that fall to OOV)."""
    values, counts = counter.result()
    keep = counts >= min_count
    oov_rows = int(counts[~keep].sum())
    t = pa.table({"v": values, "c": pa.array(counts)}).filter(pa.array(keep))
    t = t.sort_by([("c", "descending"), ("v", "ascending")])
    vals = t.column("v").combine_chunks()
    if kind == "numeric":
        vals = vals.cast(pa.int64())
    return vals, t.column("c").to_numpy(), len(counts), oov_rows


# --------------------------------------------------------------------------------------------
# the chunk cache between the passes
# --------------------------------------------------------------------------------------------
class _ChunkCache:
    def __init__(self, spill_dir: Path, budget: int) -> None:
        self.spill_dir = spill_dir
        self.budget = budget
        self.in_memory = 0
        self.items: list[tuple[int, pa.Table | Path]] = []  # (row offset, table or spill file)
        self.spilled = 0

    def add(self, offset: int, table: pa.Table) -> None:
        size = table.nbytes
        if self.in_memory + size <= self.budget:
            self.items.append((offset, table))
            self.in_memory += size
            return
        self.spill_dir.mkdir(exist_ok=True)
        path = self.spill_dir / f"chunk-{len(self.items):06d}.arrow"
        opts = ipc.IpcWriteOptions(compression="lz4")
        with pa.OSFile(str(path), "wb") as sink, ipc.new_file(sink, table.schema, options=opts) as w:
            w.write_table(table)
        self.items.append((offset, path))
        self.spilled += 1

    def __iter__(self):
        for offset, item in self.items:
            if isinstance(item, Path):
                with pa.memory_map(str(item)) as src:
                    table = ipc.open_file(src).read_all()
                yield offset, table
            else:
                yield offset, item

    def drop(self) -> None:
        self.items.clear()
        if self.spill_dir.exists():
            for p in self.spill_dir.iterdir():
                p.unlink()
            self.spill_dir.rmdir()


# --------------------------------------------------------------------------------------------
# preprocess
# --------------------------------------------------------------------------------------------
def _file_info(path: Path) -> dict[str, Any]:
    st = path.stat()
    return {
        "path": str(path.resolve()),
        "size": st.st_size,
        "mtime": st.st_mtime,
        "mtime_iso": datetime.fromtimestamp(st.st_mtime, timezone.utc).isoformat(),
    }


def _threads() -> int:
    return max(1, min(8, pa.cpu_count()))


def _split_codes_fn(config: PreprocessConfig, n_total: int | None, order_codes: np.ndarray | None):
    ratios = [float(r) for r in config.split_ratios]
    if config.split == "random":
        return lambda off, n: assign_random_splits(np.arange(off, off + n, dtype=np.uint64), config.seed, ratios)
    if order_codes is not None:
        return lambda off, n: order_codes[off : off + n]
    b1 = int(round(n_total * ratios[0]))
    b2 = int(round(n_total * (ratios[0] + ratios[1])))

    def by_position(off: int, n: int) -> np.ndarray:
        idx = np.arange(off, off + n, dtype=np.int64)
        return ((idx >= b1).astype(np.int8) + (idx >= b2).astype(np.int8)).astype(np.int8)

    return by_position


def preprocess(
    reader: RawReader | str,
    raw_path: str | Path | None,
    out_dir: str | Path,
    config: PreprocessConfig | Mapping[str, Any] | None = None,
    progress: bool = True,
) -> dict:
    """Encode ``raw_path`` with ``reader`` into ``out_dir`` and return the feature map dict.

    Writes ``train/validation/test.parquet`` (``label`` int8, one int32 column of global ids per
    field, then the reader's extra columns), ``vocabulary.parquet`` (field, value, local_id,
    count) and ``feature_map.json``, all inside a temporary sibling directory renamed onto
    ``out_dir`` at the end: on any error ``out_dir`` is absent or the previous version.
    """
    t_start = time.perf_counter()
    if isinstance(reader, str):
        reader = get_reader(reader)
    if config is None:
        config = PreprocessConfig()
    elif isinstance(config, Mapping):
        config = PreprocessConfig.from_dict(config)
    config.validate(reader)
    if raw_path is None or str(raw_path) == "":
        hint = " (write one with ttsctr.data.synthetic.generate_synthetic first)" if reader.name == "synthetic" else ""
        raise ConfigError(f"dataset {reader.name!r} needs raw_path, the raw file to preprocess{hint}")
    raw_path = Path(raw_path)
    try:
        missing = not raw_path.exists()
    except PermissionError:  # a folder above is not searchable: the reader names the file and the permission
        missing = False
    if missing:
        raise DataFormatError(raw_path, found="no such file", expected=f"the raw {reader.name} file to preprocess")
    out_dir = Path(out_dir)

    fields = reader.fields
    field_names = [f.name for f in fields]
    min_counts = {f.name: int(config.min_count_per_field.get(f.name, config.min_count)) for f in fields}
    hashed = {f.name: int(config.hash_buckets[f.name]) for f in fields if f.name in config.hash_buckets}
    extra_names = list(reader.extra_columns)
    by_timestamp = config.split == "chronological" and "timestamp" in extra_names
    count_in_pass1 = config.split == "random" or config.fit_on == "all"

    with atomic_dir(out_dir) as tmp, ThreadPoolExecutor(max_workers=_threads(), thread_name_prefix="ttsctr-encode") as workers:
        # per-field work runs in threads: pyarrow compute and numpy indexing release the GIL
        cache = _ChunkCache(tmp / "_spill", config.cache_bytes)
        counters = {f.name: _Counter(pa.int64() if f.kind == "numeric" else pa.string()) for f in fields if f.name not in hashed}
        timestamps: list[np.ndarray] = []
        codes_fn = _split_codes_fn(config, None, None) if config.split == "random" else None
        schema = reader.schema

        def count_chunk(offset: int, table: pa.Table) -> None:
            n = table.num_rows
            sel = None
            if config.fit_on == "train":
                sel = np.flatnonzero(codes_fn(offset, n) == 0)
            for f in fields:
                if f.name in hashed:
                    continue
                dcol = _as_array(table.column(f.name))
                idx = _indices_np(dcol)
                if sel is not None:
                    idx = idx[sel]
                k = len(dcol.dictionary)
                bc = np.bincount(idx, minlength=k + 1)
                nulls = np.r_[_null_positions(dcol.dictionary), k]
                ctr = counters[f.name]
                ctr.nulls += int(bc[nulls].sum())
                bc[nulls] = 0  # the null entry is not a value: dropped with the zero counts
                ctr.add(dcol.dictionary, bc[:k])
                ctr.rows += len(idx)

        # ---- pass 1: parse, dictionary-encode, count ----
        n_rows = 0
        with progress_bar(f"{reader.name}: read + count", enabled=progress) as bar:
            for chunk in reader.iter_chunks(raw_path, config.chunk_bytes):
                if chunk.schema != schema:
                    raise DataFormatError(raw_path, found=f"reader produced schema {chunk.schema}", expected=str(schema))
                n = chunk.num_rows
                if n == 0:
                    continue
                dcols = list(
                    workers.map(lambda f: _narrow(dictionary_encode_field(chunk.column(f.name), f, source=str(raw_path))), fields)
                )
                enc = pa.Table.from_arrays(
                    [_as_array(chunk.column(LABEL_COLUMN)), *dcols, *[_as_array(chunk.column(e)) for e in extra_names]],
                    names=[LABEL_COLUMN, *field_names, *extra_names],
                )
                if count_in_pass1:
                    count_chunk(n_rows, enc)
                if by_timestamp:
                    ts_col = chunk.column("timestamp")
                    if ts_col.null_count:
                        raise DataFormatError(
                            raw_path, field="timestamp", found=f"{ts_col.null_count} missing timestamps after row {n_rows}",
                            expected="a timestamp on every row (split='chronological')",
                        )
                    timestamps.append(ts_col.to_numpy())
                cache.add(n_rows, enc)
                n_rows += n
                bar.update(n)
        if n_rows == 0:
            raise DataFormatError(raw_path, found="no data rows", expected=f"a {reader.name} file with at least one row")

        # ---- split assignment that needs the row count ----
        if config.split == "chronological":
            order_codes = None
            if by_timestamp:
                ts = np.concatenate(timestamps)
                order = np.argsort(ts, kind="stable")
                pos_codes = _split_codes_fn(config, n_rows, None)(0, n_rows)
                order_codes = np.empty(n_rows, np.int8)
                order_codes[order] = pos_codes
                del ts, order, pos_codes
            codes_fn = _split_codes_fn(config, n_rows, order_codes)
            if not count_in_pass1:
                with progress_bar(f"{reader.name}: count (chronological)", total=n_rows, enabled=progress) as bar:
                    for off, enc in cache:
                        count_chunk(off, enc)
                        bar.update(enc.num_rows)

        # ---- vocabularies and offsets ----
        codecs: list[_FieldCodec] = []
        field_meta: list[dict[str, Any]] = []
        vocab_parts: list[pa.Table] = []
        offset = 0
        for j, f in enumerate(fields):
            if f.name in hashed:
                codec = _FieldCodec(f.name, f.kind, offset, None, hashed[f.name], None)
                stats: dict[str, Any] = {}
            else:
                ctr = counters[f.name]
                vals, cnts, distinct, oov_rows = _vocabulary(ctr, min_counts[f.name], f.kind)
                codec = _FieldCodec(f.name, f.kind, offset, min_counts[f.name], None, vals, cnts)
                stats = {
                    "fit_rows": ctr.rows,
                    "fit_missing_rows": ctr.nulls,
                    "fit_oov_rows": oov_rows,
                    "fit_distinct_values": distinct,
                }
                vocab_parts.append(
                    pa.table(
                        {
                            "field": pa.array([f.name] * len(vals), pa.string()),
                            "value": pc.cast(vals, pa.string()),
                            "local_id": pa.array(np.arange(FIRST_VALUE_ID, FIRST_VALUE_ID + len(vals), dtype=np.int32)),
                            "count": pa.array(cnts.astype(np.int64)),
                        }
                    )
                )
            codecs.append(codec)
            field_meta.append(
                {
                    "name": f.name,
                    "kind": f.kind,
                    "index": j,
                    "offset": offset,
                    "vocab_size": codec.vocab_size,
                    "oov_id": OOV_ID,
                    "missing_id": MISSING_ID,
                    "oov_global_id": offset + OOV_ID,
                    "missing_global_id": offset + MISSING_ID,
                    "min_count": codec.min_count,
                    "hash_buckets": codec.hash_buckets,
                    **stats,
                }
            )
            offset += codec.vocab_size
        if offset >= 2**31:
            raise ConfigError(f"preprocess: {offset} features do not fit int32 ids; raise min_count or hash the largest fields")
        encoder = FeatureEncoder(reader.name, fields, codecs)
        del counters

        # ---- pass 2: encode and write ----
        out_schema = pa.schema(
            [pa.field(LABEL_COLUMN, pa.int8(), nullable=False)]
            + [pa.field(n, pa.int32(), nullable=False) for n in field_names]
            + [schema.field(e) for e in extra_names]
        )
        writers = {s: pq.ParquetWriter(str(tmp / f"{s}.parquet"), out_schema, compression="snappy", write_statistics=False) for s in SPLITS}
        split_rows = dict.fromkeys(SPLITS, 0)
        split_pos = dict.fromkeys(SPLITS, 0)

        def write_tables(tables: list[tuple[str, pa.Table]]) -> None:
            for s, t in tables:
                writers[s].write_table(t)

        # parquet encoding of chunk i runs in a worker thread (it releases the GIL) while chunk i+1 is encoded
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ttsctr-parquet")
        pending = None
        try:
            with progress_bar(f"{reader.name}: encode + write", total=n_rows, enabled=progress) as bar:
                for off, enc in cache:
                    n = enc.num_rows
                    dcols = [_as_array(enc.column(nm)) for nm in field_names]
                    ids = list(workers.map(lambda cd: cd[0].encode(cd[1]), zip(encoder.codecs, dcols)))
                    label = _as_array(enc.column(LABEL_COLUMN)).to_numpy(zero_copy_only=False)
                    extras = [_as_array(enc.column(e)) for e in extra_names]
                    codes = codes_fn(off, n)
                    tables = []
                    for k, s in enumerate(SPLITS):
                        rows = np.flatnonzero(codes == k)
                        if rows.size == 0:
                            continue
                        take = pa.array(rows)
                        cols = [pa.array(label[rows])] + [pa.array(c[rows]) for c in ids] + [e.take(take) for e in extras]
                        tables.append((s, pa.Table.from_arrays(cols, schema=out_schema)))
                        split_rows[s] += int(rows.size)
                        split_pos[s] += int(label[rows].sum(dtype=np.int64))
                    if pending is not None:
                        pending.result()
                    pending = pool.submit(write_tables, tables)
                    bar.update(n)
            if pending is not None:
                pending.result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            for w in writers.values():
                w.close()
        cache.drop()

        if vocab_parts:
            vocab = pa.concat_tables(vocab_parts)
        else:
            vocab = pa.table({"field": pa.array([], pa.string()), "value": pa.array([], pa.string()),
                              "local_id": pa.array([], pa.int32()), "count": pa.array([], pa.int64())})  # fmt: skip
        pq.write_table(vocab, str(tmp / VOCABULARY_FILE))

        from ttsctr import __version__

        files = [p for p in reader.source_files(raw_path) if p.exists()]
        fmap = {
            "format_version": FEATURE_MAP_VERSION,
            "dataset": reader.name,
            "reader_options": reader.options,
            "label": LABEL_COLUMN,
            "fields": field_meta,
            "num_fields": len(fields),
            "num_features": offset,
            "extra_columns": extra_names,
            "id_dtype": "int32",
            "oov_id": OOV_ID,
            "missing_id": MISSING_ID,
            "numeric_transform": "token = floor(ln(x)^2) if x > 2 else int(x); missing = its own id",
            "hash_function": "splitmix64_finalizer(fnv1a_64(utf8 bytes of the value or decimal token)) % buckets + 2",
            "value_order": "local ids 2.. by descending count, ties by ascending value",
            "total_rows": n_rows,
            "total_positives": sum(split_pos.values()),
            "splits": {
                s: {
                    "file": f"{s}.parquet",
                    "rows": split_rows[s],
                    "positives": split_pos[s],
                    "positive_rate": (split_pos[s] / split_rows[s]) if split_rows[s] else None,
                }
                for s in SPLITS
            },
            "split_method": (
                "random: splitmix64(seed, row index)" if config.split == "random"
                else ("chronological by timestamp" if by_timestamp else "chronological by file order")
            ),  # fmt: skip
            "preprocess": config.to_dict(),
            "raw": {**_file_info(raw_path), "files": [_file_info(p) for p in files]},
            "created_at": datetime.now(timezone.utc).isoformat(),
            "elapsed_s": round(time.perf_counter() - t_start, 3),
            "ttsctr_version": __version__,
        }
        with open(tmp / FEATURE_MAP_FILE, "w", encoding="utf-8") as fh:
            json.dump(fmap, fh, indent=2, ensure_ascii=False)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
    return fmap
