"""The default ensembles of `make run`, on a reduced embedded log, show what the README promises:
members clearly above logistic regression, diverse, and a significant gain at the top scale."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from projecthelpers import REPO_ROOT, make_project, run_kedro

pytestmark = pytest.mark.slow

DATASET = "synthetic"
REDUCED = {
    "datasets": {"synthetic": {"generate": {"n_rows": 60000}}},
    "tts": {
        "training": {"num_threads": 2, "progress": False},
        "registry": {"register_members": False, "register_ensembles": False},
    },
}


def _default_ensembles() -> list[str]:
    params = yaml.safe_load((REPO_ROOT / "conf" / "base" / "parameters_tts.yml").read_text())
    return list(params["tts"]["ensembles"])


@pytest.fixture(scope="module")
def default_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = make_project(tmp_path_factory.mktemp("default"), REDUCED)
    run_kedro(project, timeout=1500)
    return project


def test_every_default_ensemble_beats_logistic_regression_and_gains_significantly(default_run: Path) -> None:
    reporting = default_run / "data" / "08_reporting" / DATASET
    metrics = json.loads((reporting / "metrics.json").read_text())
    lr_auc = metrics["lr_auc"]
    for name in _default_ensembles():
        table = pd.read_csv(reporting / name / "scaling.csv")
        one, top = table.iloc[0], table.iloc[-1]
        assert one["auc_mean"] >= lr_auc + 0.01, f"{name}: 1x AUC {one['auc_mean']:.4f} vs LR {lr_auc:.4f}"
        assert top["pairwise_r"] < 0.99, f"{name}: members near-identical (r = {top['pairwise_r']:.4f})"
        assert top["auc_mean"] > one["auc_mean"] and top["p_delong"] < 0.05 and bool(top["significant"]), table
    assert metrics["bayes_optimal_auc"] > max(metrics[n]["auc_single"] for n in _default_ensembles())
