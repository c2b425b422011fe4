from kedro.pipeline import Pipeline

from ttsctr.pipelines import comparison_pipeline
from ttsctr.pipelines.efficiency import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return comparison_pipeline("efficiency", nodes.run_efficiency, nodes.report_efficiency,
                               ["model_input_summary", "params:efficiency", "params:baselines", "params:tts.training"])
