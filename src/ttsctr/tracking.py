"""MLflow helpers shared by the pipelines: nested runs per trained group, registry names, tags.

Tracking is optional in library use: every function here does nothing when no MLflow run is
active (kedro-mlflow opens one per ``kedro run``).
"""

from __future__ import annotations

from contextlib import contextmanager
from importlib.metadata import version
from typing import Any, Iterator, Mapping

import mlflow


def pip_requirements() -> list[str]:
    """Exact versions of what the pyfunc models import (avoids MLflow's slow requirement inference)."""
    pkgs = ["torch", "numpy", "pandas", "pyarrow", "mlflow"]
    return [f"{p}=={version(p).split('+')[0]}" for p in pkgs] + ["ttsctr"]


def member_model_name(dataset: str, backbone: str) -> str:
    return f"ttsctr-{dataset}-{backbone}"


def ensemble_model_name(dataset: str, ensemble: str) -> str:
    return f"ttsctr-{dataset}-{ensemble}"


def tracking_active() -> bool:
    return mlflow.active_run() is not None


@contextmanager
def nested_run(run_name: str, tags: Mapping[str, str] | None = None) -> Iterator[Any]:
    """A child run of the active run, or nothing when tracking is off."""
    if not tracking_active():
        yield None
        return
    with mlflow.start_run(run_name=run_name, nested=True, tags=dict(tags or {})) as run:
        yield run


def log_flat_params(params: Mapping[str, Any], prefix: str = "") -> None:
    flat: dict[str, str] = {}

    def walk(obj: Any, key: str) -> None:
        if isinstance(obj, Mapping):
            for k, v in obj.items():
                walk(v, f"{key}.{k}" if key else str(k))
        else:
            flat[key] = str(obj)[:6000]

    walk(params, prefix)
    if flat:
        mlflow.log_params(flat)


def find_model_version(name: str, tags: Mapping[str, str]) -> Any | None:
    """The registered version of ``name`` whose tags include ``tags`` (idempotent registration)."""
    client = mlflow.MlflowClient()
    try:
        versions = client.search_model_versions(f"name = '{name}'")
    except mlflow.exceptions.MlflowException:
        return None
    for mv in versions:
        if all(mv.tags.get(k) == str(v) for k, v in tags.items()):
            return mv
    return None
