"""The paper's t-test (scipy) and DeLong's test for correlated AUCs (own fast implementation)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.stats

from ttsctr.errors import ConfigError
from ttsctr.merging import delong_components, delong_contrast, delong_covariance, delong_test, ttest_two_sided
from ttsctr.metrics import roc_auc


# ---- t-test -----------------------------------------------------------------------------------


def test_ttest_is_scipys_welch_test() -> None:
    rng = np.random.default_rng(7)
    for _ in range(20):
        a = rng.normal(0, rng.uniform(0.1, 3), size=rng.integers(2, 30))
        b = rng.normal(rng.uniform(-2, 2), rng.uniform(0.1, 3), size=rng.integers(2, 30))
        ref = scipy.stats.ttest_ind(a, b, equal_var=False)
        assert ttest_two_sided(a, b) == (pytest.approx(ref.statistic, rel=1e-12), pytest.approx(ref.pvalue, rel=1e-12))
        student = scipy.stats.ttest_ind(a, b, equal_var=True)
        assert ttest_two_sided(a, b, equal_var=True)[1] == pytest.approx(student.pvalue, rel=1e-12)
    # Welch and Student really differ on unequal sizes and variances
    a, b = [3, 4, 5, 6, 7, 8], [1, 9, 2, 12, 0, 7, 5]
    assert ttest_two_sided(a, b)[1] != pytest.approx(ttest_two_sided(a, b, equal_var=True)[1], rel=1e-3)


@pytest.mark.parametrize("a, b", [([0.8], [0.7, 0.71, 0.72]), ([0.7, 0.71], [0.8]), ([], [1.0, 2.0]), ([1.0, np.nan], [1.0, 2.0])])
def test_ttest_undefined_without_two_values_per_side(a, b) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no scipy warning leaks
        t, p = ttest_two_sided(a, b)
    assert math.isnan(t) and math.isnan(p)


# ---- DeLong -----------------------------------------------------------------------------------


def _psi(x: float, y: float) -> float:
    return 1.0 if x > y else 0.5 if x == y else 0.0


def _delong_direct(labels: np.ndarray, scores: np.ndarray):
    """O(N^2) reference: structural components straight from DeLong et al. (1988)."""
    pos, neg = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    m, n = pos.size, neg.size
    k = scores.shape[0]
    v10 = np.array([[np.mean([_psi(s[i], s[j]) for j in neg]) for i in pos] for s in scores])
    v01 = np.array([[np.mean([_psi(s[i], s[j]) for i in pos]) for j in neg] for s in scores])
    auc = v10.mean(axis=1)
    s10 = np.array([[np.sum((v10[r] - auc[r]) * (v10[q] - auc[q])) / (m - 1) for q in range(k)] for r in range(k)])
    s01 = np.array([[np.sum((v01[r] - auc[r]) * (v01[q] - auc[q])) / (n - 1) for q in range(k)] for r in range(k)])
    return auc, v10, v01, s10 / m + s01 / n


def test_fast_delong_equals_the_direct_quadratic_computation() -> None:
    rng = np.random.default_rng(0)
    n = 60
    labels = (rng.random(n) < 0.4).astype(int)
    base = labels + rng.normal(size=n)
    scores = np.stack([
        base + 0.5 * rng.normal(size=n),
        np.round(base + rng.normal(size=n), 1),  # many ties
        np.round(rng.normal(size=n)),  # heavy ties, near-useless score
    ])
    auc_ref, v10_ref, v01_ref, cov_ref = _delong_direct(labels, scores)
    auc, v10, v01 = delong_components(labels, scores)
    np.testing.assert_allclose(auc, auc_ref, rtol=0, atol=1e-14)
    np.testing.assert_allclose(v10, v10_ref, rtol=0, atol=1e-14)
    np.testing.assert_allclose(v01, v01_ref, rtol=0, atol=1e-14)
    auc2, cov = delong_covariance(labels, scores)
    np.testing.assert_allclose(cov, cov_ref, rtol=1e-12, atol=1e-16)
    assert abs(cov_ref[0, 1]) > 1e-4  # the scores really are correlated
    for r in range(3):
        assert auc2[r] == pytest.approx(roc_auc(labels, scores[r]), abs=1e-14)
    # the two-score test uses c' S c with c = (1, -1)
    res = delong_test(labels, scores[0], scores[1])
    var = cov_ref[0, 0] + cov_ref[1, 1] - 2 * cov_ref[0, 1]
    assert res.diff == pytest.approx(auc_ref[0] - auc_ref[1], abs=1e-14)
    assert res.se == pytest.approx(math.sqrt(var), rel=1e-12)
    assert res.p_value == pytest.approx(math.erfc(abs(res.diff) / math.sqrt(var) / math.sqrt(2)), rel=1e-10)
    assert (res.auc_a, res.auc_b) == (pytest.approx(auc_ref[0]), pytest.approx(auc_ref[1]))


def test_delong_known_case_by_hand() -> None:
    # positives: A = (0.9, 0.6, 0.4), B = (0.3, 0.8, 0.7); negatives: A = (0.5, 0.4, 0.2), B = (0.1, 0.9, 0.2)
    labels = [1, 1, 1, 0, 0, 0]
    a = [0.9, 0.6, 0.4, 0.5, 0.4, 0.2]
    b = [0.3, 0.8, 0.7, 0.1, 0.9, 0.2]
    auc, v10, v01 = delong_components(labels, np.stack([a, b]))
    # A: V10 = (1, 1, 1/2) (0.4 ties 0.4), V01 = (2/3, 5/6, 1), AUC 5/6 ; B: V10 = (2/3,)*3, V01 = (1, 0, 1), AUC 2/3
    np.testing.assert_allclose(v10, [[1, 1, 0.5], [2 / 3, 2 / 3, 2 / 3]], atol=1e-15)
    np.testing.assert_allclose(v01, [[2 / 3, 5 / 6, 1], [1, 0, 1]], atol=1e-15)
    np.testing.assert_allclose(auc, [5 / 6, 2 / 3], atol=1e-15)
    # S10 = diag(1/12, 0), S01 = diag(1/36, 1/3), cross terms 0; m = n = 3:
    # S_AA = (1/12 + 1/36)/3 = 1/27, S_BB = (0 + 1/3)/3 = 1/9, S_AB = 0
    _, cov = delong_covariance(labels, np.stack([a, b]))
    np.testing.assert_allclose(cov, [[1 / 27, 0], [0, 1 / 9]], atol=1e-15)
    # diff 1/6, var 4/27 -> z = (1/6) / sqrt(4/27) = sqrt(3)/4
    res = delong_test(labels, a, b)
    assert res.diff == pytest.approx(1 / 6, abs=1e-15)
    assert res.z == pytest.approx(math.sqrt(3) / 4, rel=1e-12)
    assert res.p_value == pytest.approx(math.erfc(math.sqrt(3) / 4 / math.sqrt(2)), rel=1e-12)  # 0.665


def test_delong_identical_scores_have_no_p_value_and_perfect_vs_constant_has_p_zero() -> None:
    rng = np.random.default_rng(1)
    labels = np.array([0, 1] * 50)
    s = rng.random(100)
    res = delong_test(labels, s, s.copy())
    assert res.diff == 0.0 and res.se == 0.0 and math.isnan(res.p_value)
    # a monotone transform ranks identically: same AUC, same components
    assert math.isnan(delong_test(labels, s, np.exp(3 * s)).p_value)
    perfect = labels + 0.0
    res = delong_test(labels, perfect, np.full(100, 0.3))  # AUC 1 vs 0.5, no spread in the components
    assert res.diff == 0.5 and res.z == math.inf and res.p_value == 0.0


def test_delong_is_calibrated_under_the_null() -> None:
    """Two equally good, correlated scores: about 5% of tests reject at 0.05 (seeded, deterministic)."""
    rng = np.random.default_rng(2)
    rejections, trials = 0, 400
    for _ in range(trials):
        y = (rng.random(300) < 0.3).astype(int)
        shared = y + rng.normal(size=300)
        p = delong_test(y, shared + rng.normal(size=300), shared + rng.normal(size=300)).p_value
        rejections += p < 0.05
    assert 0.025 <= rejections / trials <= 0.08


def test_delong_detects_a_real_difference() -> None:
    rng = np.random.default_rng(3)
    y = (rng.random(5000) < 0.3).astype(int)
    good, bad = y + 0.8 * rng.normal(size=5000), y + 1.6 * rng.normal(size=5000)
    res = delong_test(y, good, bad)
    assert res.diff > 0.05 and res.p_value < 1e-10


def test_delong_contrast_of_means_equals_c_S_c() -> None:
    """Mean of two scores vs a third: components averaged before the test = c' S c with c = (1/2, 1/2, -1)."""
    rng = np.random.default_rng(4)
    y = (rng.random(80) < 0.5).astype(int)
    scores = np.stack([y + rng.normal(size=80) for _ in range(3)])
    auc, v10, v01 = delong_components(y, scores)
    _, cov = delong_covariance(y, scores)
    c = np.array([0.5, 0.5, -1.0])
    res = delong_contrast(c @ v10, c @ v01)
    assert res.diff == pytest.approx(c @ auc, abs=1e-14)
    assert res.se == pytest.approx(math.sqrt(c @ cov @ c), rel=1e-12)


def test_delong_input_errors() -> None:
    with pytest.raises(ConfigError, match="single class"):
        delong_components([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ConfigError, match="3 labels for 2"):
        delong_components([0, 1, 1], [0.1, 0.2])
    with pytest.raises(ConfigError, match="same rows"):
        delong_test([0, 1, 1], [0.1, 0.2, 0.3], [0.1, 0.2])
    with pytest.raises(ConfigError, match="NaN"):
        delong_components([0, 1], [0.1, np.nan])
