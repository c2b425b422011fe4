from kedro.pipeline import Pipeline

from ttsctr.pipelines import comparison_pipeline
from ttsctr.pipelines.training_free import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return comparison_pipeline("training_free", nodes.run_training_free, nodes.report_training_free,
                               ["model_input_summary", "params:training_free", "params:baselines", "params:tts.training"])
