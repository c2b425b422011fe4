"""Pairwise correlation and JS divergence of members, and the near-identical warning."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest

from ttsctr.errors import ConfigError
from ttsctr.merging import (
    NEAR_IDENTICAL_WARNING,
    MemberPool,
    js_divergence,
    member_diversity,
    pairwise_correlation,
)
from ttsctr.merging.rules import _logit


def test_pairwise_correlation_by_hand() -> None:
    # a = (1, 2, 3), b = (1, 2, 4): centred (-1, 0, 1), (-4/3, -1/3, 5/3);
    # sum ab = 3, sum a^2 = 2, sum b^2 = 14/3 -> r = 3 / sqrt(28/3)
    x = np.array([[1.0, 1.0, 3.0], [2.0, 2.0, 2.0], [3.0, 4.0, 1.0]])
    r = pairwise_correlation(x)
    assert r[0, 1] == pytest.approx(3 / math.sqrt(28 / 3), rel=1e-14)  # 0.98198
    assert r[0, 2] == pytest.approx(-1.0, abs=1e-15)
    np.testing.assert_array_equal(np.diag(r), 1.0)
    np.testing.assert_allclose(r, r.T, atol=0)
    rng = np.random.default_rng(0)
    big = rng.normal(size=(1000, 5)).astype(np.float32)
    np.testing.assert_allclose(pairwise_correlation(big, chunk_rows=128), np.corrcoef(big.T.astype(np.float64)), atol=1e-12)


def test_constant_member_has_no_correlation() -> None:
    x = np.array([[1.0, 5.0, 2.0], [2.0, 5.0, 4.0], [3.0, 5.0, 6.5]])
    r = pairwise_correlation(x)
    assert np.isnan(r[1]).all() and np.isnan(r[:, 1]).all()
    assert r[0, 2] == pytest.approx(np.corrcoef(x[:, 0], x[:, 2])[0, 1], rel=1e-14)


def _pool(logits, families=None) -> MemberPool:
    n = np.asarray(logits).shape[0]
    return MemberPool(np.asarray(logits, dtype=np.float64), np.arange(n) % 2, family_of_member=families)


def test_identical_members_r_one_js_zero_and_warning(caplog) -> None:
    col = np.array([-1.0, 0.5, 2.0, -0.3, 1.1, 0.0])
    pool = _pool(np.repeat(col[:, None], 3, axis=1))
    with caplog.at_level(logging.WARNING, logger="ttsctr.merging.diversity"):
        div = member_diversity(pool, name="dcnv2_x3")
    assert div.mean_r == pytest.approx(1.0, abs=1e-14) and div.mean_js == 0.0
    assert div.near_identical
    assert div.warning.startswith(NEAR_IDENTICAL_WARNING)
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert "dcnv2_x3: members are near-identical: merging cannot help" in caplog.text


def test_diverse_members_by_hand_no_warning(caplog) -> None:
    # two members with probabilities p = (0.5, 0.2, 0.8) and q = (0.9, 0.6, 0.3) on three rows
    p = np.array([0.5, 0.2, 0.8])
    q = np.array([0.9, 0.6, 0.3])
    pool = _pool(np.stack([_logit(p), _logit(q)], axis=1))
    with caplog.at_level(logging.WARNING):
        div = member_diversity(pool)
    # logits: a = (0, -ln 4, ln 4) (mean 0), b = (ln 9, ln 1.5, ln 3/7)
    a = np.array([0.0, -math.log(4), math.log(4)])
    b = np.array([math.log(9), math.log(1.5), math.log(3 / 7)])
    bc = b - b.mean()
    r = float(a @ bc / math.sqrt((a @ a) * (bc @ bc)))  # = ln4 (ln(3/7) - ln 1.5) / sqrt(2 ln^2 4 * sum bc^2)
    assert div.mean_r == pytest.approx(r, rel=1e-12) and div.mean_r < 0
    kl = lambda x, y: x * math.log(x / y) + (1 - x) * math.log((1 - x) / (1 - y))  # noqa: E731
    rows = [0.5 * kl(x, (x + y) / 2) + 0.5 * kl(y, (x + y) / 2) for x, y in zip(p, q)]
    assert div.mean_js == pytest.approx(np.mean(rows), rel=1e-10)  # per-row Bernoulli JS, mean over rows
    assert div.mean_js == pytest.approx(js_divergence(p, q), rel=1e-12)  # the same JS as ttsctr.analysis
    assert not div.near_identical and div.warning is None and caplog.text == ""


def test_within_and_between_architectures() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=500), rng.normal(size=500)
    logits = np.stack([a, a + 0.1 * rng.normal(size=500), b, b + 0.1 * rng.normal(size=500)], axis=1)
    pool = _pool(logits, families=["wukong", "wukong", "rankmixer", "rankmixer"])
    div = member_diversity(pool)
    c = np.corrcoef(logits.T)
    assert div.mean_r == pytest.approx(c[np.triu_indices(4, 1)].mean(), rel=1e-12)
    assert div.mean_r_within == pytest.approx((c[0, 1] + c[2, 3]) / 2, rel=1e-12)
    assert div.mean_r_between == pytest.approx((c[0, 2] + c[0, 3] + c[1, 2] + c[1, 3]) / 4, rel=1e-12)
    assert div.mean_r_within > 0.99 > div.mean_r  # overall diverse although each pair of a kind is not
    assert not div.near_identical
    homo = member_diversity(_pool(logits))
    assert homo.mean_r_within == homo.mean_r and math.isnan(homo.mean_r_between)


def test_single_member_and_bad_input() -> None:
    div = member_diversity(_pool(np.array([[0.1], [0.2], [0.3], [0.4]])))
    assert math.isnan(div.mean_r) and math.isnan(div.mean_js) and not div.near_identical
    with pytest.raises(ConfigError, match="MemberPool"):
        member_diversity(np.zeros((4, 2)))
    with pytest.raises(ConfigError, match="threshold"):
        member_diversity(_pool(np.eye(4)), threshold=2.0)
