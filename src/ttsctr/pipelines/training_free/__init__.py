"""Training-free test-time scaling (MC-dropout, feature masking) against training-based diversity (Figs. 7–8)."""

from ttsctr.pipelines.training_free.pipeline import create_pipeline

__all__ = ["create_pipeline"]
