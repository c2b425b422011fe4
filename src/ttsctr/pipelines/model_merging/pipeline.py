from kedro.pipeline import Pipeline

from ttsctr.pipelines import comparison_pipeline
from ttsctr.pipelines.model_merging import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return comparison_pipeline("model_merging", nodes.run_model_merging, nodes.report_model_merging,
                               ["model_input_summary", "params:model_merging", "params:baselines", "params:tts.training"])
