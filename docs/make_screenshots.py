"""Screenshots for the README, made from the project's real outputs with headless Chromium.

    .venv/bin/python docs/make_screenshots.py [--chromium /usr/bin/chromium] [--project .] [--ensemble dcnv2_x8]

Needs a finished ``make run`` (``mlflow.db``, ``mlruns/``) and Debian's ``chromium``. Starts
``mlflow ui`` and ``kedro viz`` on free loopback ports, opens

* MLflow's compare view of the default ensembles' per-scale runs (the newest ``kedro run``'s
  nested runs named ``<ensemble>@<K>x``) -> ``docs/img/mlflow_compare.png``;
* kedro-viz with one ensemble (``TTSCTR_ENSEMBLES=dcnv2_x8``) -> ``docs/img/kedro_viz.png``;

and stops both servers. Nothing leaves the machine: both servers listen on 127.0.0.1 only, and
Chromium runs with its background networking off.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
OUT = ROOT / "docs" / "img"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(url: str, proc: subprocess.Popen, timeout: float = 180) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server for {url} exited with {proc.returncode}")
        try:
            opener.open(url, timeout=5).read()
            return
        except OSError:
            time.sleep(1)
    raise SystemExit(f"{url} did not answer within {timeout:.0f} s")


def _shoot(chromium: str, url: str, path: Path, size: str, wait_ms: int) -> None:
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={size}",
                        f"--virtual-time-budget={wait_ms}", f"--screenshot={path}", url],
                       check=True, capture_output=True, timeout=300)
    print(f"wrote {path} from {url}")


def _scale_runs(project: Path) -> tuple[str, list[str]]:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("ttsctr")
    parents = client.search_runs([experiment.experiment_id], "tags.`mlflow.runName` = '__default__'",
                                 order_by=["attributes.start_time DESC"], max_results=1)
    if not parents:
        raise SystemExit("no `kedro run` of the default pipeline in mlflow.db: run `make run` first")
    children = client.search_runs([experiment.experiment_id],
                                  f"tags.`mlflow.parentRunId` = '{parents[0].info.run_id}' and params.scale != ''")
    return experiment.experiment_id, [r.info.run_id for r in children]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--project", type=Path, default=ROOT, help="the Kedro project whose outputs are shown")
    parser.add_argument("--ensemble", default="dcnv2_x8", help="the ensemble kedro-viz shows")
    args = parser.parse_args()
    project = args.project.resolve()
    OUT.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1",
           "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}

    experiment, runs = _scale_runs(project)
    port = _free_port()
    ui = subprocess.Popen([str(BIN / "mlflow"), "ui", "--backend-store-uri", f"sqlite:///{project / 'mlflow.db'}",
                           "--host", "127.0.0.1", "--port", str(port)], cwd=project, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait(f"http://127.0.0.1:{port}/health", ui)
        query = f"runs={json.dumps(runs)}&experiments={json.dumps([experiment])}"
        _shoot(args.chromium, f"http://127.0.0.1:{port}/#/compare-runs?{query}", OUT / "mlflow_compare.png",
               "1600,1400", 20000)
    finally:
        ui.terminate()
        ui.wait()

    port = _free_port()
    viz = subprocess.Popen([str(BIN / "kedro"), "viz", "run", "--no-browser", "--host", "127.0.0.1",
                            "--port", str(port)], cwd=project, env={**env, "TTSCTR_ENSEMBLES": args.ensemble},
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait(f"http://127.0.0.1:{port}/api/main", viz, timeout=300)
        _shoot(args.chromium, f"http://127.0.0.1:{port}/", OUT / "kedro_viz.png", "1600,1000", 20000)
    finally:
        viz.terminate()
        viz.wait()


if __name__ == "__main__":
    main()
