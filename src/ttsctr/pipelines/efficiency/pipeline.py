from kedro.pipeline import Pipeline, node, pipeline

from ttsctr.pipelines.efficiency import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline([
        node(nodes.run_efficiency, ["model_input_summary", "params:efficiency", "params:baselines",
                                    "params:tts.training"],
             "efficiency__baseline_table", name="run_efficiency", tags=["efficiency"]),
        node(nodes.report_efficiency, ["efficiency__baseline_table", "model_input_summary", "params:efficiency"],
             ["efficiency__baseline_report", "efficiency__baseline_plot"], name="report_efficiency",
             tags=["efficiency"]),
    ])
