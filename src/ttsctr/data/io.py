"""Reading encoded splits and writing outputs atomically.

``atomic_dir`` / ``atomic_file`` / ``atomic_write_json`` write into a hidden temporary sibling
of the target and rename it into place only when the ``with`` block (or the write) succeeded,
so a failure or a crash never leaves a half-written target behind: the target is either
absent, the previous version, or the complete new one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ttsctr.errors import ConfigError, DataFormatError

SPLITS: tuple[str, ...] = ("train", "validation", "test")
FEATURE_MAP_FILE = "feature_map.json"
VOCABULARY_FILE = "vocabulary.parquet"
LABEL_COLUMN = "label"


# --------------------------------------------------------------------------------------------
# atomic writes
# --------------------------------------------------------------------------------------------
def _tmp_sibling(target: Path, kind: str) -> Path:
    return target.with_name(f".{target.name}.{kind}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` still exists (used to tell crashed writers' leftovers from live ones)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_siblings(target: Path) -> None:
    """Remove temp/old siblings of ``target`` left by crashed processes (their pid is gone)."""
    parent = target.parent
    if not parent.is_dir():
        return
    prefix = f".{target.name}."
    for entry in parent.iterdir():
        name = entry.name
        if not name.startswith(prefix):
            continue
        rest = name[len(prefix):]
        kind, _, tail = rest.partition("-")
        if kind not in ("tmp", "old"):
            continue
        pid_txt = tail.split("-", 1)[0]
        if not pid_txt.isdigit() or pid_alive(int(pid_txt)):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                entry.unlink()


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def replace_dir(tmp: str | Path, target: str | Path) -> None:
    """Move directory ``tmp`` to ``target``, replacing an existing ``target``.

    Two renames (old target aside, new into place); if the second fails the old one is put back.
    The window in which ``target`` is absent is two ``rename`` calls long. Set-aside versions
    left by crashed processes are removed first. The one directory swap of the project:
    :func:`atomic_dir` and the publishing of encoded data use it.
    """
    tmp, target = Path(tmp), Path(target).absolute()
    _remove_stale_siblings(target)
    if target.exists() or target.is_symlink():
        if not target.is_dir() or target.is_symlink():
            raise ConfigError(f"{target} exists and is not a directory; refusing to replace it")
        old = _tmp_sibling(target, "old")
        os.rename(target, old)
        try:
            os.rename(tmp, target)
        except BaseException:
            os.rename(old, target)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, target)
    _fsync_dir(target.parent)


@contextlib.contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """Yield a fresh temporary directory next to ``target``; on success it replaces ``target``.

    On any exception the temporary directory is deleted and ``target`` is left as it was.
    """
    target = Path(target).absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_siblings(target)
    tmp = _tmp_sibling(target, "tmp")
    tmp.mkdir()
    try:
        yield tmp
        replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def atomic_file(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success it is fsynced and renamed onto ``target``."""
    target = Path(target).absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_siblings(target)
    tmp = _tmp_sibling(target, "tmp")
    try:
        yield tmp
        if tmp.exists():
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def atomic_write_json(path: str | Path, obj: Any, *, indent: int = 2) -> None:
    """Write ``obj`` as JSON (UTF-8, sorted as given) to ``path`` atomically."""
    text = json.dumps(obj, indent=indent, default=_json_default, ensure_ascii=False) + "\n"
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


# --------------------------------------------------------------------------------------------
# encoded splits
# --------------------------------------------------------------------------------------------
@dataclass
class EncodedSplit:
    """One encoded split: ``x`` (N, F) int32 global ids (C-contiguous), ``y`` (N,) float32 labels."""

    x: np.ndarray
    y: np.ndarray
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    field_names: tuple[str, ...] = ()
    split: str = ""

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @property
    def num_rows(self) -> int:
        return len(self)

    @property
    def num_fields(self) -> int:
        return int(self.x.shape[1])


def load_feature_map(directory: str | Path) -> dict:
    """The ``feature_map.json`` dict written by :func:`ttsctr.data.preprocess.preprocess`."""
    path = Path(directory) / FEATURE_MAP_FILE
    if not path.is_file():
        raise DataFormatError(path, found="no such file", expected=f"{FEATURE_MAP_FILE} written by preprocess()")
    try:
        with open(path, encoding="utf-8") as fh:
            fmap = json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataFormatError(path, found=f"invalid JSON ({exc})", expected="a JSON feature map") from exc
    if not isinstance(fmap, dict) or not isinstance(fmap.get("fields"), list):
        raise DataFormatError(path, found="no 'fields' list", expected="a feature map with fields[]")
    return fmap


def is_sequence_map(fmap: Mapping[str, Any]) -> bool:
    """Whether a feature map is a behaviour-sequence dataset's (``ttsctr.data.sequence_store``)."""
    return isinstance(fmap.get("sequence"), Mapping)


def load_split(directory: str | Path, split: str, *, check_ids: bool = True) -> EncodedSplit:
    """Load ``directory/{split}.parquet`` into numpy arrays, checked against ``feature_map.json``.

    ``x[:, j]`` holds field ``j``'s global ids (``offset_j <= id < offset_j + vocab_size_j``);
    ``check_ids`` verifies that (one vectorised pass).
    """
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; expected one of {list(SPLITS)}")
    directory = Path(directory)
    fmap = load_feature_map(directory)
    path = directory / f"{split}.parquet"
    if not path.is_file():
        raise DataFormatError(path, found="no such file", expected=f"the {split} split written by preprocess()")
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise DataFormatError(path, found=f"an unreadable parquet file ({exc})", expected="a parquet file") from exc
    fields = fmap["fields"]
    names = [f["name"] for f in fields]
    extras_names = list(fmap.get("extra_columns", []))
    sequence = fmap["sequence"] if is_sequence_map(fmap) else None
    # a sequence folder stores its slot fields as fixed-width list columns (ttsctr.data.sequence_store)
    stored = [*sequence["context_fields"], *sequence["list_columns"]] if sequence is not None else names
    expected_cols = [LABEL_COLUMN, *stored, *extras_names]
    if table.column_names != expected_cols:
        raise DataFormatError(
            path,
            found=f"columns {table.column_names}",
            expected=f"columns {expected_cols} (from {FEATURE_MAP_FILE})",
        )
    n = table.num_rows
    x = np.empty((n, len(names)), dtype=np.int32)
    scalar_fields = fields
    if sequence is not None:
        from ttsctr.data.sequence_store import expand_list_columns

        f_n = len(sequence["context_fields"])
        slot_names, slots = expand_list_columns(table, fmap, path)
        if slot_names != names[f_n:]:
            raise DataFormatError(path, found=f"{len(slot_names)} slots in the list columns",
                                  expected=f"the {len(names) - f_n} slot fields of {FEATURE_MAP_FILE}")
        x[:, f_n:] = slots
        scalar_fields = fields[:f_n]
    for j, f in enumerate(scalar_fields):
        col = table.column(f["name"])
        if col.type != pa.int32() or col.null_count:
            raise DataFormatError(
                path, field=f["name"], found=f"type {col.type} with {col.null_count} nulls", expected="int32 without nulls"
            )
        x[:, j] = col.to_numpy()
    if check_ids and n:
        lo = np.array([int(f["offset"]) for f in fields], dtype=np.int64)
        hi = lo + np.array([int(f["vocab_size"]) for f in fields], dtype=np.int64)
        mins, maxs = x.min(axis=0), x.max(axis=0)
        bad = np.flatnonzero((mins < lo) | (maxs >= hi))
        if bad.size:
            j = int(bad[0])
            raise DataFormatError(
                path,
                field=names[j],
                found=f"ids in [{mins[j]}, {maxs[j]}]",
                expected=f"ids in [{lo[j]}, {hi[j]}) per {FEATURE_MAP_FILE}",
            )
    label = table.column(LABEL_COLUMN)
    if label.null_count:
        raise DataFormatError(path, field=LABEL_COLUMN, found=f"{label.null_count} null labels", expected="0/1 labels")
    y = label.to_numpy().astype(np.float32)
    extras = {name: table.column(name).to_numpy() for name in extras_names}
    return EncodedSplit(x=x, y=y, extras=extras, field_names=tuple(names), split=split)


@dataclass(frozen=True)
class Splits:
    """The three published splits of one data version, as (x, y) numpy arrays, and their feature spec."""

    spec: Any  # ttsctr.features.FeatureSpec
    train: tuple[np.ndarray, np.ndarray]
    validation: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]
    data_version: str
    model_input: Path


def load_splits(model_input: str | Path, data_version: str, *, what: str) -> Splits:
    """Read train, validation and test of ``model_input``, checking the published data version
    before and after (the folder may be swapped while they are read; see ttsctr.data.version)."""
    from ttsctr.data.version import require_data_version

    from ttsctr.data.sequence_store import load_feature_spec

    model_input = Path(model_input)
    require_data_version(model_input, data_version, what=what)
    spec = load_feature_spec(model_input)
    parts = [load_split(model_input, name) for name in ("train", "validation", "test")]
    require_data_version(model_input, data_version, what=what)
    return Splits(spec, *((p.x, p.y) for p in parts), data_version=data_version, model_input=model_input)
