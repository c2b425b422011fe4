"""Raw click log → validated, encoded 8:1:1 splits in data/05_model_input/<dataset>/."""

from ttsctr.pipelines.data_processing.pipeline import create_pipeline

__all__ = ["create_pipeline"]
