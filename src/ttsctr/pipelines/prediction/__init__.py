"""Materialise every group's member logits and probabilities on the validation and test splits."""

from ttsctr.pipelines.prediction.pipeline import create_pipeline

__all__ = ["create_pipeline"]
