"""A merged ensemble as an MLflow pyfunc model that takes raw feature rows.

The model carries the dataset's feature map and vocabulary, so it encodes raw rows exactly as
training did (unseen categorical values and rare values map to their field's OOV id), runs every
member, merges within each training group by the mean of probabilities (Eq. 11) and across
groups weighted by group size (Eq. 13), and returns one probability per row.

Serve it with ``mlflow models serve -m models:/ttsctr-<dataset>-<ensemble>/<version> --env-manager local``.
Bad requests (missing or extra columns, wrong types) become HTTP 400 with a message naming the
columns, never a crash of the server.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd
import torch

import mlflow.pyfunc
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

from ttsctr.errors import TTSCTRError

MODEL_INPUT_FILES = ("feature_map.json", "vocabulary.parquet")


class MergedEnsembleModel(mlflow.pyfunc.PythonModel):
    """pyfunc wrapper: raw DataFrame -> DataFrame with column ``probability``."""

    def load_context(self, context: Any) -> None:
        from ttsctr.data.preprocess import FeatureEncoder
        from ttsctr.training import load_group

        self.encoder = FeatureEncoder.load(context.artifacts["model_input"])
        names = sorted(k for k in context.artifacts if k.startswith("group_"))
        self.groups = [load_group(context.artifacts[name])[0].eval() for name in names]
        sizes = np.array([len(g.members) for g in self.groups], dtype=np.float64)
        self.group_weights = sizes / sizes.sum()

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        if not isinstance(model_input, pd.DataFrame):
            model_input = pd.DataFrame(model_input)
        try:
            x = self.encoder.encode_raw_frame(model_input)
        except TTSCTRError as exc:
            raise MlflowException(str(exc), error_code=INVALID_PARAMETER_VALUE) from exc
        return pd.DataFrame({"probability": predict_merged(self.groups, self.group_weights, x)})


@torch.no_grad()
def predict_merged(groups: Sequence[torch.nn.Module], weights: np.ndarray, x: np.ndarray, batch_size: int = 65536) -> np.ndarray:
    """Eq. 13 over groups of Eq. 11 merged probabilities."""
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.int32))
    out = np.zeros(len(x), dtype=np.float64)
    for group, weight in zip(groups, weights):
        parts = [group.merged_probability(xt[i : i + batch_size]).double().numpy() for i in range(0, len(xt), batch_size)]
        out += weight * (np.concatenate(parts) if parts else np.zeros(0))
    return out


def build_artifacts(model_input_dir: str | Path, group_checkpoints: Sequence[str | Path], workdir: str | Path) -> dict[str, str]:
    """Collect what the pyfunc model needs into ``workdir`` and return MLflow's artifacts mapping."""
    workdir = Path(workdir)
    model_input = workdir / "model_input"
    model_input.mkdir(parents=True, exist_ok=True)
    for name in MODEL_INPUT_FILES:
        shutil.copy2(Path(model_input_dir) / name, model_input / name)
    artifacts = {"model_input": str(model_input)}
    for i, ckpt in enumerate(group_checkpoints):
        artifacts[f"group_{i:03d}"] = str(ckpt)
    return artifacts


def log_ensemble_model(
    *,
    name: str,
    model_input_dir: str | Path,
    group_checkpoints: Sequence[str | Path],
    registered_model_name: str | None,
    tags: dict[str, str] | None = None,
) -> Any:
    """Log (and optionally register) a merged ensemble in the active MLflow run; returns ModelInfo."""
    from ttsctr.tracking import pip_requirements

    with tempfile.TemporaryDirectory() as tmp, _quiet_mlflow_logging():
        info = mlflow.pyfunc.log_model(
            name=name,
            python_model=MergedEnsembleModel(),
            artifacts=build_artifacts(model_input_dir, group_checkpoints, tmp),
            registered_model_name=registered_model_name,
            pip_requirements=pip_requirements(),
            tags=tags,
        )
    if registered_model_name and tags and info.registered_model_version is not None:
        client = mlflow.MlflowClient()
        for key, value in tags.items():
            client.set_model_version_tag(registered_model_name, str(info.registered_model_version), key, value)
    return info


@contextmanager
def _quiet_mlflow_logging() -> Iterator[None]:
    """Silence two warnings MLflow repeats for every logged model: the python_model object is
    cloudpickled (intended: the class lives in the installed ttsctr package) and no signature
    is inferred (intended: ``predict`` validates columns itself so extra columns are rejected,
    which MLflow's schema enforcement would silently drop)."""
    names = ("mlflow.pyfunc", "mlflow.models.model", "mlflow.models.signature")
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
