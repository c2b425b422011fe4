"""MLflow bookkeeping that must survive kill -9 and races, against a real SQLite tracking store.

* a run whose process was killed is marked KILLED by the next start; a live process's run is not;
* two processes registering the same identity at the same moment end with one version, and both
  report that version.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import mlflow
import pytest

from ttsctr import tracking

KILLED_RUN = textwrap.dedent(
    """
    import os, signal, sys
    import mlflow
    from ttsctr import tracking
    mlflow.set_tracking_uri(sys.argv[1])
    mlflow.set_experiment("probe")
    with mlflow.start_run(run_name="killed"):
        tracking.tag_active_run_with_process()
        with tracking.nested_run("killed.child"):
            print(mlflow.active_run().info.run_id, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
    """
)

REGISTER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import mlflow
    from ttsctr import tracking

    class Constant(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return model_input

    uri, go = sys.argv[1], Path(sys.argv[2])
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("race")
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(name="model", python_model=Constant(), pip_requirements=[])
        Path(sys.argv[3]).write_text("ready")
        while not go.exists():
            time.sleep(0.01)
        print(tracking.register_version(info.model_uri, "ttsctr-race", {"scale": "4", "data_version": "abc"}))
    """
)


@pytest.fixture()
def tracking_uri(tmp_path: Path) -> str:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    for name in ("probe", "race"):  # schema and experiments exist before processes race on them
        mlflow.MlflowClient().create_experiment(name, artifact_location=str(tmp_path / "mlruns" / name))
    yield uri
    mlflow.set_tracking_uri(None)


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_ARTIFACT_ROOT": str(tmp_path / "mlruns")}


def test_runs_of_a_killed_process_are_marked_killed_at_the_next_start(tracking_uri: str, tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", KILLED_RUN, tracking_uri], cwd=tmp_path, env=_env(tmp_path),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr[-2000:]
    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name("probe").experiment_id
    killed = client.search_runs([experiment])
    assert len(killed) == 2 and {r.info.status for r in killed} == {"RUNNING"}  # what kill -9 leaves
    with mlflow.start_run(experiment_id=experiment, run_name="live"):
        tracking.tag_active_run_with_process()
        live = mlflow.active_run().info.run_id
        closed = tracking.close_runs_of_dead_processes()
        assert sorted(closed) == sorted(r.info.run_id for r in killed)
        assert client.get_run(live).info.status == "RUNNING"
    assert {client.get_run(r.info.run_id).info.status for r in killed} == {"KILLED"}
    with mlflow.start_run(experiment_id=experiment, run_name="untagged"):  # another tool's run: not ours to judge
        untagged = mlflow.active_run().info.run_id
        assert tracking.close_runs_of_dead_processes() == []
    assert client.get_run(untagged).info.status == "FINISHED"


def test_two_processes_registering_the_same_identity_end_with_one_version(tracking_uri: str, tmp_path: Path) -> None:
    go = tmp_path / "go"
    procs, ready = [], []
    for i in range(2):
        ready.append(tmp_path / f"ready{i}")
        procs.append(subprocess.Popen([sys.executable, "-c", REGISTER, tracking_uri, str(go), str(ready[-1])],
                                      cwd=tmp_path, env=_env(tmp_path), stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    try:
        deadline = time.monotonic() + 180
        while not all(r.exists() for r in ready):
            assert all(p.poll() is None for p in procs), [p.communicate()[1][-2000:] for p in procs if p.poll() is not None]
            assert time.monotonic() < deadline, "the registering processes did not get ready within 180 s"
            time.sleep(0.05)
        go.write_text("go")  # both register now
        outputs = [p.communicate(timeout=180) for p in procs]
    finally:
        for p in procs:  # a process left waiting for `go` after a failure must not outlive the test
            if p.poll() is None:
                p.kill()
                p.wait()
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outputs]
    reported = {out.strip().splitlines()[-1] for out, _ in outputs}
    versions = mlflow.MlflowClient().search_model_versions("name = 'ttsctr-race'")
    assert len(versions) == 1, [(v.version, v.tags) for v in versions]
    assert reported == {str(versions[0].version)}
    assert versions[0].tags["data_version"] == "abc"
