from typing import Sequence

from kedro.pipeline import Pipeline, node, pipeline

from ttsctr.experiment import EnsemblePlan
from ttsctr.pipelines import bind, dataset_name
from ttsctr.pipelines.prediction import nodes


def create_pipeline(plans: Sequence[EnsemblePlan] = (), **kwargs) -> Pipeline:
    out = []
    for plan in plans:
        for group in plan.groups:
            func = bind(nodes.predict_group, group=group, ensemble=plan)
            out.append(
                node(
                    func,
                    inputs=["model_input_summary", dataset_name(plan.name, group.name, "trained_group"), "params:tts.paths"],
                    outputs=dataset_name(plan.name, group.name, "group_predictions"),
                    name="predict_group",
                    namespace=f"{plan.name}.{group.name}",
                    tags=["prediction", plan.name],
                )
            )
    return pipeline(out)
