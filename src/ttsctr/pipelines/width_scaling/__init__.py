"""Width scaling (Multi-Embed, D-MoE) against prediction merging of the same experts (Table 4)."""

from ttsctr.pipelines.width_scaling.pipeline import create_pipeline

__all__ = ["create_pipeline"]
