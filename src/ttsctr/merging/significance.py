"""Significance of a merged ensemble's AUC gain: the paper's t-test and DeLong's test.

Two questions, two tests:

* **Across trained models** (the paper's ``*``): a two-sided two-sample t-test of the AUCs of
  the distinct K× draws against the AUCs of the 1× units (:func:`ttest_two_sided`, Welch by
  default, computed by ``scipy.stats.ttest_ind``). It is kept for comparability with the
  paper. Its samples are not independent (K× draws share members with each other and with the
  1× units), so its p-value is descriptive.
* **On one test set** (:func:`delong_test`, :func:`delong_contrast`): DeLong, DeLong &
  Clarke-Pearson (1988) for correlated ROC AUCs of several scores on the *same rows*. It
  conditions on the trained models and accounts for the test-set sampling error, including
  every correlation between the scores compared (shared members, shared rows).

DeLong is implemented here with numpy and ``scipy.stats.rankdata`` because no dependency of the
project offers it (scipy, scikit-learn and statsmodels have no DeLong test). The algorithm is
the fast O(N log N) one of Sun & Xu (2014), "Fast Implementation of DeLong's Algorithm for
Comparing the Areas Under Correlated Receiver Operating Characteristic Curves", IEEE Signal
Processing Letters 21(11):1389–1393.

Notation (DeLong 1988): ``m`` positives with scores ``X_1..X_m``, ``n`` negatives with
scores ``Y_1..Y_n``, ``psi(x, y) = 1 if x > y, 1/2 if x = y, 0 otherwise``. For score ``r``::

    AUC_r       = (1 / m n) sum_i sum_j psi(X_i, Y_j)
    V10_r[i]    = (1 / n) sum_j psi(X_i, Y_j)            (structural component of positive i)
    V01_r[j]    = (1 / m) sum_i psi(X_i, Y_j)            (structural component of negative j)
    S10[r, s]   = cov_i(V10_r, V10_s)   (ddof = 1),  S01 likewise over j
    S           = S10 / m + S01 / n                       (covariance of the AUC estimates)

A linear contrast ``L = sum_r c_r AUC_r`` (e.g. ``AUC_a - AUC_b``) has variance ``c' S c``,
which equals ``var_i(sum_r c_r V10_r[i]) / m + var_j(sum_r c_r V01_r[j]) / n``; its test is
``z = L / sqrt(c' S c)``, two-sided ``p = 2 (1 - Phi(|z|))``.

Sun & Xu compute the components from midranks (ties get the average rank, which is exactly the
``psi = 1/2`` convention): with ``T_Z`` the midranks of all ``m + n`` scores, ``T_X`` those of
the positives among themselves and ``T_Y`` those of the negatives::

    V10[i] = (T_Z[i] - T_X[i]) / n
    V01[j] = 1 - (T_Z[m + j] - T_Y[j]) / m
    AUC    = (sum_i T_Z[i] - m (m + 1) / 2) / (m n)
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.stats

from ttsctr.errors import ConfigError

__all__ = [
    "DeLongResult",
    "delong_components",
    "delong_contrast",
    "delong_covariance",
    "delong_test",
    "ttest_two_sided",
]


# --------------------------------------------------------------------------------------------
# The paper's t-test (scipy)
# --------------------------------------------------------------------------------------------


def ttest_two_sided(a: Any, b: Any, equal_var: bool = False) -> tuple[float, float]:
    """Two-sided two-sample t-test of ``mean(a) == mean(b)``: ``(t, p)``.

    ``scipy.stats.ttest_ind(a, b, equal_var=equal_var)``; ``equal_var=False`` (default) is
    Welch's test. Returns ``(nan, nan)`` — without scipy's warnings — where the test is
    undefined: a sample with fewer than two values (one distinct ensemble has no spread) or a
    NaN in the data.
    """
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    nan = float("nan")
    if x.size < 2 or y.size < 2 or np.isnan(x).any() or np.isnan(y).any():
        return nan, nan
    with warnings.catch_warnings():
        # two samples of zero spread: scipy returns nan (equal means) or +-inf with p = 0 and warns
        warnings.simplefilter("ignore", RuntimeWarning)
        res = scipy.stats.ttest_ind(x, y, equal_var=equal_var)
    return float(res.statistic), float(res.pvalue)


# --------------------------------------------------------------------------------------------
# DeLong (own implementation: no library offers it)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeLongResult:
    """A DeLong test of ``diff = AUC_a - AUC_b`` (or of a contrast of AUCs): two-sided."""

    diff: float
    se: float
    z: float
    p_value: float
    auc_a: float = float("nan")
    auc_b: float = float("nan")


def _labels(labels: Any, n: int) -> np.ndarray:
    y = np.asarray(labels).ravel()
    if y.shape[0] != n:
        raise ConfigError(f"DeLong: {y.shape[0]} labels for {n} scores")
    if y.dtype != bool:
        if not np.all((y == 0) | (y == 1)):
            raise ConfigError("DeLong: labels must be 0/1")
        y = y == 1
    n_pos = int(y.sum())
    if n_pos == 0 or n_pos == n:
        raise ConfigError(f"DeLong: labels hold a single class ({n_pos} positives of {n}); AUC is undefined")
    return y


def delong_components(labels: Any, scores: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AUCs and DeLong structural components of ``k`` scores on the same rows.

    ``scores`` is ``(N,)`` or ``(k, N)`` (one score per row and predictor); ``labels`` ``(N,)``
    0/1. Returns ``(auc (k,), v10 (k, m), v01 (k, n))`` with ``m`` positives and ``n``
    negatives in row order (see the module docstring). Fast algorithm of Sun & Xu (2014):
    three midrank computations per score, O(k N log N) time, O(k N) memory.
    """
    s = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    if s.ndim != 2:
        raise ConfigError(f"DeLong: scores must be (N,) or (k, N), got shape {np.shape(scores)}")
    if np.isnan(s).any():
        raise ConfigError("DeLong: scores contain NaN")
    y = _labels(labels, s.shape[1])
    x_pos, y_neg = s[:, y], s[:, ~y]
    m, n = x_pos.shape[1], y_neg.shape[1]
    tx = scipy.stats.rankdata(x_pos, method="average", axis=1)
    ty = scipy.stats.rankdata(y_neg, method="average", axis=1)
    tz = scipy.stats.rankdata(np.concatenate([x_pos, y_neg], axis=1), method="average", axis=1)
    auc = (tz[:, :m].sum(axis=1) - m * (m + 1) / 2.0) / (float(m) * float(n))
    v10 = (tz[:, :m] - tx) / n
    v01 = 1.0 - (tz[:, m:] - ty) / m
    return auc, v10, v01


def delong_covariance(labels: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(auc (k,), S (k, k))``: the AUCs of ``k`` scores and DeLong's covariance estimate
    ``S = S10 / m + S01 / n`` of those AUCs (module docstring)."""
    auc, v10, v01 = delong_components(labels, scores)
    m, n = v10.shape[1], v01.shape[1]
    s10 = np.atleast_2d(np.cov(v10, ddof=1)) if m > 1 else np.full((auc.size, auc.size), np.nan)
    s01 = np.atleast_2d(np.cov(v01, ddof=1)) if n > 1 else np.full((auc.size, auc.size), np.nan)
    return auc, s10 / m + s01 / n


def delong_contrast(c10: Any, c01: Any) -> DeLongResult:
    """Test a contrast ``L = sum_r c_r AUC_r = 0`` from its structural components.

    ``c10 = sum_r c_r V10_r`` ``(m,)`` and ``c01 = sum_r c_r V01_r`` ``(n,)``: the contrast's
    components (linear, so means of components of several scores may be combined before the
    test). ``L = mean(c10)``; ``var(L) = var(c10) / m + var(c01) / n`` (``ddof=1``), which is
    ``c' S c``. Degenerate cases: fewer than two positives or negatives, or zero variance with
    ``L = 0`` (identical scores) give ``p = nan``; zero variance with ``L != 0`` gives
    ``z = +-inf``, ``p = 0``.
    """
    a = np.asarray(c10, dtype=np.float64).ravel()
    b = np.asarray(c01, dtype=np.float64).ravel()
    m, n = a.size, b.size
    diff = float(a.mean()) if m else float("nan")
    if m < 2 or n < 2:
        return DeLongResult(diff, float("nan"), float("nan"), float("nan"))
    var = float(np.var(a, ddof=1)) / m + float(np.var(b, ddof=1)) / n
    if not var > 0.0:
        if diff == 0.0:
            return DeLongResult(0.0, 0.0, float("nan"), float("nan"))
        return DeLongResult(diff, 0.0, math.copysign(math.inf, diff), 0.0)
    se = math.sqrt(var)
    z = diff / se
    return DeLongResult(diff, se, z, float(2.0 * scipy.stats.norm.sf(abs(z))))


def delong_test(labels: Any, scores_a: Any, scores_b: Any) -> DeLongResult:
    """DeLong's two-sided test of ``AUC_a == AUC_b`` for two scores of the same rows (paired).

    ``z = (AUC_a - AUC_b) / sqrt(S_aa + S_bb - 2 S_ab)``, ``p = 2 (1 - Phi(|z|))``; see the
    module docstring for ``S``. Identical rankings give ``diff = 0`` and ``p = nan``.
    """
    a = np.asarray(scores_a, dtype=np.float64).ravel()
    b = np.asarray(scores_b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ConfigError(f"delong_test: {a.size} vs {b.size} scores; both must score the same rows")
    auc, v10, v01 = delong_components(labels, np.stack([a, b]))
    res = delong_contrast(v10[0] - v10[1], v01[0] - v01[1])
    return DeLongResult(res.diff, res.se, res.z, res.p_value, float(auc[0]), float(auc[1]))
