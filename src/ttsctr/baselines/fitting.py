"""Train a group of members once and keep what every baseline table needs of it.

The baseline studies (parameter scaling, width scaling, model merging, orthogonality,
training-free tricks, efficiency) train many small groups. :func:`fit_group` trains one group
(:func:`ttsctr.training.train`) on the published splits and stores, under
``<root>/<config hash>/``: the weights (``group.pt``), the members' logits on the validation and
test splits (``logits.npz``) and a result record (``result.json``, written last). The hash covers
the members, the training settings and the data version, so a finished fit is reused, an
interrupted one resumes from its epoch checkpoint, and a re-encoded dataset trains afresh.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ttsctr.data.io import Splits, atomic_file, atomic_write_json, load_splits
from ttsctr.baselines.settings import check_keys
from ttsctr.errors import ConfigError
from ttsctr.experiment import config_hash
from ttsctr.flops import model_cost
from ttsctr.merging.rules import sigmoid
from ttsctr.metrics import log_loss, roc_auc
from ttsctr.training import GroupModel, MemberSpec, TrainConfig, build_group, load_group, predict_logits, save_group, train
from ttsctr.training.group import merged_probability

__all__ = ["Splits", "load_splits", "FittedGroup", "fit_group", "scores", "merged_test_probability",
           "baseline_training", "fits_root"]


def merged_test_probability(groups: Sequence["FittedGroup"], split: str = "test") -> np.ndarray:
    """Prediction merging (Eq. 10) of every member of ``groups`` on ``split`` (test or validation)."""
    attr = "test_logits" if split == "test" else "valid_logits"
    return merged_probability(np.concatenate([getattr(g, attr) for g in groups], axis=1))


def scores(labels: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    return {"auc": roc_auc(labels, probs), "logloss": log_loss(labels, probs)}


@dataclass
class FittedGroup:
    """A trained group and its stored logits: ``valid_logits`` / ``test_logits`` are (N, M)."""

    members: list[MemberSpec]
    config_hash: str
    directory: Path
    result: dict[str, Any]
    valid_logits: np.ndarray
    test_logits: np.ndarray

    @property
    def test_probability(self) -> np.ndarray:
        return merged_probability(self.test_logits)

    @property
    def valid_probability(self) -> np.ndarray:
        return merged_probability(self.valid_logits)

    def load(self) -> GroupModel:
        return load_group(self.directory / "group.pt")[0]


def _read(directory: Path, members: list[MemberSpec], chash: str) -> FittedGroup | None:
    result_path = directory / "result.json"
    if not result_path.exists():
        return None
    result = json.loads(result_path.read_text())
    with np.load(directory / "logits.npz") as logits:
        return FittedGroup(members, chash, directory, result, logits["validation"], logits["test"])


def fit_group(
    splits: Splits,
    members: Sequence[MemberSpec | Mapping[str, Any]],
    training: Mapping[str, Any],
    root: str | Path,
    *,
    on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
    reuse_from: Sequence[str | Path] = (),
) -> FittedGroup:
    """Train ``members`` as one group (one member: independent training) or reuse a finished fit.

    ``training`` is a :meth:`TrainConfig.from_dict` mapping. ``on_epoch_end`` (e.g. an Optuna
    pruning callback) may raise to stop training; the epoch checkpoint stays for a resume.
    ``reuse_from``: other roots whose finished fit of the same hash is read instead of training
    (another comparison's trained groups; nothing is written there).
    """
    members = [m if isinstance(m, MemberSpec) else MemberSpec.from_dict(m) for m in members]
    config = TrainConfig.from_dict(dict(training))
    trajectory = {**config.trajectory(), "max_epochs": config.max_epochs, "patience": config.patience}
    chash = config_hash({"members": [m.to_dict() for m in members], "training": trajectory, "data": splits.data_version})
    directory = Path(root) / chash
    for folder in (directory, *(Path(r) / chash for r in reuse_from)):
        if (fitted := _read(folder, members, chash)) is not None:
            return fitted
    group = build_group(splits.spec, members, weight_init=config.weight_init)
    started = time.perf_counter()
    fit = train(group, splits.train, splits.validation, config, checkpoint_dir=directory / "checkpoint",
                on_epoch_end=on_epoch_end)
    valid_logits = predict_logits(group, splits.validation[0], batch_size=config.eval_batch_size)
    test_logits = predict_logits(group, splits.test[0], batch_size=config.eval_batch_size)
    save_group(group, members, splits.spec, directory / "group.pt", data_version=splits.data_version)
    with atomic_file(directory / "logits.npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, validation=valid_logits, test=test_logits)
    costs = [model_cost(m) for m in group.members]
    test = scores(splits.test[1], merged_probability(test_logits))
    result = {
        "members": [m.to_dict() for m in members],
        "config_hash": chash,
        "data_version": splits.data_version,
        "training": config.to_dict(),
        "best_epoch": fit.best_epoch,
        "epochs_completed": fit.epochs_completed,
        "valid_auc": fit.best_valid_auc,
        "valid_logloss": fit.best_valid_logloss,
        "test_auc": test["auc"],
        "test_logloss": test["logloss"],
        "member_test_auc": [roc_auc(splits.test[1], sigmoid(test_logits[:, i].astype(np.float64))) for i in range(test_logits.shape[1])],
        "train_seconds": fit.train_seconds,
        "seconds_per_epoch": fit.train_seconds / max(1, fit.epochs_completed),
        "wall_seconds": time.perf_counter() - started,
        "batch_size": fit.batch_size,
        "flops_per_row": sum(c.flops_per_row for c in costs),
        "dense_params": sum(c.dense_params for c in costs),
        "embedding_params": sum(c.embedding_params for c in costs),
        "history": fit.history,
    }
    atomic_write_json(directory / "result.json", result)
    return FittedGroup(members, chash, directory, result, valid_logits, test_logits)


def baseline_training(tts_training: Mapping[str, Any], baselines: Mapping[str, Any]) -> dict[str, Any]:
    """The training settings of the baseline studies: ``tts.training`` with ``baselines.training``
    on top (e.g. a lower epoch cap for a CPU run), progress bars off."""
    check_keys(baselines, ("preset", "models", "training"), "baselines")
    overrides = baselines.get("training") or {}
    if not isinstance(overrides, Mapping):
        raise ConfigError(f"baselines.training must be a mapping of training settings, got {overrides!r}")
    settings = {**dict(tts_training), **dict(overrides), "progress": False}
    TrainConfig.from_dict(settings)  # unknown keys and bad values fail here, before any training
    return settings


def fits_root(baselines: Mapping[str, Any], dataset: str, comparison: str) -> Path:
    """Where a comparison keeps its trained groups: ``<baselines.models>/baselines/<dataset>/<comparison>``
    (one folder per comparison: one DVC output each)."""
    return Path(baselines.get("models", "data/06_models")) / "baselines" / dataset / comparison
