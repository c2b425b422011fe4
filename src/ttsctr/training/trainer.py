"""The training loop (Algorithm 1) and scoring: :func:`train`, :func:`predict_logits`, :func:`evaluate`.

Determinism. Epoch ``e`` (1-based) visits the training rows in the order of
:func:`~ttsctr.training.inputs.epoch_permutation` for the group's order key
(:func:`~ttsctr.training.inputs.order_key`: by default the data seed and the member seeds), and
torch's generator (dropout masks) is reseeded from the same key and ``e`` at the start of every
epoch. Same settings and thread count give bit-identical weights on CPU, and a run resumed
from its checkpoint ends bit-identical to an uninterrupted one (the optimiser, the learning-rate
scheduler and the early-stopping state are part of the checkpoint).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Literal

import numpy as np
import torch
from scipy.special import expit
from torch import nn
from tqdm.auto import tqdm

from ttsctr.errors import ConfigError, DataFormatError
from ttsctr.layers.embedding import FeatureEmbedding
from ttsctr.metrics import log_loss, roc_auc
from ttsctr.training.checkpoint import TRAIN_STATE_FILE, TRAIN_STATE_FORMAT, atomic_save, check_group, spec_identity
from ttsctr.training.config import TrainConfig
from ttsctr.training.group import GroupModel, group_loss, merged_probability
from ttsctr.training.inputs import (
    Split,
    as_tensor,
    check_x,
    epoch_permutation,
    epoch_torch_seed,
    order_key,
    prepare,
)

__all__ = ["TrainResult", "train", "predict_logits", "evaluate"]

ArrayPair = tuple[np.ndarray, np.ndarray]
Precision = Literal["fp32", "bf16"]


@dataclass
class TrainResult:
    """What :func:`train` reports. ``history`` has one dict per epoch run (all runs of a resumed
    training): epoch, train_loss, valid_auc, valid_logloss, learning_rate, rows_per_s, seconds,
    best_epoch, is_best. ``batch_size`` is the batch size used (see ``TrainConfig.batch_size_for``)."""

    history: list[dict[str, Any]]
    best_epoch: int
    best_valid_auc: float
    best_valid_logloss: float
    train_seconds: float
    stopped_early: bool
    epochs_completed: int = 0
    resumed_from_epoch: int = 0
    batch_size: int = 0
    order_key: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["order_key"] = list(self.order_key)
        return d


# --------------------------------------------------------------------------- scoring


def _check_precision(precision: str) -> str:
    if precision not in ("fp32", "bf16"):
        raise ConfigError(f"precision must be 'fp32' or 'bf16', got {precision!r}")
    return precision


def _autocast(precision: str) -> contextlib.AbstractContextManager:
    if precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


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
    group: GroupModel, x: np.ndarray, batch_size: int = 16384, precision: Precision | None = None
) -> np.ndarray:
    """Every member's logit for every row: (N, M) float32, eval mode, no gradients.

    ``precision`` defaults to the group's own (what it was trained and early-stopped in).
    """
    group = check_group(group)
    precision = _check_precision(precision or group.precision)
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    return _predict(group, as_tensor(check_x(x, group.spec, "x")), batch_size, precision)


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
    precision: Precision | None = None,
) -> dict[str, Any]:
    """AUC and logloss of the merged probability, plus ``member_auc`` / ``member_logloss`` lists.

    ``precision`` defaults to the group's own, as in :func:`predict_logits`.
    """
    group = check_group(group)
    split = prepare((x, y), group.spec, "eval")
    if split.n == 0:
        raise DataFormatError("eval", found="0 rows", expected="at least one row to evaluate")
    precision = _check_precision(precision or group.precision)
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

    Loss: :func:`~ttsctr.training.group.group_loss` (BCE of the members' mean probability, Eq. 11)
    plus the group's :meth:`~ttsctr.training.GroupModel.auxiliary_loss` where a member has one
    (D-MoE's Eq. 8 term; ``train_loss`` in the history includes it).
    Optimiser: Adam (torch's fused CPU kernel) with ``weight_decay`` on dense parameters and
    ``embedding_regularizer`` on embedding tables; gradients clipped to ``clip_grad_norm``
    (over the whole group). After every epoch the validation AUC/logloss of the merged
    probability is computed in the config's precision; an epoch that does not strictly improve
    the best AUC multiplies the learning rate by ``lr_decay_factor`` (``ReduceLROnPlateau``, not
    below ``min_learning_rate``), and training stops after ``patience`` such epochs in a row or
    at ``max_epochs``. The best epoch's weights are loaded into ``group`` before returning, and
    ``group.precision`` is set to the config's precision.

    With ``checkpoint_dir`` the full state (weights, optimiser, scheduler, epoch, best weights,
    history) is written atomically to ``checkpoint_dir/train_state.pt`` after every epoch;
    calling ``train`` again with the same directory resumes there (bit-identical to not
    stopping), and a finished run returns its stored result at once. ``on_epoch_end`` receives
    each epoch's history record after its checkpoint is written.
    """
    group = check_group(group)
    if not isinstance(config, TrainConfig):
        raise ConfigError(f"config must be a TrainConfig, got {type(config).__name__}")
    tr = prepare(train, group.spec, "train")
    va = prepare(valid, group.spec, "valid")
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


def _make_optimizer(group: GroupModel, config: TrainConfig) -> torch.optim.Optimizer:
    embedding_ids = {id(m.weight) for m in group.modules() if isinstance(m, FeatureEmbedding)}
    embeddings = [p for p in group.parameters() if id(p) in embedding_ids]
    dense = [p for p in group.parameters() if id(p) not in embedding_ids]
    param_groups = [{"params": dense, "weight_decay": config.weight_decay}]
    if embeddings:
        param_groups.append({"params": embeddings, "weight_decay": config.embedding_regularizer})
    # The fused CPU kernel updates the (large, dense-gradient) embedding tables about 8x
    # faster than the default per-tensor loop; it is deterministic but not bit-equal to it.
    return torch.optim.Adam(param_groups, lr=config.learning_rate, fused=True)


class _Trainer:
    def __init__(
        self,
        group: GroupModel,
        tr: Split,
        va: Split,
        config: TrainConfig,
        checkpoint_dir: str | Path | None,
        on_epoch_end: Callable[[dict[str, Any]], None] | None,
    ) -> None:
        self.group, self.tr, self.va, self.config = group, tr, va, config
        self.path = Path(checkpoint_dir) / TRAIN_STATE_FILE if checkpoint_dir is not None else None
        self.on_epoch_end = on_epoch_end
        self.optimizer = _make_optimizer(group, config)
        self.scheduler = (
            torch.optim.lr_scheduler.ReduceLROnPlateau(
                self.optimizer,
                mode="max",
                factor=config.lr_decay_factor,
                patience=0,  # every epoch without a better validation AUC decays (FuxiCTR)
                threshold=0.0,
                threshold_mode="abs",
                min_lr=config.min_learning_rate,
            )
            if config.lr_decay_factor is not None
            else None
        )
        seeds = [m.seed for m in group.member_specs] if group.member_specs is not None else []
        if config.data_order == "member" and not seeds:
            raise ConfigError("data_order='member' needs a group built from MemberSpecs (build_group); use 'shared'")
        self.order_key = order_key(config.data_order, config.data_seed, seeds)
        self.batch_size = config.batch_size_for(tr.n)
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

    @functools.cached_property
    def _identity(self) -> dict[str, Any]:
        """What a resumed run must share with the checkpoint; fixed for the run (computed once: the
        spec identity hashes a sequence spec's content vectors)."""
        g = self.group
        return {
            "members": [m.to_dict() for m in g.member_specs] if g.member_specs is not None else None,
            "spec": spec_identity(g.spec),
            "shapes": {k: list(v.shape) for k, v in g.state_dict().items()},
            "config": self.config.trajectory(),
            "train": self.tr.fingerprint,
            "valid": self.va.fingerprint,
        }

    def _save(self) -> None:
        if self.path is None:
            return
        payload = {
            "format": TRAIN_STATE_FORMAT,
            "identity": self._identity,
            "epoch": self.epoch,
            "model": self.group.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
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
        atomic_save(payload, self.path)

    def _restore(self) -> bool:
        if self.path is None or not self.path.exists():
            return False
        try:
            ckpt = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - report what was found, whatever torch raised
            raise DataFormatError(self.path, found=f"an unreadable file ({exc})", expected="a ttsctr training checkpoint") from exc
        if not isinstance(ckpt, dict) or ckpt.get("format") != TRAIN_STATE_FORMAT:
            found = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
            raise DataFormatError(self.path, found=f"format {found!r}", expected=f"a {TRAIN_STATE_FORMAT} checkpoint")
        mine, theirs = self._identity, ckpt["identity"]
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
        if self.scheduler is not None:
            self.scheduler.load_state_dict(ckpt["scheduler"])
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
        self.group.precision = self.config.precision
        return TrainResult(
            history=[dict(h) for h in self.history],
            best_epoch=self.best_epoch,
            best_valid_auc=self.best_auc,
            best_valid_logloss=self.best_logloss,
            train_seconds=self.train_seconds,
            stopped_early=self.bad_epochs >= self.config.patience and self.epoch < self.config.max_epochs,
            epochs_completed=self.epoch,
            resumed_from_epoch=self.resumed_from,
            batch_size=self.batch_size,
            order_key=self.order_key,
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
        perm = torch.from_numpy(epoch_permutation(tr.n, self.order_key, epoch, cfg.data_order))
        torch.manual_seed(epoch_torch_seed(self.order_key, epoch))
        learning_rate = float(opt.param_groups[0]["lr"])
        params = [p for g in opt.param_groups for p in g["params"]]
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
        bs = self.batch_size
        try:
            for step, start in enumerate(range(0, tr.n, bs)):
                idx = perm[start : start + bs]
                xb = tr.x.index_select(0, idx)
                yb = tr.y.index_select(0, idx)
                with _autocast(cfg.precision):
                    logits = group(xb)  # (B, M)
                loss = group_loss(logits, yb)
                auxiliary = group.auxiliary_loss()  # e.g. D-MoE's de-correlation term (Eq. 8)
                if auxiliary is not None:
                    loss = loss + auxiliary
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.clip_grad_norm is not None:
                    nn.utils.clip_grad_norm_(params, cfg.clip_grad_norm)
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
                    f"lower learning_rate (now {learning_rate}) or use precision='fp32'"
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
            if self.scheduler is not None:
                self.scheduler.step(m["auc"])
            seconds = time.perf_counter() - t0
            record = {
                "epoch": epoch,
                "train_loss": float(train_loss),
                "valid_auc": float(m["auc"]),
                "valid_logloss": float(m["logloss"]),
                "learning_rate": learning_rate,
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


# --------------------------------------------------------------------------- helpers


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


def _clone_state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}
