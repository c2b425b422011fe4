"""Parameter scaling tuned by Optuna against test-time scaling at equal FLOPs (Fig. 3, Fig. 4a)."""

from ttsctr.pipelines.param_scaling.pipeline import create_pipeline

__all__ = ["create_pipeline"]
