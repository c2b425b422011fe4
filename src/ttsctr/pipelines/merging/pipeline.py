from typing import Sequence

from kedro.pipeline import Pipeline, node, pipeline

from ttsctr.errors import ConfigError
from ttsctr.experiment import EnsemblePlan
from ttsctr.pipelines import bind, dataset_name
from ttsctr.pipelines.merging import nodes


def create_pipeline(plans: Sequence[EnsemblePlan] = (), **kwargs) -> Pipeline:
    """One ``merge_ensemble`` node per plan.

    A plan with a ``baseline`` (a grouped ensemble's independently trained counterpart) also
    reads the baseline's group predictions: they are the 1× reference of its tests.
    """
    by_name = {p.name: p for p in plans}
    out = []
    for plan in plans:
        baseline_name = getattr(plan, "baseline", None)  # EnsemblePlan.baseline (grouped ensembles)
        baseline = None
        if baseline_name:
            baseline = by_name.get(baseline_name)
            if baseline is None:
                raise ConfigError(
                    f"ensemble {plan.name!r}: its baseline {baseline_name!r} is not among the planned ensembles "
                    f"{sorted(by_name)}; add it to tts.ensembles"
                )
        func = bind(nodes.merge_ensemble, ensemble=plan, baseline=baseline)
        out.append(
            node(
                func,
                inputs=["model_input_summary", "params:tts.merging", "params:tts.paths", "logistic_reference",
                        *[dataset_name(plan.name, g.name, "group_predictions") for g in plan.groups],
                        *([dataset_name(baseline.name, g.name, "group_predictions") for g in baseline.groups]
                          if baseline else [])],
                outputs=dataset_name(plan.name, "scaling_table"),
                name="merge_ensemble",
                namespace=plan.name,
                tags=["merging", plan.name],
            )
        )
    return pipeline(out)
