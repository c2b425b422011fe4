"""Train every group of every selected ensemble (one namespaced node per group)."""

from ttsctr.pipelines.training.pipeline import create_pipeline

__all__ = ["create_pipeline"]
