"""Fixtures of the baseline tests: one thread, a planted data set shaped like the published splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ttsctr.baselines.fitting import Splits
from ttsctr.features import FeatureSpec

torch.set_num_threads(1)


def planted_splits(n: int = 6000, seed: int = 0) -> Splits:
    """FM-style planted clicks over 6 fields (70/15/15), wrapped as the baselines' ``Splits``."""
    rng = np.random.default_rng(seed)
    vocab = (20, 30, 12, 40, 15, 25)
    spec = FeatureSpec(tuple(f"c{i}" for i in range(len(vocab))), vocab)
    x = (np.stack([rng.integers(0, v, n) for v in vocab], axis=1) + np.asarray(spec.offsets)).astype(np.int32)
    w = rng.normal(0, 0.5, spec.num_features)
    v = rng.normal(0, 0.6, (spec.num_features, 4))
    e = v[x]
    s = e.sum(axis=1)
    logit = -1.0 + w[x].sum(axis=1) + 0.5 * ((s * s).sum(axis=1) - (e * e).sum(axis=(1, 2)))
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.float32)
    a, b = int(0.7 * n), int(0.85 * n)
    return Splits(spec, (x[:a], y[:a]), (x[a:b], y[a:b]), (x[b:], y[b:]), data_version="planted0", model_input=Path("."))


@pytest.fixture(scope="session")
def splits() -> Splits:
    return planted_splits()
