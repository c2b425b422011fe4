"""Training settings: :class:`TrainConfig` and the named protocols it can start from.

Two protocols are built in (``TrainConfig.from_dict({"protocol": name, ...})`` starts from the
protocol's values and applies the other keys on top):

``reference`` (the default) — the recipe of the reference CTR libraries (FuxiCTR):

* Xavier-normal weights and zero biases for every dense layer; embeddings keep N(0, 1e-4);
* each member's seed decides its initial weights, its data order and its dropout masks;
* L2 of 0.01 on the embedding tables (FuxiCTR's ``embedding_regularizer``; its tuned value for
  MovieLens, where it lifts DCNv2's test AUC from 0.781 to 0.792 here; logs whose ids are all
  frequent, such as full Criteo, are usually tuned lower, 1e-5..1e-3), none on dense weights;
* Adam, learning rate 1e-3, multiplied by 0.1 after every epoch that does not improve the
  validation AUC (FuxiCTR's ``reduce_lr_on_plateau``), never below 1e-6;
* gradient-norm clipping at 10;
* early stopping on validation AUC with patience 2 and an epoch cap of 100, so that early
  stopping, not the cap, ends training; the best epoch's weights are kept;
* batch size 4096, halved while an epoch would have fewer than 50 optimiser steps (not below 32):
  a 9,000-row log then trains with batch 128 instead of two steps per epoch; MovieLens-100K
  (80k training rows) with 1024, full Criteo with 4096.

``tts4ctr`` — what the paper's official code does in its example run: every member reads the
training rows in file order (no shuffle; only the initialisation differs between seeds), torch's
default initialisation, Adam with learning rate 1e-4, batch 4096, no L2, no learning-rate decay
or clipping, one epoch (with more epochs it stops at the first one that does not improve the
validation AUC: patience 1).
Running both on the same data shows what the training recipe does to member strength and
diversity.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Mapping

import numpy as np

from ttsctr.errors import ConfigError
from ttsctr.layers.init import WEIGHT_INIT_SCHEMES

__all__ = ["TrainConfig", "PROTOCOLS", "DATA_ORDERS"]

DATA_ORDERS = ("member", "shared", "file")

PROTOCOLS: dict[str, dict[str, Any]] = {
    "reference": {},
    "tts4ctr": {
        "learning_rate": 1e-4,
        "weight_decay": 0.0,
        "embedding_regularizer": 0.0,
        "batch_size": 4096,
        "min_steps_per_epoch": None,
        "max_epochs": 1,
        "patience": 1,
        "lr_decay_factor": None,
        "clip_grad_norm": None,
        "data_order": "file",
        "weight_init": "torch_default",
    },
}


@dataclass
class TrainConfig:
    """Optimisation settings of one group (see the module docstring for the two protocols).

    ``weight_decay`` is Adam's (coupled) L2 on the dense (non-embedding) parameters;
    ``embedding_regularizer`` the same on the embedding tables: the gradient ``λ θ`` of FuxiCTR's
    ``net_regularizer`` / ``embedding_regularizer`` loss term ``λ/2 ||θ||²``, added by Adam after
    gradient clipping (FuxiCTR clips it with the loss gradient; they differ only when clipping
    triggers). Members of different backbones with the same seed share their data order; the
    architecture is their difference.
    ``data_order``: ``member`` — the group's epoch ``e`` visits rows in
    ``default_rng([data_seed, *member_seeds, e])`` order and its dropout masks come from the same
    key, so members of different seeds see different orders and masks; ``shared`` — every group
    uses ``default_rng([data_seed, e])`` (only initialisation differs between members, the
    paper's §3.2.2 ablation); ``file`` — rows in file order, no shuffle (the official code).
    Fields in :attr:`TRAJECTORY_FIELDS` decide the trajectory: a resume must not change them;
    ``max_epochs``, ``patience`` and the others may change between a run and its resume.
    """

    protocol: str = "reference"
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    embedding_regularizer: float = 0.01
    batch_size: int = 4096
    min_steps_per_epoch: int | None = 50
    min_batch_size: int = 32
    eval_batch_size: int = 16384
    max_epochs: int = 100
    patience: int = 2
    lr_decay_factor: float | None = 0.1
    min_learning_rate: float = 1e-6
    clip_grad_norm: float | None = 10.0
    data_order: Literal["member", "shared", "file"] = "member"
    data_seed: int = 0
    weight_init: Literal["xavier_normal", "xavier_uniform", "torch_default"] = "xavier_normal"
    num_threads: int | None = None
    precision: Literal["fp32", "bf16"] = "fp32"
    progress: bool = True

    TRAJECTORY_FIELDS: ClassVar[tuple[str, ...]] = (
        "learning_rate",
        "weight_decay",
        "embedding_regularizer",
        "batch_size",
        "min_steps_per_epoch",
        "min_batch_size",
        "lr_decay_factor",
        "min_learning_rate",
        "clip_grad_norm",
        "data_order",
        "data_seed",
        "weight_init",
        "precision",
    )

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ConfigError(f"TrainConfig.protocol must be one of {sorted(PROTOCOLS)}, got {self.protocol!r}")
        for name in ("batch_size", "min_batch_size", "eval_batch_size", "max_epochs", "patience"):
            self._int(name, 1)
        self._int("data_seed", 0)
        if self.num_threads is not None:
            self._int("num_threads", 1)
        if self.min_steps_per_epoch is not None:
            self._int("min_steps_per_epoch", 1)
        self._number("learning_rate", positive=True)
        self._number("min_learning_rate", positive=False)
        for name in ("weight_decay", "embedding_regularizer"):
            self._number(name, positive=False)
        if self.clip_grad_norm is not None:
            self._number("clip_grad_norm", positive=True)
        if self.lr_decay_factor is not None:
            self._number("lr_decay_factor", positive=True)
            if self.lr_decay_factor >= 1:
                raise ConfigError(f"TrainConfig.lr_decay_factor must be in (0, 1) or null, got {self.lr_decay_factor!r}")
        if self.data_order not in DATA_ORDERS:
            raise ConfigError(f"TrainConfig.data_order must be one of {list(DATA_ORDERS)}, got {self.data_order!r}")
        if self.weight_init not in WEIGHT_INIT_SCHEMES:
            raise ConfigError(f"TrainConfig.weight_init must be one of {list(WEIGHT_INIT_SCHEMES)}, got {self.weight_init!r}")
        if self.precision not in ("fp32", "bf16"):
            raise ConfigError(f"TrainConfig.precision must be 'fp32' or 'bf16', got {self.precision!r}")
        self.progress = bool(self.progress)

    def _int(self, name: str, minimum: int) -> None:
        v = getattr(self, name)
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
            raise ConfigError(f"TrainConfig.{name} must be an integer >= {minimum}, got {v!r}")
        setattr(self, name, int(v))

    def _number(self, name: str, positive: bool) -> None:
        v = getattr(self, name)
        if isinstance(v, str):  # PyYAML reads ``1e-3`` (no dot) as a string
            with contextlib.suppress(ValueError):
                v = float(v)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0 or (v == 0 and positive):
            raise ConfigError(f"TrainConfig.{name} must be a finite number {'> 0' if positive else '>= 0'}, got {v!r}")
        setattr(self, name, float(v))

    @classmethod
    def from_dict(cls, params: Mapping[str, Any]) -> "TrainConfig":
        """From a parameters mapping (e.g. Kedro ``params:tts.training``); unknown keys are an error.

        ``protocol`` (default ``reference``) picks the starting values; every other key overrides one.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ConfigError(f"training parameters: unknown keys {unknown}; known keys: {sorted(known)}")
        protocol = params.get("protocol", "reference")
        if protocol not in PROTOCOLS:
            raise ConfigError(f"training parameters: protocol must be one of {sorted(PROTOCOLS)}, got {protocol!r}")
        return cls(**{**PROTOCOLS[protocol], **dict(params), "protocol": protocol})

    @classmethod
    def from_protocol(cls, protocol: str, **overrides: Any) -> "TrainConfig":
        return cls.from_dict({"protocol": protocol, **overrides})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def trajectory(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.TRAJECTORY_FIELDS}

    def batch_size_for(self, n_rows: int) -> int:
        """Batch size used on ``n_rows`` training rows: ``batch_size`` halved while an epoch
        would have fewer than ``min_steps_per_epoch`` steps, but not below ``min_batch_size``."""
        b = self.batch_size
        if self.min_steps_per_epoch is None:
            return b
        while b > self.min_batch_size and math.ceil(n_rows / b) < self.min_steps_per_epoch:
            b = max(self.min_batch_size, b // 2)
        return b
