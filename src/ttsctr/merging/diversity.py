"""Diversity of ensemble members: pairwise Pearson correlation and Jensen–Shannon divergence.

Merging can only help where members disagree (paper §3.6): members whose predictions are
near-identical average to the same prediction. :func:`member_diversity` summarises a pool by

* the mean pairwise **Pearson correlation of member logits** over rows (measured on the
  validation split by the pipelines), overall and, for heterogeneous pools, within and between
  architectures;
* the mean pairwise **Jensen–Shannon divergence**: for two members with click probabilities
  ``p_i``, ``q_i`` on row ``i``, the JS divergence of the Bernoulli distributions
  ``Bern(p_i)`` and ``Bern(q_i)`` in nats, averaged over rows (:func:`js_divergence`).

A mean correlation above :data:`NEAR_IDENTICAL_R` is logged as a warning
(:data:`NEAR_IDENTICAL_WARNING`) and printed in the reports.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from ttsctr.errors import ConfigError
from ttsctr.merging.pool import MemberPool, _check_seed

log = logging.getLogger(__name__)

__all__ = [
    "NEAR_IDENTICAL_R",
    "NEAR_IDENTICAL_WARNING",
    "MemberDiversity",
    "js_divergence",
    "mean_pairwise_js",
    "member_diversity",
    "pairwise_correlation",
    "pairwise_js",
]

NEAR_IDENTICAL_R = 0.99
NEAR_IDENTICAL_WARNING = "members are near-identical: merging cannot help"


# --------------------------------------------------------------------------------------------
# Jensen–Shannon divergence between Bernoulli predictions
# --------------------------------------------------------------------------------------------


def _bernoulli_entropy(x: np.ndarray) -> np.ndarray:
    """``H(Bern(x))`` in nats, with ``0 log 0 = 0``."""
    x = np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(x > 0, x * np.log(x), 0.0)
        b = np.where(x < 1, (1 - x) * np.log1p(-x), 0.0)
    return -(a + b)


def _check_probs_1d(name: str, p: Any) -> np.ndarray:
    a = np.asarray(p, dtype=np.float64).ravel()
    if not (np.all(a >= 0) and np.all(a <= 1)):
        raise ConfigError(f"{name}: values must be probabilities in [0, 1]")
    return a


def js_divergence(p: Any, q: Any) -> float:
    """Mean over rows of the Jensen–Shannon divergence between ``Bern(p_i)`` and ``Bern(q_i)``.

    ``JS(P, Q) = KL(P || A)/2 + KL(Q || A)/2`` with ``A = (P + Q)/2``, natural log (nats), so
    each row lies in ``[0, ln 2]``. Computed as ``H(A) - (H(P) + H(Q))/2``; symmetric, exactly 0
    for identical predictions (tiny negative rounding is clipped to 0).
    """
    a = _check_probs_1d("js_divergence p", p)
    b = _check_probs_1d("js_divergence q", q)
    if a.size != b.size:
        raise ConfigError(f"js_divergence: {a.size} vs {b.size} predictions")
    if a.size == 0:
        raise ConfigError("js_divergence: empty predictions")
    js = _bernoulli_entropy(0.5 * (a + b)) - 0.5 * (_bernoulli_entropy(a) + _bernoulli_entropy(b))
    return max(0.0, float(np.mean(js)))


def pairwise_js(probs: Any, *, max_rows: int | None = None, seed: int = 0) -> np.ndarray:
    """``(M, M)`` symmetric matrix of :func:`js_divergence` between members (columns of
    ``probs``), zero diagonal. Cost O(M^2 N); ``max_rows`` estimates it on a seeded random
    subset of rows."""
    P = np.asarray(probs, dtype=np.float64)
    if P.ndim != 2 or P.shape[0] == 0:
        raise ConfigError(f"pairwise_js: expected an (N, M) array of probabilities, got shape {P.shape}")
    if not (np.all(P >= 0) and np.all(P <= 1)):
        raise ConfigError("pairwise_js: values must be probabilities in [0, 1]")
    if max_rows is not None and P.shape[0] > max_rows:
        rows = np.random.default_rng(_check_seed(seed)).choice(P.shape[0], size=int(max_rows), replace=False)
        P = P[np.sort(rows)]
    cols = np.ascontiguousarray(P.T)  # (M, N)
    m = cols.shape[0]
    h = np.array([_bernoulli_entropy(c).mean() for c in cols])
    out = np.zeros((m, m), dtype=np.float64)
    for i in range(m):
        for j in range(i + 1, m):
            v = _bernoulli_entropy(0.5 * (cols[i] + cols[j])).mean() - 0.5 * (h[i] + h[j])
            out[i, j] = out[j, i] = max(0.0, float(v))
    return out


def mean_pairwise_js(probs: Any, **kwargs: Any) -> float:
    """Mean JS divergence over the ``M (M - 1) / 2`` member pairs; NaN for a single member."""
    mat = pairwise_js(probs, **kwargs)
    m = mat.shape[0]
    if m < 2:
        return float("nan")
    return float(mat[np.triu_indices(m, 1)].mean())


def _mean_offdiag(mat: np.ndarray, idx: np.ndarray) -> float:
    if idx.size < 2:
        return float("nan")
    sub = mat[np.ix_(idx, idx)]
    return float(sub[np.triu_indices(idx.size, 1)].mean())


# --------------------------------------------------------------------------------------------
# Pearson correlation of member logits
# --------------------------------------------------------------------------------------------


def pairwise_correlation(logits: Any, *, chunk_rows: int = 65536) -> np.ndarray:
    """``(M, M)`` Pearson correlations between the columns (members) of ``(N, M)`` logits.

    ``r_ab = sum_i (a_i - mean a)(b_i - mean b) / sqrt(sum_i (a_i - mean a)^2 sum_i (b_i - mean b)^2)``,
    accumulated in float64 over chunks of rows (no float64 copy of the whole array). The
    diagonal is 1; a constant member has no defined correlation (NaN row and column, diagonal
    included). Values are clipped to ``[-1, 1]`` against rounding.
    """
    x = np.asarray(logits)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ConfigError(f"pairwise_correlation: expected an (N, M) array, got shape {x.shape}")
    mean = x.mean(axis=0, dtype=np.float64)
    gram = np.zeros((x.shape[1], x.shape[1]), dtype=np.float64)
    for start in range(0, x.shape[0], chunk_rows):
        c = x[start : start + chunk_rows].astype(np.float64) - mean
        gram += c.T @ c
    sd = np.sqrt(np.diag(gram))
    with np.errstate(divide="ignore", invalid="ignore"):
        r = gram / np.outer(sd, sd)
    ok = sd > 0
    r[~ok, :] = np.nan
    r[:, ~ok] = np.nan
    np.fill_diagonal(r, np.where(ok, 1.0, np.nan))
    return np.clip(r, -1.0, 1.0)


def _mean_pairs(mat: np.ndarray, mask: np.ndarray) -> float:
    """Mean of ``mat`` over the upper-triangle pairs selected by ``mask``, NaN pairs skipped."""
    vals = mat[np.triu(mask, 1)]
    vals = vals[~np.isnan(vals)]
    return float(vals.mean()) if vals.size else float("nan")


# --------------------------------------------------------------------------------------------
# Pool summary
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemberDiversity:
    """Mean pairwise diversity of a pool's members.

    ``mean_r``: Pearson correlation of logits over all member pairs; ``mean_r_within`` over
    pairs of the same architecture (equals ``mean_r`` for homogeneous pools);
    ``mean_r_between`` over pairs of different architectures (NaN for homogeneous pools);
    ``mean_js``: Bernoulli JS divergence (nats, averaged over rows) over all pairs. All NaN
    for a single member. ``near_identical``: ``mean_r > threshold``.
    """

    n_members: int
    mean_r: float
    mean_r_within: float
    mean_r_between: float
    mean_js: float
    threshold: float = NEAR_IDENTICAL_R

    @property
    def near_identical(self) -> bool:
        return bool(self.mean_r > self.threshold)  # NaN compares False

    @property
    def warning(self) -> str | None:
        """The report line when members are near-identical, else ``None``."""
        if not self.near_identical:
            return None
        return f"{NEAR_IDENTICAL_WARNING} (mean pairwise r = {self.mean_r:.4f} > {self.threshold})"


def member_diversity(
    pool: MemberPool,
    *,
    name: str = "",
    threshold: float = NEAR_IDENTICAL_R,
    js_max_rows: int | None = None,
    seed: int = 0,
) -> MemberDiversity:
    """Pairwise correlation (of logits) and JS divergence (of probabilities) of ``pool``'s members.

    Logs ``logging.warning`` with :data:`NEAR_IDENTICAL_WARNING` when the mean correlation is
    above ``threshold`` (``name`` names the ensemble in the message). Cost O(M^2 N);
    ``js_max_rows`` estimates the JS part on a seeded random subset of rows.
    """
    if not isinstance(pool, MemberPool):
        raise ConfigError(f"member_diversity: pool must be a MemberPool, got {type(pool).__name__}")
    if not (isinstance(threshold, (int, float)) and -1 <= threshold <= 1):
        raise ConfigError(f"member_diversity: threshold must be a correlation in [-1, 1], got {threshold!r}")
    m = pool.n_members
    if m < 2:
        nan = float("nan")
        return MemberDiversity(m, nan, nan, nan, nan, float(threshold))
    r = pairwise_correlation(pool.logits)
    js = pairwise_js(pool.probabilities(), max_rows=js_max_rows, seed=seed)
    fam = pool.family_of_member
    every = np.ones((m, m), dtype=bool)
    same = fam[:, None] == fam[None, :]
    out = MemberDiversity(
        n_members=m,
        mean_r=_mean_pairs(r, every),
        mean_r_within=_mean_pairs(r, same),
        mean_r_between=_mean_pairs(r, ~same) if pool.n_families > 1 else float("nan"),
        mean_js=_mean_pairs(js, every),
        threshold=float(threshold),
    )
    if out.near_identical:
        log.warning("%s%s", f"{name}: " if name else "", out.warning)
    return out
