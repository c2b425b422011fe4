from kedro.pipeline import Pipeline, node, pipeline

from ttsctr.pipelines.orthogonality import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline([
        node(nodes.run_orthogonality, ["model_input_summary", "params:orthogonality", "params:param_scaling",
                                       "params:baselines", "params:tts.training"],
             "orthogonality__baseline_table", name="run_orthogonality", tags=["orthogonality"]),
        node(nodes.report_orthogonality, ["orthogonality__baseline_table", "model_input_summary", "params:orthogonality"],
             ["orthogonality__baseline_report", "orthogonality__baseline_plot"], name="report_orthogonality",
             tags=["orthogonality"]),
    ])
