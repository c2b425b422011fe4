"""The ``ttsctr-serve`` command line: options and defaults like ``mlflow models serve``, plus the guard's limits.

Starting it for real is ``tests/pipelines/test_serving_http.py``.
"""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

import pytest

from ttsctr.http_guard import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_DEPTH
from ttsctr.serve import build_parser


def test_defaults_match_mlflow_models_serve_and_the_documented_limits() -> None:
    args = build_parser().parse_args(["-m", "models:/ttsctr-synthetic-dcnv2_x8/3"])
    assert (args.model_uri, args.host, args.port, args.workers) == ("models:/ttsctr-synthetic-dcnv2_x8/3", "127.0.0.1", 5000, 1)
    assert (args.max_body_bytes, args.max_depth) == (DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_DEPTH) == (16 * 2**20, 32)
    args = build_parser().parse_args(["-m", "m", "-h", "0.0.0.0", "-p", "8080", "-w", "2", "-t", "5",
                                      "--max-body-bytes", "1000", "--max-depth", "8", "--env-manager", "local"])
    assert (args.host, args.port, args.workers, args.timeout, args.max_body_bytes, args.max_depth) == ("0.0.0.0", 8080, 2, 5, 1000, 8)


@pytest.mark.parametrize("argv", [[], ["-m", "m", "--max-depth", "0"], ["-m", "m", "--max-body-bytes", "x"],
                                  ["-m", "m", "--env-manager", "conda"]])
def test_bad_arguments_exit_with_usage(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(argv)
    assert exc.value.code == 2


def test_console_script_and_module_entry_point() -> None:
    scripts = {ep.name: ep.value for ep in entry_points(group="console_scripts")}
    assert scripts.get("ttsctr-serve") == "ttsctr.serve:main"
    out = subprocess.run([sys.executable, "-m", "ttsctr.serve", "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    for option in ("--model-uri", "--host", "--port", "--workers", "--timeout", "--max-body-bytes", "--max-depth"):
        assert option in out.stdout
    assert "16777216" in out.stdout and "default: 32" in out.stdout
