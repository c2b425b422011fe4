"""Training and inference time of parameter scaling against test-time scaling (Fig. 4b–c)."""

from ttsctr.pipelines.efficiency.pipeline import create_pipeline

__all__ = ["create_pipeline"]
