"""Training of member groups for prediction merging (paper §2.3, Eq. 10-13, Algorithm 1).

A *group* is a set of CTR backbones trained jointly on the binary cross-entropy of their
averaged probability (grouped training, Eq. 11-12); independent training is the special case
of groups of one, so there is a single code path:

* :mod:`~ttsctr.training.config` — :class:`TrainConfig` and the named protocols (``reference``,
  the recipe of the reference CTR libraries, and ``tts4ctr``, the official code's);
* :mod:`~ttsctr.training.group` — :class:`MemberSpec`, :class:`GroupModel`, :func:`build_group`,
  :func:`group_loss`;
* :mod:`~ttsctr.training.trainer` — :func:`train` (Adam, plateau decay, clipping, early stopping,
  resumable), :func:`predict_logits`, :func:`evaluate`;
* :mod:`~ttsctr.training.checkpoint` — :func:`save_group` / :func:`load_group`;
* :mod:`~ttsctr.training.inputs` — input checks and the per-member data order.
"""

from ttsctr.training.checkpoint import TRAIN_STATE_FILE, checkpoint_data_version, load_group, save_group
from ttsctr.training.config import DATA_ORDERS, PROTOCOLS, TrainConfig
from ttsctr.training.group import (
    DEFAULT_WEIGHT_INIT,
    GroupModel,
    MemberSpec,
    build_group,
    group_loss,
    merged_probability,
)
from ttsctr.training.inputs import epoch_permutation, order_key
from ttsctr.training.trainer import TrainResult, evaluate, predict_logits, train

__all__ = [
    "MemberSpec",
    "TrainConfig",
    "TrainResult",
    "GroupModel",
    "PROTOCOLS",
    "DATA_ORDERS",
    "DEFAULT_WEIGHT_INIT",
    "build_group",
    "group_loss",
    "merged_probability",
    "train",
    "predict_logits",
    "evaluate",
    "save_group",
    "load_group",
    "epoch_permutation",
    "order_key",
    "TRAIN_STATE_FILE",
]
