"""Prediction merging (paper §2.3, Eq. 10–13), significance testing and scaling evaluation.

Plain library code, no Kedro. The pieces:

* merge rules: :func:`merge_probabilities` (Eq. 10, the paper's rule), :func:`merge_logits`
  (``sigmoid(mean logit)``, an alternative) and :func:`merge_groups` (Eq. 13, the
  size-weighted mean of group predictions). :data:`MERGE_RULES` names the rules for
  configuration; every entry maps member *logits* ``(N, M)`` to merged probabilities ``(N,)``.
* :func:`ttest_two_sided`: Student / Welch two-sample t-test in numpy (no scipy), numerically
  equal to ``scipy.stats.ttest_ind``.
* :class:`MemberPool`: the evaluation-split logits of all trained members, their labels and
  how the members were trained (groups, Table 3) and which architecture they are (Table 2).
* :func:`draw_members` / :func:`scaling_table`: merged ensembles of increasing scale, drawn
  from the pool, scored by AUC and logloss, tested against the 1x backbone (Tables 1–3).

Scale, units and draws
----------------------
``scale`` is the *equivalent scale* of the paper: the number of members merged **per
architecture**. A homogeneous pool (one architecture) at scale ``K`` merges ``K`` members; a
heterogeneous pool of ``F`` architectures at scale ``K`` merges ``K`` members of each,
``n_members = K * F`` (Table 2's "1x" row of Wukong+Rankmixer is one Wukong plus one
RankMixer). Members trained jointly (grouped training, Eq. 11) are only ever drawn as whole
groups, so a scale must be a multiple of the group size ``g``; the smallest drawable scale is
the pool's :attr:`MemberPool.unit_scale` (1 for independently trained members).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from ttsctr.errors import ConfigError
from ttsctr.metrics import log_loss, roc_auc

__all__ = [
    "MERGE_RULES",
    "MemberPool",
    "MergeRule",
    "SCALING_COLUMNS",
    "draw_members",
    "merge_groups",
    "merge_logits",
    "merge_probabilities",
    "merge_pool",
    "scaling_table",
    "sigmoid",
    "ttest_two_sided",
]

SCALING_COLUMNS = (
    "scale",
    "n_members",
    "auc_mean",
    "auc_std",
    "logloss_mean",
    "logloss_std",
    "p_value",
    "significant",
)


# --------------------------------------------------------------------------------------------
# Merge rules (Eq. 10, 11, 13)
# --------------------------------------------------------------------------------------------


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


def _get_rule(rule: str | MergeRule) -> MergeRule:
    if isinstance(rule, MergeRule):
        return rule
    try:
        return MERGE_RULES[rule]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown merge rule {rule!r}; expected one of {sorted(MERGE_RULES)}") from None


# --------------------------------------------------------------------------------------------
# Two-sided two-sample t-test (numpy / math only)
# --------------------------------------------------------------------------------------------


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 100_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-16:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta ``I_x(a, b)``."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    front = math.exp(log_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def _t_two_sided_p(t: float, df: float) -> float:
    """``P(|T_df| >= |t|) = I_{df/(df+t^2)}(df/2, 1/2)``."""
    if math.isnan(t) or math.isnan(df) or df <= 0:
        return float("nan")
    if math.isinf(t):
        return 0.0
    x = df / (df + t * t)
    return min(1.0, max(0.0, _betainc(0.5 * df, 0.5, x)))


def ttest_two_sided(a: Any, b: Any, equal_var: bool = True) -> tuple[float, float]:
    """Two-sided two-sample t-test of ``mean(a) == mean(b)``; returns ``(t, p)``.

    ``equal_var=True``: Student's test with pooled variance, ``df = n_a + n_b - 2``.
    ``equal_var=False``: Welch's test with Welch–Satterthwaite ``df``. The p-value comes from the
    regularised incomplete beta function (own continued-fraction code, no scipy). The result
    equals ``scipy.stats.ttest_ind(a, b, equal_var=...)`` including its degenerate cases:

    * an empty sample, Student with ``n_a + n_b < 3``, Welch with a sample of size 1, or any NaN
      in the data: ``(nan, nan)``;
    * both samples of zero variance (e.g. identical AUCs): the standard error is 0, so equal
      means give ``(nan, nan)`` and different means give ``(±inf, 0.0)``;
    * one sample of zero variance is not degenerate (the other one carries the variance).
    """
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    na, nb = x.size, y.size
    nan = float("nan")
    if na == 0 or nb == 0:
        return nan, nan
    ma, mb = float(x.mean()), float(y.mean())
    ssa = float(np.sum((x - ma) ** 2))
    ssb = float(np.sum((y - mb) ** 2))
    diff = ma - mb
    if equal_var:
        df = float(na + nb - 2)
        if df <= 0:
            return nan, nan
        se2 = (ssa + ssb) / df * (1.0 / na + 1.0 / nb)
    else:
        if na < 2 or nb < 2:
            return nan, nan
        va, vb = ssa / (na - 1) / na, ssb / (nb - 1) / nb
        se2 = va + vb
        df = se2 * se2 / (va * va / (na - 1) + vb * vb / (nb - 1)) if se2 > 0 else 1.0
    if math.isnan(se2) or math.isnan(diff):
        return nan, nan
    if se2 == 0.0:
        if diff == 0.0:
            return nan, nan
        return math.copysign(math.inf, diff), 0.0
    t = diff / math.sqrt(se2)
    return t, _t_two_sided_p(t, df)


# --------------------------------------------------------------------------------------------
# Member pool
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Stratum:
    """Groups drawn together: ``groups`` (ids), each contributing ``per_family`` members to
    every family of the stratum."""

    groups: np.ndarray
    per_family: int
    label: str


@dataclass(frozen=True, eq=False)
class MemberPool:
    """Predictions of all trained members on one split, and how they were trained.

    Parameters
    ----------
    logits:
        ``(N, M)`` float logits, column ``m`` = member ``m``. Kept as given (float32 stays
        float32 to save memory; computations accumulate in float64).
    labels:
        ``(N,)`` click labels, 0/1 (bool or integer); both classes must be present.
    group_of_member:
        ``(M,)`` integer group id per member (grouped training, Eq. 11: the members of one group
        were trained jointly and are always merged and drawn together). ``None``: every member
        is its own group (independent training, g = 1).
    family_of_member:
        ``(M,)`` architecture label per member for heterogeneous pools (Table 2). ``None``:
        homogeneous. Groups must either all hold the same number of members of *every* family
        (jointly trained mixed groups) or each hold a single family.
    member_names:
        Optional ``(M,)`` names (e.g. ``"dcnv2/seed3"``), default ``"m0", "m1", ...``.
    """

    logits: np.ndarray
    labels: np.ndarray
    group_of_member: np.ndarray | None = None
    family_of_member: np.ndarray | None = None
    member_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        logits = _as_2d("MemberPool.logits", self.logits)
        n, m = logits.shape
        if n == 0:
            raise ConfigError("MemberPool: logits have no rows")
        if not np.all(np.isfinite(logits)):
            bad = np.argwhere(~np.isfinite(logits))[0]
            raise ConfigError(
                f"MemberPool: logits must be finite; row {bad[0]}, member {bad[1]} is {logits[bad[0], bad[1]]}"
            )
        labels = np.asarray(self.labels).ravel()
        if labels.shape[0] != n:
            raise ConfigError(f"MemberPool: {labels.shape[0]} labels for {n} logit rows")
        if labels.dtype != bool:
            uniq = np.unique(labels)
            if not np.all(np.isin(uniq, (0, 1))):
                raise ConfigError(f"MemberPool: labels must be 0/1, found values {uniq[:10].tolist()}")
            labels = labels == 1
        n_pos = int(labels.sum())
        if n_pos == 0 or n_pos == n:
            raise ConfigError(
                f"MemberPool: labels hold a single class ({n_pos} positives of {n}); AUC is undefined"
            )
        groups = np.arange(m) if self.group_of_member is None else np.asarray(self.group_of_member).ravel()
        if groups.shape[0] != m:
            raise ConfigError(f"MemberPool: group_of_member has {groups.shape[0]} entries for {m} members")
        if not np.issubdtype(groups.dtype, np.integer):
            raise ConfigError(f"MemberPool: group_of_member must hold integers, got dtype {groups.dtype}")
        _, group_codes = np.unique(groups, return_inverse=True)
        if self.family_of_member is None:
            fam_names: tuple[str, ...] = ("",)
            fam_codes = np.zeros(m, dtype=np.int64)
        else:
            fam = np.asarray(self.family_of_member).ravel()
            if fam.shape[0] != m:
                raise ConfigError(f"MemberPool: family_of_member has {fam.shape[0]} entries for {m} members")
            uniq_f, fam_codes = np.unique(fam.astype(str), return_inverse=True)
            fam_names = tuple(str(f) for f in uniq_f)
        if self.member_names is None:
            names = tuple(f"m{i}" for i in range(m))
        else:
            names = tuple(str(s) for s in self.member_names)
            if len(names) != m:
                raise ConfigError(f"MemberPool: {len(names)} member names for {m} members")
            if len(set(names)) != m:
                raise ConfigError("MemberPool: member names must be unique")
        object.__setattr__(self, "logits", logits)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "group_of_member", group_codes.astype(np.int64))
        object.__setattr__(self, "family_of_member", fam_codes.astype(np.int64))
        object.__setattr__(self, "member_names", names)
        object.__setattr__(self, "_family_names", fam_names)
        self._strata  # validate the group/family structure now  # noqa: B018

    # -- constructors -------------------------------------------------------------------------
    @classmethod
    def from_probabilities(cls, probs: Any, labels: Any, **kwargs: Any) -> "MemberPool":
        """Build from ``(N, M)`` probabilities (clipped to ``[eps, 1 - eps]`` before the logit)."""
        p = _as_2d("MemberPool.from_probabilities", probs)
        if not (np.all(p >= 0) and np.all(p <= 1)):
            raise ConfigError("MemberPool.from_probabilities: values must be in [0, 1]")
        return cls(_logit(p), labels, **kwargs)

    @classmethod
    def grouped(cls, logits: Any, labels: Any, group_size: int, **kwargs: Any) -> "MemberPool":
        """Members ``[0, g)`` form group 0, ``[g, 2g)`` group 1, ... (``M`` divisible by ``g``)."""
        a = _as_2d("MemberPool.grouped", logits)
        m = a.shape[1]
        if int(group_size) != group_size or group_size < 1 or m % group_size:
            raise ConfigError(f"MemberPool.grouped: group size {group_size} does not divide M = {m} members")
        return cls(a, labels, group_of_member=np.arange(m) // int(group_size), **kwargs)

    # -- shape ---------------------------------------------------------------------------------
    @property
    def n_rows(self) -> int:
        return int(self.logits.shape[0])

    @property
    def n_members(self) -> int:
        return int(self.logits.shape[1])

    @property
    def family_names(self) -> tuple[str, ...]:
        return self._family_names  # type: ignore[attr-defined]

    @property
    def n_families(self) -> int:
        return len(self.family_names)

    @cached_property
    def groups(self) -> tuple[np.ndarray, ...]:
        """Member indices of each group, in group-id order."""
        order = np.argsort(self.group_of_member, kind="stable")
        bounds = np.flatnonzero(np.diff(self.group_of_member[order])) + 1
        return tuple(np.split(order, bounds))

    @property
    def n_groups(self) -> int:
        return len(self.groups)

    @cached_property
    def group_sizes(self) -> np.ndarray:
        return np.array([g.size for g in self.groups], dtype=np.int64)

    @cached_property
    def _strata(self) -> tuple[_Stratum, ...]:
        comp = np.zeros((self.n_groups, self.n_families), dtype=np.int64)
        np.add.at(comp, (self.group_of_member, self.family_of_member), 1)
        all_groups = np.arange(self.n_groups)
        if np.all(comp == comp[0]):
            per = np.unique(comp[0])
            if per.size != 1:
                raise ConfigError(
                    "MemberPool: each group holds "
                    + ", ".join(f"{c} x {f}" for f, c in zip(self.family_names, comp[0]))
                    + "; mixed groups must hold the same number of members of every architecture"
                )
            return (_Stratum(all_groups, int(per[0]), "all"),)
        if np.all((comp > 0).sum(axis=1) == 1):
            strata = []
            for f, name in enumerate(self.family_names):
                gids = all_groups[comp[:, f] > 0]
                sizes = np.unique(comp[gids, f])
                if sizes.size != 1:
                    raise ConfigError(
                        f"MemberPool: groups of architecture {name!r} have different sizes {sizes.tolist()}; "
                        "grouped training uses groups of equal size"
                    )
                strata.append(_Stratum(gids, int(sizes[0]), name))
            return tuple(strata)
        raise ConfigError(
            "MemberPool: some groups mix architectures and others do not; every group must either hold "
            "one architecture or the same mix of all of them"
        )

    @property
    def unit_scale(self) -> int:
        """Smallest drawable scale: the group size (lcm over architectures drawn separately)."""
        return math.lcm(*(s.per_family for s in self._strata))

    @property
    def max_scale(self) -> int:
        """Largest drawable scale (members per architecture)."""
        return min(s.per_family * s.groups.size for s in self._strata)

    def valid_scales(self) -> list[int]:
        u = self.unit_scale
        return [k for k in range(u, self.max_scale + 1, u) if self._check_scale(k, raise_=False)]

    def _check_scale(self, scale: Any, raise_: bool = True) -> bool:
        if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
            if raise_:
                raise ConfigError(f"scale must be a positive integer, got {scale!r}")
            return False
        for s in self._strata:
            what = "" if s.label in ("all", "") else f" of architecture {s.label!r}"
            if scale % s.per_family:
                if raise_:
                    raise ConfigError(
                        f"scale {scale} is not a multiple of the group size {s.per_family}{what}: grouped "
                        f"members are merged as whole groups; valid scales for this pool: {self.valid_scales()}"
                    )
                return False
            if scale // s.per_family > s.groups.size:
                if raise_:
                    raise ConfigError(
                        f"scale {scale} needs {scale} members{what} but the pool has only "
                        f"{s.per_family * s.groups.size}; valid scales for this pool: {self.valid_scales()}"
                    )
                return False
        return True

    def n_members_at(self, scale: int) -> int:
        """Members merged at ``scale``: ``scale`` per architecture."""
        self._check_scale(scale)
        return int(scale) * self.n_families

    # -- views -----------------------------------------------------------------------------------
    def probabilities(self, members: Any = None) -> np.ndarray:
        """Member probabilities ``sigmoid(logits)``, ``(N, M)`` or ``(N, len(members))``."""
        a = self.logits if members is None else self.logits[:, np.asarray(members)]
        return sigmoid(a)

    def take_rows(self, rows: Any) -> "MemberPool":
        """The same members on a subset of rows (e.g. a selection or evaluation split)."""
        return MemberPool(
            self.logits[np.asarray(rows)],
            self.labels[np.asarray(rows)],
            group_of_member=self.group_of_member,
            family_of_member=np.asarray(self.family_names)[self.family_of_member]
            if self.family_names != ("",)
            else None,
            member_names=self.member_names,
        )


# --------------------------------------------------------------------------------------------
# Draws and merged evaluation
# --------------------------------------------------------------------------------------------


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def _draw_groups(pool: MemberPool, scale: int, draws: int, seed: int) -> np.ndarray:
    """``(draws, groups_per_draw)`` group ids, each row sorted.

    Per stratum: a seeded permutation of its groups is cut into disjoint chunks of
    ``scale / per_family`` groups; when ``draws`` exceeds the number of chunks, further seeded
    permutations continue. The RNG is seeded by ``(seed, scale, stratum)``, so a scale's draws
    do not depend on which other scales are evaluated.
    """
    pool._check_scale(scale)
    if isinstance(draws, bool) or not isinstance(draws, (int, np.integer)) or draws < 1:
        raise ConfigError(f"draws must be a positive integer, got {draws!r}")
    seed = _check_seed(seed)
    parts = []
    for si, s in enumerate(pool._strata):
        c = int(scale) // s.per_family
        n_chunks = s.groups.size // c
        rng = np.random.default_rng([seed, int(scale), si])
        chunks: list[np.ndarray] = []
        while len(chunks) < draws:
            perm = rng.permutation(s.groups)
            chunks.extend(perm[j * c : (j + 1) * c] for j in range(n_chunks))
        parts.append(np.stack(chunks[:draws]))
    out = np.concatenate(parts, axis=1)
    out.sort(axis=1)
    return out


def draw_members(pool: MemberPool, scale: int, draws: int, seed: int = 0) -> np.ndarray:
    """Member indices of ``draws`` seeded ensembles of ``scale``: ``(draws, n_members)``.

    Draws are made of whole groups and are pairwise disjoint as long as the pool allows
    (see :func:`scaling_table`).
    """
    g = _draw_groups(pool, scale, draws, seed)
    return np.stack([np.sort(np.concatenate([pool.groups[i] for i in row])) for row in g])


def merge_pool(pool: MemberPool, members: Any = None, rule: str | MergeRule = "mean_prob") -> np.ndarray:
    """Merged probabilities ``(N,)`` of ``members`` (default all) of ``pool``.

    Group structure is honoured: within a group the rule merges its members (Eq. 11), groups
    are combined size-weighted (Eq. 13) in the rule's space. Members must form whole groups.
    """
    r = _get_rule(rule)
    idx = np.arange(pool.n_members) if members is None else np.unique(np.asarray(members, dtype=np.int64))
    if idx.size == 0 or idx.min() < 0 or idx.max() >= pool.n_members:
        raise ConfigError(f"merge_pool: member indices must be in [0, {pool.n_members}), got {members!r}")
    gids = np.unique(pool.group_of_member[idx])
    if int(pool.group_sizes[gids].sum()) != idx.size:
        raise ConfigError("merge_pool: the members must form whole groups (grouped members merge together)")
    ev = _Evaluator(pool, r, gids)
    return ev.merged(np.arange(gids.size))


class _Evaluator:
    """Group-level predictions (Eq. 11) computed once; merged draws (Eq. 13) and their metrics
    cached by group set so repeated draws (e.g. the whole pool) are sorted only once."""

    def __init__(self, pool: MemberPool, rule: MergeRule, group_ids: np.ndarray | None = None) -> None:
        self.rule = rule
        self.labels = pool.labels
        gids = np.arange(pool.n_groups) if group_ids is None else group_ids
        dtype = np.result_type(pool.logits.dtype, np.float32)
        self.space = np.empty((gids.size, pool.n_rows), dtype=dtype)  # (G, N): contiguous per group
        for row, gi in enumerate(gids):
            members = pool.groups[gi]
            block = rule.to_space(np.ascontiguousarray(pool.logits[:, members].T))
            self.space[row] = block.mean(axis=0, dtype=np.float64) if members.size > 1 else block[0]
        self.sizes = pool.group_sizes[gids].astype(np.float64)
        self._cache: dict[tuple[int, ...], tuple[float, float]] = {}

    def merged(self, rows: np.ndarray) -> np.ndarray:
        w = self.sizes[rows] / self.sizes[rows].sum()
        acc = np.zeros(self.space.shape[1], dtype=np.float64)
        for r, wi in zip(rows, w):
            acc += wi * self.space[r]
        return np.asarray(self.rule.to_prob(acc), dtype=np.float64)

    def metrics(self, rows: np.ndarray) -> tuple[float, float]:
        key = tuple(int(r) for r in rows)
        hit = self._cache.get(key)
        if hit is None:
            p = self.merged(np.asarray(key))
            hit = (roc_auc(self.labels, p), log_loss(self.labels, p))
            self._cache[key] = hit
        return hit


def _mean_std(x: np.ndarray) -> tuple[float, float]:
    """Mean and ``ddof=1`` std; exactly 0 for one draw or identical draws (no rounding noise)."""
    if x.size == 1 or np.all(x == x[0]):
        return float(x[0]), 0.0
    return float(np.mean(x)), float(np.std(x, ddof=1))


def scaling_table(
    pool: MemberPool,
    scales: Sequence[int] = (1, 2, 4, 8, 16),
    draws: int = 5,
    seed: int = 0,
    rule: str | MergeRule = "mean_prob",
    alpha: float = 0.05,
    *,
    equal_var: bool = True,
    baseline_auc: Sequence[float] | None = None,
) -> pd.DataFrame:
    """Scaling of merged ensembles (Tables 1–3): one row per scale, ascending.

    Columns: ``scale, n_members, auc_mean, auc_std, logloss_mean, logloss_std, p_value,
    significant``.

    For each scale ``K`` (members per architecture, see the module docstring), ``draws``
    ensembles are drawn from the pool as whole groups. Draws are disjoint where the pool
    allows: a seeded permutation of the groups is cut into disjoint chunks of ``K / g`` groups;
    when ``draws`` exceeds the number of chunks, further seeded permutations continue (so
    draws at ``K = M`` all merge the whole pool and have std 0). Each draw is merged with
    ``rule`` inside groups (Eq. 11) and size-weighted across groups (Eq. 13); AUC and logloss
    are averaged over the draws, std uses ``ddof=1`` (0 for a single draw).

    Significance: a two-sided t-test (:func:`ttest_two_sided`, Student unless
    ``equal_var=False``) of the ``draws`` AUCs at ``K`` against the 1x backbone AUCs,
    ``significant = p_value < alpha`` and the mean AUC is above the backbone's, i.e. a
    significant *improvement*, as the paper's ``*`` (NaN p-values are not significant; the
    p-value itself is two-sided, so a significant drop shows a small p but no ``*``). The backbone sample is the ``draws``
    draws at the pool's :attr:`~MemberPool.unit_scale`, made by the same rule: individual
    members when members were trained independently (g = 1), single whole groups (scale g) for
    grouped training, one member or group per architecture for heterogeneous pools. The row of
    that scale, if requested, is the backbone itself: ``p_value`` NaN, ``significant`` False.
    Keep ``draws`` at most the number of units (M for g = 1, M/g for groups) so that the
    backbone sample holds distinct models; more draws repeat units (fresh permutations).
    ``baseline_auc`` replaces the backbone sample with given AUCs (e.g. the independently
    trained members' AUCs when comparing grouped pools of Table 3); every row is then tested.

    Deterministic given ``seed`` (the draws at a scale depend only on ``seed`` and the scale).
    Cost: one merge (O(N K)) and one sort (O(N log N)) per *distinct* draw.
    """
    if not isinstance(pool, MemberPool):
        raise ConfigError(f"scaling_table: pool must be a MemberPool, got {type(pool).__name__}")
    r = _get_rule(rule)
    if not (isinstance(alpha, (float, int)) and 0 < alpha < 1):
        raise ConfigError(f"scaling_table: alpha must be in (0, 1), got {alpha!r}")
    scales = list(scales)
    if not scales:
        raise ConfigError("scaling_table: no scales given")
    for s in scales:
        pool._check_scale(s)
    if len({int(s) for s in scales}) != len(scales):
        raise ConfigError(f"scaling_table: scales must be distinct, got {scales}")
    if isinstance(draws, bool) or not isinstance(draws, (int, np.integer)) or draws < 1:
        raise ConfigError(f"scaling_table: draws must be a positive integer, got {draws!r}")
    _check_seed(seed)

    ev = _Evaluator(pool, r)

    def draw_metrics(scale: int) -> tuple[np.ndarray, np.ndarray]:
        g = _draw_groups(pool, scale, draws, seed)
        res = np.array([ev.metrics(row) for row in g], dtype=np.float64)
        return res[:, 0], res[:, 1]

    unit = pool.unit_scale
    if baseline_auc is None:
        base = draw_metrics(unit)[0]
    else:
        base = np.asarray(baseline_auc, dtype=np.float64).ravel()
        if base.size == 0:
            raise ConfigError("scaling_table: baseline_auc is empty")

    rows = []
    for s in sorted(int(x) for x in scales):
        aucs, lls = draw_metrics(s)
        auc_m, auc_s = _mean_std(aucs)
        ll_m, ll_s = _mean_std(lls)
        if baseline_auc is None and s == unit:
            p = float("nan")
        else:
            p = ttest_two_sided(aucs, base, equal_var=equal_var)[1]
        # The paper's `*` marks a significant *improvement* over the backbone, not any difference.
        rows.append((s, pool.n_members_at(s), auc_m, auc_s, ll_m, ll_s, p, bool(p < alpha and auc_m > float(np.mean(base)))))
    df = pd.DataFrame(rows, columns=list(SCALING_COLUMNS))
    df = df.astype(
        {
            "scale": "int64",
            "n_members": "int64",
            "auc_mean": "float64",
            "auc_std": "float64",
            "logloss_mean": "float64",
            "logloss_std": "float64",
            "p_value": "float64",
            "significant": "bool",
        }
    )
    df.attrs.update(
        {
            "rule": r.name,
            "draws": int(draws),
            "seed": int(seed),
            "alpha": float(alpha),
            "unit_scale": int(unit),
            "baseline_auc_mean": float(np.mean(base)),
        }
    )
    return df
