"""Project pipelines.

``data_processing`` is fixed. ``training``, ``prediction``, ``merging`` and ``reporting`` are
generated from the ensembles in ``conf/<env>/parameters_tts.yml`` (see ``ttsctr.pipelines.plans``):
one namespaced train → predict sub-pipeline per group, one merge and one register node per
ensemble; ``analysis`` (paper §3.6) reads the same predictions. The default pipeline is
data_processing → training → prediction → merging → reporting, plus analysis.
The baseline comparisons (``param_scaling``, ``width_scaling``, ``model_merging``,
``orthogonality``, ``training_free``, ``efficiency``) run on their own and read the published splits.
"""

from __future__ import annotations

from kedro.pipeline import Pipeline

from ttsctr.pipelines import (
    analysis,
    data_processing,
    efficiency,
    merging,
    model_merging,
    orthogonality,
    param_scaling,
    prediction,
    report,
    reporting,
    training,
    training_free,
    width_scaling,
)
from ttsctr.pipelines.plans import load_plans


def register_pipelines() -> dict[str, Pipeline]:
    plans = load_plans()
    pipelines: dict[str, Pipeline] = {
        "data_processing": data_processing.create_pipeline(),
        "training": training.create_pipeline(plans),
        "prediction": prediction.create_pipeline(plans),
        "merging": merging.create_pipeline(plans),
        "reporting": reporting.create_pipeline(plans),
    }
    pipelines["tts"] = pipelines["training"] + pipelines["prediction"] + pipelines["merging"] + pipelines["reporting"]
    pipelines["analysis"] = analysis.create_pipeline(plans)
    pipelines["report"] = report.create_pipeline()  # reads every dataset's outputs: run it after the others
    pipelines["__default__"] = pipelines["data_processing"] + pipelines["tts"] + pipelines["analysis"]
    # The baseline comparisons (conf/base/parameters_baselines.yml), each run on its own.
    for name, module in (("param_scaling", param_scaling), ("width_scaling", width_scaling),
                         ("model_merging", model_merging), ("orthogonality", orthogonality),
                         ("training_free", training_free), ("efficiency", efficiency)):
        pipelines[name] = module.create_pipeline()
    return pipelines
