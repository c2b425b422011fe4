"""`dvc repro` of the real dvc.yaml's main chain on a tiny configuration, in a throwaway git + DVC repository.

The project (pyproject.toml, conf/, src/, dvc.yaml, .dvcignore, .gitignore and the committed
.dvc/config with its local remote) is copied into a tmp dir, `git init` + `dvc init`, and run with
the real `dvc` and `kedro` of the venv (on PATH, as `make repro` does). Checked:

* the first `dvc repro` runs preprocess → train → predict → merge → report and writes
  metrics.json; a second one runs nothing;
* `dvc metrics show` prints the AUC per scale, `dvc plots show` writes its HTML,
  `dvc push` fills the local remote (and `dvc pull` restores from it);
* Python writing bytecode into the tracked source folders does not make stages stale;
* `dvc exp run --set-param conf/base/parameters_tts.yml:tts.merging.seed=1` runs merge and
  report only;
* `make run` (a plain `kedro run`) after `dvc repro` retrains and re-encodes nothing, and all that
  DVC then sees changed is the `reused` flag in trained_group.json; the `dvc repro` after it reruns
  `train` reusing every group (persisted outputs), and from then on `make run` leaves DVC's view
  as it is;
* a changed group (another seed) is trained again while every other group is reused, and a change
  of the training code retrains every group (the stages' code guard);
* `dataset` is a literal that DVC records and `--params dataset=...` still overrides.

The configuration is made tiny by editing the *copied* conf/base parameter files before the
first commit, not by conf/local: DVC tracks conf/base (dvc.lock records the tiny values), while
conf/local is invisible to it, so overrides there would make `dvc repro` decide on parameters
that are not the ones Kedro runs with. The ensemble names stay the ones dvc.yaml lists.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from projecthelpers import REPO_ROOT, kedro_env

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
STAGES = ("preprocess", "train", "predict", "merge", "report")
REPORTING = Path("data/08_reporting/synthetic")
MODELS = Path("data/06_models/synthetic")
PREDICTIONS = Path("data/07_model_output/synthetic")
# the groups of the tiny configuration (_tiny)
GROUPS = {*(f"dcnv2_x8/group_{i:02d}" for i in range(4)), "wukong_rankmixer_x8/group_00", "wukong_rankmixer_x8/group_01"}
# catalog outputs that every run of the training / prediction pipeline saves again, reused or not
SAVED_BY_EVERY_RUN = ("trained_group.json", "logistic_reference.json", "manifest.json")
TIMEOUT_S = 300


def _tiny(repo: Path) -> None:
    """20k rows; dcnv2_x8 = 4 DCNv2 seeds at scales 1, 2 with 2 draws; wukong_rankmixer_x8 = 1 seed each; 1 epoch."""
    dp = repo / "conf" / "base" / "parameters_data_processing.yml"
    params = yaml.safe_load(dp.read_text())
    params["datasets"]["synthetic"]["generate"]["n_rows"] = 20000
    dp.write_text(yaml.safe_dump(params, sort_keys=False))

    tp = repo / "conf" / "base" / "parameters_tts.yml"
    params = yaml.safe_load(tp.read_text())
    tts = params["tts"]
    assert tts["ensembles"] == ["dcnv2_x8", "wukong_rankmixer_x8"], "dvc.yaml lists these ensembles' folders"
    tts["defaults"]["draws"] = 2
    tts["training"].update(max_epochs=1, num_threads=1, batch_size=1024, learning_rate=0.003)
    tts["ensemble_catalog"]["dcnv2_x8"] = {"members": [{"backbone": "dcnv2", "seeds": 4}], "scales": [1, 2]}
    tts["ensemble_catalog"]["wukong_rankmixer_x8"] = {
        "members": [{"backbone": "wukong", "seeds": 1}, {"backbone": "rankmixer", "seeds": 1}], "scales": [1]}
    tts["registry"]["register_members"] = False
    tts["merging"]["seed"] = 0
    tp.write_text(yaml.safe_dump(params, sort_keys=False))


def _env(tmp: Path) -> dict[str, str]:
    env = kedro_env()  # venv bin first on PATH: stage commands find the project's `kedro`
    for key in ("MLFLOW_TRACKING_URI", "KEDRO_ENV", "TTSCTR_ENSEMBLES", "KEDRO_LOGGING_CONFIG", "GIT_DIR", "GIT_WORK_TREE"):
        env.pop(key, None)
    env.update(
        DVC_NO_ANALYTICS="1", MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true",
        DVC_SITE_CACHE_DIR=str(tmp / "dvc-site-cache"),
        # bytecode written into src/ would change the hashed source folders mid-run (see
        # test_bytecode_does_not_make_stages_stale for what that does to dvc.lock)
        PYTHONDONTWRITEBYTECODE="1",
        GIT_AUTHOR_NAME="ttsctr test", GIT_AUTHOR_EMAIL="test@example.invalid",
        GIT_COMMITTER_NAME="ttsctr test", GIT_COMMITTER_EMAIL="test@example.invalid",
        GIT_CONFIG_NOSYSTEM="1",
    )
    return env


class Repo:
    def __init__(self, path: Path, env: dict[str, str]) -> None:
        self.path, self.env = path, env

    def run(self, *cmd: str, check: bool = True, timeout: int = TIMEOUT_S) -> subprocess.CompletedProcess:
        exe = str(BIN / cmd[0]) if cmd[0] in ("dvc", "kedro", "python") else cmd[0]
        proc = subprocess.run([exe, *cmd[1:]], cwd=self.path, env=self.env, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}")
        return proc

    def git(self, *args: str) -> subprocess.CompletedProcess:
        return self.run("git", *args)


def _ran(proc: subprocess.CompletedProcess) -> set[str]:
    return set(re.findall(r"Running stage '(\w+)'", proc.stdout + proc.stderr))


def _skipped(proc: subprocess.CompletedProcess) -> set[str]:
    return set(re.findall(r"Stage '(\w+)' didn't change, skipping", proc.stdout + proc.stderr))


def _reused(proc: subprocess.CompletedProcess) -> set[str]:
    """The groups the training pipeline reused ("<ensemble>/<group> already trained ...; reusing it")."""
    return set(re.findall(r"(\w+/group_\d+) already trained with config \w+; reusing it", proc.stdout + proc.stderr))


def _mtimes(folder: Path, *, skip: tuple[str, ...] = ()) -> dict[str, int]:
    """relative path -> mtime_ns of every file under ``folder`` whose name is not in ``skip``."""
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")
            if p.is_file() and p.name not in skip}


def _status(r: "Repo") -> dict[str, Any]:
    """`dvc status --json`: stage -> its changes ({} when everything is up to date)."""
    return json.loads(r.run("dvc", "status", "--json").stdout or "{}")


def _make_run(r: "Repo") -> subprocess.CompletedProcess:
    """What `make run` does: a plain `kedro run` of the default pipeline, with the Makefile's settings."""
    saved = dict(r.env)
    r.env.update(MLFLOW_TRACKING_URI="sqlite:///mlflow.db", KEDRO_LOGGING_CONFIG=str(r.path / "conf" / "logging.yml"))
    try:
        return r.run("kedro", "run")
    finally:
        r.env.clear()
        r.env.update(saved)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("dvc")
    path = tmp / "project"
    path.mkdir()
    for name in ("pyproject.toml", ".dvcignore", ".gitignore"):
        shutil.copy2(REPO_ROOT / name, path / name)
    # The main chain only: the baseline stages (hours at their configured sizes) are left out here.
    dvc_yaml = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())
    assert set(STAGES) <= set(dvc_yaml["stages"])
    dvc_yaml["stages"] = {k: v for k, v in dvc_yaml["stages"].items() if k in STAGES}
    (path / "dvc.yaml").write_text(yaml.safe_dump(dvc_yaml, sort_keys=False))
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    shutil.copytree(REPO_ROOT / "src", path / "src", ignore=skip)
    shutil.copytree(REPO_ROOT / "conf", path / "conf", ignore=skip)
    shutil.rmtree(path / "conf" / "local")  # the checkout's local settings are not part of the project
    (path / "conf" / "local").mkdir()
    (path / "conf" / "local" / ".gitkeep").touch()
    _tiny(path)
    repo = Repo(path, _env(tmp))
    repo.git("init", "-q", "-b", "main")
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", "project")
    repo.run("dvc", "init", "-q")
    # the project's committed DVC config: analytics off, default remote ../.dvc-storage (relative to .dvc/)
    shutil.copy2(REPO_ROOT / ".dvc" / "config", path / ".dvc" / "config")
    repo.run("dvc", "config", "--local", "core.check_update", "false")  # no update check over the network
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", "dvc init")

    started = time.monotonic()
    first = repo.run("dvc", "repro")
    first_s = time.monotonic() - started
    second = repo.run("dvc", "repro")
    return {"repo": repo, "first": first, "second": second, "first_s": first_s}


def test_first_repro_runs_every_stage_and_writes_metrics(repo) -> None:
    r: Repo = repo["repo"]
    assert _ran(repo["first"]) == set(STAGES), repo["first"].stdout[-3000:]
    out = repo["first"].stdout
    assert [out.index(f"Running stage '{s}'") for s in STAGES] == sorted(out.index(f"Running stage '{s}'") for s in STAGES)
    metrics = json.loads((r.path / REPORTING / "metrics.json").read_text())
    assert {"auc_1x", "auc_2x", "logloss_2x", "n_draws_2x", "p_delong_2x", "pairwise_r"} <= set(metrics["dcnv2_x8"])
    assert "p_delong_1x" not in metrics["dcnv2_x8"]  # the 1x row is the reference: no test, no metric
    assert {"auc_1x", "pairwise_r"} <= set(metrics["wukong_rankmixer_x8"])
    aucs = [v for m in (metrics["dcnv2_x8"], metrics["wukong_rankmixer_x8"]) for k, v in m.items() if k.startswith("auc_")]
    assert aucs and all(0.5 < v < 1 for v in aucs)
    lock = yaml.safe_load((r.path / "dvc.lock").read_text())
    assert set(lock["stages"]) == set(STAGES)
    # dvc.lock records the parameters Kedro ran with (conf/base, not conf/local)
    assert lock["stages"]["train"]["params"]["conf/base/parameters_tts.yml"]["tts.training"]["max_epochs"] == 1
    assert lock["stages"]["merge"]["params"]["conf/base/parameters_tts.yml"]["tts.merging"]["seed"] == 0
    # the dataset as a value, not as the `${runtime_params:...}` Kedro resolves
    assert lock["stages"]["preprocess"]["params"]["conf/base/parameters_data_processing.yml"]["dataset"] == "synthetic"
    # trained groups and predictions persist across reruns; each folder records the code that made it
    stages = yaml.safe_load((r.path / "dvc.yaml").read_text())["stages"]
    for stage, out in (("train", MODELS), ("predict", PREDICTIONS)):
        assert {str(out): {"persist": True}} in stages[stage]["outs"], stages[stage]["outs"]
        assert (r.path / out / ".stage-code").is_file()
    # the outputs are DVC's, not git's
    assert r.run("git", "status", "--porcelain", "--", "data").stdout.strip() == ""


def test_second_repro_runs_nothing(repo) -> None:
    second = repo["second"]
    assert _ran(second) == set(), second.stdout
    assert _skipped(second) == set(STAGES), second.stdout
    status = repo["repo"].run("dvc", "status")
    assert "up to date" in status.stdout, status.stdout


def test_make_run_after_repro_changes_nothing_dvc_would_redo(repo) -> None:
    """`make run` after `dvc repro`: nothing re-encoded, retrained or re-predicted, and DVC sees
    nothing to redo (`dvc status` clean, a `dvc repro` runs no stage): the two agree."""
    r: Repo = repo["repo"]
    r.git("add", "dvc.lock")
    r.git("commit", "-q", "-m", "results")  # `dvc diff` compares with HEAD's dvc.lock
    models, predictions = r.path / MODELS, r.path / PREDICTIONS
    trained = _mtimes(models, skip=SAVED_BY_EVERY_RUN)
    predicted = _mtimes(predictions, skip=SAVED_BY_EVERY_RUN)

    run = _make_run(r)
    out = run.stdout + run.stderr
    assert "model input for synthetic is up to date" in out, out[-3000:]
    assert _reused(run) == GROUPS, out[-3000:]
    assert _mtimes(models, skip=SAVED_BY_EVERY_RUN) == trained
    assert _mtimes(predictions, skip=SAVED_BY_EVERY_RUN) == predicted
    assert not _status(r), _status(r)
    changed = json.loads(r.run("dvc", "diff", "--json").stdout or "{}")
    assert not any(changed.get(k) for k in ("added", "deleted", "modified")), changed
    assert _ran(r.run("dvc", "repro")) == set()
    assert _mtimes(models, skip=SAVED_BY_EVERY_RUN) == trained
    assert _mtimes(predictions, skip=SAVED_BY_EVERY_RUN) == predicted
    assert _status(r) == {}
    _make_run(r)
    assert _status(r) == {}


def test_metrics_show_prints_auc_per_scale(repo) -> None:
    r: Repo = repo["repo"]
    shown = r.run("dvc", "metrics", "show")
    for column in ("dcnv2_x8.auc_1x", "dcnv2_x8.auc_2x", "wukong_rankmixer_x8.auc_1x", "bayes_optimal_auc"):
        assert column in shown.stdout, shown.stdout
    as_json = json.loads(r.run("dvc", "metrics", "show", "--json").stdout)
    data = next(iter(as_json.values()))["data"][str(REPORTING / "metrics.json")]["data"]
    metrics = json.loads((r.path / REPORTING / "metrics.json").read_text())
    assert data["dcnv2_x8"] == metrics["dcnv2_x8"]
    table = pd.read_csv(r.path / REPORTING / "dcnv2_x8" / "scaling.csv")
    assert data["dcnv2_x8"]["auc_2x"] == pytest.approx(table["auc_mean"].iloc[-1])


def test_plots_show_writes_html(repo, tmp_path: Path) -> None:
    r: Repo = repo["repo"]
    proc = r.run("dvc", "plots", "show", "-o", str(tmp_path / "plots"))
    assert "ERROR" not in proc.stderr and "WARNING" not in proc.stderr, proc.stderr
    html = (tmp_path / "plots" / "index.html").read_text()
    for needle in ("AUC against scale", "Logloss against scale", "dcnv2_x8/scaling.csv",
                   "wukong_rankmixer_x8/scaling.csv", '"auc_mean"', '"logloss_mean"'):
        assert needle in html, needle
    table = pd.read_csv(r.path / REPORTING / "dcnv2_x8" / "scaling.csv")
    assert repr(float(table["auc_mean"].iloc[0])) in html  # the data points themselves are in the page


def test_push_to_the_local_remote_and_pull_back(repo) -> None:
    r: Repo = repo["repo"]
    remote = r.path / ".dvc-storage"  # ../.dvc-storage relative to .dvc/config
    r.run("dvc", "push")
    assert remote.is_dir() and any(p.is_file() for p in remote.rglob("*"))
    assert "in sync" in r.run("dvc", "status", "--cloud").stdout
    assert r.run("git", "check-ignore", ".dvc-storage").returncode == 0  # the remote is not committed
    # lose the local cache and an output: pull restores them from the remote
    predictions = r.path / "data" / "07_model_output" / "synthetic"
    before = sorted(p.relative_to(predictions) for p in predictions.rglob("*") if p.is_file())
    shutil.rmtree(r.path / ".dvc" / "cache")
    shutil.rmtree(predictions)
    r.run("dvc", "pull")
    assert sorted(p.relative_to(predictions) for p in predictions.rglob("*") if p.is_file()) == before
    assert "up to date" in r.run("dvc", "status").stdout


def test_bytecode_does_not_make_stages_stale(repo) -> None:
    """`__pycache__/*.pyc` inside the source folders that stages depend on must not count as a change
    (a fresh clone has none, a Python upgrade rewrites them): .dvcignore has to exclude them."""
    r: Repo = repo["repo"]
    env = {k: v for k, v in r.env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([sys.executable, "-m", "compileall", "-q", "src"], cwd=r.path, env=env, check=True,
                   capture_output=True, timeout=120)
    try:
        status = r.run("dvc", "status")
        assert "up to date" in status.stdout, (
            "compiled bytecode made stages stale; add `__pycache__/` and `*.pyc` to .dvcignore:\n" + status.stdout)
    finally:
        for cache in list((r.path / "src").rglob("__pycache__")):
            shutil.rmtree(cache)


def test_changing_only_the_merging_seed_reruns_merge_and_report(repo) -> None:
    r: Repo = repo["repo"]
    r.git("add", "dvc.lock")
    r.git("commit", "-q", "--allow-empty", "-m", "baseline results")  # dvc.lock may be as committed before
    models = r.path / "data" / "06_models" / "synthetic"
    stamps = {p: p.stat().st_mtime_ns for p in models.rglob("*") if p.is_file()}
    table_before = (r.path / REPORTING / "dcnv2_x8" / "scaling.csv").read_text()

    predictions = r.path / PREDICTIONS
    predicted = _mtimes(predictions)

    exp = r.run("dvc", "exp", "run", "--set-param", "conf/base/parameters_tts.yml:tts.merging.seed=1")
    assert _ran(exp) == {"merge", "report"}, exp.stdout[-3000:]
    assert _skipped(exp) == {"preprocess", "train", "predict"}, exp.stdout[-3000:]
    # train and predict did not run (so no "reusing" in the log): every group and prediction is the one
    # the earlier run made, untouched
    assert {p: p.stat().st_mtime_ns for p in models.rglob("*") if p.is_file()} == stamps  # nothing retrained
    assert _mtimes(predictions) == predicted
    # other draws of the 1x and 2x members: the table (and so report's input) changed
    assert (r.path / REPORTING / "dcnv2_x8" / "scaling.csv").read_text() != table_before
    assert yaml.safe_load((r.path / "conf" / "base" / "parameters_tts.yml").read_text())["tts"]["merging"]["seed"] == 1
    lock = yaml.safe_load((r.path / "dvc.lock").read_text())
    assert lock["stages"]["merge"]["params"]["conf/base/parameters_tts.yml"]["tts.merging"]["seed"] == 1
    diff = r.run("dvc", "params", "diff").stdout
    assert "tts.merging.seed" in diff and "tts.training" not in diff, diff
    metrics_diff = r.run("dvc", "metrics", "diff").stdout
    assert "dcnv2_x8.auc_1x" in metrics_diff, metrics_diff


def test_a_changed_group_is_trained_again_and_the_others_reused(repo) -> None:
    """Another seed for wukong_rankmixer_x8's rankmixer member: `train` reruns (its parameters changed)
    and, its output persisting, trains that group only; every other group and its predictions are
    reused untouched, and the merged tables follow the new group."""
    r: Repo = repo["repo"]
    r.git("add", "-A")
    r.git("commit", "-q", "-m", "merging seed 1")
    models, predictions = r.path / MODELS, r.path / PREDICTIONS
    changed_group = "wukong_rankmixer_x8/group_01"
    old_hash = json.loads((models / changed_group / "trained_group.json").read_text())["config_hash"]
    trained = _mtimes(models, skip=SAVED_BY_EVERY_RUN)
    predicted = _mtimes(predictions, skip=SAVED_BY_EVERY_RUN)
    tables = {e: (r.path / REPORTING / e / "scaling.csv").read_text() for e in ("dcnv2_x8", "wukong_rankmixer_x8")}

    tp = r.path / "conf" / "base" / "parameters_tts.yml"
    params = yaml.safe_load(tp.read_text())
    members = params["tts"]["ensemble_catalog"]["wukong_rankmixer_x8"]["members"]
    assert members[1]["backbone"] == "rankmixer"
    members[1]["seeds"] = [7]
    tp.write_text(yaml.safe_dump(params, sort_keys=False))
    repro = r.run("dvc", "repro")

    assert _ran(repro) == {"train", "predict", "merge", "report"}, repro.stdout[-3000:]
    assert _reused(repro) == GROUPS - {changed_group}, repro.stdout[-3000:]
    group = json.loads((models / changed_group / "trained_group.json").read_text())
    assert group["config_hash"] != old_hash and [m["seed"] for m in group["members"]] == [7]
    assert "reused" not in group and Path(group["checkpoint"]).name == f"group-{group['config_hash']}.pt"
    now = _mtimes(models, skip=SAVED_BY_EVERY_RUN)
    assert {k: v for k, v in now.items() if k in trained} == trained  # nothing else trained again...
    assert {k for k in now if k not in trained and not k.startswith(f"{changed_group}/checkpoint-")} == {
        f"{changed_group}/result-{group['config_hash']}.json", f"{changed_group}/group-{group['config_hash']}.pt"}
    assert f"{changed_group}/result-{old_hash}.json" in now  # ...and the earlier seed's result is kept
    manifest = json.loads((predictions / changed_group / "manifest.json").read_text())
    assert manifest["config_hash"] == group["config_hash"] and manifest["members"] == ["m001_rankmixer_s7"]
    unchanged = {k: v for k, v in predicted.items() if not k.startswith(f"{changed_group}/")}
    assert {k: v for k, v in _mtimes(predictions, skip=SAVED_BY_EVERY_RUN).items() if k in unchanged} == unchanged
    assert (r.path / REPORTING / "dcnv2_x8" / "scaling.csv").read_text() == tables["dcnv2_x8"]
    assert (r.path / REPORTING / "wukong_rankmixer_x8" / "scaling.csv").read_text() != tables["wukong_rankmixer_x8"]
    assert _status(r) == {}


def test_a_change_of_the_training_code_trains_every_group_again(repo) -> None:
    """Results are keyed by configuration hash, which does not cover the code: the stages' code guard
    removes the persisted groups (and, their code stamp having changed, the predictions) when a
    source file `train` depends on changes, so nothing made by other code is reused."""
    r: Repo = repo["repo"]
    r.git("add", "-A")
    r.git("commit", "-q", "-m", "rankmixer seed 7")
    models, predictions = r.path / MODELS, r.path / PREDICTIONS
    trained = _mtimes(models)
    predicted = _mtimes(predictions)
    flops = r.path / "src" / "ttsctr" / "flops.py"  # a dependency of train only
    flops.write_text(flops.read_text() + "\n# changed training code\n")
    repro = r.run("dvc", "repro")

    out = repro.stdout + repro.stderr
    assert _ran(repro) == {"train", "predict", "merge", "report"}, out[-3000:]
    for stage, folder in (("train", MODELS), ("predict", PREDICTIONS)):
        assert f"{stage}: {folder} has no stamp of this stage's current code" in out, out[-3000:]
    assert _reused(repro) == set(), out[-3000:]
    now = _mtimes(models)
    assert set(now) < set(trained)  # the earlier seed's files went with the folder
    assert all(now[k] > trained[k] for k in now), "a group was reused across a code change"
    results = sorted(models.glob("*/group_*/result-*.json"))
    assert len(results) == len(GROUPS)  # one result per group: the current configuration's
    now = _mtimes(predictions)
    assert set(now) == set(predicted) and all(now[k] > predicted[k] for k in now)
    assert _status(r) == {}


def test_dataset_is_a_literal_that_runtime_params_override(tmp_path: Path) -> None:
    """DVC reads parameter files without Kedro's resolvers: `dataset` is a plain value there (what
    `dvc params diff` and dvc.lock show). `kedro run --params dataset=...` still overrides it, and the
    catalog's paths, which take the dataset from the runtime parameters or globals.yml, follow."""
    from kedro.config import OmegaConfigLoader

    conf = tmp_path / "conf"
    shutil.copytree(REPO_ROOT / "conf" / "base", conf / "base")
    (conf / "local").mkdir()
    default = yaml.safe_load((conf / "base" / "globals.yml").read_text())["default_dataset"]
    assert yaml.safe_load((conf / "base" / "parameters_data_processing.yml").read_text())["dataset"] == default
    for runtime, dataset in (({}, default), ({"dataset": "criteo"}, "criteo")):
        loader = OmegaConfigLoader(str(conf), base_env="base", default_run_env="local", runtime_params=runtime)
        assert loader["parameters"]["dataset"] == dataset
        catalog = loader["catalog"]
        assert catalog["model_input_summary"]["filepath"] == f"data/05_model_input/{dataset}.summary.json"
        assert catalog["tts_metrics"]["filepath"] == f"data/08_reporting/{dataset}/metrics.json"
