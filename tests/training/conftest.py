"""Fixtures for the trainer tests: tiny planted CTR data sets, generated in-process.

Every test here runs on one thread (the machine's two cores are shared) and on data of
at most ~20k rows, so the whole directory stays well under 90 s.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from ttsctr.features import FeatureSpec

torch.set_num_threads(1)


@dataclass
class Planted:
    spec: FeatureSpec
    train: tuple[np.ndarray, np.ndarray]
    valid: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]


def make_planted(
    n: int = 20_000,
    vocab_sizes: tuple[int, ...] = (40, 60, 25, 80, 30, 50),
    latent_dim: int = 4,
    seed: int = 0,
    linear_scale: float = 0.3,
    pair_scale: float = 0.7,
) -> Planted:
    """FM-style planted data: logit = b + sum_i w[x_i] + sum_{i<j} <v[x_i], v[x_j]>.

    Ids are global (field offsets applied) int32, labels float32 0/1 drawn from the
    logistic of the planted logit; split 70/15/15 into train/valid/test.
    """
    rng = np.random.default_rng(seed)
    spec = FeatureSpec(tuple(f"c{i}" for i in range(len(vocab_sizes))), tuple(vocab_sizes))
    offsets = np.asarray(spec.offsets)
    # Zipf-ish popularity inside each field, as in click logs.
    cols = []
    for v in vocab_sizes:
        p = 1.0 / np.arange(1, v + 1) ** 0.8
        cols.append(rng.choice(v, size=n, p=p / p.sum()))
    x = (np.stack(cols, axis=1) + offsets).astype(np.int32)
    w = rng.normal(0.0, linear_scale, size=spec.num_features)
    v = rng.normal(0.0, pair_scale, size=(spec.num_features, latent_dim))
    e = v[x]  # (n, F, k)
    s = e.sum(axis=1)
    pair = 0.5 * ((s * s).sum(axis=1) - (e * e).sum(axis=(1, 2)))
    logit = -1.0 + w[x].sum(axis=1) + pair
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.float32)
    a, b = int(0.7 * n), int(0.85 * n)
    return Planted(spec, (x[:a], y[:a]), (x[a:b], y[a:b]), (x[b:], y[b:]))


@pytest.fixture(scope="session")
def planted() -> Planted:
    return make_planted()


@pytest.fixture(scope="session")
def tiny() -> Planted:
    """3k rows over 50 ids: for the determinism / resume / equality tests that train several times."""
    return make_planted(n=3_000, seed=2, vocab_sizes=(8, 10, 6, 12, 5, 9))
