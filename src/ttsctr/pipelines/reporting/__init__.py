"""Register merged ensembles in MLflow and assemble the paper-layout tables and DVC metrics."""

from ttsctr.pipelines.reporting.pipeline import create_pipeline

__all__ = ["create_pipeline"]
