"""Helpers for tests that need real click logs or a throwaway Kedro project (import: from projecthelpers import ...)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


def shared_file(*parts: str) -> Path:
    """A file under ../shared/data, or skip the test with the reason."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real click-log sample not found at {path} (expected ../shared/data beside the checkout)")
    return path


def make_project(tmp_path: Path, parameters: dict[str, Any] | None = None) -> Path:
    """A copy of this Kedro project's configuration in ``tmp_path`` with ``parameters`` in conf/local.

    Outputs (data/, mlflow.db, mlruns/) land in the copy, never in the checkout.
    """
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy2(REPO_ROOT / "pyproject.toml", project / "pyproject.toml")
    shutil.copytree(REPO_ROOT / "conf" / "base", project / "conf" / "base")
    (project / "conf" / "local").mkdir(parents=True)
    (project / "src").mkdir()
    if parameters:
        (project / "conf" / "local" / "parameters_test.yml").write_text(yaml.safe_dump(parameters))
    return project


def tiny_tts_parameters(ensemble: str, *, max_epochs: int, preset: str | None = None) -> dict[str, Any]:
    """Parameters of a throwaway project: 20k synthetic rows, one DCNv2 ensemble of 2 seeds
    registered at 1× and 2× (members not registered one by one), trained for ``max_epochs``."""
    defaults: dict[str, Any] = {"draws": 1, **({"preset": preset} if preset else {})}
    return {
        "datasets": {"synthetic": {"generate": {"n_rows": 20000}}},
        "tts": {
            "ensembles": [ensemble],
            "defaults": defaults,
            "training": {"max_epochs": max_epochs, "num_threads": 1, "batch_size": 1024, "learning_rate": 0.003},
            "ensemble_catalog": {ensemble: {"members": [{"backbone": "dcnv2", "seeds": 2}], "scales": [1, 2]}},
            "registry": {"register_members": False},
        },
    }


def kedro_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(KEDRO_DISABLE_TELEMETRY="true", DVC_NO_ANALYTICS="1", PYTHONHASHSEED="0", MLFLOW_DISABLE_TELEMETRY="true",
               MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def run_kedro(project: Path, *args: str, check: bool = True, timeout: int = 900, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``kedro run ARGS`` in ``project`` as a user would, output captured."""
    cmd = [str(Path(sys.executable).parent / "kedro"), "run", *args]
    proc = subprocess.run(cmd, cwd=project, env={**kedro_env(), **(env or {})}, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"kedro run {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}")
    return proc


def raw_test_rows(project: Path, dataset: str = "synthetic") -> Any:
    """The raw rows of ``project``'s encoded test split, in its order (same seeded split assignment)."""
    import json

    from ttsctr.serving import raw_split_rows

    model_input = project / "data" / "05_model_input"
    summary = json.loads((model_input / f"{dataset}.summary.json").read_text())
    return raw_split_rows(summary, model_input / dataset, "test", base=project).to_pandas()


def write_group_predictions(root: Path, plan: Any, rng: Any, truths: dict[str, Any], data_version: str,
                            noise: float = 1.2) -> list[dict[str, Any]]:
    """One manifest per group of ``plan``, as the prediction pipeline writes them, with member
    logits = truth + Gaussian noise on each split of ``truths`` (split -> (truth logits, labels))."""
    import numpy as np
    import pyarrow.parquet as pq

    from ttsctr.pipelines.prediction.nodes import member_column, predictions_table

    manifests = []
    for group in plan.groups:
        names = [member_column(i, {"backbone": m.backbone, "seed": m.seed}) for i, m in zip(group.member_indices, group.members)]
        files = {}
        for split, (truth, y) in truths.items():
            logits = (truth[:, None] + noise * rng.normal(size=(truth.size, len(names)))).astype(np.float32)
            path = root / plan.name / group.name / f"{split}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(predictions_table(logits, y, names), path)
            files[split] = str(path)
        manifests.append({"ensemble": plan.name, "group": group.name, "config_hash": "x", "members": names,
                          "member_indices": list(group.member_indices), "files": files, "data_version": data_version})
    return manifests


TINY_SEQUENCE = {"user_len": 6, "candidate_len": 3, "content_dim": 8}
TINY_SEQUENCE_LOG = {"n_users": 30, "n_items": 40, "events_per_user": 10}


def publish_tiny_sequences(folder: Path) -> tuple[Any, str]:
    """A generated behaviour-sequence log (:data:`TINY_SEQUENCE_LOG`, :data:`TINY_SEQUENCE`)
    written to ``folder`` as the data_processing pipeline publishes it (marker with its data
    version). Returns ``(sequence data, data version)``."""
    import json

    from ttsctr.data.sequence_store import build_sequence_data, write_sequence_model_input
    from ttsctr.data.version import MARKER_FILE, compute_data_version

    data = build_sequence_data("synthetic_seq", [], TINY_SEQUENCE, TINY_SEQUENCE_LOG)
    write_sequence_model_input(data, folder, dataset="synthetic_seq", fmt="synthetic_seq")
    version = compute_data_version(folder)
    (folder / MARKER_FILE).write_text(json.dumps({"fingerprint": "test", "data_version": version}))
    return data, version
