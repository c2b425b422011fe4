"""A bad configuration stops `kedro run` with one readable line, before anything is trained or tracked.

A ttsctr error (``TTSCTRError``) ends ``kedro run`` with ``Error: <message>`` on stderr, exit code
1 and no traceback (``--verbose`` shows it). A bad ``dataset``/``raw_path`` is caught before the
first node, so it leaves no MLflow run at all (no FAILED half-run) and writes nothing under data/.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from projecthelpers import REPO_ROOT, make_project, run_kedro

KNOWN = ", ".join(sorted(yaml.safe_load((REPO_ROOT / "conf" / "base" / "parameters_data_processing.yml").read_text())["datasets"]))


def mlflow_runs(project: Path) -> list[tuple[str, str]]:
    """(run id, status) of every run, deleted ones included, in ``project``'s MLflow store."""
    db = project / "mlflow.db"
    if not db.exists():
        return []
    from mlflow.entities import ViewType
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    runs = client.search_runs(experiments, run_view_type=ViewType.ALL) if experiments else []
    return [(r.info.run_id, r.info.status) for r in runs]


def error_lines(proc) -> list[str]:
    return [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("Error:")]


@pytest.mark.parametrize(
    ("ensemble", "message"),
    [
        ({"members": [{"backbone": "deepcrossformer", "seeds": 2}]}, "unknown model 'deepcrossformer'; available models: dcn, dcnv2"),
        ({"members": [{"backbone": "dcnv2", "seeds": 2}], "scales": [1, 2, 4]}, "scale 4 is outside 1..2 (the number of units)"),
    ],
)
def test_bad_ensemble_fails_the_run_naming_the_problem(tmp_path: Path, ensemble: dict, message: str) -> None:
    project = make_project(tmp_path, {"tts": {"ensembles": ["mine"], "ensemble_catalog": {"mine": ensemble}}})
    proc = run_kedro(project, check=False)
    output = " ".join((proc.stdout + proc.stderr).split())  # Kedro wraps long lines when not on a terminal
    assert proc.returncode != 0
    assert "ensemble 'mine'" in output and message in output
    assert not (project / "data" / "06_models").exists()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ("dataset=critoe", f"unknown dataset 'critoe'; known datasets: {KNOWN}"),
        ("raw_path={missing}", "raw_path '{missing}' for dataset 'synthetic' does not exist; expected a synthetic file"),
        ("dataset=criteo", "dataset 'criteo' needs a raw criteo file (its default file data/01_raw/criteo/train.txt "
                           "does not exist): pass --params \"dataset=criteo,raw_path=<file>\""),
    ],
    ids=["unknown-dataset", "missing-raw-path", "no-default-file"],
)
def test_bad_dataset_or_raw_path_is_one_line_and_leaves_no_mlflow_run(tmp_path: Path, params: str, message: str) -> None:
    missing = tmp_path / "nowhere" / "train.txt"
    project = make_project(tmp_path)
    proc = run_kedro(project, "--params", params.format(missing=missing), check=False)
    output = proc.stdout + proc.stderr
    expected = "Error: " + message.format(missing=missing)
    assert proc.returncode == 1, output[-4000:]
    assert error_lines(proc) == [expected], output[-4000:]
    assert [line for line in proc.stderr.splitlines() if line.strip()][-1] == expected
    assert output.count(message.format(missing=missing)) == 1  # no node ran and logged it again
    assert "Traceback" not in output
    assert mlflow_runs(project) == []  # stopped before kedro-mlflow started a run: nothing FAILED
    assert not (project / "data").exists()  # nor was the dataset lock taken or anything written


def test_verbose_shows_the_traceback_of_a_bad_dataset(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    proc = run_kedro(project, "--params", "dataset=critoe", "--verbose", check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1
    assert "Traceback" in output
    assert "ConfigError" in output and "unknown dataset 'critoe'" in " ".join(output.split())
    assert error_lines(proc) == []
    assert mlflow_runs(project) == []


def test_error_raised_by_a_node_is_one_line(tmp_path: Path) -> None:
    """A DataFormatError from the reader (inside a node, the MLflow run already open) also ends in one line."""
    raw = tmp_path / "bad.txt"
    raw.write_text("hello world\n1\t2\n")
    project = make_project(tmp_path)
    proc = run_kedro(project, "--params", f"dataset=criteo,raw_path={raw}", check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output[-4000:]
    lines = error_lines(proc)
    assert len(lines) == 1 and lines[0].startswith(f"Error: {raw}, line 1: found "), output[-4000:]
    assert "Traceback" not in output
