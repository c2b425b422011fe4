from typing import Sequence

from kedro.pipeline import Pipeline, node, pipeline

from ttsctr.experiment import EnsemblePlan
from ttsctr.pipelines import bind
from ttsctr.pipelines.merging import nodes


def create_pipeline(plans: Sequence[EnsemblePlan] = (), **kwargs) -> Pipeline:
    out = []
    for plan in plans:
        func = bind(nodes.merge_ensemble, ensemble=plan)
        out.append(
            node(
                func,
                inputs=["model_input_summary", "params:tts.merging", "params:tts.paths",
                        *[f"{plan.name}.{g.name}.group_predictions" for g in plan.groups]],
                outputs=f"{plan.name}.scaling_table",
                name=f"{plan.name}.merge_ensemble",
                namespace=plan.name,
                tags=["merging", plan.name],
            )
        )
    return pipeline(out)
