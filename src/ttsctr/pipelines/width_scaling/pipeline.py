from kedro.pipeline import Pipeline

from ttsctr.pipelines import comparison_pipeline
from ttsctr.pipelines.width_scaling import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return comparison_pipeline("width_scaling", nodes.run_width_scaling, nodes.report_width_scaling,
                               ["model_input_summary", "params:width_scaling", "params:baselines", "params:tts.training"])
