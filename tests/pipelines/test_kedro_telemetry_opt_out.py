"""The project opts out of Kedro telemetry with the committed `.telemetry` (`consent: false`).

Outside `make` (which also sets KEDRO_DISABLE_TELEMETRY) every `kedro` command loads the
kedro-telemetry plugin; with the file it neither prints its notice nor sends anything. The
commands run with the network blocked and every attempt recorded (a ``sitecustomize`` on
PYTHONPATH), so the control case without the file proves the check would see a send.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from projecthelpers import REPO_ROOT, kedro_env, make_project

NETBLOCK = '''
import os, socket
def _record(what):
    with open(os.environ["NETBLOCK_LOG"], "a") as fh:
        fh.write(what + "\\n")
def getaddrinfo(host, *args, **kwargs):
    _record(f"getaddrinfo {host}")
    raise socket.gaierror(socket.EAI_NONAME, "network blocked by the test")
_connect = socket.socket.connect
def connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _record(f"connect {address}")
        raise OSError("network blocked by the test")
    return _connect(self, address)
socket.getaddrinfo = getaddrinfo
socket.socket.connect = connect
'''


def kedro_without_opt_out_env(project: Path, tmp_path: Path, *args: str) -> tuple[str, list[str]]:
    """``kedro ARGS`` in ``project`` without KEDRO_DISABLE_TELEMETRY/DO_NOT_TRACK: (output, network attempts)."""
    blocker = tmp_path / "netblock"
    blocker.mkdir(exist_ok=True)
    (blocker / "sitecustomize.py").write_text(NETBLOCK)
    log = tmp_path / f"network-{len(list(tmp_path.glob('network-*')))}.log"
    log.touch()
    env = {k: v for k, v in kedro_env().items() if k not in ("KEDRO_DISABLE_TELEMETRY", "DO_NOT_TRACK")}
    env.update(PYTHONPATH=str(blocker), NETBLOCK_LOG=str(log))
    proc = subprocess.run([str(Path(sys.executable).parent / "kedro"), *args], cwd=project, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return proc.stdout + proc.stderr, log.read_text().splitlines()


def test_telemetry_file_is_committed_with_consent_false(monkeypatch: pytest.MonkeyPatch) -> None:
    from kedro_telemetry.plugin import _check_for_telemetry_consent

    assert yaml.safe_load((REPO_ROOT / ".telemetry").read_text()) == {"consent": False}
    tracked = subprocess.run(["git", "ls-files", "--error-unmatch", ".telemetry"], cwd=REPO_ROOT, capture_output=True)
    ignored = subprocess.run(["git", "check-ignore", "-q", ".telemetry"], cwd=REPO_ROOT)
    assert tracked.returncode == 0 or ignored.returncode == 1  # committed, or at least committable
    for var in ("KEDRO_DISABLE_TELEMETRY", "DO_NOT_TRACK", "GITHUB_REPOSITORY_OWNER"):
        monkeypatch.delenv(var, raising=False)
    assert _check_for_telemetry_consent(REPO_ROOT) is False


def test_kedro_in_the_checkout_sends_nothing(tmp_path: Path) -> None:
    output, network = kedro_without_opt_out_env(REPO_ROOT, tmp_path, "info")
    assert "anonymous" not in output.lower()
    assert network == []


@pytest.mark.parametrize("opted_out", [True, False], ids=["with-telemetry-file", "control-without-it"])
def test_kedro_command_prints_no_telemetry_notice_and_sends_nothing(tmp_path: Path, opted_out: bool) -> None:
    project = make_project(tmp_path)
    if opted_out:
        shutil.copy2(REPO_ROOT / ".telemetry", project / ".telemetry")
    output, network = kedro_without_opt_out_env(project, tmp_path, "catalog", "describe-datasets")
    if opted_out:
        assert "anonymous" not in output.lower()
        assert network == []
    else:  # the plugin is active without the file: the checks above would catch it
        assert "anonymous" in output.lower()
        assert any("heapanalytics" in attempt for attempt in network)
