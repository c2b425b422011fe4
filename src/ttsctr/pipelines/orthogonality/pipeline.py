from kedro.pipeline import Pipeline

from ttsctr.pipelines import comparison_pipeline
from ttsctr.pipelines.orthogonality import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return comparison_pipeline("orthogonality", nodes.run_orthogonality, nodes.report_orthogonality,
                               ["model_input_summary", "params:orthogonality", "params:param_scaling",
                                "params:baselines", "params:tts.training"])
