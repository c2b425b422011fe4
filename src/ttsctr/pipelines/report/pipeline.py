from kedro.pipeline import Pipeline, node, pipeline

from ttsctr.pipelines.report import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline([
        node(nodes.build_html_report, inputs=["params:report", "params:tts"], outputs=["report_html", "report_claims"],
             name="build_report", tags=["report"]),
    ])
