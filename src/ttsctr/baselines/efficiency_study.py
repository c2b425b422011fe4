"""Training and inference time of parameter scaling K× against test-time scaling K× (paper Fig. 4b–c).

Per model: the parameter-scaled configuration at ``scale``× the preset's FLOPs along the given
dimension (:func:`~ttsctr.baselines.param_scaling.scaled_config`) against ``scale`` members of
the preset. Measured in the same run, on the same machine:

* training seconds per epoch on the training split (the whole ``train`` call of ``epochs``
  epochs, validation scoring included) — the big model; the K members one after another; the K
  members in ``processes`` worker processes at once;
* inference latency per batch of ``batch_size`` test rows (p50/p90/mean over ``repeats``) —
  the big model; the K members one after another in one process; the K members spread over
  ``processes`` persistent worker processes (the round trip through pipes included).

Each row also gives its time and p50 latency as ratios to the parameter-scaled model of the
same run (``train_ratio_vs_param``, ``latency_ratio_vs_param``). Timing does not depend on the weights, so freshly initialised models are timed; thread counts
are in :mod:`ttsctr.baselines.efficiency`. On a CPU with few cores the parallel rows show the
cost of processes, not the parallel serving the paper measures on a GPU; the ratios are what
transfer.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import pandas as pd

from ttsctr.baselines.efficiency import inference_latency, parallel_training_seconds_per_epoch, training_seconds_per_epoch
from ttsctr.baselines.fitting import Splits
from ttsctr.baselines.param_scaling import scaled_config
from ttsctr.baselines.settings import name_list
from ttsctr.errors import ConfigError
from ttsctr.training import MemberSpec, TrainConfig

__all__ = ["efficiency_table"]


def efficiency_table(splits: Splits, models: Sequence[str], dimensions: Mapping[str, str], training: Mapping[str, Any],
                     *, dataset: str, scale: int = 8, preset: str = "small", batch_size: int = 4096,
                     repeats: int = 20, processes: int = 2, epochs: int = 1) -> pd.DataFrame:
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 2:
        raise ConfigError(f"efficiency.scale must be an integer >= 2, got {scale!r}")
    models = name_list(models, "efficiency.models")
    config = TrainConfig.from_dict({**training, "progress": False})
    x_batch = splits.test[0][:batch_size]
    rows = []
    for model in models:
        if not isinstance(dimensions.get(model), str):
            raise ConfigError(f"efficiency.dimensions.{model} must name one scaling dimension (e.g. width), "
                              f"got {dimensions.get(model)!r}")
        big_config = scaled_config(model, dimensions[model], scale, splits.spec, preset=preset,
                                   where=f"efficiency.dimensions.{model}")
        big = [MemberSpec(model, 0, preset, dict(big_config.overrides))]
        small = [MemberSpec(model, seed, preset) for seed in range(scale)]
        built_big = [m.build(splits.spec, config.weight_init) for m in big]
        built_small = [m.build(splits.spec, config.weight_init) for m in small]
        cases = (
            (f"param {scale}x ({dimensions[model]})", big, built_big, "sequential", None),
            (f"tts {scale}x sequential", small, built_small, "sequential", None),
            (f"tts {scale}x parallel ({processes} processes)", small, built_small, "parallel", processes),
        )
        for method, specs, built, mode, procs in cases:
            if mode == "sequential":
                seconds = training_seconds_per_epoch(specs, splits.spec, splits.train, splits.validation, config,
                                                     epochs=epochs)
            else:
                seconds = parallel_training_seconds_per_epoch(specs, splits.spec, splits.train, splits.validation,
                                                              config, processes=procs, epochs=epochs)
            latency = inference_latency(built, x_batch, mode=mode, processes=procs, repeats=repeats)
            rows.append({"dataset": dataset, "model": model, "method": method, "members": len(specs),
                         "flops_multiple": big_config.flops_multiple if method.startswith("param") else float(scale),
                         "seconds_per_epoch": seconds, "latency_p50_ms": latency["p50_ms"],
                         "latency_p90_ms": latency["p90_ms"], "latency_mean_ms": latency["mean_ms"],
                         "batch_size": int(x_batch.shape[0]), "repeats": repeats, "epochs": epochs,
                         "threads_per_process": latency["threads_per_process"]})
    table = pd.DataFrame(rows)
    # ratios against the parameter-scaled model measured in the same run (> 1: TTS is slower)
    reference = table.groupby("model", sort=False)[["seconds_per_epoch", "latency_p50_ms"]].transform("first")
    table["train_ratio_vs_param"] = table["seconds_per_epoch"] / reference["seconds_per_epoch"]
    table["latency_ratio_vs_param"] = table["latency_p50_ms"] / reference["latency_p50_ms"]
    return table
