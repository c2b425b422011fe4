"""`kedro run` end to end on a tiny configuration: tables, predictions, MLflow registry, serving.

One real run (module fixture) on 20k synthetic rows: a homogeneous DCNv2 ensemble of 4 seeds, a
heterogeneous Wukong+RankMixer ensemble of 2 seeds each, and a grouped DCNv2 ensemble (2 groups of
2 jointly trained members) tested against the independently trained DCNv2s. Everything it claims is checked on
what it wrote: the scaling tables, the materialised predictions, the MLflow registry, and the
registered pyfunc ensemble applied to raw rows.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from projecthelpers import kedro_env, make_project, raw_test_rows, run_kedro
from ttsctr.data.preprocess import FeatureEncoder
from ttsctr.merging import SCALING_COLUMNS
from ttsctr.metrics import roc_auc

pytestmark = pytest.mark.slow

TINY = {
    "datasets": {"synthetic": {"generate": {"n_rows": 20000}}},
    "tts": {
        "ensembles": ["dcnv2_x4", "wr_x2", "dcnv2_g2"],
        "defaults": {"draws": 2, "preset": "small"},
        "training": {"max_epochs": 2, "num_threads": 1, "batch_size": 1024, "learning_rate": 0.003},
        "ensemble_catalog": {
            "dcnv2_x4": {"members": [{"backbone": "dcnv2", "seeds": 4}], "scales": [1, 2, 4]},
            "dcnv2_g2": {"members": [{"backbone": "dcnv2", "seeds": 4, "first_seed": 10}], "group_size": 2,
                         "baseline": "dcnv2_x4", "scales": [2, 4]},
            "wr_x2": {"members": [{"backbone": "wukong", "seeds": 2}, {"backbone": "rankmixer", "seeds": 2}], "scales": [1, 2]},
        },
    },
}
DATASET = "synthetic"


def _read_table(project: Path, ensemble: str) -> pd.DataFrame:
    return pd.read_csv(project / "data" / "08_reporting" / DATASET / ensemble / "scaling.csv")


@pytest.fixture(scope="module")
def tts_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    project = make_project(tmp_path_factory.mktemp("tts"), TINY)
    proc = run_kedro(project)
    return project, proc


def _client(project: Path) -> mlflow.MlflowClient:
    return mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")


def test_scaling_tables_have_a_row_per_scale(tts_run) -> None:
    project, proc = tts_run
    dcn, wr = _read_table(project, "dcnv2_x4"), _read_table(project, "wr_x2")
    assert list(dcn.columns) == [*SCALING_COLUMNS, "valid_auc", "data_version"]
    summary = json.loads((project / "data" / "05_model_input" / f"{DATASET}.summary.json").read_text())
    assert set(dcn["data_version"]) == {summary["data_version"]}
    assert dcn["scale"].tolist() == [1, 2, 4] and dcn["n_members"].tolist() == [1, 2, 4]
    assert wr["scale"].tolist() == [1, 2] and wr["n_members"].tolist() == [2, 4]
    assert np.isnan(dcn["p_ttest"].iloc[0]) and np.isnan(dcn["p_delong"].iloc[0]) and not dcn["significant"].iloc[0]
    # distinct draws: 4 members give 2 disjoint pairs and one 4x ensemble, whose t-test is undefined
    assert dcn["n_draws"].tolist() == [4, 2, 1] and np.isnan(dcn["p_ttest"].iloc[-1])
    assert np.isfinite(dcn["p_delong"].iloc[1:]).all()
    assert ((dcn["pairwise_r"] > -1) & (dcn["pairwise_r"] < 1)).all()
    assert (dcn["auc_mean"] > 0.55).all(), dcn  # 16k training rows, 2 epochs: clearly above chance
    for folder in ("dcnv2_x4", "wr_x2"):
        out = project / "data" / "08_reporting" / DATASET / folder
        assert (out / "scaling.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert "| Backbone |" in (out / "scaling.md").read_text() or "| 1× |" in (out / "scaling.md").read_text()
    # the tables are printed by `kedro run`
    assert "Table 1: homogeneous" in proc.stdout and "Table 2: heterogeneous" in proc.stdout
    assert "Logistic regression" in proc.stdout and "Bayes-optimal" in proc.stdout
    metrics = json.loads((project / "data" / "08_reporting" / DATASET / "metrics.json").read_text())
    assert metrics["dcnv2_x4"]["auc_4x"] == pytest.approx(dcn["auc_mean"].iloc[-1])
    assert 0.7 < metrics["bayes_optimal_auc"] < 0.95


def _predictions(project: Path, ensemble: str, split: str = "test") -> pd.DataFrame:
    folder = project / "data" / "07_model_output" / DATASET / ensemble
    frames = [pq.read_table(p / f"{split}.parquet").to_pandas() for p in sorted(folder.iterdir()) if p.is_dir()]
    merged = frames[0][["row_index", "label"]].copy()
    for frame in frames:
        assert (frame["row_index"].to_numpy() == merged["row_index"].to_numpy()).all()
        merged = pd.concat([merged, frame.filter(regex=r"^m\d+_")], axis=1)
    return merged


def test_predictions_are_materialised_and_merging_helps(tts_run) -> None:
    project, _ = tts_run
    preds = _predictions(project, "dcnv2_x4")
    prob_cols = sorted(c for c in preds.columns if c.endswith("_prob"))
    assert prob_cols == [f"m{i:03d}_dcnv2_s{i}_prob" for i in range(4)]
    group_file = project / "data" / "07_model_output" / DATASET / "dcnv2_x4" / "group_00" / "test.parquet"
    assert pq.read_schema(group_file).names == ["row_index", "label", "m000_dcnv2_s0_logit", "m000_dcnv2_s0_prob", "group_prob"]
    y = preds["label"].to_numpy()
    member_aucs = [roc_auc(y, preds[c].to_numpy()) for c in prob_cols]
    merged_auc = roc_auc(y, preds[prob_cols].to_numpy().mean(axis=1))
    table = _read_table(project, "dcnv2_x4")
    # scale 4 = all four members (the table merges float32 logits, the check float32 probabilities)
    assert table["auc_mean"].iloc[-1] == pytest.approx(merged_auc, abs=1e-5)
    assert merged_auc >= np.mean(member_aucs)
    assert table["auc_mean"].iloc[0] == pytest.approx(np.mean(member_aucs), abs=1e-5)  # 1x: every member


def test_grouped_ensemble_trains_jointly_and_is_tested_against_single_members(tts_run) -> None:
    """group_size 2: two groups of two members trained on their averaged prediction (Eq. 11), each
    group's checkpoint holds both members, and the table's 1x reference is the independently
    trained dcnv2_x4 members, not a 2-member group."""
    project, _ = tts_run
    grouped, solo = _read_table(project, "dcnv2_g2"), _read_table(project, "dcnv2_x4")
    assert grouped["scale"].tolist() == [2, 4] and grouped["n_draws"].tolist() == [2, 1]
    assert (grouped["n_1x"] == 4).all() and grouped["auc_1x"].iloc[0] == pytest.approx(solo["auc_mean"].iloc[0])
    assert np.isfinite(grouped["p_delong"]).all()
    trained = json.loads((project / "data" / "06_models" / DATASET / "dcnv2_g2" / "group_01" / "trained_group.json").read_text())
    assert [m["seed"] for m in trained["members"]] == [12, 13] and trained["order_key"] == [0, 12, 13]
    schema = pq.read_schema(project / "data" / "07_model_output" / DATASET / "dcnv2_g2" / "group_01" / "test.parquet")
    assert [n for n in schema.names if n.endswith("_logit")] == ["m002_dcnv2_s12_logit", "m003_dcnv2_s13_logit"]


def test_members_and_ensembles_are_registered(tts_run) -> None:
    project, _ = tts_run
    client = _client(project)
    dcn = client.search_model_versions("name = 'ttsctr-synthetic-dcnv2'")
    assert sorted(int(v.tags["seed"]) for v in dcn) == [0, 1, 2, 3]
    assert {v.tags["ensemble"] for v in dcn} == {"dcnv2_x4"}
    assert sorted(v.tags["group"] for v in dcn) == ["group_00", "group_01", "group_02", "group_03"]
    for backbone in ("wukong", "rankmixer"):
        versions = client.search_model_versions(f"name = 'ttsctr-synthetic-{backbone}'")
        assert sorted(int(v.tags["seed"]) for v in versions) == [0, 1]
    ens = client.search_model_versions("name = 'ttsctr-synthetic-dcnv2_x4'")
    assert sorted(int(v.tags["scale"]) for v in ens) == [1, 2, 4]
    # one parent run per `kedro run`; nested: one run per trained group, one per (ensemble, scale)
    runs = client.search_runs([client.get_experiment_by_name("ttsctr").experiment_id])
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    groups = [r for r in children if "group" in r.data.params]
    scales = [r for r in children if "scale" in r.data.params]
    others = [r.info.run_name for r in children if r not in groups and r not in scales]
    assert len(groups) == 4 + 4 + 2 and len(scales) == 3 + 2 + 2 and others == ["analysis"]
    common = {"test_auc", "test_logloss", "members", "flops_per_row"}
    assert all(common <= set(r.data.metrics) for r in groups + scales)
    assert all({"valid_auc", "pairwise_r", "auc_1x"} <= set(r.data.metrics) for r in scales)
    assert all("p_delong" in r.data.metrics for r in scales if r.data.params["scale"] != "1")  # 1× is the reference
    assert all({"best_valid_auc", "best_epoch"} <= set(r.data.metrics) for r in groups)


def test_mlflow_runs_compare_ensembles_by_scale(tts_run) -> None:
    project, _ = tts_run
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{project / 'mlflow.db'}"
    frame = mlflow.search_runs(experiment_names=["ttsctr"], filter_string="params.scale != ''")
    assert sorted(zip(frame["params.ensemble"], frame["params.scale"].astype(int))) == sorted(
        [("dcnv2_x4", 1), ("dcnv2_x4", 2), ("dcnv2_x4", 4), ("wr_x2", 1), ("wr_x2", 2), ("dcnv2_g2", 2), ("dcnv2_g2", 4)])
    table = _read_table(project, "dcnv2_x4").set_index("scale")
    summary = json.loads((project / "data" / "05_model_input" / f"{DATASET}.summary.json").read_text())
    for _, run in frame[frame["params.ensemble"] == "dcnv2_x4"].iterrows():
        scale = int(run["params.scale"])
        assert run["metrics.test_auc"] == pytest.approx(table.loc[scale, "auc_mean"], rel=1e-12)
        assert run["metrics.valid_auc"] == pytest.approx(table.loc[scale, "valid_auc"], rel=1e-12)
        assert run["metrics.members"] == scale and run["params.merge_rule"] == "mean_prob"
        assert run["params.backbones"] == "dcnv2" and run["params.presets"] == "small"
        assert run["params.seeds"] == ",".join(str(s) for s in range(scale))
        assert run["params.data_version"] == summary["data_version"] and run["params.group_size"] == "1"
    flops = frame.set_index(["params.ensemble", "params.scale"])["metrics.flops_per_row"]
    assert flops[("dcnv2_x4", "4")] == pytest.approx(4 * flops[("dcnv2_x4", "1")])
    parent = mlflow.search_runs(experiment_names=["ttsctr"], filter_string="tags.`mlflow.runName` = '__default__'")
    assert "params.tts.training.max_epochs" in parent.columns  # configuration as flat params


def test_group_runs_log_every_epoch_once_and_their_inputs(tts_run) -> None:
    project, _ = tts_run
    client = _client(project)
    experiment = client.get_experiment_by_name("ttsctr").experiment_id
    groups = client.search_runs([experiment], "params.group = 'group_00' and params.ensemble = 'dcnv2_x4'")
    assert len(groups) == 1
    run = groups[0]
    trained = json.loads((project / "data" / "06_models" / DATASET / "dcnv2_x4" / "group_00" / "trained_group.json").read_text())
    history = client.get_metric_history(run.info.run_id, "valid_auc")
    assert [m.step for m in history] == [row["epoch"] for row in trained["history"]]  # no step-0 point
    assert run.data.metrics["best_valid_auc"] == pytest.approx(trained["valid_auc"])
    assert {i.dataset.name for i in run.inputs.dataset_inputs} == {f"{DATASET}-train", f"{DATASET}-validation", f"{DATASET}-test"}


def test_registered_ensemble_loads_by_alias_with_signature_and_example(tts_run) -> None:
    project, _ = tts_run
    client = _client(project)
    model = client.get_registered_model("ttsctr-synthetic-dcnv2_x4")
    assert {"scale-1", "scale-2", "scale-4", "best"} <= set(model.aliases)
    best = client.get_model_version_by_alias("ttsctr-synthetic-dcnv2_x4", "best")
    table = _read_table(project, "dcnv2_x4")
    assert int(best.tags["scale"]) == int(table.loc[table["auc_mean"].idxmax(), "scale"])
    four = client.get_model_version_by_alias("ttsctr-synthetic-dcnv2_x4", "scale-4")
    assert four.tags["scale"] == "4" and "at 4×" in four.description
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{project / 'mlflow.db'}"
    cwd = os.getcwd()
    os.chdir(project)
    try:
        loaded = mlflow.pyfunc.load_model("models:/ttsctr-synthetic-dcnv2_x4@scale-4")
        example = loaded.input_example
    finally:
        os.chdir(cwd)
    fields = FeatureEncoder.load(project / "data" / "05_model_input" / DATASET).field_names
    assert list(loaded.metadata.get_input_schema().input_names()) == list(fields)
    assert list(example.columns) == list(fields) and len(example) == 1
    prob = loaded.predict(example)["probability"]
    assert len(prob) == 1 and 0 < prob.iloc[0] < 1
    logged = mlflow.get_logged_model(loaded.model_id)
    assert logged.name == "dcnv2_x4-4x" and logged.metrics and {m.key for m in logged.metrics} >= {"test_auc", "members"}


def test_catalog_loads_splits_predictions_tables_and_plots(tts_run) -> None:
    project, _ = tts_run
    script = (
        "import sys, json\n"
        "from pathlib import Path\n"
        "from kedro.framework.session import KedroSession\n"
        "from kedro.framework.startup import bootstrap_project\n"
        "bootstrap_project(Path.cwd())\n"
        "with KedroSession.create(project_path=Path.cwd()) as session:\n"
        "    catalog = session.load_context().catalog\n"
        "    out = {}\n"
        "    for name in ('train', 'dcnv2_x4__group_00__test_predictions', 'dcnv2_x4__scaling_table'):\n"
        "        frame = catalog.load(name)\n"
        "        out[name] = [type(frame).__name__, len(frame), list(frame.columns)[:3]]\n"
        "    image = catalog.load('dcnv2_x4__scaling_plot')\n"
        "    out['plot'] = list(image.size)\n"
        "    out['report'] = catalog.load('dcnv2_x4__scaling_report')[:40]\n"
        "print(json.dumps(out))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=project, env=kedro_env(), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    summary = json.loads((project / "data" / "05_model_input" / f"{DATASET}.summary.json").read_text())
    assert out["train"][:2] == ["DataFrame", summary["splits"]["train"]["rows"]] and out["train"][2][0] == "label"
    assert out["dcnv2_x4__group_00__test_predictions"][:2] == ["DataFrame", summary["splits"]["test"]["rows"]]
    assert out["dcnv2_x4__group_00__test_predictions"][2] == ["row_index", "label", "m000_dcnv2_s0_logit"]
    assert out["dcnv2_x4__scaling_table"][:2] == ["DataFrame", 3]
    assert out["plot"][0] > 100 and out["report"]


def test_analysis_runs_with_the_default_pipeline_and_selects_on_validation(tts_run) -> None:
    project, _ = tts_run
    out = project / "data" / "08_reporting" / DATASET / "analysis"
    for name in ("summary.json", "scale_statistics.csv", "pair_statistics.csv", "correlations.csv", "selection.csv",
                 "analysis.md", "separation.png", "diversity.png", "selection.png"):
        assert (out / name).stat().st_size > 0, name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["selectable"] == ["dcnv2_x4", "wr_x2"] and summary["selection_split"] == "validation"
    client = _client(project)
    runs = client.search_runs([client.get_experiment_by_name("ttsctr").experiment_id],
                              "tags.analysis = 'analysis' and tags.dataset = 'synthetic'")
    assert len(runs) == 1 and runs[0].info.run_name == "analysis"
    assert {"analysis/selection.csv", "analysis/analysis.md"} <= {a.path for a in client.list_artifacts(runs[0].info.run_id, "analysis")}
    stats = pd.read_csv(out / "scale_statistics.csv")
    assert set(stats["ensemble"]) == {"dcnv2_x4", "wr_x2", "dcnv2_g2"}
    assert set(stats.loc[stats["ensemble"] == "dcnv2_g2", "group_size"]) == {2}
    # the merged AUC of the whole pool equals the scaling table's top scale
    top = _read_table(project, "dcnv2_x4").iloc[-1]
    assert stats[(stats["ensemble"] == "dcnv2_x4") & (stats["scale"] == 4)]["auc"].iloc[0] == pytest.approx(top["auc_mean"])
    selection = pd.read_csv(out / "selection.csv")
    assert set(selection["ensemble"]) == {"dcnv2_x4", "wr_x2"}
    chosen = json.loads((out / "selection" / "dcnv2_x4.json").read_text())
    assert chosen["split"] == "validation"


def test_report_is_self_contained_with_every_section_and_computed_claims(tts_run) -> None:
    import re

    project, _ = tts_run
    run_kedro(project, "--pipelines", "report")
    page = (project / "data" / "08_reporting" / "report.html").read_text()
    for needle in ("Which of the paper's claims hold here", "Test-time scaling: dcnv2_x4", "Test-time scaling: wr_x2",
                   "Test-time scaling: dcnv2_g2", "Why merging works", "Where the paper's numbers come from",
                   "Exploring Test-time Scaling via Prediction Merging", "The paper's numbers, other data",
                   "data version", "MLflow run"):
        assert needle in page, needle
    assert not re.search(r"""(src|href)=["']?(https?:|//|file:)""", page)  # opens offline: nothing external
    assert re.search(r"analysis: [0-9a-f]{32}", page) and re.search(r"4×: [0-9a-f]{32}", page)  # MLflow provenance
    pngs = sorted((project / "data" / "08_reporting" / DATASET).rglob("*.png"))
    assert len(pngs) == 6  # 3 scaling plots + Fig. 5, Fig. 6 left and right
    assert len(re.findall(r'src="data:image/png;base64,', page)) == len(pngs)  # every figure, embedded
    claims = pd.read_csv(project / "data" / "08_reporting" / "claims.csv").set_index("claim")
    assert (claims["dataset"] == DATASET).all() and list(claims.index) == [f"C{i}" for i in range(1, 9)]
    for cid in ("C2", "C4", "C5", "C6", "C7", "C8"):  # no homogeneous wukong/rankmixer, no baselines in this run
        assert claims.loc[cid, "status"] == "not run", claims.loc[cid].to_dict()
    assert claims.loc["C1", "status"] in ("holds", "partly", "does not hold")
    assert claims.loc["C3", "status"] in ("holds", "partly", "does not hold") and "dcnv2_g2" in claims.loc["C3", "evidence"]
    assert "dcnv2_x4" in claims.loc["C1", "evidence"]


def test_analysis_notebook_executes_headless_against_the_run(tts_run) -> None:
    import nbformat
    from nbclient import NotebookClient

    project, _ = tts_run
    notebook = nbformat.read(Path(__file__).resolve().parents[2] / "notebooks" / "tts_analysis.ipynb", as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(project)}}).execute()
    text = "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "dataset synthetic" in text and "full report:" in text
    images = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if "image/png" in o.get("data", {})]
    assert len(images) >= 4  # scaling curves, Fig. 5, Fig. 6 left and right


def _load_ensemble(project: Path, scale: int):
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{project / 'mlflow.db'}"
    client = _client(project)
    version = next(v for v in client.search_model_versions("name = 'ttsctr-synthetic-dcnv2_x4'") if v.tags["scale"] == str(scale))
    cwd = os.getcwd()
    os.chdir(project)  # artifact locations are relative to the project (mlruns/)
    try:
        return mlflow.pyfunc.load_model(f"models:/ttsctr-synthetic-dcnv2_x4/{version.version}")
    finally:
        os.chdir(cwd)


def test_registered_ensemble_reproduces_test_predictions_from_raw_rows(tts_run) -> None:
    project, _ = tts_run
    raw = raw_test_rows(project)
    encoded = pq.read_table(project / "data" / "05_model_input" / DATASET / "test.parquet").to_pandas()
    encoder = FeatureEncoder.load(project / "data" / "05_model_input" / DATASET)
    assert len(raw) == len(encoded)
    np.testing.assert_array_equal(encoder.encode_raw_frame(raw), encoded[list(encoder.field_names)].to_numpy())

    model = _load_ensemble(project, 4)
    served = model.predict(raw)["probability"].to_numpy()
    preds = _predictions(project, "dcnv2_x4")
    expected = preds[[c for c in preds.columns if c.endswith("_prob")]].to_numpy(np.float64).mean(axis=1)
    np.testing.assert_allclose(served, expected, rtol=0, atol=2e-6)


def test_unseen_categorical_values_are_served_as_oov(tts_run) -> None:
    project, _ = tts_run
    raw = raw_test_rows(project).head(64).copy()
    model = _load_ensemble(project, 4)
    before = model.predict(raw)["probability"].to_numpy()
    changed = raw.copy()
    changed["C3"] = "deadbeef"  # never seen in training
    after = model.predict(changed)["probability"].to_numpy()
    encoder = FeatureEncoder.load(project / "data" / "05_model_input" / DATASET)
    ids = encoder.encode_raw_frame(changed)
    field = list(encoder.field_names).index("C3")
    feature_map = json.loads((project / "data" / "05_model_input" / DATASET / "feature_map.json").read_text())
    assert (ids[:, field] == feature_map["fields"][field]["oov_global_id"]).all()
    assert np.isfinite(after).all() and not np.allclose(before, after)


def _group_checkpoints(folder: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in folder.glob("group-*.pt") if ".member" not in p.name}


def test_interrupted_run_resumes_without_retraining_finished_groups(tts_run, tmp_path: Path) -> None:
    reference, _ = tts_run
    project = make_project(tmp_path, TINY)
    cmd = [str(Path(sys.executable).parent / "kedro"), "run"]
    proc = subprocess.Popen(cmd, cwd=project, env=kedro_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    models = project / "data" / "06_models" / DATASET / "dcnv2_x4"
    deadline = time.time() + 300
    first = []
    while time.time() < deadline and not first:
        first = sorted(models.glob("group_00/result-*.json")) if models.exists() else []
        time.sleep(0.05)
    assert first, "the first group never finished"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (project / "data" / "08_reporting" / DATASET / "metrics.json").exists()
    stamp = first[0].stat().st_mtime_ns
    checkpoints = _group_checkpoints(models / "group_00")
    assert len(checkpoints) == 1

    rerun = run_kedro(project)
    assert first[0].stat().st_mtime_ns == stamp
    assert _group_checkpoints(models / "group_00") == checkpoints
    assert "dcnv2_x4/group_00 already trained" in rerun.stdout + rerun.stderr
    for ensemble in ("dcnv2_x4", "wr_x2"):
        pd.testing.assert_frame_equal(_read_table(project, ensemble), _read_table(reference, ensemble))


def test_parallel_runner_trains_groups_in_processes_with_tracking(tmp_path: Path) -> None:
    """Groups are independent: ParallelRunner runs them in worker processes, MLflow still nests them."""
    params = {
        "datasets": {"synthetic": {"generate": {"n_rows": 20000}}},
        "tts": {
            "ensembles": ["d2"],
            "training": {"max_epochs": 1, "num_threads": 1},
            "ensemble_catalog": {"d2": {"members": [{"backbone": "dcnv2", "seeds": 2}], "scales": [1, 2], "draws": 2}},
        },
    }
    project = make_project(tmp_path, params)
    run_kedro(project, "--runner", "ParallelRunner")
    table = _read_table(project, "d2")
    assert table["scale"].tolist() == [1, 2]
    client = _client(project)
    assert sorted(int(v.tags["seed"]) for v in client.search_model_versions("name = 'ttsctr-synthetic-dcnv2'")) == [0, 1]
    assert sorted(int(v.tags["scale"]) for v in client.search_model_versions("name = 'ttsctr-synthetic-d2'")) == [1, 2]
    runs = client.search_runs([client.get_experiment_by_name("ttsctr").experiment_id])
    parents = {r.info.run_id for r in runs if "mlflow.parentRunId" not in r.data.tags}
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == 2 + 2 + 1  # two group runs (in workers), two scale runs, analysis
    assert [r.info.run_name for r in children].count("analysis") == 1
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == parents
