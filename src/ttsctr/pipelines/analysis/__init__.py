"""``kedro run --pipeline analysis``: separation, sharpness, diversity and member selection (paper §3.6)."""

from ttsctr.pipelines.analysis.pipeline import create_pipeline

__all__ = ["create_pipeline"]
