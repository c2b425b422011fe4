"""`kedro viz` works from the dev set-up: its static build lists every pipeline, analysis and report included."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from projecthelpers import kedro_env, make_project


def test_kedro_viz_build_lists_the_analysis_and_report_pipelines(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    proc = subprocess.run([str(Path(sys.executable).parent / "kedro"), "viz", "build"], cwd=project, env=kedro_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    pipelines = project / "build" / "api" / "pipelines"
    assert {"__default__", "analysis", "report", "tts", "param_scaling"} <= {p.name for p in pipelines.iterdir()}
    analysis = json.loads((pipelines / "analysis").read_text())
    names = {n["name"] for n in analysis["nodes"] if n["type"] == "task"}
    assert {"summarise_analysis"} <= names and any("choose_members" in n for n in names)
