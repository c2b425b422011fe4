"""Which members to merge under a serving budget (paper §3.6, Fig. 6 right).

Selection and scoring are two steps on two splits, so the reported numbers carry no selection
bias: :func:`choose_members` sees only the *selection* pool (the validation split in the
``analysis`` pipeline) and :func:`score_selections` applies the chosen member names to the
*evaluation* pool (the test split). Choosing and scoring on the same rows would favour the
strategies that optimise that very metric (greedy, exhaustive).

Strategies pick single members, so they need independently trained members:
:func:`check_selectable` refuses a pool whose members were trained jointly in groups (grouped
training, Eq. 11), because keeping part of a group serves a model it was never trained as.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ttsctr.analysis.distribution import separation
from ttsctr.errors import ConfigError
from ttsctr.merging import MemberPool, MergeRule, _check_seed, _Evaluator, get_rule
from ttsctr.merging.diversity import _mean_offdiag, pairwise_js
from ttsctr.metrics import log_loss, roc_auc

log = logging.getLogger(__name__)

__all__ = [
    "CHOICE_COLUMNS",
    "DEFAULT_STRATEGIES",
    "SELECTION_COLUMNS",
    "SELECTION_STRATEGIES",
    "check_selectable",
    "choose_members",
    "score_selections",
    "select_members",
    "selection_table",
]

SELECTION_STRATEGIES = ("greedy", "top_auc", "diversity_js", "random", "exhaustive")
DEFAULT_STRATEGIES = ("greedy", "top_auc", "diversity_js", "random")
_NESTED = ("greedy", "top_auc", "diversity_js")  # strategies whose k picks are the first k of a larger budget
CHOICE_COLUMNS = ["strategy", "k", "draw", "members", "selection_auc"]
SELECTION_COLUMNS = [*CHOICE_COLUMNS, "auc", "logloss", "separation", "js_diversity"]


def check_selectable(pool: MemberPool, what: str = "pool") -> None:
    """Refuse a pool whose members were trained jointly in groups (they cannot be split)."""
    if not isinstance(pool, MemberPool):
        raise ConfigError(f"{what}: expected a MemberPool, got {type(pool).__name__}")
    sizes = pool.group_sizes
    if np.any(sizes > 1):
        g = int(np.flatnonzero(sizes > 1)[0])
        names = [pool.member_names[i] for i in pool.groups[g]]
        raise ConfigError(
            f"{what}: members {names} were trained jointly as one group (group sizes {sorted(set(sizes.tolist()))}); "
            "a selection strategy picks single members and cannot split a group. Select among independently "
            "trained members (group_size 1)"
        )


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
      evaluations; its first pick is the best member.
    * ``exhaustive``: the best of all ``C(M, k)`` subsets; refused (:class:`ConfigError`) when
      ``C(M, k) > exhaustive_limit``.
    * ``top_auc``: the ``k`` members with the highest individual AUC.
    * ``diversity_js``: greedy maximum pairwise JS divergence (per-row Bernoulli JS averaged over
      rows): start from the pair with the largest JS divergence, then repeatedly add the member
      with the largest summed JS divergence to those chosen (``k = 1``: the best-AUC member).
      Quality-blind by design.
    * ``random``: ``k`` members drawn without replacement, seeded by ``(seed, k)``.

    Only ``pool``'s rows and labels are read. ``js_matrix`` lets a caller reuse a precomputed
    :func:`pairwise_js` matrix of the pool.
    """
    check_selectable(pool, "select_members")
    m = pool.n_members
    k = _check_k(k, m)
    r = get_rule(rule)
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

    if strategy not in SELECTION_STRATEGIES:
        raise ConfigError(f"unknown selection strategy {strategy!r}; expected one of {list(SELECTION_STRATEGIES)}")
    space = _member_space(pool, r)

    if strategy == "greedy":
        picked: list[int] = []
        acc = np.zeros(pool.n_rows, dtype=np.float64)
        for step in range(k):
            best, best_auc = -1, -np.inf
            for c in range(m):
                if c in picked:
                    continue
                a = roc_auc(y, r.to_prob((acc + space[c]) / (step + 1)))
                if a > best_auc:
                    best, best_auc = c, a
            picked.append(best)
            acc += space[best]
        return np.array(picked, dtype=np.int64)

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


def choose_members(
    selection: MemberPool,
    ks: Sequence[int],
    strategies: Sequence[str] = DEFAULT_STRATEGIES,
    *,
    seed: int = 0,
    rule: str | MergeRule = "mean_prob",
    exhaustive_limit: int = 5000,
    random_draws: int = 1,
) -> pd.DataFrame:
    """The members each strategy picks at each budget, from ``selection`` alone.

    Columns :data:`CHOICE_COLUMNS`: ``strategy, k, draw, members`` (tuple of member names in
    selection order), ``selection_auc`` (AUC of their merged prediction on ``selection``).
    ``random`` draws ``random_draws`` times per budget (seeds ``seed + draw``) and keeps the
    distinct member sets (at ``k = M`` one); the deterministic strategies give one row (draw 0). ``exhaustive`` is skipped (and logged) at budgets whose
    ``C(M, k)`` exceeds ``exhaustive_limit``.
    """
    check_selectable(selection, "selection pool")
    bad = [s for s in strategies if s not in SELECTION_STRATEGIES]
    if bad or not strategies:
        raise ConfigError(f"unknown selection strategies {bad}; expected some of {list(SELECTION_STRATEGIES)}")
    ks = sorted({_check_k(k, selection.n_members) for k in ks})
    if not ks:
        raise ConfigError("no selection budgets ks given")
    if isinstance(random_draws, bool) or not isinstance(random_draws, (int, np.integer)) or random_draws < 1:
        raise ConfigError(f"random_draws must be a positive integer, got {random_draws!r}")
    r = get_rule(rule)
    seed = _check_seed(seed)
    js = pairwise_js(selection.probabilities()) if "diversity_js" in strategies else None
    ev = _Evaluator(MemberPool(selection.logits, selection.labels), r)
    rows = []
    for strategy in strategies:
        # greedy, top_auc and diversity_js (k >= 2) pick in order: a budget's choice is the first k
        # picks of the largest budget's, computed once
        order = (select_members(selection, ks[-1], strategy, seed=seed, rule=r, js_matrix=js)
                 if strategy in _NESTED else None)
        for k in ks:
            if strategy == "exhaustive" and math.comb(selection.n_members, k) > exhaustive_limit:
                log.info("exhaustive selection skipped at k=%d: C(%d, %d) = %d subsets > exhaustive_limit %d",
                         k, selection.n_members, k, math.comb(selection.n_members, k), exhaustive_limit)
                continue
            seen: set[tuple[int, ...]] = set()
            for draw in range(random_draws if strategy == "random" else 1):
                if order is not None and not (strategy == "diversity_js" and k == 1):
                    idx = order[:k]
                else:
                    idx = select_members(selection, k, strategy, seed=seed + draw, rule=r,
                                         exhaustive_limit=exhaustive_limit, js_matrix=js)
                key = tuple(sorted(int(i) for i in idx))
                if key in seen:  # the same ensemble again (always at k = M): one draw, counted once
                    continue
                seen.add(key)
                rows.append((strategy, k, len(seen) - 1, tuple(selection.member_names[i] for i in idx),
                             ev.metrics(np.sort(idx))[0]))
    return pd.DataFrame(rows, columns=CHOICE_COLUMNS)


def score_selections(choices: pd.DataFrame, evaluation: MemberPool, rule: str | MergeRule = "mean_prob") -> pd.DataFrame:
    """:func:`choose_members`'s rows scored on ``evaluation`` (members matched by name).

    Adds ``auc, logloss, separation`` of the merged prediction and ``js_diversity`` (mean
    pairwise Bernoulli JS of the chosen members, NaN for one member) on ``evaluation``'s rows.
    """
    missing = [c for c in CHOICE_COLUMNS if c not in choices.columns]
    if missing:
        raise ConfigError(f"score_selections: the choices lack columns {missing}")
    if not isinstance(evaluation, MemberPool):
        raise ConfigError(f"score_selections: evaluation must be a MemberPool, got {type(evaluation).__name__}")
    index = {n: i for i, n in enumerate(evaluation.member_names)}
    r = get_rule(rule)
    ev = _Evaluator(MemberPool(evaluation.logits, evaluation.labels), r)
    js = pairwise_js(evaluation.probabilities())
    scored = []
    for members in choices["members"]:
        unknown = [n for n in members if n not in index]
        if unknown:
            raise ConfigError(f"score_selections: members {unknown} are not in the evaluation pool {list(index)}")
        idx = np.array([index[n] for n in members], dtype=np.int64)
        p = ev.merged(np.sort(idx))
        scored.append((roc_auc(evaluation.labels, p), log_loss(evaluation.labels, p),
                       separation(p, evaluation.labels), _mean_offdiag(js, idx)))
    extra = pd.DataFrame(scored, columns=["auc", "logloss", "separation", "js_diversity"], index=choices.index)
    return pd.concat([choices[CHOICE_COLUMNS], extra], axis=1)


def selection_table(selection: MemberPool, evaluation: MemberPool, ks: Sequence[int],
                    strategies: Sequence[str] = DEFAULT_STRATEGIES, **options: Any) -> pd.DataFrame:
    """:func:`choose_members` on ``selection`` (``options``: its keyword arguments) then
    :func:`score_selections` on ``evaluation`` (columns :data:`SELECTION_COLUMNS`). Both pools
    must hold the same members in the same order."""
    for name, p in (("selection", selection), ("evaluation", evaluation)):
        if not isinstance(p, MemberPool):
            raise ConfigError(f"selection_table: {name} must be a MemberPool, got {type(p).__name__}")
    if selection.member_names != evaluation.member_names:
        raise ConfigError(
            "selection_table: the selection and evaluation pools must hold the same members in the same "
            f"order ({selection.n_members} vs {evaluation.n_members} members)"
        )
    choices = choose_members(selection, ks, strategies, **options)
    return score_selections(choices, evaluation, options.get("rule", "mean_prob"))
