"""MLflow helpers shared by the pipelines: nested runs per trained group, registry names, tags.

Tracking is optional in library use: every function here does nothing when no MLflow run is
active (kedro-mlflow opens one per ``kedro run``).

Every run ttsctr opens or runs in carries :data:`PROCESS_TAG` (host, pid, start time of the
process); :func:`close_runs_of_dead_processes` marks the RUNNING runs whose process is gone
(``kill -9``, a power cut) KILLED at the next run's start. Registration is idempotent:
:func:`register_version` creates a version with its identity tags in one call and keeps the
oldest version of the same identity when two processes race.
"""

from __future__ import annotations

import re

import math
from contextlib import contextmanager
from pathlib import Path
from importlib.metadata import version
from typing import Any, Iterator, Mapping

import mlflow
from mlflow.entities import RunStatus

from ttsctr.processes import ProcessIdentity

PROCESS_TAG = "ttsctr.process"


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
    with mlflow.start_run(run_name=run_name, nested=True,
                          tags={**dict(tags or {}), PROCESS_TAG: str(ProcessIdentity.current())}) as run:
        yield run


def ensure_store(tracking_uri: str, experiment: str, **create_kwargs: Any) -> None:
    """Create a SQLite tracking store's schema and ``experiment`` once, whoever comes first.

    Two ``kedro run``s started together on a fresh project would both create the tables (and the
    experiment) and one would fail on the other's half-made schema; an ``flock`` on
    ``<db>.lock`` makes the second wait until the first is done. Other stores are left alone.
    """
    prefix = "sqlite:///"
    if not tracking_uri.startswith(prefix):
        return
    from ttsctr.data.lock import exclusive_file_lock

    with exclusive_file_lock(f"{tracking_uri[len(prefix):]}.lock"):
        client = mlflow.MlflowClient(tracking_uri=tracking_uri)
        if client.get_experiment_by_name(experiment) is None:  # the first query creates the schema
            client.create_experiment(experiment, **{k: v for k, v in create_kwargs.items() if v is not None})


def tag_active_run_with_process() -> None:
    """Mark the active run as this process's (for :func:`close_runs_of_dead_processes`)."""
    if tracking_active():
        mlflow.set_tag(PROCESS_TAG, str(ProcessIdentity.current()))


def close_runs_of_dead_processes(client: Any | None = None) -> list[str]:
    """Mark KILLED every RUNNING run whose process (:data:`PROCESS_TAG`) is gone; return their ids.

    Only runs of processes on this host can be judged; runs without the tag (other tools, older
    ttsctr versions) are left as they are.
    """
    client = client or mlflow.MlflowClient()
    experiment_ids = [e.experiment_id for e in client.search_experiments()]
    if not experiment_ids:
        return []
    closed = []
    page_token = None
    while True:
        runs = client.search_runs(experiment_ids, filter_string="attributes.status = 'RUNNING'",
                                  max_results=1000, page_token=page_token)
        for run in runs:
            owner = ProcessIdentity.parse(run.data.tags.get(PROCESS_TAG, ""))
            if owner is not None and owner.is_dead():
                client.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.KILLED))
                closed.append(run.info.run_id)
        page_token = runs.token
        if not page_token:
            return closed


def log_split_inputs(model_input_dir: str | Path, dataset: str, data_version: str, splits: Mapping[str, str]) -> None:
    """Record encoded splits as the active run's inputs (``mlflow.log_input``), ``{split: context}``.

    A metadata dataset (path, name ``<dataset>-<split>``, digest = data version): the splits are
    not read again to be logged, and runs of the same data share one dataset entry per split.
    """
    if not tracking_active():
        return
    from mlflow.data.dataset_source_registry import get_registered_sources
    from mlflow.data.meta_dataset import MetaDataset

    # MLflow registers its local-file source class twice; resolving a path by name would warn
    local = next(c for c in get_registered_sources() if c.__name__ == "LocalArtifactDatasetSource")
    for split, context in splits.items():
        source = local(str(Path(model_input_dir).absolute() / f"{split}.parquet"))
        mlflow.log_input(MetaDataset(source, name=f"{dataset}-{split}", digest=data_version), context=context)


def finite_metrics(values: Mapping[str, Any]) -> dict[str, float]:
    """``values`` as MLflow metrics: numbers and bools as floats, NaN/inf and None left out."""
    out = {}
    for key, value in values.items():
        if isinstance(value, (bool, int, float)) and value is not None and math.isfinite(float(value)):
            out[mlflow_key(key)] = float(value)
    return out


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
        mlflow.log_params({mlflow_key(k): v for k, v in flat.items()})


def mlflow_key(key: str) -> str:
    """``key`` with the characters MLflow refuses in param and metric names (``*``, ``+``, ...) as ``_``."""
    return re.sub(r"[^A-Za-z0-9_\-. :/]", "_", key)


def _matching_versions(client: Any, name: str, tags: Mapping[str, str]) -> list[Any]:
    try:
        versions = client.search_model_versions(f"name = '{name}'")
    except mlflow.exceptions.MlflowException:
        return []
    found = [mv for mv in versions if all(mv.tags.get(k) == str(v) for k, v in tags.items())]
    return sorted(found, key=lambda mv: int(mv.version))


def find_model_version(name: str, tags: Mapping[str, str]) -> Any | None:
    """The oldest registered version of ``name`` whose tags include ``tags`` (idempotent registration)."""
    found = _matching_versions(mlflow.MlflowClient(), name, tags)
    return found[0] if found else None


def register_version(model_uri: str, name: str, tags: Mapping[str, str]) -> str:
    """Register ``model_uri`` as a version of ``name`` with its identity ``tags``; return the version.

    The version is created with its tags in one call, so every racing process sees the others'
    versions complete. Check after create: of all versions with these tags, the oldest is the
    one; a younger one this process created is deleted again. Two runs registering the same
    (ensemble, scale, members, data version) at once therefore end with one version, and both
    report it.
    """
    client = mlflow.MlflowClient()
    try:
        client.create_registered_model(name)
    except mlflow.exceptions.MlflowException as exc:
        if exc.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
            raise
    run = mlflow.active_run()
    model_id = model_uri.removeprefix("models:/") if model_uri.startswith("models:/m-") else None
    # the client call, not mlflow.register_model: same version, without two lines printed per version
    created = client.create_model_version(name, model_uri, run_id=run.info.run_id if run else None,
                                          tags={k: str(v) for k, v in tags.items()}, model_id=model_id)
    oldest = _matching_versions(client, name, tags)[0]
    if oldest.version != created.version:
        client.delete_model_version(name, created.version)
    return str(oldest.version)
