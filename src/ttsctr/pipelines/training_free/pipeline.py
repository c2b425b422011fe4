from kedro.pipeline import Pipeline, node, pipeline

from ttsctr.pipelines.training_free import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline([
        node(nodes.run_training_free, ["model_input_summary", "params:training_free", "params:baselines",
                                       "params:tts.training"],
             "training_free__baseline_table", name="run_training_free", tags=["training_free"]),
        node(nodes.report_training_free, ["training_free__baseline_table", "model_input_summary", "params:training_free"],
             ["training_free__baseline_report", "training_free__baseline_plot"], name="report_training_free",
             tags=["training_free"]),
    ])
