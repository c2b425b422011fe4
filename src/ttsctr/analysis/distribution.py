"""Shape of one prediction's class-conditional score distributions (paper §3.6, Eq. 14–15, Fig. 7).

* :func:`separation` (Eq. 14): ``(μ₊ − μ₋) / sqrt(σ₊² + σ₋²)``, how far apart the mean scores of
  clicked and non-clicked rows are, in units of their joint spread.
* :func:`sharpness` (Eq. 15): ``(1/σ₊ + 1/σ₋) / 2``, how concentrated each class's scores are.
* :func:`overlap` : the overlap area of the two class histograms (Fig. 7's diagonal,
  :func:`ttsctr.metrics.overlap_area`), with this module's errors.
* :func:`histogram_js`: Jensen–Shannon divergence between the *score histograms* of two
  predictions. The other JS of this project, :func:`ttsctr.merging.diversity.js_divergence`, is
  the per-row Bernoulli JS averaged over rows: it sees two members that rank the same rows
  differently, which the histogram JS cannot (two predictions that permute the same scores over
  the rows have histogram JS 0). The analyses report both.

Standard deviations are population ones (``ddof=0``). Labels must hold both classes: a single
class raises :class:`~ttsctr.errors.ConfigError` naming what was passed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ttsctr.errors import ConfigError
from ttsctr.merging.diversity import _check_probs_1d
from ttsctr.metrics import overlap_area

__all__ = ["class_moments", "distribution_statistics", "histogram_js", "overlap", "separation", "sharpness"]


def _probabilities(name: str, probs: Any) -> np.ndarray:
    p = _check_probs_1d(name, probs)  # NaN fails its range check too
    if p.size == 0:
        raise ConfigError(f"{name}: no predictions")
    return p


def class_moments(probs: Any, labels: Any) -> tuple[float, float, float, float]:
    """``(μ₊, σ₊, μ₋, σ₋)`` of the scores of positive and negative rows (``ddof=0``)."""
    p = np.asarray(probs, dtype=np.float64).ravel()
    y = np.asarray(labels).ravel()
    if p.size != y.size:
        raise ConfigError(f"{p.size} predictions but {y.size} labels")
    if y.dtype != bool:
        bad = ~np.isin(y, (0, 1))
        if bad.any():
            raise ConfigError(f"labels must be 0/1; found {y[bad][0].item()!r} at row {int(np.flatnonzero(bad)[0])}")
        y = y == 1
    pos, neg = p[y], p[~y]
    if pos.size == 0 or neg.size == 0:
        raise ConfigError(f"labels hold a single class ({pos.size} positives of {p.size}); need both")
    return float(pos.mean()), float(pos.std()), float(neg.mean()), float(neg.std())


def separation(probs: Any, labels: Any) -> float:
    """Eq. 14: ``(μ₊ − μ₋) / sqrt(σ₊² + σ₋²)``.

    Both classes without spread: ``0`` when their means are equal (all predictions equal: no
    separation at all), ``±inf`` otherwise (a perfect, constant-per-class prediction).
    """
    return _separation(class_moments(probs, labels))


def _separation(moments: tuple[float, float, float, float]) -> float:
    mp, sp, mn, sn = moments
    spread = float(np.sqrt(sp * sp + sn * sn))
    if spread == 0.0:
        return 0.0 if mp == mn else float(np.copysign(np.inf, mp - mn))
    return (mp - mn) / spread


def sharpness(probs: Any, labels: Any) -> float:
    """Eq. 15: ``(1/σ₊ + 1/σ₋) / 2``; a class without spread gives ``inf``."""
    return _sharpness(class_moments(probs, labels))


def _sharpness(moments: tuple[float, float, float, float]) -> float:
    _, sp, _, sn = moments
    with np.errstate(divide="ignore"):
        return float(0.5 * (np.float64(1.0) / sp + np.float64(1.0) / sn))


def overlap(probs: Any, labels: Any, bins: int = 100) -> float:
    """Overlap area of the positive and negative score histograms on ``bins`` equal-width bins
    of ``[0, 1]`` (1 = the classes are indistinguishable, 0 = no bin holds both)."""
    class_moments(probs, labels)  # same checks and errors as the other statistics
    return _overlap(probs, labels, bins)


def _overlap(probs: Any, labels: Any, bins: int) -> float:
    try:
        return overlap_area(np.asarray(probs, dtype=np.float64), np.asarray(labels), bins=bins)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def distribution_statistics(probs: Any, labels: Any, bins: int = 100) -> tuple[float, float, float]:
    """``(separation, sharpness, overlap)`` of one prediction, its class moments computed once."""
    moments = class_moments(probs, labels)
    return _separation(moments), _sharpness(moments), _overlap(probs, labels, bins)


def _entropy(p: np.ndarray) -> float:
    nz = p[p > 0]
    return float(-(nz * np.log(nz)).sum())


def histogram_js(p: Any, q: Any, bins: int = 50) -> float:
    """Jensen–Shannon divergence (nats, in ``[0, ln 2]``) between the histograms of the scores
    ``p`` and ``q`` on ``bins`` equal-width bins of ``[0, 1]``.

    ``JS = H((P + Q)/2) − (H(P) + H(Q))/2`` with ``P``, ``Q`` the bin fractions. It compares the
    two score distributions only, not which row got which score (see the module docstring).
    """
    a, b = _probabilities("histogram_js p", p), _probabilities("histogram_js q", q)
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ConfigError(f"histogram_js: bins must be a positive integer, got {bins!r}")
    ha = np.bincount(np.minimum((a * bins).astype(np.int64), bins - 1), minlength=bins) / a.size
    hb = np.bincount(np.minimum((b * bins).astype(np.int64), bins - 1), minlength=bins) / b.size
    return max(0.0, _entropy(0.5 * (ha + hb)) - 0.5 * (_entropy(ha) + _entropy(hb)))
