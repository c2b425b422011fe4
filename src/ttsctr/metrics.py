"""Evaluation metrics of the paper (§3.1.2): ROC AUC and log loss, in plain numpy.

Both match scikit-learn 1.9 (``roc_auc_score`` / ``log_loss``) on binary labels, without
its input machinery, so they are cheap enough to run on every validation pass:

* ``roc_auc`` is the Mann-Whitney statistic with tied scores given their average rank —
  one ``argsort`` (O(N log N)) and linear passes. It equals the trapezoidal area under the
  ROC curve that scikit-learn computes, ties included. With a single class it returns NaN
  and warns, as scikit-learn does.
* ``log_loss`` clips ``p`` and ``1 - p`` to ``[eps, 1 - eps]`` with ``eps`` the machine
  epsilon of the probabilities' dtype (2.2e-16 for float64, 1.2e-7 for float32), exactly
  as scikit-learn 1.9 does (it no longer uses a fixed 1e-15 / 1e-7).

``overlap_area`` is the separation measure of the paper's pairwise prediction analysis
(§3.6.2, Fig. 7): the overlap of the positive and negative score distributions.
"""

from __future__ import annotations

import warnings

import numpy as np

__all__ = ["roc_auc", "group_auc", "log_loss", "overlap_area"]


def _binary_labels(y_true: np.ndarray, n: int, what: str) -> np.ndarray:
    y = np.asarray(y_true).reshape(-1)
    if y.shape[0] != n:
        raise ValueError(f"{what}: y_true has {y.shape[0]} rows but the predictions have {n}")
    if y.dtype != np.bool_:
        ok = (y == 0) | (y == 1)
        if not ok.all():
            bad = int(np.flatnonzero(~ok)[0])
            raise ValueError(f"{what}: labels must be 0 or 1; found {y[bad]!r} at row {bad}")
    return y.astype(bool, copy=False)


def roc_auc(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """Area under the ROC curve of binary ``y_true`` (0/1) ranked by ``y_score``.

    Ties in ``y_score`` count one half, as in scikit-learn's ``roc_auc_score``.
    """
    s = np.asarray(y_score).reshape(-1)
    if not np.issubdtype(s.dtype, np.floating):
        s = s.astype(np.float64)
    y = _binary_labels(y_true, s.shape[0], "roc_auc")
    if np.isnan(s).any():
        raise ValueError("roc_auc: y_score contains NaN")
    n = s.shape[0]
    n_pos = int(np.count_nonzero(y))
    n_neg = n - n_pos
    if n_pos == 0 or n_neg == 0:
        warnings.warn(
            "Only one class is present in y_true. ROC AUC score is not defined in that case.",
            RuntimeWarning,
            stacklevel=2,
        )
        return float("nan")
    order = np.argsort(s, kind="stable")
    s_sorted = s[order]
    # Tie groups of equal scores: [starts[k], ends[k]) in sorted order; average 1-based rank.
    starts = np.flatnonzero(np.concatenate(([True], s_sorted[1:] != s_sorted[:-1])))
    ends = np.append(starts[1:], n)
    avg_rank = (starts + ends + 1) * 0.5
    # Positives per tie group; the rank sum of positives is sum(avg_rank * positives).
    pos_sorted = y[order]
    pos_cum = np.concatenate(([0], np.cumsum(pos_sorted, dtype=np.int64)))
    pos_per_group = pos_cum[ends] - pos_cum[starts]
    rank_sum = float(np.dot(avg_rank, pos_per_group.astype(np.float64)))
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (float(n_pos) * float(n_neg))


def group_auc(y_true: np.ndarray, y_score: np.ndarray, groups: np.ndarray) -> float:
    """Group AUC: the impression-weighted mean of per-group (per-user) AUCs.

    ``GAUC = Σ_u n_u · AUC_u / Σ_u n_u`` over the groups ``u`` holding both classes, with ``n_u``
    the group's rows (impressions); groups with a single class are skipped, as is usual (their
    AUC is undefined). Ties count one half, as in :func:`roc_auc`. One sort of all rows by
    (group, score), so the cost is that of one AUC, not one per group. Raises ``ValueError``
    when no group holds both classes.
    """
    s = np.asarray(y_score).reshape(-1)
    if not np.issubdtype(s.dtype, np.floating):
        s = s.astype(np.float64)
    y = _binary_labels(y_true, s.shape[0], "group_auc")
    g = np.asarray(groups).reshape(-1)
    if g.shape[0] != s.shape[0]:
        raise ValueError(f"group_auc: {g.shape[0]} group ids for {s.shape[0]} scores")
    if np.isnan(s).any():
        raise ValueError("group_auc: y_score contains NaN")
    n = s.shape[0]
    if n == 0:
        raise ValueError("group_auc: no rows")
    _, g = np.unique(g, return_inverse=True)
    order = np.lexsort((s, g))
    g_s, s_s, y_s = g[order], s[order], y[order]
    group_start = np.flatnonzero(np.concatenate(([True], g_s[1:] != g_s[:-1])))
    starts = np.flatnonzero(np.concatenate(([True], (g_s[1:] != g_s[:-1]) | (s_s[1:] != s_s[:-1]))))
    ends = np.append(starts[1:], n)
    tie_group = g_s[starts]
    first = group_start[np.searchsorted(group_start, starts, side="right") - 1]
    avg_rank = (starts + ends + 1) * 0.5 - first  # 1-based average rank within the group
    pos_cum = np.concatenate(([0], np.cumsum(y_s, dtype=np.int64)))
    pos_per_tie = (pos_cum[ends] - pos_cum[starts]).astype(np.float64)
    n_groups = int(g_s[-1]) + 1
    rank_sum = np.bincount(tie_group, weights=avg_rank * pos_per_tie, minlength=n_groups)
    n_pos = np.bincount(g, weights=y.astype(np.float64), minlength=n_groups)
    n_all = np.bincount(g, minlength=n_groups).astype(np.float64)
    n_neg = n_all - n_pos
    valid = (n_pos > 0) & (n_neg > 0)
    if not valid.any():
        raise ValueError("group_auc: no group holds both classes; GAUC is undefined")
    auc = (rank_sum[valid] - n_pos[valid] * (n_pos[valid] + 1) / 2) / (n_pos[valid] * n_neg[valid])
    return float(np.dot(n_all[valid], auc) / n_all[valid].sum())


def log_loss(y_true: np.ndarray, y_prob: np.ndarray) -> float:
    """Mean binary cross-entropy of probabilities ``y_prob`` against 0/1 ``y_true``.

    Probabilities outside [0, 1] are an error; ``p`` and ``1 - p`` are clipped to
    ``[eps, 1 - eps]`` with ``eps = finfo(dtype).eps`` (float64 for non-float input).
    """
    p = np.asarray(y_prob).reshape(-1)
    if not np.issubdtype(p.dtype, np.floating) or p.dtype == np.float16:
        p = p.astype(np.float64)
    y = _binary_labels(y_true, p.shape[0], "log_loss")
    if p.shape[0] == 0:
        raise ValueError("log_loss: no rows")
    if np.isnan(p).any():
        raise ValueError("log_loss: y_prob contains NaN")
    if p.max() > 1 or p.min() < 0:
        raise ValueError(f"log_loss: probabilities must be in [0, 1]; found range [{p.min()}, {p.max()}]")
    eps = np.finfo(p.dtype).eps
    p1 = np.clip(p, eps, 1 - eps)
    p0 = np.clip(1 - p, eps, 1 - eps)
    picked = np.where(y, p1, p0).astype(np.float64, copy=False)
    return float(-np.mean(np.log(picked)))


def overlap_area(probs: np.ndarray, labels: np.ndarray, bins: int = 100) -> float:
    """Overlap coefficient of the positive and negative score distributions (paper Fig. 7, "OA").

    ``OA = ∫ min(f₊(s), f₋(s)) ds`` over ``s ∈ [0, 1]``, estimated with histograms on ``bins``
    equal-width bins of ``[0, 1]``: score ``s`` falls in bin ``k = min(floor(s · bins), bins - 1)``
    (computed in float64; the last bin is closed, so a score of exactly 1 counts). With
    ``n₊``/``n₋`` positives/negatives and ``c₊ₖ``/``c₋ₖ`` of them in bin ``k`` of width ``w``, the
    densities are ``f±ₖ = c±ₖ / (n± w)``, so ``OA = Σₖ min(c₊ₖ / n₊, c₋ₖ / n₋)``: the summed
    minimum of the two classes' bin fractions. 1 = identical histograms, 0 = no bin holds both
    classes (perfect separation); lower is better.

    The estimator is biased two ways. Sampling noise pushes it *down*: the bin fractions are
    noisy and ``E[min(a, b)] <= min(E a, E b)``, so two samples of the same distribution score
    below 1 — by roughly ``sqrt(bins / min(n₊, n₋))`` in order of magnitude, so the class with
    fewer rows (the clicks) sets the resolution. Binning pushes it *up*: scores of both classes
    in one bin count as overlapping however far apart they are inside it, and CTR scores often
    crowd into the first few of the equal-width bins. Compare overlap areas only between
    predictions scored on the same rows with the same ``bins``.

    ``probs`` (N,) in [0, 1]; ``labels`` (N,) 0/1 with both classes present.
    """
    s = np.asarray(probs).reshape(-1)
    if not np.issubdtype(s.dtype, np.floating):
        s = s.astype(np.float64)
    y = _binary_labels(labels, s.shape[0], "overlap_area")
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ValueError(f"overlap_area: bins must be a positive integer, got {bins!r}")
    if np.isnan(s).any():
        raise ValueError("overlap_area: probs contains NaN")
    if s.shape[0] and (s.min() < 0 or s.max() > 1):
        raise ValueError(f"overlap_area: probs must be probabilities in [0, 1]; found range [{s.min()}, {s.max()}]")
    n_pos = int(np.count_nonzero(y))
    n_neg = s.shape[0] - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError(
            f"overlap_area: labels hold only one class ({n_pos} positives, {n_neg} negatives); "
            "the overlap of two score distributions needs both"
        )
    # Bin index of every score (s == 1 goes to the last bin), then one bincount per class.
    idx = np.minimum((s.astype(np.float64) * bins).astype(np.int64), bins - 1)
    frac_pos = np.bincount(idx[y], minlength=bins) / n_pos
    frac_neg = np.bincount(idx[~y], minlength=bins) / n_neg
    return float(np.minimum(frac_pos, frac_neg).sum())
