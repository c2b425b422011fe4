"""`dvc repro` of the real dvc.yaml on a tiny configuration, in a throwaway git + DVC repository.

The project (pyproject.toml, conf/, src/, dvc.yaml, .dvcignore, .gitignore and the committed
.dvc/config with its local remote) is copied into a tmp dir, `git init` + `dvc init`, and run with
the real `dvc` and `kedro` of the venv (on PATH, as `make repro` does). Checked:

* the first `dvc repro` runs preprocess → train → predict → merge → report and writes
  metrics.json; a second one runs nothing;
* `dvc metrics show` prints the AUC per scale, `dvc plots show` writes its HTML,
  `dvc push` fills the local remote (and `dvc pull` restores from it);
* Python writing bytecode into the tracked source folders does not make stages stale;
* `dvc exp run --set-param conf/base/parameters_tts.yml:tts.merging.seed=1` runs merge and
  report only.

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


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("dvc")
    path = tmp / "project"
    path.mkdir()
    for name in ("pyproject.toml", "dvc.yaml", ".dvcignore", ".gitignore"):
        shutil.copy2(REPO_ROOT / name, path / name)
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
    # the outputs are DVC's, not git's
    assert r.run("git", "status", "--porcelain", "--", "data").stdout.strip() == ""


def test_second_repro_runs_nothing(repo) -> None:
    second = repo["second"]
    assert _ran(second) == set(), second.stdout
    assert _skipped(second) == set(STAGES), second.stdout
    status = repo["repo"].run("dvc", "status")
    assert "up to date" in status.stdout, status.stdout


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
    r.git("commit", "-q", "-m", "baseline results")
    models = r.path / "data" / "06_models" / "synthetic"
    stamps = {p: p.stat().st_mtime_ns for p in models.rglob("*") if p.is_file()}
    table_before = (r.path / REPORTING / "dcnv2_x8" / "scaling.csv").read_text()

    exp = r.run("dvc", "exp", "run", "--set-param", "conf/base/parameters_tts.yml:tts.merging.seed=1")
    assert _ran(exp) == {"merge", "report"}, exp.stdout[-3000:]
    assert _skipped(exp) == {"preprocess", "train", "predict"}, exp.stdout[-3000:]
    assert {p: p.stat().st_mtime_ns for p in models.rglob("*") if p.is_file()} == stamps  # nothing retrained
    # other draws of the 1x and 2x members: the table (and so report's input) changed
    assert (r.path / REPORTING / "dcnv2_x8" / "scaling.csv").read_text() != table_before
    assert yaml.safe_load((r.path / "conf" / "base" / "parameters_tts.yml").read_text())["tts"]["merging"]["seed"] == 1
    lock = yaml.safe_load((r.path / "dvc.lock").read_text())
    assert lock["stages"]["merge"]["params"]["conf/base/parameters_tts.yml"]["tts.merging"]["seed"] == 1
    diff = r.run("dvc", "params", "diff").stdout
    assert "tts.merging.seed" in diff and "tts.training" not in diff, diff
    metrics_diff = r.run("dvc", "metrics", "diff").stdout
    assert "dcnv2_x8.auc_1x" in metrics_diff, metrics_diff
