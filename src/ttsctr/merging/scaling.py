"""Scaling tables (paper Tables 1–3): merged ensembles of increasing scale with significance.

:func:`scaling_table` draws ensembles of each scale from a :class:`~ttsctr.merging.MemberPool`,
scores them by AUC and logloss and tests each scale against the pool's single units (1×) with
the paper's t-test and with DeLong's test on the test set (:mod:`ttsctr.merging.significance`),
and reports the members' diversity (:mod:`ttsctr.merging.diversity`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ttsctr.errors import ConfigError
from ttsctr.merging.diversity import MemberDiversity, member_diversity
from ttsctr.merging.pool import MemberPool, _check_seed, _draw_groups, _Evaluator, distinct_draws
from ttsctr.merging.rules import MergeRule, get_rule
from ttsctr.merging.significance import delong_components, delong_contrast, ttest_two_sided
from ttsctr.metrics import group_auc, log_loss

__all__ = ["SCALING_COLUMNS", "scaling_table"]

SCALING_COLUMNS = (
    "scale",
    "n_members",
    "n_draws",
    "auc_mean",
    "auc_std",
    "logloss_mean",
    "logloss_std",
    "auc_1x",
    "n_1x",
    "delong_auc_diff",
    "p_ttest",
    "p_delong",
    "significant",
    "pairwise_r",
    "pairwise_r_within",
    "pairwise_js",
)

_DTYPES = {
    "scale": "int64",
    "n_members": "int64",
    "n_draws": "int64",
    "auc_mean": "float64",
    "auc_std": "float64",
    "logloss_mean": "float64",
    "logloss_std": "float64",
    "auc_1x": "float64",
    "n_1x": "int64",
    "delong_auc_diff": "float64",
    "p_ttest": "float64",
    "p_delong": "float64",
    "significant": "bool",
    "pairwise_r": "float64",
    "pairwise_r_within": "float64",
    "pairwise_js": "float64",
}


def _mean_std(x: np.ndarray) -> tuple[float, float]:
    """Mean and ``ddof=1`` std; std NaN for a single value (one ensemble has no spread) and
    exactly 0 for identical values (no rounding noise)."""
    if x.size == 1:
        return float(x[0]), float("nan")
    if np.all(x == x[0]):
        return float(x[0]), 0.0
    return float(np.mean(x)), float(np.std(x, ddof=1))


class _Scored:
    """AUCs, loglosses and the mean DeLong components of a set of merged ensembles, and their
    mean group AUC when ``groups`` (per-row user ids) are given."""

    def __init__(self, ev: _Evaluator, group_sets: Sequence[np.ndarray], groups: np.ndarray | None = None) -> None:
        aucs, lls, gaucs = [], [], []
        v10 = v01 = None
        for rows in group_sets:
            p = ev.merged(np.asarray(rows))
            auc, a, b = delong_components(ev.labels, p)  # midrank AUC: the same number as roc_auc, one sort
            aucs.append(float(auc[0]))
            lls.append(log_loss(ev.labels, p))
            if groups is not None:
                gaucs.append(group_auc(ev.labels, p, groups))
            v10 = a[0] if v10 is None else v10 + a[0]
            v01 = b[0] if v01 is None else v01 + b[0]
        k = float(len(aucs))
        self.aucs = np.asarray(aucs, dtype=np.float64)
        self.lls = np.asarray(lls, dtype=np.float64)
        self.gauc = float(np.mean(gaucs)) if gaucs else float("nan")
        # DeLong is linear in the components: the mean AUC of k ensembles has the mean components
        self.v10 = v10 / k
        self.v01 = v01 / k


def _check_same_rows(pool: MemberPool, other: MemberPool, what: str) -> None:
    if other.n_rows != pool.n_rows or not np.array_equal(other.labels, pool.labels):
        raise ConfigError(
            f"scaling_table: {what} must score the same rows as the pool ({other.n_rows} rows vs "
            f"{pool.n_rows}{', labels differ' if other.n_rows == pool.n_rows else ''}); DeLong's test is paired by row"
        )


def scaling_table(
    pool: MemberPool,
    scales: Sequence[int] = (1, 2, 4, 8, 16),
    draws: int = 5,
    seed: int = 0,
    rule: str | MergeRule = "mean_prob",
    alpha: float = 0.05,
    *,
    reference: MemberPool | None = None,
    diversity_pool: MemberPool | None = None,
    equal_var: bool = False,
    name: str = "",
    groups: np.ndarray | None = None,
) -> pd.DataFrame:
    """Scaling of merged ensembles (Tables 1–3): one row per scale, ascending.

    Columns (:data:`SCALING_COLUMNS`):

    * ``scale`` (members per architecture), ``n_members`` merged;
    * ``n_draws``: the number of **distinct** ensembles the row rests on;
    * ``auc_mean, auc_std, logloss_mean, logloss_std`` over those ensembles (``ddof=1``; std
      NaN when the row rests on one ensemble);
    * ``auc_1x, n_1x``: mean AUC and size of the **1× sample**, the reference of both tests;
    * ``delong_auc_diff``: ``auc_mean - auc_1x`` as DeLong's test measures it;
    * ``p_ttest``: the paper's two-sided t-test (Welch unless ``equal_var``) of the row's
      distinct AUCs against the 1× sample's AUCs, ``scipy.stats.ttest_ind``; NaN where either
      side has fewer than two distinct ensembles (e.g. the whole pool);
    * ``p_delong``: DeLong's two-sided test of ``delong_auc_diff = 0`` on this test set;
    * ``significant``: ``p_delong < alpha`` and ``delong_auc_diff > 0`` — a significant
      *improvement*, the paper's ``*`` (NaN p-values are not significant);
    * ``pairwise_r, pairwise_r_within, pairwise_js``: the members' diversity
      (:func:`~ttsctr.merging.diversity.member_diversity` of ``diversity_pool``, default
      ``pool``), the same on every row: they describe the ensemble, and a column survives the
      CSV round trip of the pipelines.

    Draws. For each scale ``K`` (see :mod:`ttsctr.merging.pool`) ``draws`` ensembles are drawn
    as whole groups: a seeded permutation of the groups is cut into disjoint chunks of ``K / g``
    groups; when ``draws`` exceeds the number of chunks, further seeded permutations continue.
    Repeated group sets are then removed (:func:`~ttsctr.merging.pool.distinct_draws`): at
    ``K = M`` only the whole pool remains (``n_draws = 1``). Each ensemble is merged with
    ``rule`` inside groups (Eq. 11) and size-weighted across groups (Eq. 13). Deterministic
    given ``seed``; a scale's draws depend only on ``seed`` and the scale.

    The 1× sample is **every unit** of the reference pool (:attr:`MemberPool.unit_groups`):
    every independently trained member of a homogeneous pool, one member of each architecture
    per unit of a heterogeneous pool (merged with ``rule``), one whole group of a grouped pool.
    The reference pool is ``pool`` itself — its unit-scale row is then the 1× sample and is not
    tested (p-values NaN) — or ``reference``: a pool of **independently trained single
    members** (``unit_scale == 1``, same architectures) scored on the **same rows**, used for
    grouped ensembles (Table 3), whose every row is then tested against those single members.

    Which single member DeLong compares with: the **mean over all 1× units**. The contrast
    ``L = mean_d AUC(draw_d) - mean_u AUC(unit_u)`` over the row's distinct draws and all units
    is tested with DeLong's covariance of all those correlated AUCs (``var L = c' S c``,
    DeLong et al. 1988), computed from the averaged structural components in O(N) memory.
    This tests exactly the difference the table prints (row vs. the 1× line), uses every unit
    instead of an arbitrary one, and is valid on one test set because every score is evaluated
    on the same rows: overlaps between draws and units are correlations that ``S`` contains.
    It conditions on the trained models: it says whether the gain is larger than test-set
    noise, not whether another set of seeds would reproduce it (that is what ``p_ttest``
    attempts with too few, overlapping draws).

    ``groups`` (``(N,)`` user ids of the rows, e.g. MovieLens ``user_id``) adds ``gauc_mean`` and
    ``gauc_1x``: the group AUC (:func:`ttsctr.metrics.group_auc`, impression-weighted mean of
    per-user AUC, single-class users skipped) averaged over the same distinct ensembles, and over
    the 1× units.

    Cost: one merge (O(N K)), one AUC sort and three midrank sorts (O(N log N)) per distinct
    ensemble and per unit; diversity O(M^2 N).
    """
    if not isinstance(pool, MemberPool):
        raise ConfigError(f"scaling_table: pool must be a MemberPool, got {type(pool).__name__}")
    r = get_rule(rule)
    if not (isinstance(alpha, (float, int)) and not isinstance(alpha, bool) and 0 < alpha < 1):
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
    if reference is not None:
        if not isinstance(reference, MemberPool):
            raise ConfigError(f"scaling_table: reference must be a MemberPool, got {type(reference).__name__}")
        _check_same_rows(pool, reference, "the reference pool")
        if reference.unit_scale != 1:
            raise ConfigError(
                "scaling_table: the reference pool must hold independently trained single members "
                f"(unit scale 1), but its smallest drawable ensemble is {reference.unit_scale} members per "
                "architecture (grouped training)"
            )
        if reference.family_names != pool.family_names:
            raise ConfigError(
                f"scaling_table: the reference pool's architectures {list(reference.family_names)} differ from "
                f"the pool's {list(pool.family_names)}"
            )
    if diversity_pool is not None:
        if not isinstance(diversity_pool, MemberPool):
            raise ConfigError(f"scaling_table: diversity_pool must be a MemberPool, got {type(diversity_pool).__name__}")
        if diversity_pool.member_names != pool.member_names:
            raise ConfigError(
                "scaling_table: diversity_pool must hold the same members as the pool, in the same order "
                f"({diversity_pool.n_members} vs {pool.n_members} members)"
            )

    if groups is not None:
        groups = np.asarray(groups).reshape(-1)
        if groups.shape[0] != pool.n_rows:
            raise ConfigError(f"scaling_table: {groups.shape[0]} group ids for {pool.n_rows} rows")
    ev = _Evaluator(pool, r)
    ref_pool = pool if reference is None else reference
    ref_ev = ev if reference is None else _Evaluator(reference, r)
    units = ref_pool.unit_groups
    ones = _Scored(ref_ev, units, groups)
    auc_1x = float(np.mean(ones.aucs))
    diversity: MemberDiversity = member_diversity(diversity_pool if diversity_pool is not None else pool, name=name)

    gaucs: list[float] = []
    nan = float("nan")
    rows = []
    for s in sorted(int(x) for x in scales):
        if reference is None and s == pool.unit_scale:
            scored, tested = ones, False  # the 1x sample itself: every unit, not `draws` draws
        else:
            scored, tested = _Scored(ev, list(distinct_draws(_draw_groups(pool, s, draws, seed))), groups), True
        gaucs.append(scored.gauc)
        auc_m, auc_s = _mean_std(scored.aucs)
        ll_m, ll_s = _mean_std(scored.lls)
        if tested:
            p_t = ttest_two_sided(scored.aucs, ones.aucs, equal_var=equal_var)[1]
            dl = delong_contrast(scored.v10 - ones.v10, scored.v01 - ones.v01)
            diff, p_d = dl.diff, dl.p_value
        else:
            p_t = p_d = diff = nan
        rows.append(
            (
                s,
                pool.n_members_at(s),
                scored.aucs.size,
                auc_m,
                auc_s,
                ll_m,
                ll_s,
                auc_1x,
                len(units),
                diff,
                p_t,
                p_d,
                # the paper's `*` marks a significant *improvement*, not any difference
                bool(p_d < alpha and diff > 0),
                diversity.mean_r,
                diversity.mean_r_within,
                diversity.mean_js,
            )
        )
    df = pd.DataFrame(rows, columns=list(SCALING_COLUMNS)).astype(_DTYPES)
    if groups is not None:
        df["gauc_mean"] = np.asarray(gaucs, dtype=np.float64)
        df["gauc_1x"] = ones.gauc
    df.attrs.update(
        {
            "name": name,
            "rule": r.name,
            "draws": int(draws),
            "seed": int(seed),
            "alpha": float(alpha),
            "equal_var": bool(equal_var),
            "unit_scale": int(pool.unit_scale),
            "reference": reference is not None,
            "n_1x": len(units),
            "auc_1x": auc_1x,
            "pairwise_r_between": diversity.mean_r_between,
            "near_identical": diversity.near_identical,
            "diversity_warning": diversity.warning,
        }
    )
    return df
