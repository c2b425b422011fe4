"""Who wrote something: a process identity that tells a live writer from a dead one.

A pid alone is reused by the system, so the identity is ``<host>:<pid>:<start>`` where ``start``
is the process's start time in clock ticks since boot (``/proc/<pid>/stat``; empty where there
is no ``/proc``). A process is alive when it runs on this host with that pid *and* that start
time. Used for dataset locks' holder notes and for MLflow runs left RUNNING by killed processes.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from ttsctr.data.io import pid_alive


def _start_ticks(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode(errors="replace")
    except OSError:
        return ""
    # field 22 (starttime) counted after the command name, which may contain spaces: ")" ends it
    return stat.rsplit(")", 1)[-1].split()[19]


@dataclass(frozen=True)
class ProcessIdentity:
    host: str
    pid: int
    start: str

    @classmethod
    def current(cls) -> "ProcessIdentity":
        return cls(socket.gethostname(), os.getpid(), _start_ticks(os.getpid()))

    @classmethod
    def parse(cls, text: str) -> "ProcessIdentity | None":
        """The identity written by ``str()``, or None for anything else."""
        host, sep, rest = str(text).rpartition(":")
        if not sep:
            return None
        start = rest
        host, sep, pid = host.rpartition(":")
        if not sep or not pid.isdigit():
            return None
        return cls(host, int(pid), start)

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}:{self.start}"

    @property
    def on_this_host(self) -> bool:
        return self.host == socket.gethostname()

    def is_dead(self) -> bool:
        """True only when this host can tell the process is gone (another host's process: False)."""
        if not self.on_this_host:
            return False
        if not pid_alive(self.pid):
            return True
        return bool(self.start) and _start_ticks(self.pid) not in ("", self.start)
