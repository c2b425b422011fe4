"""Behaviour-sequence datasets on disk (EST), and encoding a new event with its history.

A published sequence folder (``data/05_model_input/<dataset>/``, written by the
data_processing pipeline for the formats in :data:`SEQUENCE_FORMATS`) holds the same files as a
tabular one plus the frozen content and the attribute tables:

* ``{train,validation,test}.parquet``: ``label`` (int8), the non-behavioural fields N (int32
  global ids, as every encoded split), ``user_seq`` and ``cand_seq`` as fixed-width
  ``fixed_size_list<int32>[L]`` / ``[k]`` columns of global slot ids (left-padded; the padding id
  of a slot is its offset, so the mask is ``id != offset``), then the extra columns ``user``
  (raw user id, the group of the group AUC), ``timestamp``, ``user_seq_len``, ``cand_seq_len``
  (the masks' lengths) and, for the synthetic log, ``true_prob``;
* ``feature_map.json``: ``fields`` lists N and then every slot (``user_seq_0`` ...), so that
  :class:`~ttsctr.features.FeatureSpec` and the tabular backbones read the slots as fields; the
  ``sequence`` block says where the list columns, lengths and content are;
* ``content.npy``: ``(n_items + 1, d_c)`` float32 content vectors (row 0 padding), never trained;
* ``users.parquet`` / ``items.parquet``: the field codes of every known user / item, what
  :class:`SequenceEventEncoder` looks up to encode a served event;
* ``vocabulary.parquet``: per N field, its codes and their training counts.

Plain library code (no Kedro): the pipeline's nodes call :func:`build_sequence_data` and
:func:`write_sequence_model_input`; readers of the published folder use :func:`load_feature_spec`
(via :func:`ttsctr.data.io.load_splits`) and :class:`SequenceEventEncoder`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ttsctr.data.io import FEATURE_MAP_FILE, LABEL_COLUMN, SPLITS, VOCABULARY_FILE, atomic_dir, is_sequence_map
from ttsctr.data.version import CONTENT_FILE, ITEMS_FILE, USERS_FILE
from ttsctr.data.sequences import (
    SequenceConfig,
    SequenceData,
    _candidate_block,
    build_movielens_sequences,
    read_movielens,
    sequence_inputs,
    synthetic_sequences,
    validate_sequences,
)
from ttsctr.errors import ConfigError, DataFormatError, TTSCTRError

__all__ = [
    "SEQUENCE_FORMATS",
    "CONTENT_FILE",
    "USERS_FILE",
    "ITEMS_FILE",
    "build_sequence_data",
    "write_sequence_model_input",
    "is_sequence_map",  # from ttsctr.data.io
    "load_feature_spec",
    "expand_list_columns",
    "sequence_validation_inputs",
    "SequenceEventEncoder",
    "sequence_split_events",
    "example_events",
]

SEQUENCE_FORMATS: tuple[str, ...] = ("movielens_seq", "synthetic_seq")
SEQUENCE_MAP_VERSION = 1
_SYNTHETIC_ARGS = ("n_users", "n_items", "events_per_user", "seed", "n_clusters", "signal", "drift", "recent")


# --------------------------------------------------------------------------------------------
# building
# --------------------------------------------------------------------------------------------
def build_sequence_data(fmt: str, raw_files: Sequence[str | Path], sequence: Mapping[str, Any] | None,
                        generate: Mapping[str, Any] | None = None) -> SequenceData:
    """The checked sequence samples of ``fmt``: ``movielens_seq`` reads the folder of
    ``raw_files[0]`` (``u.data``, ``u.item``, ``u.user``); ``synthetic_seq`` generates them from
    ``generate`` (keys of :func:`ttsctr.data.sequences.synthetic_sequences`)."""
    config = SequenceConfig.from_dict(dict(sequence or {}))
    if fmt == "movielens_seq":
        if not raw_files:
            raise ConfigError("movielens_seq needs raw_path: the MovieLens-100K u.data (u.item and u.user beside it)")
        ratings, items, users = read_movielens(Path(raw_files[0]).parent)
        data = build_movielens_sequences(ratings, items, users, config)
    elif fmt == "synthetic_seq":
        generate = dict(generate or {})
        unknown = sorted(set(generate) - set(_SYNTHETIC_ARGS))
        if unknown:
            raise ConfigError(f"synthetic_seq generate: unknown key(s) {unknown}; known: {list(_SYNTHETIC_ARGS)}")
        data = synthetic_sequences(config=config, **generate)
    else:
        raise ConfigError(f"unknown sequence format {fmt!r}; expected one of {list(SEQUENCE_FORMATS)}")
    validate_sequences(data)
    return data


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------
def _split_table(data: SequenceData, spec: Any, x: np.ndarray, y: np.ndarray, rows: np.ndarray) -> pa.Table:
    f, length = spec.num_context_fields, spec.user_len
    columns: dict[str, pa.Array] = {LABEL_COLUMN: pa.array(y.astype(np.int8))}
    for j, name in enumerate(spec.field_names[:f]):
        columns[name] = pa.array(x[:, j].astype(np.int32))
    for name, block in (("user_seq", x[:, f:f + length]), ("cand_seq", x[:, f + length:])):
        width = block.shape[1]
        values = pa.array(np.ascontiguousarray(block, dtype=np.int32).reshape(-1))
        columns[name] = pa.FixedSizeListArray.from_arrays(values, width)
    columns["user"] = pa.array(data.user[rows].astype(np.int32))
    columns["timestamp"] = pa.array(data.timestamp[rows].astype(np.int64))
    columns["user_seq_len"] = pa.array(data.user_seq_len[rows].astype(np.int32))
    columns["cand_seq_len"] = pa.array(data.cand_seq_len[rows].astype(np.int32))
    if data.true_prob is not None:
        columns["true_prob"] = pa.array(data.true_prob[rows].astype(np.float64))
    return pa.table(columns)


def write_sequence_model_input(data: SequenceData, out_dir: str | Path, *, dataset: str, fmt: str,
                               provenance: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Write ``data`` as a published-folder layout into ``out_dir`` (atomically: a temporary
    sibling renamed into place) and return its feature map."""
    started = time.perf_counter()
    if data.user_table is None or data.item_table is None:
        raise ConfigError("write_sequence_model_input: the sequences carry no user/item attribute tables "
                          "(build them with build_movielens_sequences or synthetic_sequences)")
    spec, splits = sequence_inputs(data)
    f = spec.num_context_fields
    offsets = spec.offsets
    field_meta = []
    for j, (name, size) in enumerate(zip(spec.field_names, spec.vocab_sizes)):
        kind = "categorical" if j < f else "sequence_slot"
        entry = {"name": name, "kind": kind, "index": j, "offset": int(offsets[j]), "vocab_size": int(size)}
        if kind == "sequence_slot":
            column = "user_seq" if j < f + spec.user_len else "cand_seq"
            entry.update(column=column, position=j - f - (0 if column == "user_seq" else spec.user_len),
                         padding_global_id=int(offsets[j]))
        field_meta.append(entry)
    extras = ["user", "timestamp", "user_seq_len", "cand_seq_len"] + (["true_prob"] if data.true_prob is not None else [])
    split_info = {}
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        for code, split in enumerate(SPLITS):
            rows = np.flatnonzero(data.split == code)
            x, y = splits[split]
            pq.write_table(_split_table(data, spec, x, y, rows), str(tmp / f"{split}.parquet"))
            split_info[split] = {"file": f"{split}.parquet", "rows": int(rows.size), "positives": int(y.sum()),
                                 "positive_rate": float(y.mean()) if rows.size else None,
                                 "users": int(np.unique(data.user[rows]).size)}
        np.save(tmp / CONTENT_FILE, np.ascontiguousarray(spec.content, dtype=np.float32))
        data.user_table.reset_index().to_parquet(tmp / USERS_FILE, index=False)
        data.item_table.reset_index().to_parquet(tmp / ITEMS_FILE, index=False)
        train = data.split == 0
        vocab = []
        for name in spec.field_names[:f]:
            codes, counts = np.unique(data.fields[name][train], return_counts=True)
            size = int(data.field_sizes[name])
            full = np.zeros(size, dtype=np.int64)
            full[codes] = counts
            vocab.append(pd.DataFrame({"field": name, "value": [str(c) for c in range(size)],
                                       "local_id": np.arange(size, dtype=np.int32), "count": full}))
        pd.concat(vocab, ignore_index=True).to_parquet(tmp / VOCABULARY_FILE, index=False)
        config = data.config
        fmap = {
            "format_version": SEQUENCE_MAP_VERSION,
            "dataset": dataset,
            "format": fmt,
            "label": LABEL_COLUMN,
            "label_rule": f"rating >= {config.label_threshold}" if fmt == "movielens_seq" else "Bernoulli(true_prob)",
            "fields": field_meta,
            "num_fields": len(field_meta),
            "num_features": int(spec.num_features),
            "extra_columns": extras,
            "id_dtype": "int32",
            "total_rows": int(len(data)),
            "total_positives": int(data.label.sum()),
            "splits": split_info,
            "split_method": "chronological by (timestamp, user, item): train = earliest events",
            "sequence": {
                "context_fields": list(spec.field_names[:f]),
                "num_context_fields": f,
                "list_columns": {"user_seq": spec.user_len, "cand_seq": spec.candidate_len},
                "length_columns": {"user_seq": "user_seq_len", "cand_seq": "cand_seq_len"},
                "user_len": spec.user_len,
                "candidate_len": spec.candidate_len,
                "n_items": spec.n_items,
                "candidate_field": spec.candidate_field,
                "content_dim": int(spec.content.shape[1]),
                "user_fields": list(data.user_table.columns),
                "item_fields": list(data.item_table.columns),
                "truncated_events": int(data.truncated),
                "config": {"user_len": config.user_len, "candidate_len": config.candidate_len,
                           "label_threshold": config.label_threshold,
                           "split_fractions": list(config.split_fractions), "content_dim": config.content_dim,
                           "behaviours": config.behaviours},
            },
            **({"raw": dict(provenance)} if provenance else {}),
            "created_at": pd.Timestamp.now(tz="UTC").isoformat(),
            "elapsed_s": round(time.perf_counter() - started, 3),
        }
        (tmp / FEATURE_MAP_FILE).write_text(json.dumps(fmap, indent=1))
    return fmap


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------
def load_content(folder: str | Path, fmap: Mapping[str, Any]) -> np.ndarray:
    seq = fmap["sequence"]
    path = Path(folder) / CONTENT_FILE
    try:
        content = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataFormatError(path, found=f"no readable content array ({exc})",
                              expected=f"the ({int(seq['n_items']) + 1}, d_c) float32 content vectors") from exc
    if content.ndim != 2 or content.shape[0] != int(seq["n_items"]) + 1:
        raise DataFormatError(path, found=f"shape {content.shape}",
                              expected=f"({int(seq['n_items']) + 1}, d_c): one row per item and the padding row")
    return content.astype(np.float32, copy=False)


def load_feature_spec(folder: str | Path, fmap: Mapping[str, Any] | None = None) -> Any:
    """The feature spec of a published folder: a :class:`~ttsctr.features.SequenceFeatureSpec`
    (with its content vectors) for a sequence folder, else a plain ``FeatureSpec``."""
    from ttsctr.data.io import load_feature_map
    from ttsctr.features import FeatureSpec, SequenceFeatureSpec

    fmap = fmap if fmap is not None else load_feature_map(folder)
    plain = FeatureSpec.from_feature_map(fmap)
    if not is_sequence_map(fmap):
        return plain
    seq = fmap["sequence"]
    try:
        return SequenceFeatureSpec(plain.field_names, plain.vocab_sizes, num_context_fields=int(seq["num_context_fields"]),
                                   user_len=int(seq["user_len"]), candidate_len=int(seq["candidate_len"]),
                                   content=load_content(folder, fmap), candidate_field=str(seq.get("candidate_field", "item")))
    except ConfigError as exc:
        raise DataFormatError(Path(folder) / FEATURE_MAP_FILE, found=str(exc), expected="a consistent sequence block") from exc


def expand_list_columns(table: pa.Table, fmap: Mapping[str, Any], source: str | Path) -> tuple[list[str], np.ndarray]:
    """Names and ``(n, L + k)`` int32 ids of the slot columns held by ``table``'s list columns."""
    seq = fmap["sequence"]
    names, blocks = [], []
    n = table.num_rows
    for column, width in seq["list_columns"].items():
        width = int(width)
        if column not in table.column_names:
            raise DataFormatError(source, field=column, found="no such column",
                                  expected=f"a fixed_size_list<int32>[{width}] column")
        col = table.column(column)
        expected_type = pa.list_(pa.int32(), width)
        if col.type != expected_type or col.null_count:
            raise DataFormatError(source, field=column, found=f"type {col.type} with {col.null_count} nulls",
                                  expected=f"{expected_type} without nulls")
        flat = col.combine_chunks().flatten() if n else pa.array([], pa.int32())
        if flat.null_count:
            raise DataFormatError(source, field=column, found=f"{flat.null_count} null ids", expected="int32 ids, no nulls")
        blocks.append(flat.to_numpy(zero_copy_only=False).reshape(n, width))
        names += [f"{column}_{j}" for j in range(width)]
    return names, np.concatenate(blocks, axis=1) if blocks else np.zeros((n, 0), np.int32)


def sequence_validation_inputs(table: pa.Table, fmap: Mapping[str, Any], source: str | Path) -> tuple[
        pd.DataFrame, dict[str, tuple[np.ndarray, np.ndarray]], dict[str, np.ndarray]]:
    """What the GX checks of an encoded sequence split read: the split as a frame with each list
    column spread into one column per slot (``label``, N, slots, extras: the id-range checks of
    :func:`ttsctr.validation.validate_encoded_split`), and per sequence its slot ids with their
    padding ids and its stored lengths (:func:`ttsctr.validation.validate_sequence_padding`)."""
    seq = fmap["sequence"]
    names, ids = expand_list_columns(table, fmap, source)
    slot_meta = {f["name"]: f for f in fmap["fields"][len(seq["context_fields"]):]}
    slots, start = {}, 0
    for column, width in seq["list_columns"].items():
        width = int(width)
        padding = np.array([slot_meta[n]["padding_global_id"] for n in names[start:start + width]])
        slots[column] = (ids[:, start:start + width], padding)
        start += width
    lengths = {column: table.column(length).to_numpy() for column, length in seq["length_columns"].items()}
    frame = table.drop_columns(list(seq["list_columns"])).to_pandas()
    head = [c for c in frame.columns if c == LABEL_COLUMN or c in seq["context_fields"]]
    rest = [c for c in frame.columns if c not in head]
    frame = pd.concat([frame[head], pd.DataFrame(ids, columns=names, index=frame.index), frame[rest]], axis=1)
    return frame, slots, lengths


# --------------------------------------------------------------------------------------------
# the events behind published rows (input examples, serving checks)
# --------------------------------------------------------------------------------------------
def sequence_split_events(model_input_dir: str | Path, split: str = "test", rows: Sequence[int] | None = None,
                          *, timestamps: bool = True, fmap: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """The events behind rows of a behaviour-sequence split, as a served request holds them.

    For each row (all of ``split``, or the 0-based positions ``rows``, in that order): ``user_id``
    (the ``user`` column), ``item_id`` (the candidate field's local code, mapped to its id through
    ``items.parquet``), ``history`` (every event of that user in the three published splits
    strictly before the row's timestamp — only those with label 1 when the dataset's behaviours are
    ``liked`` —, in (timestamp, item) order: what B_u and B_c were built from) and, with ``timestamps``, ``timestamp`` and ``history_timestamps``. Encoding them with
    :class:`~ttsctr.data.sequence_store.SequenceEventEncoder` gives the row's stored ids.
    """
    from ttsctr.data.io import load_feature_map

    folder = Path(model_input_dir)
    fmap = fmap if fmap is not None else load_feature_map(folder)
    if not is_sequence_map(fmap):
        raise TTSCTRError(f"{folder}: not a behaviour-sequence dataset (its feature map has no 'sequence' block)")
    if split not in SPLITS:
        raise TTSCTRError(f"unknown split {split!r}; expected one of {list(SPLITS)}")
    seq = fmap["sequence"]
    candidate = str(seq.get("candidate_field", "item"))
    offset = next(int(f["offset"]) for f in fmap["fields"] if f["name"] == candidate)
    items = pd.read_parquet(folder / ITEMS_FILE)
    codes = items[candidate].to_numpy(np.int64)
    if np.unique(codes).size != codes.size:
        raise TTSCTRError(f"{folder}: the {candidate!r} codes of the items table are not unique")
    item_of = np.full(int(codes.max(initial=0)) + 1, -1, dtype=np.int64)
    item_of[codes] = items["item_id"].to_numpy(np.int64)

    def events(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        table = pq.read_table(folder / f"{name}.parquet", columns=["user", "timestamp", candidate, "label"])
        local = table.column(candidate).to_numpy().astype(np.int64) - offset
        if local.size and (local.min() < 0 or local.max() >= item_of.size or (item_of[local] < 0).any()):
            raise TTSCTRError(f"{folder / f'{name}.parquet'}: candidate ids without an item in the items table")
        return (table.column("user").to_numpy().astype(np.int64), table.column("timestamp").to_numpy().astype(np.int64),
                item_of[local], table.column("label").to_numpy().astype(np.int64))

    parts = {name: events(name) for name in SPLITS}
    user, ts, item, label = (np.concatenate([parts[name][i] for name in SPLITS]) for i in range(4))
    if (seq.get("config") or {}).get("behaviours", "all") == "liked":  # only positive feedback is history
        user, ts, item = user[label == 1], ts[label == 1], item[label == 1]
    order = np.lexsort((item, ts, user))  # user-major, then (timestamp, item): the builder's history order
    user, ts, item = user[order], ts[order], item[order]
    q_user, q_ts, q_item, _ = parts[split]
    picked = np.arange(q_user.size) if rows is None else np.asarray(rows, dtype=np.int64).reshape(-1)
    if picked.size and (picked.min() < 0 or picked.max() >= q_user.size):
        raise TTSCTRError(f"{split}: rows {picked.tolist()[:5]}... out of range (the split has {q_user.size} rows)")
    records: dict[str, list[Any]] = {"user_id": [], "item_id": [], "history": []}
    if timestamps:
        records.update(timestamp=[], history_timestamps=[])
    for r in picked.tolist():
        start = np.searchsorted(user, q_user[r], side="left")
        stop = start + np.searchsorted(ts[start:np.searchsorted(user, q_user[r], side="right")], q_ts[r], side="left")
        records["user_id"].append(int(q_user[r]))
        records["item_id"].append(int(q_item[r]))
        records["history"].append(item[start:stop].tolist())
        if timestamps:
            records["timestamp"].append(int(q_ts[r]))
            records["history_timestamps"].append(ts[start:stop].tolist())
    return pd.DataFrame(records)


def example_events(model_input_dir: str | Path, rows: int = 1, *, fmap: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """``rows`` real events of the published test split with their real histories
    (:func:`sequence_split_events`): the first ones with a history, else the first ones."""
    folder = Path(model_input_dir)
    lengths = pq.read_table(folder / "test.parquet", columns=["user_seq_len"]).column(0).to_numpy()
    if lengths.size == 0:
        raise TTSCTRError(f"{folder / 'test.parquet'}: no events to take an input example from")
    with_history = np.flatnonzero(lengths > 0)
    chosen = with_history[:rows] if with_history.size >= rows else np.arange(min(rows, lengths.size))
    return sequence_split_events(folder, "test", chosen, fmap=fmap)


# --------------------------------------------------------------------------------------------
# encoding a new event (serving)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EncodedEvents:
    x: np.ndarray  # (n, F) int32 global ids, the columns of the published splits
    truncated: int  # events whose history was longer than L (only the last L items kept)
    empty_history: int  # events without history (fully masked sequences)


class SequenceEventEncoder:
    """Encode raw events with their history the way the published splits were encoded.

    An event is ``user_id``, ``item_id`` and ``history``: the item ids the user interacted with
    strictly before it, oldest first (optionally ``timestamp`` and ``history_timestamps`` to check
    that). B_u = the last L items of the history (longer ones are truncated and counted), B_c = the
    k history items most content-similar to the candidate (ties: the more recent one), the same
    rule as :func:`ttsctr.data.sequences.build_movielens_sequences`. An empty history gives fully
    masked sequences. Unknown users or items, items without content vectors and histories not
    strictly before their event raise errors naming the event row and the id.
    """

    def __init__(self, spec: Any, users: pd.DataFrame, items: pd.DataFrame, user_fields: Sequence[str],
                 item_fields: Sequence[str]) -> None:
        self.spec = spec
        self.users = users
        self.items = items
        self.user_fields = list(user_fields)
        self.item_fields = list(item_fields)
        self.context = list(spec.field_names[: spec.num_context_fields])
        missing = [c for c in self.context if c not in self.user_fields + self.item_fields]
        if missing:
            raise ConfigError(f"SequenceEventEncoder: context field(s) {missing} are neither user nor item fields")
        self._content = np.asarray(spec.content, dtype=np.float32)
        self._norm = np.linalg.norm(self._content.astype(np.float64), axis=1)
        ids = items.index.to_numpy()
        self._known_item = np.zeros(spec.n_items + 1, dtype=bool)  # item id -> in the items table
        self._known_item[ids[(ids >= 1) & (ids <= spec.n_items)]] = True

    @classmethod
    def from_model_input(cls, folder: str | Path) -> "SequenceEventEncoder":
        from ttsctr.data.io import load_feature_map

        folder = Path(folder)
        fmap = load_feature_map(folder)
        if not is_sequence_map(fmap):
            raise ConfigError(f"{folder}: not a sequence dataset (its feature map has no 'sequence' block)")
        seq = fmap["sequence"]
        users = pd.read_parquet(folder / USERS_FILE).set_index("user_id")
        items = pd.read_parquet(folder / ITEMS_FILE).set_index("item_id")
        return cls(load_feature_spec(folder, fmap), users, items, seq["user_fields"], seq["item_fields"])

    def _ids(self, values: Any, what: str, row: int) -> np.ndarray:
        if values is None or (isinstance(values, float) and np.isnan(values)):
            return np.zeros(0, dtype=np.int64)
        arr = np.asarray(list(values) if not isinstance(values, np.ndarray) else values)
        if arr.size and (not np.issubdtype(arr.dtype, np.number) or np.any(arr != np.round(arr.astype(np.float64)))):
            raise DataFormatError(None, field=what, found=f"event {row}: {arr.tolist()[:5]}", expected="integer item ids")
        return arr.astype(np.int64).reshape(-1)

    def encode(self, events: pd.DataFrame) -> EncodedEvents:
        spec = self.spec
        for column in ("user_id", "item_id", "history"):
            if column not in events.columns:
                raise DataFormatError(None, field=column, found=f"columns {list(events.columns)}",
                                      expected="user_id, item_id and history (the earlier item ids, oldest first)")
        n, length, k = len(events), spec.user_len, spec.candidate_len
        f = spec.num_context_fields
        offsets = np.asarray(spec.offsets, dtype=np.int64)
        local = np.zeros((n, spec.num_fields), dtype=np.int64)
        truncated = empty = 0
        has_ts = "timestamp" in events.columns and "history_timestamps" in events.columns
        for r, event in enumerate(events.itertuples(index=False)):
            row = event._asdict()
            user, item = row["user_id"], row["item_id"]
            if user not in self.users.index:
                raise DataFormatError(None, field="user_id", found=f"event {r}: unknown user {user!r}",
                                      expected=f"one of the {len(self.users)} users of the training data")
            if item not in self.items.index:
                raise DataFormatError(None, field="item_id", found=f"event {r}: unknown item {item!r}",
                                      expected=f"one of the {len(self.items)} items of the training data")
            history = self._ids(row["history"], "history", r)
            unknown = history[(history < 1) | (history > spec.n_items)]
            if unknown.size == 0:
                unknown = history[~self._known_item[history]]
            if unknown.size:
                raise DataFormatError(None, field="history", found=f"event {r}: unknown item {int(unknown[0])}",
                                      expected=f"item ids of the training data (1..{spec.n_items})")
            candidate_ok = 1 <= int(item) <= spec.n_items and self._norm[int(item)] > 0
            no_content = history[self._norm[history] == 0] if candidate_ok else np.array([int(item)])
            if no_content.size:
                bad = int(no_content[0])
                raise DataFormatError(None, field="content", found=f"event {r}: item {bad} has no content vector",
                                      expected="a content vector for every item")
            if has_ts:
                hts = self._ids(row["history_timestamps"], "history_timestamps", r)
                if hts.size != history.size:
                    raise DataFormatError(None, field="history_timestamps", found=f"event {r}: {hts.size} timestamps "
                                          f"for {history.size} history items", expected="one timestamp per history item")
                if hts.size and int(hts.max()) >= int(row["timestamp"]):
                    j = int(np.argmax(hts >= int(row["timestamp"])))
                    raise DataFormatError(None, field="history_timestamps",
                                          found=f"event {r}: history item {j} at {int(hts[j])}, not before the event at "
                                                f"{int(row['timestamp'])}",
                                          expected="a history strictly earlier than its event")
            h = history.size
            truncated += h > length
            empty += h == 0
            last = history[-length:]
            local[r, f + length - last.size: f + length] = last
            if h:
                pos, _ = _candidate_block(np.array([int(item)]), np.array([h]), self._content, k, history=history)
                chosen = pos[0][pos[0] >= 0]
                local[r, f + length + k - chosen.size:] = history[chosen]
        # every event is known by now: the context fields in one lookup per table
        user_rows = self.users.index.get_indexer(events["user_id"])
        item_rows = self.items.index.get_indexer(events["item_id"])
        for j, name in enumerate(self.context):
            table, rows = (self.users, user_rows) if name in self.user_fields else (self.items, item_rows)
            local[:, j] = table[name].to_numpy()[rows]
        x = (local + offsets[None, :]).astype(np.int32)
        return EncodedEvents(x=x, truncated=int(truncated), empty_history=int(empty))
