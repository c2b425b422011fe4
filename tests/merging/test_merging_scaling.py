"""MemberPool, draws and scaling_table on planted synthetic pools."""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from ttsctr.errors import ConfigError
from ttsctr.merging import (
    SCALING_COLUMNS,
    MemberPool,
    delong_covariance,
    distinct_draws,
    draw_members,
    member_diversity,
    merge_pool,
    merge_probabilities,
    scaling_table,
)
from ttsctr.merging.pool import _draw_groups
from ttsctr.metrics import roc_auc as auc


def _draw_sets(pool: MemberPool, scale: int, draws: int, seed: int) -> list[np.ndarray]:
    """Member indices of the distinct draws, recomputed outside scaling_table."""
    return [np.concatenate([pool.groups[g] for g in row]) for row in distinct_draws(_draw_groups(pool, scale, draws, seed))]


def test_table_has_a_row_per_scale_with_exact_columns(pool: MemberPool) -> None:
    df = scaling_table(pool, scales=(1, 2, 4, 8, 16), draws=4, seed=0)
    assert list(df.columns) == list(SCALING_COLUMNS) == [
        "scale", "n_members", "n_draws", "auc_mean", "auc_std", "logloss_mean", "logloss_std", "auc_1x", "n_1x",
        "delong_auc_diff", "p_ttest", "p_delong", "significant", "pairwise_r", "pairwise_r_within", "pairwise_js",
    ]
    assert df["scale"].tolist() == [1, 2, 4, 8, 16]
    assert df["n_members"].tolist() == [1, 2, 4, 8, 16]
    assert df["significant"].dtype == bool and df["n_draws"].dtype == np.int64
    # the 1x row is the reference itself: not tested
    assert df.loc[0, ["delong_auc_diff", "p_ttest", "p_delong"]].isna().all() and not df.loc[0, "significant"]


def test_one_x_sample_is_every_unit_not_r_draws(pool: MemberPool) -> None:
    df = scaling_table(pool, scales=(1, 4), draws=3, seed=0)
    member_aucs = np.array([auc(pool.labels, pool.logits[:, j]) for j in range(16)])
    assert df.loc[0, "n_draws"] == 16 and (df["n_1x"] == 16).all()
    assert df.loc[0, "auc_mean"] == pytest.approx(member_aucs.mean(), rel=1e-12)
    assert df.loc[0, "auc_std"] == pytest.approx(member_aucs.std(ddof=1), rel=1e-9)
    assert (df["auc_1x"] == df.loc[0, "auc_mean"]).all()


def test_top_scale_is_one_distinct_draw_without_t_test(pool: MemberPool) -> None:
    df = scaling_table(pool, scales=(1, 8, 16), draws=4, seed=0)
    top = df.iloc[-1]
    assert top["n_draws"] == 1  # 4 draws of the whole pool are one ensemble
    assert math.isnan(top["p_ttest"]) and math.isnan(top["auc_std"]) and math.isnan(top["logloss_std"])
    assert top["auc_mean"] == pytest.approx(auc(pool.labels, merge_pool(pool)), rel=1e-12)
    # DeLong needs no spread across draws: the whole pool is still tested on the test rows
    assert top["p_delong"] < 1e-6 and top["significant"]
    # 8 of 16: each seeded permutation gives 2 disjoint halves; 4 draws -> 2 permutations
    expected = len(_draw_sets(pool, 8, 4, 0))
    assert df.iloc[1]["n_draws"] == expected and 2 <= expected <= 4


def test_repeated_draws_are_removed(make_pool) -> None:
    small = make_pool(n=2000, m=4, seed=5)
    g = _draw_groups(small, 2, 10, 0)  # 10 draws of 2 out of 4: at most C(4, 2) = 6 distinct
    d = distinct_draws(g)
    assert len({tuple(r) for r in g.tolist()}) == len(d) <= 6
    assert [tuple(r) for r in d.tolist()] == list(dict.fromkeys(tuple(r) for r in g.tolist()))  # first occurrences, in order
    df = scaling_table(small, scales=(1, 2), draws=10)
    assert df.loc[1, "n_draws"] == len(d)


def test_p_ttest_is_scipy_welch_on_distinct_draws_vs_all_units(pool: MemberPool) -> None:
    df = scaling_table(pool, scales=(1, 2, 4), draws=3, seed=1)
    units = np.array([auc(pool.labels, pool.logits[:, j]) for j in range(16)])
    for row, scale in ((1, 2), (2, 4)):
        draws = np.array([auc(pool.labels, merge_pool(pool, m)) for m in _draw_sets(pool, scale, 3, 1)])
        assert df.loc[row, "auc_mean"] == pytest.approx(draws.mean(), rel=1e-12)
        assert df.loc[row, "auc_std"] == pytest.approx(draws.std(ddof=1), rel=1e-9)
        ref = scipy.stats.ttest_ind(draws, units, equal_var=False)
        assert df.loc[row, "p_ttest"] == pytest.approx(ref.pvalue, rel=1e-9)


def test_p_delong_is_the_contrast_of_mean_draw_vs_mean_unit(make_pool) -> None:
    small = make_pool(n=3000, m=6, seed=8)
    df = scaling_table(small, scales=(1, 2), draws=2, seed=0)
    draws = [merge_pool(small, m) for m in _draw_sets(small, 2, 2, 0)]
    units = [merge_pool(small, [j]) for j in range(6)]
    aucs, cov = delong_covariance(small.labels, np.stack(draws + units))
    c = np.concatenate([np.full(len(draws), 1 / len(draws)), np.full(6, -1 / 6)])
    diff, se = c @ aucs, math.sqrt(c @ cov @ c)
    assert df.loc[1, "delong_auc_diff"] == pytest.approx(diff, abs=1e-12)
    assert df.loc[1, "delong_auc_diff"] == pytest.approx(df.loc[1, "auc_mean"] - df.loc[1, "auc_1x"], abs=1e-12)
    assert df.loc[1, "p_delong"] == pytest.approx(math.erfc(abs(diff) / se / math.sqrt(2)), rel=1e-9)
    assert df.loc[1, "significant"] == (df.loc[1, "p_delong"] < 0.05 and diff > 0)


def test_merging_beats_members_and_is_significant(pool: MemberPool) -> None:
    df = scaling_table(pool, scales=(1, 2, 4, 8, 16), draws=4, seed=0)
    top = df.iloc[-1]
    assert top["auc_mean"] >= df.loc[0, "auc_mean"] + 0.01
    assert top["logloss_mean"] < df.iloc[0]["logloss_mean"]
    assert np.all(np.diff(df["auc_mean"]) > 0)  # monotone with scale on this pool
    assert df["significant"].tolist() == [False, True, True, True, True]


def test_significant_marks_improvements_only(make_pool) -> None:
    """The paper's `*` is a significant improvement: a significant drop has a small p but no `*`."""
    noise = np.array([3.0] * 8 + [0.4] * 8)
    both = make_pool(n=6000, m=16, noise=noise, seed=9)
    weak = MemberPool(both.logits[:, :8], both.labels)
    strong = MemberPool(both.logits[:, 8:], both.labels)
    worse = scaling_table(weak, scales=(1, 2), draws=3, reference=strong)
    better = scaling_table(strong, scales=(1, 2), draws=3, reference=weak)
    assert (worse["p_delong"] < 0.05).all() and (worse["delong_auc_diff"] < 0).all() and not worse["significant"].any()
    assert (better["p_delong"] < 0.05).all() and better["significant"].all()


def test_draws_are_disjoint_while_the_pool_allows(pool: MemberPool) -> None:
    d = draw_members(pool, 4, draws=4, seed=3)
    assert d.shape == (4, 4)
    assert np.unique(d).size == 16  # 4 disjoint draws of 4 cover the 16 members
    d6 = draw_members(pool, 4, draws=6, seed=3)
    np.testing.assert_array_equal(d6[:4], d)  # continues with a fresh permutation
    assert np.unique(d6[4:]).size == 8
    assert all(np.unique(row).size == 4 for row in d6)


def test_draws_take_whole_groups(make_pool) -> None:
    base = make_pool(n=2000, m=16, seed=2)
    grouped = MemberPool.grouped(base.logits, base.labels, group_size=4)
    assert grouped.unit_scale == 4 and grouped.n_groups == 4 and grouped.n_units == 4
    d = draw_members(grouped, 8, draws=2, seed=0)
    assert np.unique(d).size == 16
    for row in d:
        groups, counts = np.unique(grouped.group_of_member[row], return_counts=True)
        assert groups.size == 2 and (counts == 4).all()


def test_deterministic_and_scale_rows_independent(pool: MemberPool) -> None:
    a = scaling_table(pool, scales=(1, 2, 4, 8), draws=3, seed=5)
    b = scaling_table(pool, scales=(1, 2, 4, 8), draws=3, seed=5)
    pd.testing.assert_frame_equal(a, b)
    c = scaling_table(pool, scales=(4, 1), draws=3, seed=5)  # other scales, other order
    pd.testing.assert_frame_equal(c.reset_index(drop=True), a[a["scale"].isin([1, 4])].reset_index(drop=True))
    d = scaling_table(pool, scales=(1, 2, 4, 8), draws=3, seed=6)
    assert not np.allclose(a["auc_mean"].iloc[1:3], d["auc_mean"].iloc[1:3])
    assert a.loc[0, "auc_mean"] == d.loc[0, "auc_mean"]  # the 1x sample (every unit) does not depend on the seed


def test_grouped_merge_is_eq13_of_eq11(pool: MemberPool) -> None:
    grouped = MemberPool.grouped(pool.logits, pool.labels, group_size=2)
    members = draw_members(grouped, 8, draws=1, seed=0)[0]
    np.testing.assert_allclose(
        merge_pool(grouped, members), merge_probabilities(pool.probabilities(members)), rtol=1e-12
    )
    df = scaling_table(grouped, scales=(2, 4, 16), draws=3)
    assert df["n_members"].tolist() == [2, 4, 16]
    # without a reference the unit (one group of 2) is the 1x sample: every group, not tested
    assert df.loc[0, "n_draws"] == 8 and math.isnan(df.loc[0, "p_delong"])
    with pytest.raises(ConfigError, match="whole groups"):
        merge_pool(grouped, [0])


def test_grouped_pool_is_tested_against_a_reference_pool_of_single_members(make_pool) -> None:
    both = make_pool(n=6000, m=24, seed=11)
    single = MemberPool(both.logits[:, :8], both.labels)  # independently trained, same rows
    grouped = MemberPool.grouped(both.logits[:, 8:], both.labels, group_size=2)
    df = scaling_table(grouped, scales=(2, 4, 16), draws=3, reference=single)
    single_aucs = np.array([auc(both.labels, single.logits[:, j]) for j in range(8)])
    assert (df["n_1x"] == 8).all()
    np.testing.assert_allclose(df["auc_1x"], single_aucs.mean(), rtol=1e-12)
    assert df["p_delong"].notna().all()  # every row tested, the group of 2 included
    assert df["p_ttest"].notna().tolist() == [True, True, False]  # 16x: the whole pool, one ensemble
    first = [auc(both.labels, merge_pool(grouped, m)) for m in _draw_sets(grouped, 2, 3, 0)]
    assert df.loc[0, "p_ttest"] == pytest.approx(scipy.stats.ttest_ind(first, single_aucs, equal_var=False).pvalue, rel=1e-9)
    assert df["significant"].all()
    assert df.attrs["reference"] is True


def test_reference_pool_is_validated(make_pool) -> None:
    base = make_pool(n=1000, m=8, seed=12)
    grouped = MemberPool.grouped(base.logits, base.labels, group_size=2)
    with pytest.raises(ConfigError, match="same rows"):
        scaling_table(grouped, scales=(2,), reference=base.take_rows(np.arange(900)))
    with pytest.raises(ConfigError, match="independently trained"):
        scaling_table(grouped, scales=(2,), reference=grouped)
    fam = MemberPool(base.logits, base.labels, family_of_member=["a", "b"] * 4)
    with pytest.raises(ConfigError, match="architectures"):
        scaling_table(grouped, scales=(2,), reference=fam)


def test_heterogeneous_units_are_one_member_of_each_architecture(make_pool) -> None:
    base = make_pool(n=2000, m=8, seed=4)
    fam = np.array(["wukong", "rankmixer"] * 4)  # laid out unit by unit: W0 R0 W1 R1 ...
    het = MemberPool(base.logits, base.labels, family_of_member=fam)
    assert het.n_families == 2 and het.unit_scale == 1 and het.max_scale == 4
    assert [u.tolist() for u in het.unit_groups] == [[0, 1], [2, 3], [4, 5], [6, 7]]
    df = scaling_table(het, scales=(1, 2, 4), draws=2)
    assert df["n_members"].tolist() == [2, 4, 8]
    units = [auc(base.labels, merge_pool(het, [2 * i, 2 * i + 1])) for i in range(4)]
    assert df.loc[0, "n_draws"] == 4 and df.loc[0, "auc_mean"] == pytest.approx(np.mean(units), rel=1e-12)
    for row in draw_members(het, 2, draws=2, seed=0):
        assert sorted(fam[row].tolist()) == ["rankmixer", "rankmixer", "wukong", "wukong"]
    with pytest.raises(ConfigError, match="only 4"):
        scaling_table(het, scales=(8,))


def test_diversity_columns_come_from_the_diversity_pool(pool: MemberPool, caplog) -> None:
    valid = pool.take_rows(np.arange(5000))  # the same members on other rows
    df = scaling_table(pool, scales=(1, 2), draws=2, diversity_pool=valid)
    div = member_diversity(valid)
    assert (df["pairwise_r"] == div.mean_r).all() and (df["pairwise_js"] == div.mean_js).all()
    assert (df["pairwise_r_within"] == div.mean_r).all()  # homogeneous: every pair is within
    assert df.loc[0, "pairwise_r"] != member_diversity(pool).mean_r
    same = MemberPool(np.repeat(pool.logits[:, :1], 4, axis=1), pool.labels)
    with caplog.at_level(logging.WARNING, logger="ttsctr.merging.diversity"):
        t = scaling_table(same, scales=(1, 4), draws=2, name="clones")
    assert t.loc[0, "pairwise_r"] == pytest.approx(1.0, abs=1e-12) and t.loc[0, "pairwise_js"] == 0.0
    assert "clones: members are near-identical: merging cannot help" in caplog.text
    assert not t["significant"].any()  # identical members: nothing to gain
    other = MemberPool(pool.logits[:, ::-1], pool.labels, member_names=pool.member_names[::-1])
    with pytest.raises(ConfigError, match="same members"):
        scaling_table(pool, scales=(1,), diversity_pool=other)


def test_mean_logit_rule_runs(pool: MemberPool) -> None:
    a = scaling_table(pool, scales=(1, 4), draws=2, rule="mean_logit")
    b = scaling_table(pool, scales=(1, 4), draws=2, rule="mean_prob")
    assert a.attrs["rule"] == "mean_logit"
    assert a.loc[0, "auc_mean"] == pytest.approx(b.loc[0, "auc_mean"], abs=1e-12)  # one member: same ranking
    assert a.loc[1, "auc_mean"] != b.loc[1, "auc_mean"]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(scales=(3,)), "not a multiple of the group size 2"),
        (dict(scales=(1, 2)), "not a multiple of the group size 2"),
        (dict(scales=(32,)), "needs 32 members but the pool has only 16"),
        (dict(scales=(0,)), "positive integer"),
        (dict(scales=(2.0,)), "positive integer"),
        (dict(scales=(2, 2)), "distinct"),
        (dict(scales=()), "no scales"),
        (dict(draws=0), "draws"),
        (dict(rule="median"), "unknown merge rule"),
        (dict(alpha=1.5), "alpha"),
        (dict(seed=-1), "seed"),
        (dict(reference="pool"), "reference must be a MemberPool"),
    ],
)
def test_bad_configurations_raise_config_error(pool: MemberPool, kwargs, match) -> None:
    grouped = MemberPool.grouped(pool.logits[:500], pool.labels[:500], group_size=2)
    kwargs = {"scales": (2, 4), **kwargs}
    with pytest.raises(ConfigError, match=match):
        scaling_table(grouped, **kwargs)


def test_member_pool_validation() -> None:
    y = np.array([0, 1, 0, 1])
    with pytest.raises(ConfigError, match="single class"):
        MemberPool(np.zeros((4, 2)), np.zeros(4))
    with pytest.raises(ConfigError, match="0/1"):
        MemberPool(np.zeros((4, 2)), np.array([0, 1, 2, 1]))
    with pytest.raises(ConfigError, match="finite"):
        MemberPool(np.array([[0.0, np.inf]] * 4), y)
    with pytest.raises(ConfigError, match="3 labels"):
        MemberPool(np.zeros((4, 2)), y[:3])
    with pytest.raises(ConfigError, match="group size 3 does not divide"):
        MemberPool.grouped(np.zeros((4, 4)), y, group_size=3)
    with pytest.raises(ConfigError, match="same number of members of every architecture"):
        MemberPool(np.zeros((4, 3)), y, group_of_member=[0, 0, 0], family_of_member=["a", "a", "b"])
    p = MemberPool.from_probabilities(np.array([[0.2, 0.7]] * 4), y, member_names=["x", "y"])
    np.testing.assert_allclose(p.probabilities(), [[0.2, 0.7]] * 4, rtol=1e-12)
    assert p.member_names == ("x", "y")
    sub = p.take_rows([0, 1])
    assert sub.n_rows == 2 and sub.member_names == ("x", "y")
