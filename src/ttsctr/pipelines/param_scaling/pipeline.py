from kedro.pipeline import Pipeline, node, pipeline

from ttsctr.pipelines import comparison_pipeline
from ttsctr.pipelines.param_scaling import nodes

COMMON = ["params:param_scaling", "params:baselines", "params:tts.training"]


def create_pipeline(**kwargs) -> Pipeline:
    plan = node(nodes.plan_param_scaling, ["model_input_summary", *COMMON], "param_scaling_plan",
                name="plan_param_scaling", tags=["param_scaling"])  # every check, before any training
    return pipeline([plan]) + comparison_pipeline("param_scaling", nodes.run_param_scaling, nodes.report_param_scaling,
                                                  ["model_input_summary", "param_scaling_plan", *COMMON])
