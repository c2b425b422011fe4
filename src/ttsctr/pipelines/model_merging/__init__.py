"""Weight-averaging model merging (plain, aligned, shared initialisation) against prediction merging (Table 6)."""

from ttsctr.pipelines.model_merging.pipeline import create_pipeline

__all__ = ["create_pipeline"]
