"""Merge members at every requested scale and measure AUC/logloss with significance (Tables 1–3)."""

from ttsctr.pipelines.merging.pipeline import create_pipeline

__all__ = ["create_pipeline"]
