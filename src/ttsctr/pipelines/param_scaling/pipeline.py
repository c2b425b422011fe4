from kedro.pipeline import Pipeline, node, pipeline

from ttsctr.pipelines.param_scaling import nodes

COMMON = ["params:param_scaling", "params:baselines", "params:tts.training"]


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline([
        node(nodes.plan_param_scaling, ["model_input_summary", *COMMON], "param_scaling_plan",
             name="plan_param_scaling", tags=["param_scaling"]),
        node(nodes.run_param_scaling, ["model_input_summary", "param_scaling_plan", *COMMON],
             "param_scaling__baseline_table", name="run_param_scaling", tags=["param_scaling"]),
        node(nodes.report_param_scaling, ["param_scaling__baseline_table", "model_input_summary", "params:param_scaling"],
             ["param_scaling__baseline_report", "param_scaling__baseline_plot"], name="report_param_scaling",
             tags=["param_scaling"]),
    ])
