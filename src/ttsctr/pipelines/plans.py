"""Load the ensemble plans at pipeline-registration time.

Kedro builds pipelines before a run's parameters are resolved, so the fan-out (one namespaced
train → predict sub-pipeline per group) is read from ``conf/base`` and the run environment
(``KEDRO_ENV``, default ``local``) here. ``TTSCTR_ENSEMBLES`` (space- or plus-separated) narrows
the selection for one run without editing configuration; ``--namespaces <ensemble>`` runs one
ensemble's nodes, ``--namespaces <ensemble>.<group>`` one group.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from kedro.config import OmegaConfigLoader
from kedro.framework.project import settings

from ttsctr.experiment import EnsemblePlan, plan_experiment


def load_tts_params(project_path: str | Path | None = None) -> dict[str, Any]:
    root = Path(project_path) if project_path else Path.cwd()
    loader = OmegaConfigLoader(
        conf_source=str(root / settings.CONF_SOURCE),
        base_env="base",
        default_run_env=os.environ.get("KEDRO_ENV", "local"),
        merge_strategy={"parameters": "soft"},
    )
    return dict(loader["parameters"].get("tts", {}))


def load_plans(project_path: str | Path | None = None) -> list[EnsemblePlan]:
    params = load_tts_params(project_path)
    selection = os.environ.get("TTSCTR_ENSEMBLES")
    return plan_experiment(params, selection if selection else None)
