"""Hand-computed checks of the §3.6 statistics: overlap, histogram JS, pairs, correlations, selection."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ttsctr.analysis import (
    check_selectable,
    choose_members,
    diversity_correlations,
    histogram_js,
    overlap,
    pair_statistics,
    score_selections,
    selection_table,
    separation,
    sharpness,
)
from ttsctr.errors import ConfigError
from ttsctr.merging import MemberPool
from ttsctr.metrics import roc_auc


def _h(*p: float) -> float:
    return -sum(x * math.log(x) for x in p if x > 0)


def test_all_predictions_equal_give_no_separation_full_overlap_and_chance_auc() -> None:
    p, y = np.full(6, 0.3), np.array([1, 0, 1, 0, 0, 0])
    assert separation(p, y) == 0.0
    assert sharpness(p, y) == math.inf
    assert overlap(p, y) == pytest.approx(1.0)
    assert roc_auc(y, p) == 0.5
    assert histogram_js(p, p) == 0.0


def test_constant_per_class_prediction_is_infinitely_separated() -> None:
    assert separation([0.8, 0.8, 0.2, 0.2], [1, 1, 0, 0]) == math.inf
    assert separation([0.2, 0.2, 0.8, 0.8], [1, 1, 0, 0]) == -math.inf


@pytest.mark.parametrize("statistic", [separation, sharpness, overlap])
def test_one_class_only_is_a_clear_error(statistic) -> None:
    with pytest.raises(ConfigError, match=r"single class \(3 positives of 3\)"):
        statistic([0.1, 0.5, 0.9], [1, 1, 1])
    with pytest.raises(ConfigError, match=r"single class \(0 positives of 2\)"):
        statistic([0.1, 0.5], [0, 0])


def test_bad_labels_and_lengths_are_named() -> None:
    with pytest.raises(ConfigError, match="labels must be 0/1; found 2 at row 1"):
        separation([0.1, 0.2, 0.3], [0, 2, 1])
    with pytest.raises(ConfigError, match="3 predictions but 2 labels"):
        sharpness([0.1, 0.2, 0.3], [0, 1])


def test_overlap_by_hand() -> None:
    # 2 bins: positives (0.9, 0.9, 0.2) -> fractions (1/3, 2/3); negatives (0.1, 0.6) -> (1/2, 1/2)
    p, y = [0.9, 0.9, 0.2, 0.1, 0.6], [1, 1, 1, 0, 0]
    assert overlap(p, y, bins=2) == pytest.approx(1 / 3 + 1 / 2)


def test_histogram_js_by_hand() -> None:
    p = [0.1, 0.1, 0.9, 0.9]  # 2 bins: P = (1/2, 1/2)
    q = [0.1, 0.9, 0.9, 0.9]  # Q = (1/4, 3/4), M = (3/8, 5/8)
    expected = _h(3 / 8, 5 / 8) - 0.5 * (_h(0.5, 0.5) + _h(0.25, 0.75))
    assert histogram_js(p, q, bins=2) == pytest.approx(expected, rel=1e-12)
    assert histogram_js(p, q, bins=2) == pytest.approx(histogram_js(q, p, bins=2), rel=1e-12)
    assert histogram_js([0.0, 0.01], [0.99, 1.0], bins=50) == pytest.approx(math.log(2))  # disjoint: ln 2
    # a permutation of the same scores over the rows: histogram JS cannot see it
    assert histogram_js([0.1, 0.9], [0.9, 0.1]) == 0.0
    with pytest.raises(ConfigError, match=r"probabilities in \[0, 1\]"):
        histogram_js([0.1, 1.2], [0.1, 0.2])
    with pytest.raises(ConfigError, match="bins must be a positive integer"):
        histogram_js([0.1], [0.2], bins=0)


def _small_pool(grouped: bool = False) -> MemberPool:
    rng = np.random.default_rng(3)
    n = 4000
    truth = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-truth))).astype(np.int64)
    logits = truth[:, None] + rng.normal(size=(n, 4)) * np.array([0.5, 1.0, 1.5, 2.0])
    groups = np.array([0, 0, 1, 1]) if grouped else None
    return MemberPool(logits, y, group_of_member=groups, member_names=("a", "b", "c", "d"))


def test_pair_statistics_gains_are_merged_minus_mean_of_the_pair() -> None:
    pool = _small_pool()
    pairs = pair_statistics(pool)
    assert len(pairs) == 6 and list(pairs[["unit_a", "unit_b"]].iloc[0]) == ["a", "b"]
    p = 1 / (1 + np.exp(-pool.logits))
    row = pairs.iloc[0]
    merged = 0.5 * (p[:, 0] + p[:, 1])  # Eq. 10
    assert row["auc_merged"] == pytest.approx(roc_auc(pool.labels, merged), abs=1e-12)
    assert row["auc_gain"] == pytest.approx(row["auc_merged"] - 0.5 * (roc_auc(pool.labels, p[:, 0]) + roc_auc(pool.labels, p[:, 1])), abs=1e-12)
    assert row["separation_gain"] == pytest.approx(
        separation(merged, pool.labels) - 0.5 * (separation(p[:, 0], pool.labels) + separation(p[:, 1], pool.labels)), abs=1e-12)
    assert (pairs["js_bernoulli"] > 0).all() and (pairs["js_histogram"] >= 0).all()
    assert len(pair_statistics(pool, max_pairs=2, seed=1)) == 2
    grouped = pair_statistics(_small_pool(grouped=True))  # jointly trained groups are the units
    assert list(grouped[["unit_a", "unit_b"]].iloc[0]) == ["a+b", "c+d"] and len(grouped) == 1


def test_diversity_correlations_are_pearson_r_and_nan_when_constant() -> None:
    pairs = pair_statistics(_small_pool())
    corr = diversity_correlations(pairs).set_index(["x", "y"])
    r = np.corrcoef(pairs["separation_gain"], pairs["auc_gain"])[0, 1]
    assert corr.loc[("separation_gain", "auc_gain"), "pearson_r"] == pytest.approx(r, abs=1e-12)
    assert (corr["n_pairs"] == 6).all() and (corr["n_units"] == 4).all()
    flat = pairs.assign(js_bernoulli=0.1)
    assert math.isnan(diversity_correlations(flat).set_index(["x", "y"]).loc[("js_bernoulli", "separation_gain"), "pearson_r"])
    with pytest.raises(ConfigError, match="lacks columns"):
        diversity_correlations(pairs.drop(columns=["auc_gain"]))


def test_grouped_pools_cannot_be_split_by_selection() -> None:
    pool = _small_pool(grouped=True)
    with pytest.raises(ConfigError, match=r"members \['a', 'b'\] were trained jointly as one group"):
        check_selectable(pool, "dcnv2_g2")
    with pytest.raises(ConfigError, match="cannot split a group"):
        choose_members(pool, [1, 2])


def test_selection_reads_only_the_selection_pool_and_greedy_beats_random_there() -> None:
    pool = _small_pool()
    half = pool.n_rows // 2
    selection, evaluation = pool.take_rows(np.arange(half)), pool.take_rows(np.arange(half, pool.n_rows))
    choices = choose_members(selection, [1, 2, 3], ("greedy", "random", "exhaustive"), random_draws=6)
    # the members chosen depend on the selection rows only: other evaluation labels change the
    # scores, never the choice
    scrambled = MemberPool(evaluation.logits, np.random.default_rng(0).permutation(evaluation.labels),
                           member_names=evaluation.member_names)
    kwargs = {"strategies": ("greedy", "random", "exhaustive"), "random_draws": 6}
    honest, blind = selection_table(selection, evaluation, [1, 2, 3], **kwargs), selection_table(selection, scrambled, [1, 2, 3], **kwargs)
    assert list(honest["members"]) == list(blind["members"]) == list(choices["members"])
    assert not np.allclose(honest["auc"], blind["auc"])
    by = choices.groupby(["strategy", "k"])["selection_auc"].mean()
    for k in (1, 2, 3):
        assert by[("greedy", k)] >= by[("random", k)]
        assert by[("exhaustive", k)] >= by[("greedy", k)] - 1e-12
    # random keeps distinct member sets only: at k = 4 of 4 members there is one
    full = choose_members(selection, [4], ("random",), random_draws=5)
    assert len(full) == 1
    with pytest.raises(ConfigError, match=r"members \['z'\] are not in the evaluation pool"):
        score_selections(choices.assign(members=[("z",)] * len(choices)), evaluation)
