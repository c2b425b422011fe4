"""MemberPool, draws and scaling_table on planted synthetic pools."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ttsctr.errors import ConfigError
from ttsctr.merging import (
    SCALING_COLUMNS,
    MemberPool,
    draw_members,
    merge_pool,
    merge_probabilities,
    scaling_table,
    ttest_two_sided,
)
from ttsctr.metrics import roc_auc as auc


def test_table_has_a_row_per_scale_with_exact_columns(pool: MemberPool) -> None:
    df = scaling_table(pool, scales=(1, 2, 4, 8, 16), draws=4, seed=0)
    assert list(df.columns) == list(SCALING_COLUMNS) == [
        "scale", "n_members", "auc_mean", "auc_std", "logloss_mean", "logloss_std", "p_value", "significant",
    ]
    assert df["scale"].tolist() == [1, 2, 4, 8, 16]
    assert df["n_members"].tolist() == [1, 2, 4, 8, 16]
    assert df["significant"].dtype == bool
    # the backbone row is the baseline itself
    assert math.isnan(df.loc[0, "p_value"]) and not df.loc[0, "significant"]
    # 16x = the whole pool in every draw: std exactly 0
    assert df.loc[4, "auc_std"] == 0.0 and df.loc[4, "logloss_std"] == 0.0


def test_merging_beats_members_and_is_significant(pool: MemberPool) -> None:
    df = scaling_table(pool, scales=(1, 2, 4, 8, 16), draws=4, seed=0)
    member_aucs = [auc(pool.labels, pool.logits[:, j]) for j in range(pool.n_members)]
    top = df.iloc[-1]
    assert top["auc_mean"] >= np.mean(member_aucs) + 0.01
    assert top["logloss_mean"] < df.iloc[0]["logloss_mean"]
    assert np.all(np.diff(df["auc_mean"]) > 0)  # monotone with scale on this pool
    assert df["significant"].tolist() == [False, True, True, True, True]
    assert (df["p_value"].iloc[1:] < 1e-4).all()


def test_draws_are_disjoint_while_the_pool_allows(pool: MemberPool) -> None:
    d = draw_members(pool, 4, draws=4, seed=3)
    assert d.shape == (4, 4)
    assert np.unique(d).size == 16  # 4 disjoint draws of 4 cover the 16 members
    d6 = draw_members(pool, 4, draws=6, seed=3)
    np.testing.assert_array_equal(d6[:4], d)  # continues with a fresh permutation
    assert np.unique(d6[4:]).size == 8
    assert all(np.unique(row).size == 4 for row in d6)
    single = draw_members(pool, 1, draws=16, seed=0)
    assert sorted(single.ravel().tolist()) == list(range(16))


def test_draws_take_whole_groups(make_pool) -> None:
    base = make_pool(n=2000, m=16, seed=2)
    grouped = MemberPool.grouped(base.logits, base.labels, group_size=4)
    assert grouped.unit_scale == 4 and grouped.n_groups == 4
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
    assert not np.allclose(a["auc_mean"].iloc[:3], d["auc_mean"].iloc[:3])


def test_mean_std_and_p_value_recomputed_by_hand(pool: MemberPool) -> None:
    df = scaling_table(pool, scales=(1, 4), draws=3, seed=1)
    def aucs(scale):
        return np.array([auc(pool.labels, merge_pool(pool, m)) for m in draw_members(pool, scale, 3, seed=1)])
    a1, a4 = aucs(1), aucs(4)
    assert df.loc[1, "auc_mean"] == pytest.approx(a4.mean(), rel=1e-12)
    assert df.loc[1, "auc_std"] == pytest.approx(a4.std(ddof=1), rel=1e-9)
    assert df.loc[0, "auc_std"] == pytest.approx(a1.std(ddof=1), rel=1e-9)
    assert df.loc[1, "p_value"] == pytest.approx(ttest_two_sided(a4, a1)[1], rel=1e-9)
    one = scaling_table(pool, scales=(1, 4), draws=1, seed=1)
    assert (one["auc_std"] == 0).all() and one["p_value"].isna().all() and not one["significant"].any()


def test_grouped_merge_is_eq13_of_eq11(pool: MemberPool) -> None:
    grouped = MemberPool.grouped(pool.logits, pool.labels, group_size=2)
    members = draw_members(grouped, 8, draws=1, seed=0)[0]
    np.testing.assert_allclose(
        merge_pool(grouped, members), merge_probabilities(pool.probabilities(members)), rtol=1e-12
    )
    df = scaling_table(grouped, scales=(2, 4, 16), draws=3)
    assert df["n_members"].tolist() == [2, 4, 16]
    assert math.isnan(df.loc[0, "p_value"])  # the unit (one group of 2) is the baseline
    with pytest.raises(ConfigError, match="whole groups"):
        merge_pool(grouped, [0])


def test_baseline_auc_override_tests_every_row(pool: MemberPool) -> None:
    df = scaling_table(pool, scales=(1, 2), draws=3, baseline_auc=[0.5, 0.51, 0.49])
    assert df["p_value"].notna().all() and df["significant"].all()


def test_heterogeneous_pool_draws_scale_members_per_architecture(make_pool) -> None:
    base = make_pool(n=2000, m=8, seed=4)
    fam = np.array(["wukong"] * 4 + ["rankmixer"] * 4)
    het = MemberPool(base.logits, base.labels, family_of_member=fam)
    assert het.n_families == 2 and het.unit_scale == 1 and het.max_scale == 4
    df = scaling_table(het, scales=(1, 2, 4), draws=2)
    assert df["n_members"].tolist() == [2, 4, 8]
    for row in draw_members(het, 2, draws=2, seed=0):
        assert sorted(fam[row].tolist()) == ["rankmixer", "rankmixer", "wukong", "wukong"]
    with pytest.raises(ConfigError, match="only 4"):
        scaling_table(het, scales=(8,))


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


def test_significant_marks_improvements_only(pool: MemberPool) -> None:
    """The paper's `*` is a significant improvement: a significant drop has a small p but no `*`."""
    better = scaling_table(pool, scales=(1, 2), draws=3, baseline_auc=[0.5, 0.51, 0.49])
    worse = scaling_table(pool, scales=(1, 2), draws=3, baseline_auc=[0.999, 0.998, 0.997])
    assert (better["p_value"] < 0.05).all() and better["significant"].all()
    assert (worse["p_value"] < 0.05).all() and not worse["significant"].any()
