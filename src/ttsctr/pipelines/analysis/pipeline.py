from typing import Sequence

from kedro.pipeline import Pipeline, node, pipeline

from ttsctr.experiment import EnsemblePlan
from ttsctr.pipelines import bind, dataset_name
from ttsctr.pipelines.analysis import nodes


def create_pipeline(plans: Sequence[EnsemblePlan] = (), **kwargs) -> Pipeline:
    """Per planned ensemble: ``analyse_scaling`` (test split); for independently trained ensembles
    also ``choose_members`` (validation split only) → ``score_members`` (test split). Then one
    ``summarise_analysis`` node over all ensembles."""
    out = []
    tables = []
    selectable = [p for p in plans if p.group_size == 1]
    for plan in plans:
        manifests = [dataset_name(plan.name, g.name, "group_predictions") for g in plan.groups]
        stats, pairs = dataset_name(plan.name, "scale_statistics"), dataset_name(plan.name, "pair_statistics")
        out.append(node(bind(nodes.analyse_scaling, ensemble=plan),
                        inputs=["model_input_summary", "params:analysis", *manifests], outputs=[stats, pairs],
                        name="analyse_scaling", namespace=plan.name, tags=["analysis", plan.name]))
        tables += [stats, pairs]
    for plan in selectable:
        manifests = [dataset_name(plan.name, g.name, "group_predictions") for g in plan.groups]
        chosen = dataset_name(plan.name, "member_selection")
        out.append(node(bind(nodes.choose_members_on_validation, ensemble=plan),
                        inputs=["model_input_summary", "params:analysis", *manifests], outputs=chosen,
                        name="choose_members", namespace=plan.name, tags=["analysis", plan.name]))
        scores = dataset_name(plan.name, "selection_scores")
        out.append(node(bind(nodes.score_members_on_test, ensemble=plan),
                        inputs=["model_input_summary", chosen, *manifests], outputs=scores,
                        name="score_members", namespace=plan.name, tags=["analysis", plan.name]))
        tables.append(scores)
    if plans:
        out.append(node(bind(nodes.summarise_analysis, ensembles=tuple(plans),
                             selectable=tuple(p.name for p in selectable)),
                        inputs=["model_input_summary", "params:analysis", *tables],
                        outputs=["analysis_summary", "analysis_scale_statistics", "analysis_pair_statistics",
                                 "analysis_correlations", "analysis_selection", "analysis_report",
                                 "analysis_separation_plot", "analysis_diversity_plot", "analysis_selection_plot"],
                        name="summarise_analysis", tags=["analysis"]))
    return pipeline(out)
