"""A bad ensemble configuration stops `kedro run` before anything is trained, with a clear message."""

from __future__ import annotations

from pathlib import Path

import pytest

from projecthelpers import make_project, run_kedro


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
