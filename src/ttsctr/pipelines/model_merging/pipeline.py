from kedro.pipeline import Pipeline, node, pipeline

from ttsctr.pipelines.model_merging import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline([
        node(nodes.run_model_merging, ["model_input_summary", "params:model_merging", "params:baselines",
                                       "params:tts.training"],
             "model_merging__baseline_table", name="run_model_merging", tags=["model_merging"]),
        node(nodes.report_model_merging, ["model_merging__baseline_table", "model_input_summary", "params:model_merging"],
             ["model_merging__baseline_report", "model_merging__baseline_plot"], name="report_model_merging",
             tags=["model_merging"]),
    ])
