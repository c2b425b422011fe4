from typing import Sequence

from kedro.pipeline import Pipeline, node, pipeline

from ttsctr.experiment import EnsemblePlan
from ttsctr.pipelines import bind, dataset_name
from ttsctr.pipelines.reporting import nodes


def create_pipeline(plans: Sequence[EnsemblePlan] = (), **kwargs) -> Pipeline:
    out = []
    for plan in plans:
        func = bind(nodes.register_ensemble, ensemble=plan)
        out.append(
            node(
                func,
                inputs=["model_input_summary", "params:tts.paths", "params:tts.registry",
                        dataset_name(plan.name, "scaling_table"),
                        *[dataset_name(plan.name, g.name, "trained_group") for g in plan.groups]],
                outputs=dataset_name(plan.name, "ensemble_report"),
                name="register_ensemble",
                namespace=plan.name,
                tags=["reporting", plan.name],
            )
        )
    if plans:
        func = bind(nodes.summarise_experiment, ensembles=tuple(plans))
        out.append(
            node(
                func,
                inputs=["model_input_summary", "params:tts.paths", "params:tts.merging", "logistic_reference",
                        *[dataset_name(p.name, "scaling_table") for p in plans],
                        *[dataset_name(p.name, "ensemble_report") for p in plans]],
                outputs="tts_metrics",
                name="summarise_experiment",
                tags=["reporting"],
            )
        )
    return pipeline(out)
