"""Every result matches the data it claims, with real `kedro run`s started, raced and killed.

One throwaway project (20k synthetic rows, a two-member DCNv2 ensemble registered at 1× and 2×)
goes through, in order:

1. two identical runs started 0.5 s apart: the second waits for the first's dataset lock, both
   succeed, each scale is registered once and both report the same model URIs;
2. a run killed with SIGKILL while training: the next run (on the same dataset, not waiting) marks
   its MLflow runs KILLED;
3. re-encoding with another ``min_count`` and then running only ``reporting`` / ``prediction``:
   refused with the data versions named, nothing registered against the new vocabulary; a full
   run then recomputes and registers under the new version;
4. the published folder swapped by hand (bypassing the lock) while a run trains: the run stops
   with the named error instead of mixing two encodings.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest

from projecthelpers import REPO_ROOT, kedro_env, make_project, run_kedro, tiny_tts_parameters

pytestmark = pytest.mark.slow

DATASET = "synthetic"
ENSEMBLE = "dcnv2_x2"
MODEL = f"ttsctr-{DATASET}-{ENSEMBLE}"
TINY = tiny_tts_parameters(ENSEMBLE, max_epochs=2, preset="small")
RETRAIN = "tts.training.learning_rate=0.002,tts.training.max_epochs=4"  # a configuration not trained yet
REENCODE = "datasets.synthetic.preprocessing.min_count=3"
PLAIN_LOGS = {"KEDRO_LOGGING_CONFIG": str(REPO_ROOT / "conf" / "logging.yml")}  # one line per record, as `make run`


def _start(project: Path, *args: str) -> subprocess.Popen:
    cmd = [str(Path(sys.executable).parent / "kedro"), "run", *args]
    return subprocess.Popen(cmd, cwd=project, env={**kedro_env(), **PLAIN_LOGS}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def _client(project: Path) -> mlflow.MlflowClient:
    return mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")


def _versions(project: Path) -> list:
    return sorted(_client(project).search_model_versions(f"name = '{MODEL}'"), key=lambda v: int(v.version))


def _data_version(project: Path) -> str:
    return json.loads((project / "data" / "05_model_input" / f"{DATASET}.summary.json").read_text())["data_version"]


def _registered_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("- models:/")]


def _wait_for(condition, what: str, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"the run ended ({proc.returncode}) before {what}:\n{err[-4000:]}")
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        time.sleep(0.1)


def _epoch_states(project: Path) -> set[Path]:
    # the resume state is written after each epoch: a new one means training is under way
    return set((project / "data" / "06_models" / DATASET / ENSEMBLE).glob("group_*/checkpoint-*/train_state.pt"))


def _start_and_wait_for_training(project: Path, *args: str) -> subprocess.Popen:
    before = _epoch_states(project)
    run = _start(project, *args)
    _wait_for(lambda: bool(_epoch_states(project) - before), "new epoch checkpoint", run)
    return run


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project(tmp_path_factory.mktemp("safety"), TINY)


def test_two_concurrent_runs_register_each_scale_once(project: Path) -> None:
    first = _start(project)
    time.sleep(0.5)
    second = _start(project)
    (out1, err1), (out2, err2) = first.communicate(timeout=900), second.communicate(timeout=900)
    assert (first.returncode, second.returncode) == (0, 0), (err1[-3000:], err2[-3000:])
    waited = [line for line in (out1 + out2).splitlines() if "waits for it to finish" in line]
    assert len(waited) == 1 and "is in use by pid" in waited[0], out2[-3000:]  # the second waited for the first
    versions = _versions(project)
    assert sorted(v.tags["scale"] for v in versions) == ["1", "2"], [(v.version, v.tags) for v in versions]
    assert {v.tags["data_version"] for v in versions} == {_data_version(project)}
    assert _registered_lines(out1) == _registered_lines(out2) and len(_registered_lines(out1)) == 2


def test_runs_of_a_killed_run_are_marked_killed_by_the_next_run(project: Path) -> None:
    killed = _start_and_wait_for_training(project, "--params", RETRAIN)
    os.killpg(killed.pid, signal.SIGKILL)
    killed.communicate()
    client = _client(project)
    experiment = client.get_experiment_by_name("ttsctr").experiment_id
    running = [r.info.run_id for r in client.search_runs([experiment], "attributes.status = 'RUNNING'")]
    assert running, "the killed run left no RUNNING run (nothing to mark)"
    started = time.monotonic()
    run_kedro(project, "--pipelines", "data_processing")
    assert time.monotonic() - started < 120  # the killed run's lock did not hold it up
    assert {client.get_run(r).info.status for r in running} == {"KILLED"}
    assert client.search_runs([experiment], "attributes.status = 'RUNNING'") == []
    for leftover in project.glob("data/**/.*tmp-*"):
        pytest.fail(f"temporary file of the killed run left behind: {leftover}")


def test_results_of_another_encoding_are_refused_then_recomputed(project: Path) -> None:
    old = _data_version(project)
    before = [(v.version, v.tags["data_version"]) for v in _versions(project)]
    run_kedro(project, "--pipelines", "data_processing", "--params", REENCODE)
    new = _data_version(project)
    assert new != old
    for pipeline in ("reporting", "prediction"):
        proc = run_kedro(project, "--pipelines", pipeline, check=False)
        assert proc.returncode != 0, f"--pipelines {pipeline} accepted results of another encoding"
        text = " ".join(proc.stderr.split())
        assert f"computed from data version {old}" in text and f"uses data version {new}" in text, proc.stderr[-3000:]
    assert [(v.version, v.tags["data_version"]) for v in _versions(project)] == before  # nothing registered
    proc = run_kedro(project, "--params", REENCODE)
    registered = [v for v in _versions(project) if v.tags["data_version"] == new]
    assert sorted(v.tags["scale"] for v in registered) == ["1", "2"]
    manifests = list((project / "data" / "07_model_output" / DATASET / ENSEMBLE).glob("group_*/manifest.json"))
    assert manifests and {json.loads(m.read_text())["data_version"] for m in manifests} == {new}
    assert "Registered ensembles" in proc.stdout


def test_a_run_whose_data_is_swapped_underneath_stops_with_the_named_error(project: Path, tmp_path: Path) -> None:
    model_input = project / "data" / "05_model_input" / DATASET
    published = _data_version(project)
    other = tmp_path / "other"
    run_kedro(project, "--pipelines", "data_processing")  # the min_count 10 encoding again ...
    shutil.copytree(model_input, other)  # ... copied by hand, as a user might keep one
    run_kedro(project, "--pipelines", "data_processing", "--params", REENCODE)
    assert _data_version(project) == published
    run = _start_and_wait_for_training(project, "--params", f"{REENCODE},{RETRAIN}")
    aside = tmp_path / "aside"
    os.replace(model_input, aside)  # a hand copy over the published folder, bypassing the lock
    os.replace(other, model_input)
    out, err = run.communicate(timeout=900)
    assert run.returncode != 0, "the run went on with data swapped underneath it"
    text = " ".join(err.split())
    assert "Error: " in text and published in text and "data version" in text, err[-3000:]
    new_manifests = [json.loads(m.read_text()) for m in
                     (project / "data" / "07_model_output" / DATASET / ENSEMBLE).glob("group_*/manifest.json")]
    assert all(m["data_version"] == published for m in new_manifests)
