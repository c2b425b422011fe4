"""Logistic-regression reference: one-hot encoding, C chosen on validation, scored on test."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import OneHotEncoder

from ttsctr.baselines import fit_logistic_regression
from ttsctr.baselines.logistic import one_hot
from ttsctr.errors import ConfigError


def _additive_data(n: int = 6000, seed: int = 0):
    rng = np.random.default_rng(seed)
    vocab = (5, 7, 4)
    offsets = np.cumsum((0,) + vocab[:-1])
    x = np.stack([rng.integers(0, v, n) for v in vocab], 1) + offsets
    w = rng.normal(0, 1.0, sum(vocab))
    y = (rng.random(n) < 1 / (1 + np.exp(-(w[x].sum(1) - 0.5)))).astype(np.float32)
    return x.astype(np.int32), y, sum(vocab)


def test_one_hot_has_one_entry_per_field() -> None:
    x = np.array([[0, 3], [1, 2]], dtype=np.int32)
    dense = one_hot(x, 4).toarray()
    np.testing.assert_array_equal(dense, [[1, 0, 0, 1], [0, 1, 1, 0]])


def test_logistic_reference_matches_sklearn_on_one_hot_fields() -> None:
    x, y, nf = _additive_data()
    tr, va, te = slice(0, 4000), slice(4000, 5000), slice(5000, 6000)
    ref = fit_logistic_regression((x[tr], y[tr]), (x[va], y[va]), (x[te], y[te]), nf, c_grid=(0.01, 1.0))
    assert ref.C in (0.01, 1.0) and ref.train_rows == 4000
    enc = OneHotEncoder().fit(x[tr])
    direct = LogisticRegression(C=ref.C, solver="liblinear").fit(enc.transform(x[tr]), y[tr])
    expected = roc_auc_score(y[te], direct.predict_proba(enc.transform(x[te]))[:, 1])
    assert ref.test_auc == pytest.approx(expected, abs=1e-6)
    assert ref.test_auc > 0.75  # the planted signal is additive: a linear model finds it


def test_logistic_reference_caps_rows_and_refuses_a_bad_grid() -> None:
    x, y, nf = _additive_data(n=3000)
    ref = fit_logistic_regression((x, y), (x, y), (x, y), nf, c_grid=(1.0,), max_train_rows=500)
    assert ref.train_rows == 500
    with pytest.raises(ConfigError, match="c_grid"):
        fit_logistic_regression((x, y), (x, y), (x, y), nf, c_grid=(0.0,))
