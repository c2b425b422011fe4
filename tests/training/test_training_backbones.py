"""Regression test: every registered backbone, trained by train(), beats logistic regression.

Planted FM-style data (pairwise interactions, 20k rows): a linear model on one-hot ids
cannot see the interactions, a CTR backbone must. Margins measured when this test was
written (small preset, lr 1e-2, batch 256, patience 2, one thread):

    LR test AUC 0.663; margins dcn 0.211, dcnv2 0.230, deepfm 0.259, finalmlp 0.182,
    fnn 0.235, ipnn 0.243, rankmixer 0.156, wukong 0.180

A backbone must stay within 0.05 of its recorded margin and at least 0.10 above LR.
"""

from __future__ import annotations

import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import OneHotEncoder

from ttsctr.models import available_models
from ttsctr.training import MemberSpec, TrainConfig, build_group, evaluate, train

RECORDED_MARGIN = {
    "dcn": 0.211,
    "dcnv2": 0.230,
    "deepfm": 0.259,
    "finalmlp": 0.182,
    "fnn": 0.235,
    "ipnn": 0.243,
    "rankmixer": 0.156,
    "wukong": 0.180,
}
MIN_MARGIN = 0.10
SLACK = 0.05


@pytest.fixture(scope="module")
def lr_auc(planted) -> float:
    enc = OneHotEncoder(handle_unknown="ignore").fit(planted.train[0])
    lr = LogisticRegression(max_iter=2000).fit(enc.transform(planted.train[0]), planted.train[1])
    return float(roc_auc_score(planted.test[1], lr.predict_proba(enc.transform(planted.test[0]))[:, 1]))


@pytest.mark.parametrize("backbone", [m for m in available_models() if m != "lr"])
def test_backbone_beats_logistic_regression(backbone: str, planted, lr_auc: float) -> None:
    group = build_group(planted.spec, [MemberSpec(backbone, 0, "small")])
    cfg = TrainConfig(learning_rate=1e-2, batch_size=256, max_epochs=15, patience=2, progress=False)
    result = train(group, planted.train, planted.valid, cfg)
    auc = evaluate(group, *planted.test)["auc"]
    margin = auc - lr_auc
    floor = max(MIN_MARGIN, RECORDED_MARGIN.get(backbone, MIN_MARGIN + SLACK) - SLACK)
    assert margin >= floor, (
        f"{backbone}: test AUC {auc:.4f} vs logistic regression {lr_auc:.4f}: margin {margin:.4f} < {floor:.3f} "
        f"(recorded {RECORDED_MARGIN.get(backbone)}; best epoch {result.best_epoch}/{result.epochs_completed})"
    )
