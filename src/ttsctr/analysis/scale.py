"""Why merging helps, measured against scale (paper §3.6, Figures 5 and 6 left).

* :func:`scale_statistics`: per distinct draw of ``K`` members, the merged prediction's AUC,
  separation (Eq. 14), sharpness (Eq. 15), overlap area and the draw's mean pairwise JS
  divergence (Fig. 5: separation grows with scale; basic merging sharpens, grouped training
  separates).
* :func:`pair_statistics`: every pair of training units (members, or jointly trained groups)
  with the JS divergence between them and the separation and AUC gains of their merge over the
  pair's mean (Fig. 6 left: "JS divergence computed via randomly selecting two models").
* :func:`diversity_correlations`: Pearson r (``scipy.stats.pearsonr``) of JS against
  separation gain and of separation gain against AUC gain over those pairs.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ttsctr.analysis.distribution import distribution_statistics, histogram_js, separation
from ttsctr.errors import ConfigError
from ttsctr.merging import MemberPool, MergeRule, _check_seed, _draw_groups, _Evaluator, distinct_draws, get_rule
from ttsctr.merging.diversity import _mean_offdiag, js_divergence, pairwise_js
from ttsctr.metrics import roc_auc

__all__ = ["PAIR_COLUMNS", "SCALE_COLUMNS", "diversity_correlations", "pair_statistics", "scale_statistics"]

SCALE_COLUMNS = ["scale", "draw", "n_members", "group_size", "auc", "separation", "sharpness", "overlap", "js_diversity"]
PAIR_COLUMNS = ["unit_a", "unit_b", "js_bernoulli", "js_histogram", "separation_a", "separation_b", "separation_merged",
                "separation_gain", "auc_a", "auc_b", "auc_merged", "auc_gain"]


def _group_size(pool: MemberPool) -> int:
    sizes = np.unique(pool.group_sizes)
    return int(sizes[0]) if sizes.size == 1 else -1


def scale_statistics(
    pool: MemberPool,
    scales: Sequence[int] = (1, 2, 4, 8, 16),
    draws: int = 5,
    seed: int = 0,
    rule: str | MergeRule = "mean_prob",
    bins: int = 100,
) -> pd.DataFrame:
    """One row per (scale, *distinct* draw), columns :data:`SCALE_COLUMNS`.

    Draws are those of :func:`~ttsctr.merging.draw_members` with the same ``seed`` (whole groups,
    disjoint while the pool allows); a draw that repeats an earlier one is the same ensemble and
    is dropped, so the rows of a scale are distinct ensembles (at the pool's full size, one).
    ``group_size`` is the pool's training group size (``-1`` if mixed); ``js_diversity`` the mean
    pairwise Bernoulli JS divergence of the draw's members (NaN for one member); ``overlap`` the
    overlap area on ``bins`` bins.
    """
    r = get_rule(rule)
    for s in scales:
        pool._check_scale(s)
    ev = _Evaluator(pool, r)
    js = pairwise_js(pool.probabilities())
    gsize = _group_size(pool)
    rows = []
    for s in sorted({int(x) for x in scales}):
        for d, gids in enumerate(distinct_draws(_draw_groups(pool, s, draws, seed))):
            members = np.sort(np.concatenate([pool.groups[g] for g in gids]))
            p = ev.merged(np.asarray(gids))
            rows.append((s, d, int(members.size), gsize, roc_auc(pool.labels, p),
                         *distribution_statistics(p, pool.labels, bins), _mean_offdiag(js, members)))
    return pd.DataFrame(rows, columns=SCALE_COLUMNS)


def pair_statistics(
    pool: MemberPool,
    rule: str | MergeRule = "mean_prob",
    max_pairs: int | None = None,
    seed: int = 0,
    histogram_bins: int = 50,
) -> pd.DataFrame:
    """One row per pair of training units (members; jointly trained groups count as one unit),
    columns :data:`PAIR_COLUMNS`; units are named by their members joined with ``+``.

    ``js_bernoulli`` is the per-row Bernoulli JS averaged over rows
    (:func:`~ttsctr.merging.diversity.js_divergence`), ``js_histogram`` the JS between the two
    score histograms (:func:`~ttsctr.analysis.distribution.histogram_js`). Gains are the merged
    pair's value minus the mean of the two units' values. All pairs, or a seeded sample of
    ``max_pairs`` of them.
    """
    r = get_rule(rule)
    seed = _check_seed(seed)
    if pool.n_groups < 2:
        raise ConfigError(f"pair_statistics: the pool has {pool.n_groups} training unit; need at least 2")
    ev = _Evaluator(pool, r)
    names = ["+".join(pool.member_names[i] for i in g) for g in pool.groups]
    probs = [ev.merged(np.array([g])) for g in range(pool.n_groups)]
    seps = [separation(p, pool.labels) for p in probs]
    aucs = [roc_auc(pool.labels, p) for p in probs]
    pairs = list(itertools.combinations(range(pool.n_groups), 2))
    if max_pairs is not None and len(pairs) > max_pairs:
        keep = np.sort(np.random.default_rng(seed).choice(len(pairs), size=int(max_pairs), replace=False))
        pairs = [pairs[i] for i in keep]
    rows = []
    for a, b in pairs:
        p = ev.merged(np.array([a, b]))
        sep, auc = separation(p, pool.labels), roc_auc(pool.labels, p)
        rows.append((names[a], names[b], js_divergence(probs[a], probs[b]),
                     histogram_js(probs[a], probs[b], histogram_bins), seps[a], seps[b], sep,
                     sep - 0.5 * (seps[a] + seps[b]), aucs[a], aucs[b], auc, auc - 0.5 * (aucs[a] + aucs[b])))
    return pd.DataFrame(rows, columns=PAIR_COLUMNS)


def diversity_correlations(pairs: pd.DataFrame) -> pd.DataFrame:
    """Pearson r and two-sided p (``scipy.stats.pearsonr``) over the pairs of
    :func:`pair_statistics`: JS (Bernoulli, histogram) against separation gain, separation gain
    against AUC gain, JS (Bernoulli) against AUC gain.

    Pairs share units, so the pairs are not independent draws and p is descriptive; ``n_pairs``
    and ``n_units`` say what the number rests on. r is NaN when a column is constant or fewer
    than 3 pairs exist.
    """
    missing = [c for c in PAIR_COLUMNS if c not in pairs.columns]
    if missing:
        raise ConfigError(f"diversity_correlations: the pair table lacks columns {missing}")
    units = len(set(pairs["unit_a"]) | set(pairs["unit_b"]))
    rows = []
    for x, y in (("js_bernoulli", "separation_gain"), ("js_histogram", "separation_gain"),
                 ("separation_gain", "auc_gain"), ("js_bernoulli", "auc_gain")):
        a, b = pairs[x].to_numpy(float), pairs[y].to_numpy(float)
        if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
            r_, p_ = float("nan"), float("nan")
        else:
            res = stats.pearsonr(a, b)
            r_, p_ = float(res.statistic), float(res.pvalue)
        rows.append((x, y, r_, p_, len(a), units))
    return pd.DataFrame(rows, columns=["x", "y", "pearson_r", "p_value", "n_pairs", "n_units"])
