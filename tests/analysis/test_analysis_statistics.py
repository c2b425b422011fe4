"""Separation, sharpness, JS diversity and member selection (paper §3.6)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ttsctr.analysis import (
    SELECTION_STRATEGIES,
    js_divergence,
    mean_pairwise_js,
    pairwise_js,
    scale_statistics,
    select_members,
    selection_table,
    separation,
    sharpness,
)
from ttsctr.errors import ConfigError
from ttsctr.merging import MemberPool, merge_pool
from ttsctr.metrics import roc_auc as auc


def test_separation_and_sharpness_by_hand() -> None:
    probs = [0.9, 0.7, 0.2, 0.4]
    labels = [1, 1, 0, 0]
    # mu+ = 0.8, sigma+ = 0.1 ; mu- = 0.3, sigma- = 0.1 (population std)
    assert separation(probs, labels) == pytest.approx(0.5 / math.sqrt(0.02), rel=1e-12)  # 3.5355...
    assert sharpness(probs, labels) == pytest.approx(0.5 * (1 / 0.1 + 1 / 0.1), rel=1e-12)  # 10
    # unequal spreads: pos (0.6, 1.0) -> mu 0.8, sd 0.2 ; neg (0.1, 0.3, 0.2) -> mu 0.2, sd sqrt(2/300)
    p2, y2 = [0.6, 1.0, 0.1, 0.3, 0.2], [1, 1, 0, 0, 0]
    sn = math.sqrt(2 / 300)
    assert separation(p2, y2) == pytest.approx(0.6 / math.sqrt(0.04 + sn**2), rel=1e-12)
    assert sharpness(p2, y2) == pytest.approx(0.5 * (1 / 0.2 + 1 / sn), rel=1e-12)
    with pytest.raises(ConfigError, match="single class"):
        separation([0.1, 0.2], [1, 1])
    assert sharpness([0.9, 0.9, 0.1, 0.2], [1, 1, 0, 0]) == math.inf


def _js_by_kl(p: float, q: float) -> float:
    def kl(a: float, b: float) -> float:
        return sum(x * math.log(x / y) for x, y in ((a, b), (1 - a, 1 - b)) if x > 0)

    m = (p + q) / 2
    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


def test_js_divergence_hand_computation() -> None:
    # row 1: p=0.5, q=1 -> A = 0.75 ; KL(P||A) = .5 ln(.5/.75) + .5 ln(.5/.25) ; KL(Q||A) = ln(4/3)
    row1 = 0.5 * (0.5 * math.log(2 / 3) + 0.5 * math.log(2)) + 0.5 * math.log(4 / 3)
    assert row1 == pytest.approx(_js_by_kl(0.5, 1.0), rel=1e-14)
    row2 = _js_by_kl(0.2, 0.6)
    assert js_divergence([0.5, 0.2], [1.0, 0.6]) == pytest.approx((row1 + row2) / 2, rel=1e-12)
    assert js_divergence([0.0], [1.0]) == pytest.approx(math.log(2), rel=1e-15)  # the maximum, nats


def test_js_divergence_symmetric_and_zero_for_identical() -> None:
    rng = np.random.default_rng(0)
    p, q = rng.random(1000), rng.random(1000)
    assert js_divergence(p, q) == pytest.approx(js_divergence(q, p), rel=1e-14)
    assert js_divergence(p, p) == 0.0
    assert 0.0 < js_divergence(p, q) < math.log(2)
    with pytest.raises(ConfigError, match="probabilities"):
        js_divergence([1.5], [0.5])


def test_pairwise_js_matrix() -> None:
    rng = np.random.default_rng(1)
    probs = rng.random((500, 4))
    probs[:, 3] = probs[:, 0]
    mat = pairwise_js(probs)
    assert mat.shape == (4, 4)
    np.testing.assert_array_equal(mat, mat.T)
    np.testing.assert_array_equal(np.diag(mat), 0.0)
    assert mat[0, 3] == 0.0
    assert mat[1, 2] == pytest.approx(js_divergence(probs[:, 1], probs[:, 2]), rel=1e-12)
    assert mean_pairwise_js(probs) == pytest.approx(mat[np.triu_indices(4, 1)].mean(), rel=1e-14)
    assert math.isnan(mean_pairwise_js(probs[:, :1]))


@pytest.mark.parametrize("strategy", SELECTION_STRATEGIES)
@pytest.mark.parametrize("k", [1, 3, 12])
def test_strategies_return_k_distinct_members(mixed_quality_pool: MemberPool, strategy: str, k: int) -> None:
    idx = select_members(mixed_quality_pool, k, strategy, seed=0)
    assert idx.dtype == np.int64 and idx.shape == (k,)
    assert np.unique(idx).size == k and idx.min() >= 0 and idx.max() < 12


def test_greedy_beats_random_and_exhaustive_bounds_greedy(mixed_quality_pool: MemberPool) -> None:
    n = mixed_quality_pool.n_rows
    sel = mixed_quality_pool.take_rows(np.arange(n // 2))
    ev = mixed_quality_pool.take_rows(np.arange(n // 2, n))
    table = selection_table(sel, ev, ks=[2, 4], strategies=("greedy", "random", "top_auc", "diversity_js"))
    assert list(table.columns) == [
        "strategy", "k", "draw", "members", "selection_auc", "auc", "logloss", "separation", "js_diversity",
    ]
    assert len(table) == 8
    by = table.set_index(["strategy", "k"])
    for k in (2, 4):
        assert by.loc[("greedy", k), "auc"] > by.loc[("random", k), "auc"]
        assert by.loc[("greedy", k), "selection_auc"] >= by.loc[("top_auc", k), "selection_auc"] - 1e-12
    # the good members are 0, 3, 6, 9: greedy finds them
    assert set(select_members(sel, 4, "greedy")) == {0, 3, 6, 9}
    # diversity alone prefers the noisy members: quality-blind
    assert by.loc[("diversity_js", 4), "js_diversity"] > by.loc[("greedy", 4), "js_diversity"]
    small = sel.take_rows(np.arange(3000))
    ex = select_members(small, 3, "exhaustive")
    gr = select_members(small, 3, "greedy")
    assert auc(small.labels, merge_pool(small, ex)) >= auc(small.labels, merge_pool(small, gr)) - 1e-12


def test_selection_is_deterministic_and_validated(mixed_quality_pool: MemberPool) -> None:
    a = select_members(mixed_quality_pool, 5, "random", seed=3)
    np.testing.assert_array_equal(a, select_members(mixed_quality_pool, 5, "random", seed=3))
    assert not np.array_equal(a, select_members(mixed_quality_pool, 5, "random", seed=4))
    with pytest.raises(ConfigError, match="exhaustive_limit"):
        select_members(mixed_quality_pool, 6, "exhaustive", exhaustive_limit=100)
    with pytest.raises(ConfigError, match="unknown selection strategy"):
        select_members(mixed_quality_pool, 2, "oracle")
    with pytest.raises(ConfigError, match=r"in \[1, 12\]"):
        select_members(mixed_quality_pool, 13, "greedy")
    other = MemberPool(mixed_quality_pool.logits[:, :11], mixed_quality_pool.labels)
    with pytest.raises(ConfigError, match="same members"):
        selection_table(mixed_quality_pool, other, ks=[2])


def test_scale_statistics_separation_grows_with_scale(pool: MemberPool) -> None:
    st = scale_statistics(pool, scales=(1, 4, 16), draws=3, seed=0)
    assert list(st.columns) == ["scale", "draw", "n_members", "group_size", "auc", "separation", "sharpness",
                                "overlap", "js_diversity"]
    assert len(st) == 7  # 3 distinct draws at 1x and 4x; at 16x every draw is the whole pool: one
    assert (st["group_size"] == 1).all()
    mean = st.groupby("scale").mean(numeric_only=True)
    assert mean.loc[16, "separation"] > mean.loc[4, "separation"] > mean.loc[1, "separation"]
    assert mean.loc[16, "overlap"] < mean.loc[1, "overlap"]
    assert mean.loc[1, "js_diversity"] != mean.loc[1, "js_diversity"]  # NaN for single members
    assert mean.loc[16, "js_diversity"] > 0
