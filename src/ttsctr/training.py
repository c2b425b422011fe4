"""Training of member groups for prediction merging (paper §2.3, Eq. 10-13, Algorithm 1).

A *group* is a set of CTR backbones trained jointly on the binary cross-entropy of their
averaged probability (grouped training, Eq. 11-12). Independent training is the special
case of groups of one, so there is a single code path: :func:`build_group` makes a
:class:`GroupModel` from :class:`MemberSpec` s, :func:`train` fits it with Adam and early
stopping on validation AUC, :func:`predict_logits` / :func:`evaluate` score it, and
:func:`save_group` / :func:`load_group` write and read a self-describing checkpoint.

Determinism. A member's initial weights depend only on its own spec (backbone, preset,
overrides) and ``seed``: it is built under ``torch.manual_seed(seed)``, so the same member
starts from the same weights in whichever group it is. Data order is separate: epoch ``e``
(1-based) visits the training rows in :func:`epoch_permutation` ``(n, data_seed, e)``
order, and the torch generator (dropout) is reseeded from ``(data_seed, e)`` at the start
of every epoch. Same settings and thread count give bit-identical weights on CPU, and a
run resumed from its checkpoint ends bit-identical to an uninterrupted one.

Data contract: ``x`` is an ``(N, F)`` integer array of global feature ids in
``[0, spec.num_features)`` (int32 on disk), ``y`` an ``(N,)`` float32 array of 0/1 labels.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import sys
import tempfile
import time
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator, Literal, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy.special import expit
from torch import nn
from tqdm.auto import tqdm

from ttsctr.errors import ConfigError, DataFormatError
from ttsctr.features import FeatureSpec
from ttsctr.metrics import log_loss, roc_auc
from ttsctr.models import CTRModel, build_model

__all__ = [
    "MemberSpec",
    "TrainConfig",
    "TrainResult",
    "GroupModel",
    "build_group",
    "group_loss",
    "train",
    "predict_logits",
    "evaluate",
    "save_group",
    "load_group",
    "epoch_permutation",
    "TRAIN_STATE_FILE",
]

GROUP_FORMAT = "ttsctr.group/1"
TRAIN_STATE_FORMAT = "ttsctr.train_state/1"
TRAIN_STATE_FILE = "train_state.pt"

ArrayPair = tuple[np.ndarray, np.ndarray]


# --------------------------------------------------------------------------- specs


def _freeze_override(value: Any, where: str) -> Any:
    if isinstance(value, (list, tuple)):
        return tuple(_freeze_override(v, where) for v in value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ConfigError(f"{where}: override values must be numbers, strings, booleans or lists; got {type(value).__name__}")


def _thaw_override(value: Any) -> Any:
    return [_thaw_override(v) for v in value] if isinstance(value, tuple) else value


@dataclass(frozen=True)
class MemberSpec:
    """One member of an ensemble: which backbone, which preset (+ overrides), which init seed.

    Hashable and JSON-able (:meth:`to_dict` / :meth:`from_dict`); ``overrides`` is stored
    as a plain dict with sorted keys and lists turned into tuples.
    """

    backbone: str
    seed: int
    preset: str = "default"
    overrides: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.backbone, str) or not self.backbone:
            raise ConfigError(f"MemberSpec.backbone must be a model name, got {self.backbone!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or not 0 <= self.seed < 2**63:
            raise ConfigError(f"MemberSpec.seed must be an integer in [0, 2**63), got {self.seed!r}")
        if not isinstance(self.preset, str) or not self.preset:
            raise ConfigError(f"MemberSpec.preset must be a preset name, got {self.preset!r}")
        if not isinstance(self.overrides, Mapping):
            raise ConfigError(f"MemberSpec.overrides must be a mapping, got {type(self.overrides).__name__}")
        where = f"member {self.backbone}/{self.preset}/seed {self.seed}"
        clean = {}
        for key in sorted(self.overrides):
            if not isinstance(key, str):
                raise ConfigError(f"{where}: override keys must be strings, got {key!r}")
            clean[key] = _freeze_override(self.overrides[key], where)
        object.__setattr__(self, "backbone", self.backbone.lower())
        object.__setattr__(self, "seed", int(self.seed))
        object.__setattr__(self, "overrides", clean)

    def __hash__(self) -> int:
        return hash((self.backbone, self.seed, self.preset, json.dumps(self.to_dict()["overrides"], sort_keys=True)))

    @property
    def name(self) -> str:
        """Short readable id, e.g. ``fnn-small-s3`` (``+<hash>`` when there are overrides)."""
        base = f"{self.backbone}-{self.preset}-s{self.seed}"
        if self.overrides:
            digest = hashlib.sha1(json.dumps(self.to_dict()["overrides"], sort_keys=True).encode()).hexdigest()[:8]
            base += f"+{digest}"
        return base

    def to_dict(self) -> dict[str, Any]:
        return {
            "backbone": self.backbone,
            "seed": self.seed,
            "preset": self.preset,
            "overrides": {k: _thaw_override(v) for k, v in self.overrides.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "MemberSpec":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"member spec: unknown keys {unknown}; known keys: {sorted(known)}")
        missing = sorted({"backbone", "seed"} - set(data))
        if missing:
            raise ConfigError(f"member spec: missing keys {missing} in {dict(data)!r}")
        return cls(**dict(data))

    def build(self, spec: FeatureSpec) -> CTRModel:
        """The member's backbone with its initial weights; the caller's RNG state is left untouched."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            return build_model(self.backbone, spec, self.preset, **self.overrides)


@dataclass
class TrainConfig:
    """Optimisation settings. Only learning_rate, weight_decay, batch_size, data_seed and
    precision decide the trajectory; the others may change between a run and its resume."""

    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 4096
    eval_batch_size: int = 16384
    max_epochs: int = 10
    patience: int = 1
    data_seed: int = 0
    num_threads: int | None = None
    precision: Literal["fp32", "bf16"] = "fp32"
    progress: bool = True

    TRAJECTORY_FIELDS: ClassVar[tuple[str, ...]] = ("learning_rate", "weight_decay", "batch_size", "data_seed", "precision")

    def __post_init__(self) -> None:
        def positive_int(name: str, minimum: int = 1) -> None:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
                raise ConfigError(f"TrainConfig.{name} must be an integer >= {minimum}, got {v!r}")
            setattr(self, name, int(v))

        for name in ("batch_size", "eval_batch_size", "max_epochs", "patience"):
            positive_int(name)
        positive_int("data_seed", 0)
        if self.num_threads is not None:
            positive_int("num_threads")
        for name, lo_ok in (("learning_rate", False), ("weight_decay", True)):
            v = getattr(self, name)
            if isinstance(v, str):  # PyYAML reads ``1e-3`` (no dot) as a string
                with contextlib.suppress(ValueError):
                    v = float(v)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0 or (v == 0 and not lo_ok):
                need = ">= 0" if lo_ok else "> 0"
                raise ConfigError(f"TrainConfig.{name} must be a finite number {need}, got {v!r}")
            setattr(self, name, float(v))
        if self.precision not in ("fp32", "bf16"):
            raise ConfigError(f"TrainConfig.precision must be 'fp32' or 'bf16', got {self.precision!r}")
        self.progress = bool(self.progress)

    @classmethod
    def from_dict(cls, params: Mapping[str, Any]) -> "TrainConfig":
        """From a parameters mapping (e.g. Kedro ``params:training``); unknown keys are an error."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ConfigError(f"training parameters: unknown keys {unknown}; known keys: {sorted(known)}")
        return cls(**dict(params))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class TrainResult:
    """What :func:`train` reports. ``history`` has one dict per epoch run (all runs of a resumed
    training): epoch, train_loss, valid_auc, valid_logloss, rows_per_s, seconds, best_epoch, is_best."""

    history: list[dict[str, Any]]
    best_epoch: int
    best_valid_auc: float
    best_valid_logloss: float
    train_seconds: float
    stopped_early: bool
    epochs_completed: int = 0
    resumed_from_epoch: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------- model


class GroupModel(nn.Module):
    """Members trained and served as one unit (Eq. 11): ``forward`` gives every member's logit."""

    def __init__(
        self,
        members: Sequence[CTRModel],
        member_specs: Sequence[MemberSpec] | None = None,
        spec: FeatureSpec | None = None,
    ) -> None:
        super().__init__()
        members = list(members)
        if not members:
            raise ConfigError("a group needs at least one member")
        if member_specs is not None and len(member_specs) != len(members):
            raise ConfigError(f"{len(members)} member models but {len(member_specs)} member specs")
        self.spec = spec if spec is not None else members[0].spec
        for i, m in enumerate(members):
            if not isinstance(m, CTRModel):
                raise ConfigError(f"group member {i} is a {type(m).__name__}, not a CTRModel")
            if m.spec.num_fields != self.spec.num_fields or m.spec.num_features != self.spec.num_features:
                raise ConfigError(
                    f"group member {i} was built for {m.spec.num_fields} fields / {m.spec.num_features} features; "
                    f"the group's feature spec has {self.spec.num_fields} / {self.spec.num_features}"
                )
        self.members = nn.ModuleList(members)
        self.member_specs: tuple[MemberSpec, ...] | None = tuple(member_specs) if member_specs is not None else None

    @property
    def size(self) -> int:
        return len(self.members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, F) integer ids -> (B, M) member logits."""
        return torch.stack([m(x) for m in self.members], dim=1)

    def merged_probability(self, x: torch.Tensor) -> torch.Tensor:
        """(B, F) -> (B,): the mean of the members' probabilities (Eq. 10/11)."""
        return torch.sigmoid(self(x).float()).mean(dim=1)


def build_group(spec: FeatureSpec, members: Sequence[MemberSpec]) -> GroupModel:
    """A group of freshly initialised members; member ``i`` is built under ``torch.manual_seed(members[i].seed)``."""
    members = [m if isinstance(m, MemberSpec) else MemberSpec.from_dict(m) for m in members]
    if not members:
        raise ConfigError("build_group: at least one member is required")
    dupes = sorted({m.name for m in members if members.count(m) > 1})
    if dupes:
        raise ConfigError(f"build_group: members {dupes} appear more than once (they would be identical copies)")
    return GroupModel([m.build(spec) for m in members], members, spec)


def group_loss(member_logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """BCE of the group's averaged probability ``p = mean_m sigmoid(l_m)`` (Eq. 11, Eq. 3).

    Computed in log space so huge logits stay finite:
    ``log p = logsumexp_m(logsigmoid(l_m)) - log M`` and
    ``log(1-p) = logsumexp_m(logsigmoid(-l_m)) - log M``. Each member's logit then gets
    ``(1/M) dL/dp * sigmoid'(l_m)`` (Eq. 12). For M = 1 this is exactly
    ``F.binary_cross_entropy_with_logits``, which is what is computed then.
    """
    logits = member_logits.float()
    if logits.dim() == 1:
        logits = logits.unsqueeze(1)
    if logits.dim() != 2:
        raise ConfigError(f"group_loss: member logits must be (batch, members), got shape {tuple(member_logits.shape)}")
    y = y.to(dtype=logits.dtype).reshape(-1)
    if y.shape[0] != logits.shape[0]:
        raise ConfigError(f"group_loss: {logits.shape[0]} rows of logits but {y.shape[0]} labels")
    m = logits.shape[1]
    if m == 1:
        return F.binary_cross_entropy_with_logits(logits[:, 0], y)
    log_m = math.log(m)
    log_p = torch.logsumexp(F.logsigmoid(logits), dim=1) - log_m
    log_q = torch.logsumexp(F.logsigmoid(-logits), dim=1) - log_m
    return -(y * log_p + (1.0 - y) * log_q).mean()


# --------------------------------------------------------------------------- data


@dataclass
class _Split:
    name: str
    x: torch.Tensor  # (N, F) int32/int64, contiguous, shares memory with the caller's array
    y: torch.Tensor | None  # (N,) float32
    fingerprint: str

    @property
    def n(self) -> int:
        return int(self.x.shape[0])


def _to_numpy(a: Any) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().numpy()
    return np.asarray(a)


def _check_x(x: Any, spec: FeatureSpec, name: str) -> np.ndarray:
    x = _to_numpy(x)
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


def _check_y(y: Any, n: int, name: str) -> np.ndarray:
    y = _to_numpy(y)
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


def _fingerprint(x: np.ndarray, y: np.ndarray | None) -> str:
    """Cheap identity of a dataset for resume checks: shape plus CRC of ~1k strided rows."""
    step = max(1, x.shape[0] // 1024)
    crc = zlib.crc32(np.ascontiguousarray(x[::step]).tobytes())
    if y is not None:
        crc = zlib.crc32(np.ascontiguousarray(y[::step]).tobytes(), crc)
    return f"{x.shape[0]}x{x.shape[1]}:{crc:08x}"


def _tensor(a: np.ndarray) -> torch.Tensor:
    with warnings.catch_warnings():  # read-only (memory-mapped) arrays are fine: never written
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(a)


def _prepare(data: Any, spec: FeatureSpec, name: str) -> _Split:
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise DataFormatError(name, found=f"a {type(data).__name__}", expected="an (x, y) pair of arrays")
    x = _check_x(data[0], spec, name)
    y = _check_y(data[1], x.shape[0], name)
    return _Split(name, _tensor(x), _tensor(y), _fingerprint(x, y))


# --------------------------------------------------------------------------- helpers


def epoch_permutation(n: int, data_seed: int, epoch: int) -> np.ndarray:
    """Row order of 1-based ``epoch``: ``np.random.default_rng([data_seed, epoch]).permutation(n)``."""
    return np.random.default_rng([data_seed, epoch]).permutation(n)


def _epoch_torch_seed(data_seed: int, epoch: int) -> int:
    return int(np.random.SeedSequence([data_seed, epoch, 0x7D]).generate_state(1, np.uint64)[0])


@contextlib.contextmanager
def _num_threads(n: int | None) -> Iterator[None]:
    if n is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _autocast(precision: str) -> contextlib.AbstractContextManager:
    if precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _atomic_save(obj: Any, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _clone_state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _spec_dict(spec: FeatureSpec) -> dict[str, Any]:
    return {"field_names": list(spec.field_names), "vocab_sizes": [int(v) for v in spec.vocab_sizes]}


def _spec_from_dict(d: Mapping[str, Any]) -> FeatureSpec:
    return FeatureSpec(field_names=tuple(d["field_names"]), vocab_sizes=tuple(int(v) for v in d["vocab_sizes"]))


def _make_optimizer(group: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    # The fused CPU kernel updates the (large, dense-gradient) embedding tables about 8x
    # faster than the default per-tensor loop; it is deterministic but not bit-equal to it.
    return torch.optim.Adam(group.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay, fused=True)


def _check_group(group: Any) -> GroupModel:
    if not isinstance(group, GroupModel):
        raise ConfigError(
            f"expected a GroupModel (use build_group(spec, [MemberSpec(...)]), a single model is a group of one); "
            f"got {type(group).__name__}"
        )
    return group


# --------------------------------------------------------------------------- inference


def _predict(group: GroupModel, x: torch.Tensor, batch_size: int, precision: str) -> np.ndarray:
    n = int(x.shape[0])
    out = torch.empty((n, group.size), dtype=torch.float32)
    was_training = group.training
    group.eval()
    try:
        with torch.inference_mode(), _autocast(precision):
            for start in range(0, n, batch_size):
                out[start : start + batch_size] = group(x[start : start + batch_size]).float()
    finally:
        group.train(was_training)
    return out.numpy()


def predict_logits(
    group: GroupModel, x: np.ndarray, batch_size: int = 16384, precision: Literal["fp32", "bf16"] = "fp32"
) -> np.ndarray:
    """Every member's logit for every row: (N, M) float32, eval mode, no gradients."""
    group = _check_group(group)
    if precision not in ("fp32", "bf16"):
        raise ConfigError(f"precision must be 'fp32' or 'bf16', got {precision!r}")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    return _predict(group, _tensor(_check_x(x, group.spec, "x")), batch_size, precision)


def merged_probability(logits: np.ndarray) -> np.ndarray:
    """(N, M) member logits -> (N,) float64 mean member probability (Eq. 10)."""
    logits = np.asarray(logits, dtype=np.float64)
    return expit(logits).mean(axis=1) if logits.ndim == 2 else expit(logits)


def _metrics(logits: np.ndarray, y: np.ndarray, per_member: bool) -> dict[str, Any]:
    p = merged_probability(logits)
    out: dict[str, Any] = {"auc": roc_auc(y, p), "logloss": log_loss(y, p), "num_rows": int(y.shape[0])}
    if per_member:
        probs = expit(logits.astype(np.float64))
        out["member_auc"] = [roc_auc(y, probs[:, i]) for i in range(probs.shape[1])]
        out["member_logloss"] = [log_loss(y, probs[:, i]) for i in range(probs.shape[1])]
    return out


def evaluate(
    group: GroupModel,
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int = 16384,
    precision: Literal["fp32", "bf16"] = "fp32",
) -> dict[str, Any]:
    """AUC and logloss of the merged probability, plus ``member_auc`` / ``member_logloss`` lists."""
    group = _check_group(group)
    split = _prepare((x, y), group.spec, "eval")
    if split.n == 0:
        raise DataFormatError("eval", found="0 rows", expected="at least one row to evaluate")
    if precision not in ("fp32", "bf16"):
        raise ConfigError(f"precision must be 'fp32' or 'bf16', got {precision!r}")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    logits = _predict(group, split.x, int(batch_size), precision)
    return _metrics(logits, split.y.numpy(), per_member=True)


# --------------------------------------------------------------------------- training


def train(
    group: GroupModel,
    train: ArrayPair,
    valid: ArrayPair,
    config: TrainConfig,
    checkpoint_dir: str | Path | None = None,
    on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Fit ``group`` in place on ``train = (x, y)``; early-stop on the AUC of ``valid``.

    Loss: :func:`group_loss` (BCE of the members' mean probability). Optimiser: Adam
    (``fused=True``: torch's fused CPU kernel), ``learning_rate`` / ``weight_decay``.
    After every epoch the validation AUC/logloss of the merged probability is computed;
    training stops after ``patience`` epochs without a strictly better AUC, and the best
    epoch's weights are loaded into ``group`` before returning.

    With ``checkpoint_dir`` the full state (weights, optimiser, epoch, best weights, history)
    is written atomically to ``checkpoint_dir/train_state.pt`` after every epoch; calling
    ``train`` again with the same directory resumes there (bit-identical to not stopping),
    and a finished run returns its stored result at once. ``on_epoch_end`` receives each
    epoch's history record after its checkpoint is written.
    """
    group = _check_group(group)
    if not isinstance(config, TrainConfig):
        raise ConfigError(f"config must be a TrainConfig, got {type(config).__name__}")
    tr = _prepare(train, group.spec, "train")
    va = _prepare(valid, group.spec, "valid")
    if tr.n == 0:
        raise DataFormatError("train", found="0 rows", expected="at least one training row")
    if va.n == 0:
        raise DataFormatError("valid", found="0 rows", expected="at least one validation row (early stopping needs it)")
    n_pos = int(va.y.sum())
    if n_pos in (0, va.n):
        raise DataFormatError(
            "valid",
            found=f"only label {int(n_pos > 0)} in {va.n} validation rows",
            expected="both classes (validation AUC is undefined otherwise)",
        )
    with _num_threads(config.num_threads), torch.random.fork_rng(devices=[]):
        return _Trainer(group, tr, va, config, checkpoint_dir, on_epoch_end).run()


class _Trainer:
    def __init__(
        self,
        group: GroupModel,
        tr: _Split,
        va: _Split,
        config: TrainConfig,
        checkpoint_dir: str | Path | None,
        on_epoch_end: Callable[[dict[str, Any]], None] | None,
    ) -> None:
        self.group, self.tr, self.va, self.config = group, tr, va, config
        self.path = Path(checkpoint_dir) / TRAIN_STATE_FILE if checkpoint_dir is not None else None
        self.on_epoch_end = on_epoch_end
        self.optimizer = _make_optimizer(group, config)
        self.epoch = 0
        self.history: list[dict[str, Any]] = []
        self.best_epoch = 0
        self.best_auc = -math.inf
        self.best_logloss = math.nan
        self.best_state: dict[str, torch.Tensor] | None = None
        self.bad_epochs = 0
        self.train_seconds = 0.0
        self.resumed_from = 0

    # -- checkpoint ---------------------------------------------------------------

    def _identity(self) -> dict[str, Any]:
        g = self.group
        return {
            "members": [m.to_dict() for m in g.member_specs] if g.member_specs is not None else None,
            "spec": _spec_dict(g.spec),
            "shapes": {k: list(v.shape) for k, v in g.state_dict().items()},
            "config": {k: getattr(self.config, k) for k in TrainConfig.TRAJECTORY_FIELDS},
            "train": self.tr.fingerprint,
            "valid": self.va.fingerprint,
        }

    def _save(self) -> None:
        if self.path is None:
            return
        payload = {
            "format": TRAIN_STATE_FORMAT,
            "identity": self._identity(),
            "epoch": self.epoch,
            "model": self.group.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "best_state": self.best_state,
            "best_epoch": self.best_epoch,
            "best_auc": self.best_auc,
            "best_logloss": self.best_logloss,
            "bad_epochs": self.bad_epochs,
            "history": self.history,
            "train_seconds": self.train_seconds,
            "torch_rng": torch.get_rng_state(),
            "torch_version": str(torch.__version__),
        }
        _atomic_save(payload, self.path)

    def _restore(self) -> bool:
        if self.path is None or not self.path.exists():
            return False
        try:
            ckpt = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - report what was found, whatever torch raised
            raise DataFormatError(self.path, found=f"an unreadable file ({exc})", expected="a ttsctr training checkpoint") from exc
        if not isinstance(ckpt, dict) or ckpt.get("format") != TRAIN_STATE_FORMAT:
            raise DataFormatError(self.path, found="another kind of file", expected=f"a {TRAIN_STATE_FORMAT} checkpoint")
        mine, theirs = self._identity(), ckpt["identity"]
        diffs = []
        for key in mine:
            if key == "config":
                diffs += [
                    f"config.{k}: checkpoint {theirs[key].get(k)!r} vs now {v!r}"
                    for k, v in mine[key].items()
                    if theirs[key].get(k) != v
                ]
            elif key == "members" and (mine[key] is None or theirs[key] is None):
                continue
            elif mine[key] != theirs[key]:
                diffs.append(f"{key} differs")
        if diffs:
            raise ConfigError(
                f"{self.path} holds a training run with other settings ({'; '.join(diffs)}); "
                "use another checkpoint_dir or delete it to start over"
            )
        self.group.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.epoch = int(ckpt["epoch"])
        self.history = list(ckpt["history"])
        self.best_state = ckpt["best_state"]
        self.best_epoch = int(ckpt["best_epoch"])
        self.best_auc = float(ckpt["best_auc"])
        self.best_logloss = float(ckpt["best_logloss"])
        self.bad_epochs = int(ckpt["bad_epochs"])
        self.train_seconds = float(ckpt["train_seconds"])
        torch.set_rng_state(ckpt["torch_rng"])
        self.resumed_from = self.epoch
        return True

    # -- loop ---------------------------------------------------------------------

    def _finished(self) -> bool:
        return self.epoch >= self.config.max_epochs or self.bad_epochs >= self.config.patience

    def _result(self) -> TrainResult:
        if self.best_state is not None:
            self.group.load_state_dict(self.best_state)
        return TrainResult(
            history=[dict(h) for h in self.history],
            best_epoch=self.best_epoch,
            best_valid_auc=self.best_auc,
            best_valid_logloss=self.best_logloss,
            train_seconds=self.train_seconds,
            stopped_early=self.bad_epochs >= self.config.patience and self.epoch < self.config.max_epochs,
            epochs_completed=self.epoch,
            resumed_from_epoch=self.resumed_from,
        )

    def run(self) -> TrainResult:
        self._restore()
        while not self._finished():
            self._epoch(self.epoch + 1)
        self.group.train()
        return self._result()

    def _epoch(self, epoch: int) -> None:
        cfg, group, opt, tr = self.config, self.group, self.optimizer, self.tr
        t0 = time.perf_counter()
        group.train()
        perm = torch.from_numpy(epoch_permutation(tr.n, cfg.data_seed, epoch))
        torch.manual_seed(_epoch_torch_seed(cfg.data_seed, epoch))
        bf16 = cfg.precision == "bf16"
        bar = tqdm(
            total=tr.n,
            desc=f"epoch {epoch}/{cfg.max_epochs}",
            unit="row",
            unit_scale=True,
            disable=not cfg.progress,
            file=sys.stderr,
            mininterval=1.0,
            dynamic_ncols=True,
        )
        loss_sum, rows, window_sum, window_rows = 0.0, 0, 0.0, 0
        bs = cfg.batch_size
        try:
            for step, start in enumerate(range(0, tr.n, bs)):
                idx = perm[start : start + bs]
                xb = tr.x.index_select(0, idx)
                yb = tr.y.index_select(0, idx)
                if bf16:
                    with torch.autocast("cpu", dtype=torch.bfloat16):
                        logits = group(xb)
                else:
                    logits = group(xb)
                loss = group_loss(logits, yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                b = idx.shape[0]
                lv = loss.item() * b
                loss_sum += lv
                rows += b
                window_sum += lv
                window_rows += b
                bar.update(b)
                if cfg.progress and step % 50 == 49:
                    bar.set_postfix(loss=f"{window_sum / window_rows:.4f}", refresh=False)
                    window_sum, window_rows = 0.0, 0
            train_time = time.perf_counter() - t0
            train_loss = loss_sum / rows
            if not math.isfinite(train_loss):
                raise ConfigError(
                    f"training diverged in epoch {epoch}: mean train loss is {train_loss}; "
                    f"lower learning_rate (now {cfg.learning_rate}) or use precision='fp32'"
                )
            logits = _predict(group, self.va.x, cfg.eval_batch_size, cfg.precision)
            m = _metrics(logits, self.va.y.numpy(), per_member=False)
            improved = m["auc"] > self.best_auc
            if improved:
                self.best_auc, self.best_logloss, self.best_epoch = m["auc"], m["logloss"], epoch
                self.best_state = _clone_state(group)
                self.bad_epochs = 0
            else:
                self.bad_epochs += 1
            seconds = time.perf_counter() - t0
            record = {
                "epoch": epoch,
                "train_loss": float(train_loss),
                "valid_auc": float(m["auc"]),
                "valid_logloss": float(m["logloss"]),
                "rows_per_s": float(rows / train_time) if train_time > 0 else float("inf"),
                "seconds": float(seconds),
                "best_epoch": self.best_epoch,
                "is_best": bool(improved),
            }
            bar.set_postfix(
                loss=f"{train_loss:.4f}", valid_auc=f"{m['auc']:.4f}", valid_logloss=f"{m['logloss']:.4f}", refresh=True
            )
        finally:
            bar.close()
        self.epoch = epoch
        self.history.append(record)
        self.train_seconds += time.perf_counter() - t0
        self._save()
        if self.on_epoch_end is not None:
            self.on_epoch_end(dict(record))


# --------------------------------------------------------------------------- persistence


def save_group(
    group: GroupModel,
    members: Sequence[MemberSpec] | None,
    spec: FeatureSpec | None,
    path: str | Path,
) -> Path:
    """Write a self-describing checkpoint (member specs, feature spec, weights), atomically.

    ``members`` / ``spec`` may be None to use the ones the group was built with.
    """
    group = _check_group(group)
    members = list(members) if members is not None else list(group.member_specs or [])
    spec = spec if spec is not None else group.spec
    if len(members) != group.size:
        raise ConfigError(f"save_group: the group has {group.size} members but {len(members)} member specs were given")
    if spec.num_fields != group.spec.num_fields or spec.num_features != group.spec.num_features:
        raise ConfigError("save_group: the feature spec given does not match the one the group was built with")
    payload = {
        "format": GROUP_FORMAT,
        "members": [m.to_dict() for m in members],
        "spec": _spec_dict(spec),
        "state_dict": group.state_dict(),
        "torch_version": str(torch.__version__),
    }
    path = Path(path)
    _atomic_save(payload, path)
    return path


def load_group(path: str | Path) -> tuple[GroupModel, list[MemberSpec], FeatureSpec]:
    """Read what :func:`save_group` wrote: the group (eval mode), its member specs and feature spec."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise DataFormatError(path, found=f"an unreadable file ({exc})", expected="a ttsctr group checkpoint") from exc
    if not isinstance(payload, dict) or payload.get("format") != GROUP_FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise DataFormatError(path, found=f"format {found!r}", expected=f"a {GROUP_FORMAT} checkpoint written by save_group")
    members = [MemberSpec.from_dict(m) for m in payload["members"]]
    spec = _spec_from_dict(payload["spec"])
    group = build_group(spec, members)
    try:
        group.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise DataFormatError(
            path, found=f"weights that do not fit the stored member specs ({exc})", expected="a consistent checkpoint"
        ) from exc
    group.eval()
    return group, members, spec
