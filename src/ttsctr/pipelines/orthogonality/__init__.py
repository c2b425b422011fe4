"""Test-time scaling on top of each parameter-scaled configuration (Table 5)."""

from ttsctr.pipelines.orthogonality.pipeline import create_pipeline

__all__ = ["create_pipeline"]
