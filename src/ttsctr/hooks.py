"""Kedro hooks that make a ``kedro run`` safe to kill and to start twice.

* :class:`DatasetLockHooks` first checks the configuration mistakes a run can be told about
  before any node runs (an unknown ``dataset``, a ``raw_path`` that does not exist, a dataset with
  neither a default file nor a ``raw_path``: the messages of the first node), so a typo leaves no
  FAILED half-run in MLflow; then it holds the run's dataset lock (:mod:`ttsctr.data.lock`) from
  before the first node to the end of the run, so publishing a dataset and a run that reads it
  never interleave: a second run on the same dataset waits for the first
  (``locking.wait_seconds`` bounds the wait; 0 stops at once with a clear error). Both happen
  before kedro-mlflow opens the run, so a waiting run shows no RUNNING run in MLflow.
* :class:`ProcessRunHooks` creates the MLflow store before kedro-mlflow touches it (two runs
  started together on a fresh project would race on the schema), tags the run kedro-mlflow
  opened with this process's identity and marks RUNNING runs of processes that are gone
  (``kill -9``) KILLED.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

from kedro.config import MissingConfigException
from kedro.framework.hooks import hook_impl

from ttsctr import tracking
from ttsctr.data.lock import dataset_lock

log = logging.getLogger(__name__)


class DatasetLockHooks:
    def __init__(self) -> None:
        self._context: Any = None
        self._held = contextlib.ExitStack()

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        self._context = context

    @hook_impl(tryfirst=True)
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        # framework side, so it may use the pipeline's check (imported here: settings stay light)
        from ttsctr.pipelines.data_processing.nodes import check_dataset_config

        params = self._context.params if self._context is not None else {}
        datasets = params.get("datasets")
        if not isinstance(datasets, dict) or "dataset" not in params:
            return  # not this project's parameters: nothing to check or lock
        dataset = params["dataset"]
        # Kedro calls before_pipeline_run outside the try that calls on_pipeline_error, and pluggy
        # stops at the first implementation that raises: a mistake found here reaches `kedro run`
        # (one line, see ttsctr.cli) before kedro-mlflow opens a run that it would mark FAILED.
        reads_raw = any("params:raw_path" in node.inputs for node in pipeline.nodes)
        if reads_raw:  # names, file existence, glob matches: nothing generated or hashed here
            check_dataset_config(dataset, params.get("raw_path"), datasets, generate=False)
        elif not isinstance(dataset, str) or dataset not in datasets:
            check_dataset_config(dataset, None, datasets, generate=False)  # the unknown-dataset message
        root = Path(params.get("model_input_root", "data/05_model_input"))
        if not root.is_absolute():
            root = Path(self._context.project_path) / root
        pipelines = run_params.get("pipeline_names") or [run_params.get("pipeline_name") or "__default__"]
        wait = (params.get("locking") or {}).get("wait_seconds")
        self._held.enter_context(dataset_lock(root, dataset, what=f"kedro run --pipelines {'+'.join(pipelines)}",
                                              wait_seconds=None if wait is None else float(wait)))

    @hook_impl(trylast=True)
    def after_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        self._held.close()

    @hook_impl(trylast=True)
    def on_pipeline_error(self, error: Exception, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        self._held.close()


class ProcessRunHooks:
    @hook_impl(tryfirst=True)  # before kedro-mlflow sets up the store and the experiment
    def after_context_created(self, context: Any) -> None:
        loader = context.config_loader
        if "mlflow" not in loader.config_patterns:  # the pattern kedro-mlflow reads mlflow.yml with
            loader.config_patterns.update({"mlflow": ["mlflow*", "mlflow*/**", "**/mlflow*"]})
        try:
            conf = loader["mlflow"] or {}
        except MissingConfigException:
            return
        uri = str((conf.get("server") or {}).get("mlflow_tracking_uri") or "")
        experiment = ((conf.get("tracking") or {}).get("experiment") or {})
        if not uri.startswith("sqlite:///") or not experiment.get("name"):
            return
        db = Path(uri[len("sqlite:///"):])
        if not db.is_absolute():
            uri = f"sqlite:///{Path(context.project_path) / db}"
        kwargs = experiment.get("create_experiment_kwargs") or {}
        tracking.ensure_store(uri, experiment["name"], artifact_location=kwargs.get("artifact_location"),
                              tags=kwargs.get("tags"))

    @hook_impl(trylast=True)  # after kedro-mlflow has opened the run
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        if not tracking.tracking_active():
            return
        tracking.tag_active_run_with_process()
        closed = tracking.close_runs_of_dead_processes()
        if closed:
            log.info("marked %d MLflow run(s) of killed processes KILLED: %s", len(closed), ", ".join(closed))
