"""Group AUC (impression-weighted mean of per-user AUC) against hand computations and a per-group loop."""

from __future__ import annotations

import numpy as np
import pytest

from ttsctr.metrics import group_auc, roc_auc


def test_group_auc_by_hand() -> None:
    # user a: 4 rows, scores rank positives (0.9, 0.4) over negatives (0.5, 0.1): AUC 3/4
    # user b: 2 rows, perfectly ranked: AUC 1 ; user c: one class only -> skipped
    y = [1, 1, 0, 0, 1, 0, 1, 1]
    s = [0.9, 0.4, 0.5, 0.1, 0.8, 0.2, 0.3, 0.6]
    g = ["a", "a", "a", "a", "b", "b", "c", "c"]
    assert group_auc(y, s, g) == pytest.approx((4 * 0.75 + 2 * 1.0) / 6)


def test_group_auc_counts_ties_half_and_matches_a_per_group_loop() -> None:
    rng = np.random.default_rng(0)
    n = 5000
    g = rng.integers(0, 300, size=n)
    y = rng.random(n) < 0.3
    s = np.round(rng.random(n) + 0.5 * y, 1)  # coarse scores: many ties
    expected_num = expected_den = 0.0
    for u in np.unique(g):
        m = g == u
        if 0 < y[m].sum() < m.sum():
            expected_num += m.sum() * roc_auc(y[m], s[m])
            expected_den += m.sum()
    assert group_auc(y, s, g) == pytest.approx(expected_num / expected_den, rel=1e-12)
    assert group_auc([1, 0, 1, 0], [0.5, 0.5, 0.5, 0.5], [1, 1, 2, 2]) == 0.5


def test_group_auc_errors() -> None:
    with pytest.raises(ValueError, match="no group holds both classes"):
        group_auc([1, 1, 0], [0.1, 0.2, 0.3], [1, 1, 2])
    with pytest.raises(ValueError, match="2 group ids for 3 scores"):
        group_auc([1, 0, 1], [0.1, 0.2, 0.3], [1, 1])
