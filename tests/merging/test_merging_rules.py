"""Merge rules (Eq. 10, 13) and the t-test, on hand-made numbers."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.stats

from ttsctr.errors import ConfigError
from ttsctr.merging import (
    MERGE_RULES,
    merge_groups,
    merge_logits,
    merge_probabilities,
    sigmoid,
    ttest_two_sided,
)


def test_eq10_mean_of_member_probabilities() -> None:
    probs = np.array([[0.2, 0.4, 0.6], [0.9, 0.1, 0.5], [1.0, 0.0, 0.5]])
    # (0.2+0.4+0.6)/3 = 0.4 ; (0.9+0.1+0.5)/3 = 0.5 ; (1+0+0.5)/3 = 0.5
    np.testing.assert_allclose(merge_probabilities(probs), [0.4, 0.5, 0.5], rtol=0, atol=1e-15)
    assert merge_probabilities(probs).dtype == np.float64
    # a single member merges to itself
    np.testing.assert_array_equal(merge_probabilities(probs[:, :1]), probs[:, 0])


def test_eq10_rejects_bad_input() -> None:
    with pytest.raises(ConfigError, match=r"\(N, M\)"):
        merge_probabilities(np.array([0.1, 0.2]))
    with pytest.raises(ConfigError, match="merge_logits"):
        merge_probabilities(np.array([[0.5, 2.3]]))  # logits passed by mistake


def test_merge_logits_is_sigmoid_of_mean_logit() -> None:
    logits = np.array([[0.0, 2.0], [math.log(3), -math.log(3)], [math.log(3), math.log(3)]])
    # sigmoid(1) ; sigmoid(0) ; sigmoid(ln 3) = 3/4
    np.testing.assert_allclose(merge_logits(logits), [1 / (1 + math.exp(-1)), 0.5, 0.75], rtol=1e-15)


def test_merge_rules_table_works_on_logits() -> None:
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(50, 4))
    assert set(MERGE_RULES) == {"mean_prob", "mean_logit"}
    np.testing.assert_allclose(MERGE_RULES["mean_prob"](logits), merge_probabilities(sigmoid(logits)), rtol=1e-14)
    np.testing.assert_allclose(MERGE_RULES["mean_logit"](logits), merge_logits(logits), rtol=1e-14)
    # the two rules really differ
    assert np.max(np.abs(MERGE_RULES["mean_prob"](logits) - MERGE_RULES["mean_logit"](logits))) > 1e-3


def test_eq13_size_weighted_group_mean() -> None:
    g1 = np.array([0.2, 0.8])  # a group of 1 member
    g2 = np.array([0.5, 0.5])  # a group of 3 members
    # (1*0.2 + 3*0.5)/4 = 0.425 ; (1*0.8 + 3*0.5)/4 = 0.575
    np.testing.assert_allclose(merge_groups([g1, g2], [1, 3]), [0.425, 0.575], rtol=1e-15)
    # equal sizes: the plain mean
    np.testing.assert_allclose(merge_groups([g1, g2], [2, 2]), [0.35, 0.65], rtol=1e-15)


def test_eq13_of_eq11_groups_equals_eq10_over_all_members() -> None:
    rng = np.random.default_rng(0)
    probs = rng.random((30, 6))
    groups = [[0], [1, 2, 3], [4, 5]]
    group_probs = [merge_probabilities(probs[:, g]) for g in groups]  # Eq. 11
    np.testing.assert_allclose(
        merge_groups(group_probs, [len(g) for g in groups]), merge_probabilities(probs), rtol=1e-14
    )


@pytest.mark.parametrize(
    "probs, sizes, match",
    [
        ([np.zeros(3), np.zeros(3)], [1], "one size per group"),
        ([np.zeros(3)], [0], "positive integers"),
        ([np.zeros(3)], [1.5], "positive integers"),
        ([np.zeros(3), np.zeros(4)], [1, 1], "shape"),
        ([], [], "at least one group"),
    ],
)
def test_eq13_errors(probs, sizes, match) -> None:
    with pytest.raises(ConfigError, match=match):
        merge_groups(probs, sizes)


def test_sigmoid_is_stable_and_keeps_float32() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = sigmoid(np.array([-800.0, 0.0, 800.0]))
    np.testing.assert_array_equal(out, [0.0, 0.5, 1.0])
    assert sigmoid(np.zeros(2, dtype=np.float32)).dtype == np.float32
    assert sigmoid(-40.0) == pytest.approx(math.exp(-40), rel=1e-12)  # no cancellation


T_TEST_CASES = [
    ([0.81, 0.812, 0.809, 0.811, 0.810], [0.805, 0.806, 0.804, 0.807, 0.806]),  # equal sizes
    ([1.0, 2.0, 3.0, 4.0, 5.5, 2.2, 3.3], [2.0, 2.5, 3.1]),  # unequal sizes
    ([0.1, 0.2, 0.15], [0.1, 0.2, 0.15, 0.12, 0.18, 0.11, 0.16, 0.19]),  # t near 0
    ([10.0, 10.1, 9.9, 10.05], [1.0, 1.1, 0.9, 1.05]),  # huge t, tiny p
    ([3, 4, 5, 6, 7, 8], [1, 9, 2, 12, 0, 7, 5]),  # integers, very different variances
    ([1.0, 2.0], [3.0]),  # Student with df = 1
]


@pytest.mark.parametrize("equal_var", [True, False])
@pytest.mark.parametrize("a, b", T_TEST_CASES)
def test_ttest_equals_scipy(a, b, equal_var) -> None:
    t, p = ttest_two_sided(a, b, equal_var=equal_var)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = scipy.stats.ttest_ind(a, b, equal_var=equal_var)
    if math.isnan(ref.statistic):
        assert math.isnan(t) and math.isnan(p)
        return
    assert t == pytest.approx(ref.statistic, rel=1e-12)
    assert p == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-300)
    assert ttest_two_sided(b, a, equal_var=equal_var) == pytest.approx((-t, p), rel=1e-12)


def test_ttest_random_cases_equal_scipy() -> None:
    rng = np.random.default_rng(7)
    for _ in range(40):
        a = rng.normal(0, rng.uniform(0.1, 3), size=rng.integers(2, 30))
        b = rng.normal(rng.uniform(-2, 2), rng.uniform(0.1, 3), size=rng.integers(2, 30))
        for ev in (True, False):
            t, p = ttest_two_sided(a, b, equal_var=ev)
            ref = scipy.stats.ttest_ind(a, b, equal_var=ev)
            assert t == pytest.approx(ref.statistic, rel=1e-10)
            assert p == pytest.approx(ref.pvalue, rel=1e-8, abs=1e-300)


@pytest.mark.parametrize("equal_var", [True, False])
@pytest.mark.parametrize(
    "a, b",
    [
        ([1.0, 1.0, 1.0], [1.0, 1.0, 1.0]),  # zero variance, equal means -> nan
        ([1.0, 1.0, 1.0], [2.0, 2.0, 2.0]),  # zero variance, different means -> -inf, 0
        ([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]),  # one zero-variance sample: regular
        ([1.0], [1.0, 2.0, 3.0]),  # Student fine, Welch nan
        ([1.0], [2.0]),  # df = 0 -> nan
        ([], [1.0, 2.0]),  # empty -> nan
    ],
)
def test_ttest_degenerate_cases_like_scipy(a, b, equal_var) -> None:
    t, p = ttest_two_sided(a, b, equal_var=equal_var)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = scipy.stats.ttest_ind(a, b, equal_var=equal_var)
    np.testing.assert_allclose([t, p], [ref.statistic, ref.pvalue], rtol=1e-10, equal_nan=True)
