from typing import Sequence

from kedro.pipeline import Pipeline, node, pipeline

from ttsctr.experiment import EnsemblePlan
from ttsctr.pipelines import bind, dataset_name
from ttsctr.pipelines.training import nodes


def create_pipeline(plans: Sequence[EnsemblePlan] = (), **kwargs) -> Pipeline:
    out = [
        node(
            nodes.fit_logistic_reference,
            inputs=["model_input_summary", "params:tts.reference", "params:tts.paths"],
            outputs="logistic_reference",
            name="fit_logistic_reference",
            tags=["training", "reference"],
        )
    ]
    for plan in plans:
        for group in plan.groups:
            func = bind(nodes.train_group, group=group, ensemble=plan)
            out.append(
                node(
                    func,
                    inputs=["model_input_summary", "params:tts.training", "params:tts.paths", "params:tts.registry"],
                    outputs=dataset_name(plan.name, group.name, "trained_group"),
                    name="train_group",
                    namespace=f"{plan.name}.{group.name}",
                    tags=["training", plan.name],
                )
            )
    return pipeline(out)
