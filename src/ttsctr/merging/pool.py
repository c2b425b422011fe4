"""Member pools (which members exist, how they were trained) and seeded draws of ensembles.

Scale, units and draws
----------------------
``scale`` is the *equivalent scale* of the paper: the number of members merged **per
architecture**. A homogeneous pool (one architecture) at scale ``K`` merges ``K`` members; a
heterogeneous pool of ``F`` architectures at scale ``K`` merges ``K`` members of each,
``n_members = K * F`` (Table 2's "1x" row of Wukong+Rankmixer is one Wukong plus one
RankMixer). Members trained jointly (grouped training, Eq. 11) are only ever drawn as whole
groups, so a scale must be a multiple of the group size ``g``; the smallest drawable scale is
the pool's :attr:`MemberPool.unit_scale` (1 for independently trained members).

A **unit** is one ensemble of the unit scale: one member (homogeneous, ``g = 1``), one member of
each architecture (heterogeneous), or one whole training group. :attr:`MemberPool.unit_groups`
partitions the pool into its units in training order; they are the "1x" sample of the
significance tests (:mod:`ttsctr.merging.scaling`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from ttsctr.errors import ConfigError
from ttsctr.merging.rules import MergeRule, _as_2d, _logit, get_rule, sigmoid
from ttsctr.metrics import log_loss, roc_auc

__all__ = ["MemberPool", "distinct_draws", "draw_members", "merge_pool"]


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

    @cached_property
    def unit_groups(self) -> tuple[np.ndarray, ...]:
        """The pool's units: a partition into ensembles of :attr:`unit_scale`, as group ids.

        Unit ``i`` takes, from every stratum (every architecture drawn separately, or the one
        stratum of mixed groups), its ``i``-th run of ``unit_scale / g`` groups in group-id
        (= training) order. For a heterogeneous pool laid out unit by unit (W0, R0, W1, R1, ...)
        unit ``i`` is therefore ``W_i + R_i``. ``max_scale / unit_scale`` units; groups left
        over when architectures hold unequal numbers of groups belong to no unit.
        """
        u = self.unit_scale
        n_units = self.max_scale // u
        out = []
        for i in range(n_units):
            parts = []
            for s in self._strata:
                c = u // s.per_family
                parts.append(s.groups[i * c : (i + 1) * c])
            out.append(np.sort(np.concatenate(parts)))
        return tuple(out)

    @property
    def n_units(self) -> int:
        return len(self.unit_groups)


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
    (see :func:`~ttsctr.merging.scaling_table`); once the pool is exhausted, fresh permutations
    continue and may repeat an earlier draw (:func:`distinct_draws` removes repeats).
    """
    g = _draw_groups(pool, scale, draws, seed)
    return np.stack([np.sort(np.concatenate([pool.groups[i] for i in row])) for row in g])


def distinct_draws(group_draws: np.ndarray) -> np.ndarray:
    """The distinct rows of ``(draws, groups_per_draw)`` sorted group ids, first occurrences
    in draw order.

    Repeated draws are the same ensemble: counting them again would only repeat one AUC (at
    ``K = M`` every draw is the whole pool). Significance tests therefore use distinct draws.
    """
    g = np.asarray(group_draws)
    seen: set[tuple[int, ...]] = set()
    keep = []
    for i, row in enumerate(g):
        key = tuple(int(v) for v in row)
        if key not in seen:
            seen.add(key)
            keep.append(i)
    return g[np.asarray(keep, dtype=np.int64)]


def merge_pool(pool: MemberPool, members: Any = None, rule: str | MergeRule = "mean_prob") -> np.ndarray:
    """Merged probabilities ``(N,)`` of ``members`` (default all) of ``pool``.

    Group structure is honoured: within a group the rule merges its members (Eq. 11), groups
    are combined size-weighted (Eq. 13) in the rule's space. Members must form whole groups.
    """
    r = get_rule(rule)
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

