"""Planted synthetic member pools shared by the merging and analysis tests (small: fast on 2 cores)."""

from __future__ import annotations

import numpy as np
import pytest

from ttsctr.merging import MemberPool


def planted_pool(n: int = 20_000, m: int = 16, noise: float | np.ndarray = 1.5, seed: int = 0) -> MemberPool:
    """Members = true logit + independent Gaussian noise; labels ~ Bernoulli(sigmoid(truth))."""
    rng = np.random.default_rng(seed)
    truth = 1.5 * rng.normal(size=n) - 1.0
    labels = (rng.random(n) < 1.0 / (1.0 + np.exp(-truth))).astype(np.int64)
    noise = np.broadcast_to(np.asarray(noise, dtype=float), (m,))
    logits = truth[:, None] + rng.normal(size=(n, m)) * noise
    return MemberPool(logits, labels)


@pytest.fixture(scope="session")
def make_pool():
    """The planted-pool factory, for tests that need other sizes or seeds."""
    return planted_pool


@pytest.fixture(scope="session")
def pool() -> MemberPool:
    return planted_pool()


@pytest.fixture(scope="session")
def mixed_quality_pool() -> MemberPool:
    """12 members: 4 good (noise 0.7), 8 poor (noise 3.0), interleaved."""
    noise = np.array([0.7, 3.0, 3.0] * 4)
    return planted_pool(n=16_000, m=12, noise=noise, seed=1)
