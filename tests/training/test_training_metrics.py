"""ttsctr.metrics equals scikit-learn 1.9 on binary labels, ties and clipping included."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.metrics import log_loss as sk_log_loss
from sklearn.metrics import roc_auc_score

from ttsctr.metrics import log_loss, roc_auc


def _labels(rng: np.random.Generator, n: int, rate: float = 0.3) -> np.ndarray:
    y = (rng.random(n) < rate).astype(np.float32)
    y[:2] = [0, 1]  # both classes present
    return y


@pytest.mark.parametrize("n", [2, 7, 1000, 50_000])
def test_auc_matches_sklearn_on_continuous_scores(n: int) -> None:
    rng = np.random.default_rng(n)
    y = _labels(rng, n)
    s = rng.normal(size=n) + y  # informative
    assert roc_auc(y, s) == pytest.approx(roc_auc_score(y, s), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("decimals", [0, 1, 2])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_auc_matches_sklearn_with_ties(decimals: int, dtype: type) -> None:
    rng = np.random.default_rng(decimals)
    y = _labels(rng, 20_000)
    s = np.round(rng.random(20_000) * 3 + 0.5 * y, decimals).astype(dtype)  # many tied scores
    assert len(np.unique(s)) < 20_000
    assert roc_auc(y, s) == pytest.approx(roc_auc_score(y, s), rel=1e-12, abs=1e-12)


def test_auc_edge_cases_match_sklearn() -> None:
    y = np.array([0, 1, 0, 1, 1])
    assert roc_auc(y, np.zeros(5)) == 0.5 == roc_auc_score(y, np.zeros(5))  # all tied
    assert roc_auc(y, y.astype(float)) == 1.0
    assert roc_auc(y, -y.astype(float)) == 0.0
    ints = np.array([3, 1, 3, 2, 3])
    assert roc_auc(y, ints) == pytest.approx(roc_auc_score(y, ints))
    assert roc_auc(y.astype(bool), ints) == pytest.approx(roc_auc_score(y, ints))


def test_auc_single_class_is_nan_with_warning_like_sklearn() -> None:
    y = np.ones(4)
    with pytest.warns(RuntimeWarning, match="Only one class"):
        ours = roc_auc(y, np.arange(4.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = roc_auc_score(y, np.arange(4.0))
    assert np.isnan(ours) and np.isnan(theirs)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_logloss_matches_sklearn_including_clipping(dtype: type) -> None:
    rng = np.random.default_rng(3)
    y = _labels(rng, 10_000)
    p = rng.random(10_000).astype(dtype)
    p[:50] = 0.0  # clipped to eps (the dtype's machine epsilon, as sklearn 1.9 does)
    p[50:100] = 1.0
    p[100:150] = y[100:150]  # exactly right
    tol = 1e-12 if dtype == np.float64 else 1e-6
    assert log_loss(y, p) == pytest.approx(sk_log_loss(y, p), rel=tol)


def test_logloss_extremes_and_errors() -> None:
    y = np.array([1.0, 0.0])
    # p = 0 for a positive: -log(eps64) = 36.04..., exactly sklearn's value.
    assert log_loss(y, np.array([0.0, 0.0])) == pytest.approx(sk_log_loss(y, np.array([0.0, 0.0])))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        log_loss(y, np.array([1.5, 0.2]))
    with pytest.raises(ValueError, match="0 or 1"):
        log_loss(np.array([2.0, 0.0]), np.array([0.5, 0.5]))
    with pytest.raises(ValueError, match="rows"):
        roc_auc(np.array([1.0, 0.0, 1.0]), np.array([0.5, 0.5]))
    with pytest.raises(ValueError, match="NaN"):
        roc_auc(y, np.array([np.nan, 0.1]))
