"""Why prediction merging works (paper §3.6): separation, sharpness, diversity, selection.

* :func:`separation` (Eq. 14) and :func:`sharpness` (Eq. 15) describe the class-conditional
  distributions of one (merged) prediction.
* :func:`js_divergence`, :func:`pairwise_js`, :func:`mean_pairwise_js`: Jensen–Shannon
  diversity between members' Bernoulli predictive distributions (defined in
  :mod:`ttsctr.merging.diversity`, re-exported here).
* :func:`select_members` / :func:`selection_table`: which ``k`` members to merge under a
  budget: ``greedy``, ``top_auc``, ``diversity_js``, ``random`` (and ``exhaustive`` for small
  pools). Members are chosen on a *selection* split and scored on a separate *evaluation*
  split, so the reported numbers carry no selection bias (choosing and scoring on the same rows
  would favour the strategies that optimise that very metric, greedy and exhaustive).
* :func:`scale_statistics`: per-draw AUC / separation / sharpness / JS diversity against scale
  (Figures 5 and 6).

All functions take probabilities (or a :class:`~ttsctr.merging.MemberPool` of logits).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ttsctr.errors import ConfigError
from ttsctr.merging import (
    MemberPool,
    MergeRule,
    _Evaluator,
    _get_rule,
    _check_seed,
    draw_members,
)
# The JS functions live with the other diversity measures in ttsctr.merging.diversity (the
# scaling tables report them); re-exported here, where they were first defined.
from ttsctr.merging.diversity import _mean_offdiag, js_divergence, mean_pairwise_js, pairwise_js
from ttsctr.metrics import log_loss, roc_auc

__all__ = [
    "SELECTION_STRATEGIES",
    "js_divergence",
    "mean_pairwise_js",
    "pairwise_js",
    "scale_statistics",
    "select_members",
    "selection_table",
    "separation",
    "sharpness",
]

SELECTION_STRATEGIES = ("greedy", "top_auc", "diversity_js", "random", "exhaustive")
DEFAULT_STRATEGIES = ("greedy", "top_auc", "diversity_js", "random")


# --------------------------------------------------------------------------------------------
# Distribution statistics (Eq. 14, 15)
# --------------------------------------------------------------------------------------------


def _class_moments(probs: Any, labels: Any) -> tuple[float, float, float, float]:
    p = np.asarray(probs, dtype=np.float64).ravel()
    y = np.asarray(labels).ravel()
    if p.size != y.size:
        raise ConfigError(f"{p.size} predictions but {y.size} labels")
    y = y.astype(bool) if y.dtype == bool else y == 1
    pos, neg = p[y], p[~y]
    if pos.size == 0 or neg.size == 0:
        raise ConfigError(f"labels hold a single class ({pos.size} positives of {p.size}); need both")
    return float(pos.mean()), float(pos.std()), float(neg.mean()), float(neg.std())


def separation(probs: Any, labels: Any) -> float:
    """Eq. 14: ``(mu+ - mu-) / sqrt(sigma+^2 + sigma-^2)`` of the predictions of positive and
    negative rows. Standard deviations are population ones (``ddof=0``). Both classes of zero
    spread give ``±inf`` (or NaN for equal means), following IEEE arithmetic."""
    mp, sp, mn, sn = _class_moments(probs, labels)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(mp - mn) / np.sqrt(np.float64(sp * sp + sn * sn)))


def sharpness(probs: Any, labels: Any) -> float:
    """Eq. 15: ``(1/sigma+ + 1/sigma-) / 2`` (``ddof=0``); a class of zero spread gives ``inf``."""
    _, sp, _, sn = _class_moments(probs, labels)
    with np.errstate(divide="ignore"):
        return float(0.5 * (np.float64(1.0) / sp + np.float64(1.0) / sn))


# --------------------------------------------------------------------------------------------
# Jensen–Shannon diversity
# --------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------
# Member selection under a budget
# --------------------------------------------------------------------------------------------


def _check_k(k: Any, m: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= m:
        raise ConfigError(f"budget k must be an integer in [1, {m}] (the pool has {m} members), got {k!r}")
    return int(k)


def _member_space(pool: MemberPool, rule: MergeRule) -> np.ndarray:
    """``(M, N)`` member predictions in the rule's averaging space."""
    return np.asarray(rule.to_space(np.ascontiguousarray(pool.logits.T)), dtype=np.float64)


def _individual_aucs(pool: MemberPool) -> np.ndarray:
    return np.array([roc_auc(pool.labels, pool.logits[:, j]) for j in range(pool.n_members)])


def select_members(
    pool: MemberPool,
    k: int,
    strategy: str = "greedy",
    *,
    seed: int = 0,
    rule: str | MergeRule = "mean_prob",
    exhaustive_limit: int = 5000,
    js_matrix: np.ndarray | None = None,
) -> np.ndarray:
    """Indices (int64, distinct, in selection order) of ``k`` members of ``pool`` to merge.

    Strategies (all deterministic given ``seed``; ties go to the lower member index):

    * ``greedy``: forward selection. Start empty; repeatedly add the member whose addition
      maximises the AUC of the merged prediction (``rule``) on ``pool``'s rows. ``k * M`` AUC
      evaluations. The optimal subset would need all ``C(M, k)`` subsets (exponential in
      ``k``), so greedy forward selection is the default; its first pick is the best member.
    * ``exhaustive``: the best of all ``C(M, k)`` subsets; refused (:class:`ConfigError`) when
      ``C(M, k) > exhaustive_limit``.
    * ``top_auc``: the ``k`` members with the highest individual AUC.
    * ``diversity_js``: greedy maximum pairwise JS divergence: start from the pair with the
      largest JS divergence, then repeatedly add the member with the largest summed JS
      divergence to those chosen (``k = 1``: the best-AUC member). Quality-blind by design.
    * ``random``: ``k`` members drawn without replacement, seeded by ``(seed, k)``.

    Members are selected individually, ignoring groups: use it on independently trained pools.
    ``js_matrix`` lets a caller reuse a precomputed :func:`pairwise_js` matrix of the pool.
    """
    if not isinstance(pool, MemberPool):
        raise ConfigError(f"select_members: pool must be a MemberPool, got {type(pool).__name__}")
    m = pool.n_members
    k = _check_k(k, m)
    r = _get_rule(rule)
    seed = _check_seed(seed)
    y = pool.labels

    if strategy == "random":
        return np.random.default_rng([seed, k]).choice(m, size=k, replace=False).astype(np.int64)

    if strategy == "top_auc":
        aucs = _individual_aucs(pool)
        return np.argsort(-aucs, kind="stable")[:k].astype(np.int64)

    if strategy == "diversity_js":
        if k == 1:
            return np.array([int(np.argmax(_individual_aucs(pool)))], dtype=np.int64)
        mat = pairwise_js(pool.probabilities()) if js_matrix is None else np.asarray(js_matrix, dtype=np.float64)
        if mat.shape != (m, m):
            raise ConfigError(f"select_members: js_matrix has shape {mat.shape}; expected ({m}, {m})")
        upper = np.where(np.triu(np.ones((m, m), dtype=bool), 1), mat, -np.inf)
        i, j = np.unravel_index(int(np.argmax(upper)), upper.shape)
        chosen = [int(i), int(j)]
        score = mat[i] + mat[j]
        while len(chosen) < k:
            cand = score.copy()
            cand[chosen] = -np.inf
            nxt = int(np.argmax(cand))
            chosen.append(nxt)
            score = score + mat[nxt]
        return np.array(chosen, dtype=np.int64)

    space = _member_space(pool, r)

    if strategy == "greedy":
        chosen: list[int] = []
        acc = np.zeros(pool.n_rows, dtype=np.float64)
        for step in range(k):
            best, best_auc = -1, -np.inf
            for c in range(m):
                if c in chosen:
                    continue
                a = roc_auc(y, r.to_prob((acc + space[c]) / (step + 1)))
                if a > best_auc:
                    best, best_auc = c, a
            chosen.append(best)
            acc += space[best]
        return np.array(chosen, dtype=np.int64)

    if strategy == "exhaustive":
        n_sub = math.comb(m, k)
        if n_sub > exhaustive_limit:
            raise ConfigError(
                f"select_members: exhaustive search needs C({m}, {k}) = {n_sub} subsets, above "
                f"exhaustive_limit={exhaustive_limit}; use strategy 'greedy'"
            )
        best_sub: tuple[int, ...] = ()
        best_auc = -np.inf
        for sub in itertools.combinations(range(m), k):
            a = roc_auc(y, r.to_prob(space[list(sub)].mean(axis=0)))
            if a > best_auc:
                best_sub, best_auc = sub, a
        return np.array(best_sub, dtype=np.int64)

    raise ConfigError(f"unknown selection strategy {strategy!r}; expected one of {list(SELECTION_STRATEGIES)}")


def selection_table(
    selection: MemberPool,
    evaluation: MemberPool,
    ks: Sequence[int],
    strategies: Sequence[str] = DEFAULT_STRATEGIES,
    *,
    seed: int = 0,
    rule: str | MergeRule = "mean_prob",
    exhaustive_limit: int = 5000,
) -> pd.DataFrame:
    """Compare selection strategies over budgets ``ks``.

    Members are chosen on ``selection`` (e.g. the validation split) and the merged prediction of
    the chosen members is scored on ``evaluation`` (e.g. the test split): same members, other
    rows. Selecting and scoring on the same rows would leak: greedy and exhaustive optimise the
    very AUC they would then report.

    Columns: ``strategy, k, members`` (tuple of member names, selection order),
    ``selection_auc`` (merged AUC on the selection split), ``auc, logloss, separation,
    js_diversity`` (on the evaluation split; JS diversity = mean pairwise JS of the chosen
    members, NaN for ``k = 1``). One row per (strategy, k), strategies in the given order.
    """
    for name, p in (("selection", selection), ("evaluation", evaluation)):
        if not isinstance(p, MemberPool):
            raise ConfigError(f"selection_table: {name} must be a MemberPool, got {type(p).__name__}")
    if selection.member_names != evaluation.member_names:
        raise ConfigError(
            "selection_table: the selection and evaluation pools must hold the same members in the same "
            f"order ({selection.n_members} vs {evaluation.n_members} members)"
        )
    bad = [s for s in strategies if s not in SELECTION_STRATEGIES]
    if bad or not strategies:
        raise ConfigError(f"selection_table: unknown strategies {bad}; expected some of {list(SELECTION_STRATEGIES)}")
    ks = [_check_k(k, selection.n_members) for k in ks]
    if not ks:
        raise ConfigError("selection_table: no budgets ks given")
    r = _get_rule(rule)
    js_sel = pairwise_js(selection.probabilities()) if "diversity_js" in strategies else None
    js_eval = pairwise_js(evaluation.probabilities())
    ev_sel = _Evaluator(MemberPool(selection.logits, selection.labels), r)
    ev_eval = _Evaluator(MemberPool(evaluation.logits, evaluation.labels), r)
    rows = []
    for strategy in strategies:
        for k in ks:
            idx = select_members(
                selection, k, strategy, seed=seed, rule=r, exhaustive_limit=exhaustive_limit, js_matrix=js_sel
            )
            key = np.sort(idx)
            sel_auc = ev_sel.metrics(key)[0]
            p = ev_eval.merged(key)
            rows.append(
                (
                    strategy,
                    k,
                    tuple(evaluation.member_names[i] for i in idx),
                    sel_auc,
                    roc_auc(evaluation.labels, p),
                    log_loss(evaluation.labels, p),
                    separation(p, evaluation.labels),
                    _mean_offdiag(js_eval, idx),
                )
            )
    return pd.DataFrame(
        rows,
        columns=["strategy", "k", "members", "selection_auc", "auc", "logloss", "separation", "js_diversity"],
    )


# --------------------------------------------------------------------------------------------
# Statistics against scale (Figures 5, 6)
# --------------------------------------------------------------------------------------------


def scale_statistics(
    pool: MemberPool,
    scales: Sequence[int] = (1, 2, 4, 8, 16),
    draws: int = 5,
    seed: int = 0,
    rule: str | MergeRule = "mean_prob",
) -> pd.DataFrame:
    """One row per (scale, draw): ``scale, draw, n_members, auc, separation, sharpness,
    js_diversity`` of the merged prediction of that draw.

    Draws are those of :func:`~ttsctr.merging.draw_members` with the same ``seed`` (whole
    groups, disjoint where possible; repeats are kept here, whereas
    :func:`~ttsctr.merging.scaling_table` keeps distinct draws and uses every unit at 1×). ``js_diversity`` is the mean pairwise JS
    divergence between the draw's members (NaN for one member), from one pool-wide
    :func:`pairwise_js` matrix.
    """
    r = _get_rule(rule)
    for s in scales:
        pool._check_scale(s)
    ev = _Evaluator(pool, r)
    js = pairwise_js(pool.probabilities())
    rows = []
    for s in sorted(int(x) for x in scales):
        members = draw_members(pool, s, draws, seed)
        for d, mem in enumerate(members):
            gids = np.unique(pool.group_of_member[mem])
            p = ev.merged(gids)
            rows.append(
                (
                    s,
                    d,
                    int(mem.size),
                    roc_auc(pool.labels, p),
                    separation(p, pool.labels),
                    sharpness(p, pool.labels),
                    _mean_offdiag(js, mem),
                )
            )
    return pd.DataFrame(
        rows, columns=["scale", "draw", "n_members", "auc", "separation", "sharpness", "js_diversity"]
    )
