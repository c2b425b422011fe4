from kedro.pipeline import Pipeline, node, pipeline

from ttsctr.pipelines.data_processing import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                nodes.resolve_raw_source,
                inputs=["params:dataset", "params:raw_path", "params:datasets", "params:model_input_root"],
                outputs="raw_source",
                name="resolve_raw_source",
            ),
            node(
                nodes.validate_raw_data,
                inputs=["raw_source", "params:validation"],
                outputs="raw_validation_report",
                name="validate_raw_data",
            ),
            node(
                nodes.encode_to_staging,
                inputs=["raw_source", "raw_validation_report", "params:model_input_root"],
                outputs="staged_model_input",
                name="encode_to_staging",
            ),
            node(
                nodes.validate_encoded_data,
                inputs=["staged_model_input", "params:validation"],
                outputs="encoded_validation_report",
                name="validate_encoded_data",
            ),
            node(
                nodes.publish_model_input,
                inputs=["staged_model_input", "encoded_validation_report", "params:model_input_root"],
                outputs="model_input_summary",
                name="publish_model_input",
            ),
        ]
    )
