"""Logistic regression on one-hot feature ids: the floor every CTR backbone must clear.

``logit = b + sum_i w[x_i]`` over the encoded ids (one weight per feature value), fitted by
scikit-learn's ``LogisticRegression`` (L2, liblinear) on a sparse one-hot matrix. The inverse
regularisation strength ``C`` is chosen on validation AUC from a small grid, and the chosen
model is scored on the test split. A CTR backbone that does not beat this on the same split has
not learned the field interactions it exists for, so every scaling table prints it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression

from ttsctr.errors import ConfigError
from ttsctr.metrics import log_loss, roc_auc

__all__ = ["LogisticReference", "fit_logistic_regression", "DEFAULT_C_GRID"]

DEFAULT_C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)


@dataclass(frozen=True)
class LogisticReference:
    """Validation/test AUC and logloss of the chosen ``C``; ``train_rows`` rows were fitted."""

    C: float
    valid_auc: float
    valid_logloss: float
    test_auc: float
    test_logloss: float
    train_rows: int
    seconds: float

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def one_hot(x: np.ndarray, num_features: int) -> sp.csr_matrix:
    """(N, F) global ids -> (N, num_features) CSR matrix with F ones per row."""
    n, f = x.shape
    indptr = np.arange(0, n * f + 1, f, dtype=np.int64)
    return sp.csr_matrix((np.ones(n * f, dtype=np.float64), x.reshape(-1).astype(np.int64), indptr), shape=(n, num_features))


def fit_logistic_regression(
    train: tuple[np.ndarray, np.ndarray],
    valid: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    num_features: int,
    *,
    c_grid: Sequence[float] = DEFAULT_C_GRID,
    max_train_rows: int | None = 2_000_000,
    seed: int = 0,
) -> LogisticReference:
    """Fit one model per ``C`` in ``c_grid``, keep the best on validation AUC, score it on test.

    ``max_train_rows`` caps the rows fitted (a seeded uniform sample; liblinear's memory and time
    grow with the rows, and a linear model's AUC settles long before full Criteo's 36M rows).
    """
    if not c_grid or any(not (isinstance(c, (int, float)) and c > 0) for c in c_grid):
        raise ConfigError(f"logistic regression: c_grid must list positive numbers, got {list(c_grid)!r}")
    started = time.perf_counter()
    x_tr, y_tr = train
    if max_train_rows is not None and len(y_tr) > max_train_rows:
        keep = np.sort(np.random.default_rng(seed).choice(len(y_tr), size=max_train_rows, replace=False))
        x_tr, y_tr = x_tr[keep], y_tr[keep]
    a_tr, a_va, a_te = (one_hot(np.asarray(x), num_features) for x in (x_tr, valid[0], test[0]))
    best: tuple[float, float, LogisticRegression, np.ndarray] | None = None
    for c in c_grid:
        model = LogisticRegression(C=float(c), solver="liblinear", max_iter=1000, random_state=seed)
        model.fit(a_tr, np.asarray(y_tr))
        p_va = model.predict_proba(a_va)[:, 1]
        auc = roc_auc(valid[1], p_va)
        if best is None or auc > best[0]:
            best = (auc, float(c), model, p_va)
    assert best is not None
    valid_auc, c, model, p_va = best
    p_te = model.predict_proba(a_te)[:, 1]
    return LogisticReference(
        C=c,
        valid_auc=float(valid_auc),
        valid_logloss=log_loss(valid[1], p_va),
        test_auc=roc_auc(test[1], p_te),
        test_logloss=log_loss(test[1], p_te),
        train_rows=int(len(y_tr)),
        seconds=time.perf_counter() - started,
    )
