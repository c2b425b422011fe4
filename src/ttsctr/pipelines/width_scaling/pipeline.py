from kedro.pipeline import Pipeline, node, pipeline

from ttsctr.pipelines.width_scaling import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline([
        node(nodes.run_width_scaling, ["model_input_summary", "params:width_scaling", "params:baselines",
                                       "params:tts.training"],
             "width_scaling__baseline_table", name="run_width_scaling", tags=["width_scaling"]),
        node(nodes.report_width_scaling, ["width_scaling__baseline_table", "model_input_summary", "params:width_scaling"],
             ["width_scaling__baseline_report", "width_scaling__baseline_plot"], name="report_width_scaling",
             tags=["width_scaling"]),
    ])
