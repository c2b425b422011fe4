"""`kedro run` on a behaviour-sequence dataset: sequences encoded, GX-validated, EST members
trained, predicted, merged with GAUC, and the merged ensemble registered and served from raw
events with their history.

One real run (module fixture) on a tiny generated ``synthetic_seq`` log: EST and RankMixer
members (RankMixer reads every behaviour slot as a field), merged alone and together.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from projecthelpers import make_project, run_kedro
from ttsctr.data.io import load_split

pytestmark = pytest.mark.slow

DATASET = "synthetic_seq"
TINY = {
    "datasets": {DATASET: {"generate": {"n_users": 80, "n_items": 60, "events_per_user": 25},
                           "sequence": {"user_len": 8, "candidate_len": 3, "content_dim": 8}}},
    "tts": {
        "ensembles": ["est_x2", "est_rm_x1"],
        "defaults": {"draws": 1, "preset": "small"},
        "training": {"max_epochs": 1, "num_threads": 1, "batch_size": 256, "learning_rate": 0.003},
        "ensemble_catalog": {
            "est_x2": {"members": [{"backbone": "est", "seeds": 2}], "scales": [1, 2]},
            "est_rm_x1": {"members": [{"backbone": "est", "seeds": 1}, {"backbone": "rankmixer", "seeds": 1}],
                          "scales": [1]},
        },
        "registry": {"register_members": False},
    },
}


@pytest.fixture(scope="module")
def seq_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = make_project(tmp_path_factory.mktemp("seq"), TINY)
    run_kedro(project, "--params", f"dataset={DATASET}")
    return project


def test_sequences_are_published_with_gx_suites_and_a_bayes_reference(seq_run: Path) -> None:
    summary = json.loads((seq_run / "data" / "05_model_input" / f"{DATASET}.summary.json").read_text())
    assert summary["rows"] == 80 * 25 and summary["sequence"]["user_len"] == 8
    assert summary["sequence"]["truncated_events"] > 0 and 0.6 < summary["bayes_optimal_auc"] < 1.0
    folder = seq_run / "data" / "05_model_input" / DATASET
    assert {"content.npy", "users.parquet", "items.parquet"} <= {p.name for p in folder.iterdir()}
    suites = {p.stem for p in (seq_run / "gx" / "expectations" / DATASET).glob("*.json")}
    assert {"encoded", "sequences", "splits"} <= suites


def test_est_ensembles_are_merged_with_group_auc_in_their_tables(seq_run: Path) -> None:
    table = pd.read_csv(seq_run / "data" / "08_reporting" / DATASET / "est_x2" / "scaling.csv")
    assert table["scale"].tolist() == [1, 2]
    assert table["gauc_mean"].between(0.5, 1.0).all() and table["auc_mean"].between(0.55, 1.0).all()
    het = pd.read_csv(seq_run / "data" / "08_reporting" / DATASET / "est_rm_x1" / "scaling.csv")
    assert het["n_members"].tolist() == [2]
    floor = json.loads((seq_run / "data" / "06_models" / DATASET / "logistic_reference.json").read_text())
    assert floor["fields"] == "non-behavioural (N)" and 0.5 < floor["test_auc"] < 1.0
    tables = (seq_run / "data" / "08_reporting" / DATASET / "scaling_tables.md").read_text()
    assert "on the non-behavioural (N) fields" in tables


def test_registered_est_ensemble_serves_raw_events_with_history(seq_run: Path) -> None:
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{seq_run / 'mlflow.db'}")
    versions = client.search_model_versions(f"name='ttsctr-{DATASET}-est_x2'")
    assert versions, "the merged EST ensemble is registered"
    mlflow.set_tracking_uri(f"sqlite:///{seq_run / 'mlflow.db'}")
    model = mlflow.pyfunc.load_model(f"models:/ttsctr-{DATASET}-est_x2/{max(int(v.version) for v in versions)}")
    out = model.predict(pd.DataFrame({"user_id": [1, 2], "item_id": [3, 4], "history": [[], [5, 6, 7]]}))
    assert out["probability"].between(0.0, 1.0).all() and len(out) == 2
    test = load_split(seq_run / "data" / "05_model_input" / DATASET, "test")
    assert test.extras["user"].size == test.x.shape[0]
