"""Merge rules (Eq. 10, 13) on hand-made numbers; the package keeps its public names."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from ttsctr.errors import ConfigError
from ttsctr.merging import (
    MERGE_RULES,
    merge_groups,
    merge_logits,
    merge_probabilities,
    sigmoid,
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


def test_package_reexports_the_names_importable_before_the_split() -> None:
    import ttsctr.merging as merging

    names = [
        "MERGE_RULES", "MemberPool", "MergeRule", "SCALING_COLUMNS", "draw_members", "merge_groups", "merge_logits",
        "merge_probabilities", "merge_pool", "scaling_table", "sigmoid", "ttest_two_sided",
        "_Evaluator", "_get_rule", "_check_seed",  # used by ttsctr.analysis
    ]
    missing = [n for n in names if not hasattr(merging, n)]
    assert missing == []
    assert merging.merge_pool.__module__ == "ttsctr.merging.pool"
    assert merging.scaling_table.__module__ == "ttsctr.merging.scaling"
