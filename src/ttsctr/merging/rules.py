"""Merge rules (paper §2.3, Eq. 10, 11, 13).

* :func:`merge_probabilities` (Eq. 10, the paper's rule), :func:`merge_logits`
  (``sigmoid(mean logit)``, an alternative) and :func:`merge_groups` (Eq. 13, the size-weighted
  mean of group predictions).
* :data:`MERGE_RULES` names the rules for configuration (``ensemble.merge_rule``); every entry
  maps member *logits* ``(N, M)`` to merged probabilities ``(N,)``. The pipelines, the scaling
  tables and the served MLflow model all merge through these entries, so what is measured is
  what is served.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ttsctr.errors import ConfigError

__all__ = [
    "MERGE_RULES",
    "MergeRule",
    "get_rule",
    "merge_groups",
    "merge_logits",
    "merge_probabilities",
    "sigmoid",
]


def sigmoid(x: Any) -> np.ndarray:
    """Numerically stable logistic function; keeps a floating dtype, ints become float64."""
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)


def _logit(p: np.ndarray) -> np.ndarray:
    eps = np.finfo(p.dtype).eps
    p = np.clip(p, eps, 1 - eps)
    return np.log(p) - np.log1p(-p)


def _as_2d(name: str, x: Any) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 2 or a.shape[1] < 1:
        raise ConfigError(f"{name}: expected an (N, M) array with M >= 1 members, got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float64)
    return a


def merge_probabilities(probs: Any) -> np.ndarray:
    """Eq. 10: ``y~ = (1/M) sum_m y^(m)``, the row mean of member probabilities ``(N, M)``.

    Returns float64 ``(N,)``. Raises :class:`ConfigError` for a non-2-D input or values outside
    ``[0, 1]`` (logits passed by mistake).
    """
    a = _as_2d("merge_probabilities", probs)
    if a.size and not (np.all(a >= 0) and np.all(a <= 1)):
        raise ConfigError(
            "merge_probabilities: values must be probabilities in [0, 1] "
            f"(found min {np.nanmin(a):.4g}, max {np.nanmax(a):.4g}); use merge_logits for logits"
        )
    return a.mean(axis=1, dtype=np.float64)


def merge_logits(logits: Any) -> np.ndarray:
    """Alternative rule: ``sigmoid(mean_m logit^(m))`` (geometric-mean-of-odds merge).

    Returns float64 ``(N,)`` probabilities.
    """
    a = _as_2d("merge_logits", logits)
    return sigmoid(a.mean(axis=1, dtype=np.float64))


def merge_groups(group_probs: Sequence[Any], group_sizes: Sequence[int]) -> np.ndarray:
    """Eq. 13: ``y~ = (1/M) sum_i |M_i| * y_g^(i)`` with ``M = sum_i |M_i|``.

    ``group_probs[i]`` is group ``i``'s merged prediction ``(N,)`` (Eq. 11), ``group_sizes[i]``
    its number of members. Returns float64 ``(N,)``; with equal sizes this is the plain mean.
    """
    sizes = list(group_sizes)
    if len(group_probs) != len(sizes) or not sizes:
        raise ConfigError(
            f"merge_groups: {len(group_probs)} group predictions but {len(sizes)} group sizes "
            "(need one size per group, at least one group)"
        )
    for s in sizes:
        if isinstance(s, bool) or int(s) != s or s < 1:
            raise ConfigError(f"merge_groups: group sizes must be positive integers, got {sizes}")
    total = float(sum(int(s) for s in sizes))
    acc: np.ndarray | None = None
    n: int | None = None
    for i, (gp, s) in enumerate(zip(group_probs, sizes)):
        v = np.asarray(gp, dtype=np.float64)
        if v.ndim != 1 or (n is not None and v.shape[0] != n):
            raise ConfigError(
                f"merge_groups: group {i} prediction has shape {v.shape}; expected ({n if n is not None else 'N'},)"
            )
        n = v.shape[0]
        acc = v * (int(s) / total) if acc is None else acc + v * (int(s) / total)
    assert acc is not None
    return acc


def _identity(x: np.ndarray) -> np.ndarray:
    return x


@dataclass(frozen=True)
class MergeRule:
    """A merge rule as "transform, average, transform back".

    ``to_space`` maps member logits into the space where predictions are averaged,
    ``to_prob`` maps an average back to a probability. ``mean_prob`` averages probabilities
    (Eq. 10/11/13), ``mean_logit`` averages logits. Calling the rule on ``(N, M)`` logits gives
    the flat merge of all ``M`` members. Size-weighted group merging (Eq. 13) in the same space
    equals the flat merge over all members, for both rules.
    """

    name: str
    to_space: Callable[[np.ndarray], np.ndarray]
    to_prob: Callable[[np.ndarray], np.ndarray]

    def __call__(self, logits: Any) -> np.ndarray:
        a = _as_2d(f"merge rule {self.name!r}", logits)
        return np.asarray(self.to_prob(self.to_space(a).mean(axis=1, dtype=np.float64)), dtype=np.float64)


MERGE_RULES: Mapping[str, MergeRule] = {
    "mean_prob": MergeRule("mean_prob", sigmoid, _identity),
    "mean_logit": MergeRule("mean_logit", _identity, sigmoid),
}


def get_rule(rule: str | MergeRule) -> MergeRule:
    """The :class:`MergeRule` named ``rule`` (or ``rule`` itself); :class:`ConfigError` if unknown."""
    if isinstance(rule, MergeRule):
        return rule
    try:
        return MERGE_RULES[rule]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown merge rule {rule!r}; expected one of {sorted(MERGE_RULES)}") from None


_get_rule = get_rule  # the name analysis.py and older callers import
