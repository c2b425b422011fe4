"""Input checks and data order of the trainer.

Data contract: ``x`` is an ``(N, F)`` integer array of global feature ids in
``[0, spec.num_features)`` (int32 on disk), ``y`` an ``(N,)`` float32 array of 0/1 labels.
Bad input raises :class:`~ttsctr.errors.DataFormatError` naming the split, field and row.
"""

from __future__ import annotations

import warnings
import zlib
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from ttsctr.errors import DataFormatError
from ttsctr.features import FeatureSpec

__all__ = ["Split", "check_x", "check_y", "prepare", "as_tensor", "fingerprint", "order_key", "epoch_permutation", "epoch_torch_seed"]


@dataclass
class Split:
    name: str
    x: torch.Tensor  # (N, F) int32/int64, contiguous, shares memory with the caller's array
    y: torch.Tensor | None  # (N,) float32
    fingerprint: str

    @property
    def n(self) -> int:
        return int(self.x.shape[0])


def to_numpy(a: Any) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().numpy()
    return np.asarray(a)


def check_x(x: Any, spec: FeatureSpec, name: str) -> np.ndarray:
    x = to_numpy(x)
    if x.ndim != 2:
        raise DataFormatError(name, found=f"x with shape {x.shape}", expected="a 2-D (rows, fields) array of feature ids")
    if x.shape[1] != spec.num_fields:
        raise DataFormatError(
            name,
            found=f"{x.shape[1]} fields in x",
            expected=f"{spec.num_fields} fields, as in the feature spec ({', '.join(spec.field_names[:5])}"
            f"{', ...' if spec.num_fields > 5 else ''})",
        )
    if not np.issubdtype(x.dtype, np.integer):
        raise DataFormatError(name, found=f"x of dtype {x.dtype}", expected="integer feature ids (int32)")
    nf = spec.num_features
    if x.shape[0]:
        lo, hi = x.min(axis=0), x.max(axis=0)
        bad_fields = np.flatnonzero((lo < 0) | (hi >= nf))
        if bad_fields.size:
            j = int(bad_fields[0])
            col = x[:, j]
            row = int(np.flatnonzero((col < 0) | (col >= nf))[0])
            raise DataFormatError(
                name,
                field=spec.field_names[j],
                found=f"feature id {int(col[row])} in row {row}",
                expected=f"ids in [0, {nf}): the embedding table has {nf} rows (the feature spec's total vocabulary)",
            )
    if x.dtype not in (np.int32, np.int64):
        x = x.astype(np.int32)
    return np.ascontiguousarray(x)


def check_y(y: Any, n: int, name: str) -> np.ndarray:
    y = to_numpy(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataFormatError(name, found=f"y with shape {y.shape}", expected="a 1-D array of 0/1 labels")
    if y.shape[0] != n:
        raise DataFormatError(name, found=f"{n} rows in x but {y.shape[0]} labels in y", expected="one label per row")
    if y.dtype != np.bool_ and not (np.issubdtype(y.dtype, np.number)):
        raise DataFormatError(name, found=f"labels of dtype {y.dtype}", expected="0/1 labels (float32)")
    ok = (y == 0) | (y == 1)
    if not ok.all():
        row = int(np.flatnonzero(~ok)[0])
        raise DataFormatError(name, found=f"label {y[row]!r} in row {row}", expected="labels 0 or 1")
    return np.ascontiguousarray(y, dtype=np.float32)


def fingerprint(x: np.ndarray, y: np.ndarray | None) -> str:
    """Cheap identity of a dataset for resume checks: shape plus CRC of ~1k strided rows."""
    step = max(1, x.shape[0] // 1024)
    crc = zlib.crc32(np.ascontiguousarray(x[::step]).tobytes())
    if y is not None:
        crc = zlib.crc32(np.ascontiguousarray(y[::step]).tobytes(), crc)
    return f"{x.shape[0]}x{x.shape[1]}:{crc:08x}"


def as_tensor(a: np.ndarray) -> torch.Tensor:
    with warnings.catch_warnings():  # read-only (memory-mapped) arrays are fine: never written
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(a)


def prepare(data: Any, spec: FeatureSpec, name: str) -> Split:
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise DataFormatError(name, found=f"a {type(data).__name__}", expected="an (x, y) pair of arrays")
    x = check_x(data[0], spec, name)
    y = check_y(data[1], x.shape[0], name)
    return Split(name, as_tensor(x), as_tensor(y), fingerprint(x, y))


def order_key(data_order: str, data_seed: int, member_seeds: Sequence[int]) -> tuple[int, ...]:
    """The seed key of a group's data order and dropout masks (see ``TrainConfig.data_order``).

    ``member``: ``(data_seed, *member_seeds)`` — each member (each group) its own order and masks;
    ``shared`` / ``file``: ``(data_seed,)`` — the same for every group.
    """
    if data_order == "member":
        return (int(data_seed), *(int(s) for s in member_seeds))
    return (int(data_seed),)


def epoch_permutation(n: int, key: int | Sequence[int], epoch: int, data_order: str = "shared") -> np.ndarray:
    """Row order of 1-based ``epoch``: ``np.random.default_rng([*key, epoch]).permutation(n)``;
    ``arange(n)`` (file order) for ``data_order='file'``."""
    if data_order == "file":
        return np.arange(n)
    key = (key,) if isinstance(key, (int, np.integer)) else tuple(key)
    return np.random.default_rng([*key, epoch]).permutation(n)


def epoch_torch_seed(key: Sequence[int], epoch: int) -> int:
    """Seed of torch's generator (dropout masks) for ``epoch``, derived from the order key."""
    return int(np.random.SeedSequence([*key, epoch, 0x7D]).generate_state(1, np.uint64)[0])
