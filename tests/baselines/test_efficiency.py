"""Efficiency measurements (§3.3.2, Fig. 4b-c): training seconds per epoch and inference latency,
members one after another and in worker processes.

Performance is measured, not asserted: the tests check that the numbers are there and sane, that
the parallel path predicts what the sequential one does, and that no worker outlives a call.
Spawning a worker costs seconds (it imports torch and ttsctr), so each parallel test starts at
most two and the file starts six in all.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import signal

import numpy as np
import pytest
import torch

from ttsctr.baselines.efficiency import (
    LATENCY_KEYS,
    EfficiencyWorkerError,
    ParallelPredictor,
    inference_latency,
    merged_prediction,
    parallel_training_seconds_per_epoch,
    training_seconds_per_epoch,
)
from ttsctr.errors import ConfigError
from ttsctr.features import FeatureSpec
from ttsctr.flops import random_ids
from ttsctr.models import build_model
from ttsctr.training import MemberSpec, TrainConfig, build_group, merged_probability, predict_logits

# Two CPU cores are shared by several test runs.
torch.set_num_threads(1)


@pytest.fixture
def spec() -> FeatureSpec:
    return FeatureSpec(field_names=tuple(f"f{i}" for i in range(5)), vocab_sizes=(10,) * 5)


def _ids(spec: FeatureSpec, n: int, seed: int) -> np.ndarray:
    return random_ids(spec, batch_size=n, seed=seed).numpy().astype(np.int32)


def _labels(n: int, seed: int) -> np.ndarray:
    y = np.random.default_rng(seed).integers(0, 2, size=n).astype(np.float32)
    y[:2] = (0.0, 1.0)  # both classes, so the validation AUC is defined
    return y


def _config() -> TrainConfig:
    return TrainConfig(batch_size=64, min_steps_per_epoch=None, progress=False, num_threads=1)


def _models(spec: FeatureSpec) -> list[torch.nn.Module]:
    """Three models of different kinds: two trained-style groups of one and a bare backbone.
    Embeddings are widened so the logits depend visibly on the ids."""
    groups = [build_group(spec, [MemberSpec("fnn", seed=s, preset="small")]) for s in (1, 2)]
    torch.manual_seed(3)
    backbone = build_model("dcnv2", spec, "small")
    models = [*groups, backbone]
    with torch.no_grad():
        for model in models:
            for module in model.modules():
                if hasattr(module, "embedding") and hasattr(module.embedding, "weight"):
                    module.embedding.weight.normal_(0, 0.5)
    return models


def _no_children() -> None:
    assert multiprocessing.active_children() == []


# --------------------------------------------------------------------------- training


def test_training_seconds_per_epoch_sequential_and_parallel(spec: FeatureSpec) -> None:
    train = (_ids(spec, 256, seed=1), _labels(256, seed=1))
    valid = (_ids(spec, 64, seed=2), _labels(64, seed=2))
    members = [MemberSpec("fnn", seed=s, preset="small") for s in (1, 2)]

    sequential = training_seconds_per_epoch(members, spec, train, valid, _config(), epochs=2)
    assert math.isfinite(sequential) and sequential > 0

    parallel = parallel_training_seconds_per_epoch(
        [m.to_dict() for m in members], spec, train, valid, _config(), processes=2, threads_per_process=1
    )
    assert math.isfinite(parallel) and parallel > 0
    _no_children()


def test_training_rejects_bad_arguments(spec: FeatureSpec) -> None:
    data = (_ids(spec, 32, seed=1), _labels(32, seed=1))
    members = [MemberSpec("fnn", seed=1, preset="small")]
    with pytest.raises(ConfigError, match="epochs"):
        training_seconds_per_epoch(members, spec, data, data, _config(), epochs=0)
    with pytest.raises(ConfigError, match="processes"):
        parallel_training_seconds_per_epoch(members, spec, data, data, _config(), processes=0)
    with pytest.raises(ConfigError, match="start_method"):
        parallel_training_seconds_per_epoch(members, spec, data, data, _config(), processes=1, start_method="fork")
    _no_children()


# --------------------------------------------------------------------------- inference


def test_parallel_merged_prediction_equals_sequential(spec: FeatureSpec) -> None:
    models = _models(spec)
    x = _ids(spec, 96, seed=5)
    modes_before = [m.training for m in models]

    sequential = merged_prediction(models, x, mode="sequential")
    assert [m.training for m in models] == modes_before  # eval only while predicting
    # Three models over two workers: chunks of two and one, concatenated in model order.
    parallel = merged_prediction(models, x, mode="parallel", processes=2, threads_per_process=1)

    assert sequential.shape == parallel.shape == (96,)
    assert sequential.std() > 1e-3  # the check below would be empty on constant predictions
    np.testing.assert_allclose(parallel, sequential, rtol=1e-6, atol=1e-7)
    # Sequential is the plain mean of every member's probability (the library's Eq. 10).
    logits = np.concatenate(
        [predict_logits(m, x) for m in models[:2]]
        + [models[2].eval()(torch.from_numpy(x)).detach().numpy()[:, None]],
        axis=1,
    )
    np.testing.assert_allclose(sequential, merged_probability(logits), rtol=1e-6, atol=1e-7)
    _no_children()


@pytest.mark.parametrize("mode, processes", [("sequential", None), ("parallel", 1)])
def test_inference_latency_reports_positive_finite_milliseconds(spec: FeatureSpec, mode: str, processes) -> None:
    models = _models(spec)[:2]
    result = inference_latency(
        models, _ids(spec, 128, seed=6), mode=mode, processes=processes, repeats=5, warmup=1, threads_per_process=1
    )
    assert tuple(result) == LATENCY_KEYS
    assert result["mode"] == mode
    assert (result["num_models"], result["num_members"], result["batch_size"]) == (2, 2, 128)
    assert (result["repeats"], result["warmup"], result["processes"], result["threads_per_process"]) == (5, 1, 1, 1)
    for key in ("p50_ms", "p90_ms", "mean_ms", "min_ms", "max_ms"):
        assert math.isfinite(result[key]) and result[key] > 0, key
    assert result["min_ms"] <= result["p50_ms"] <= result["p90_ms"] <= result["max_ms"]
    assert math.isfinite(result["setup_seconds"]) and result["setup_seconds"] >= 0
    _no_children()


def test_parallel_workers_are_stopped_on_errors(spec: FeatureSpec) -> None:
    models = _models(spec)[:2]
    x = _ids(spec, 16, seed=7)
    with pytest.raises(EfficiencyWorkerError, match="worker 0"):
        with ParallelPredictor(models, processes=1, threads_per_process=1) as predictor:
            assert len(predictor.worker_pids) == 1
            assert predictor(x).shape == (16,)
            os.kill(predictor.worker_pids[0], signal.SIGKILL)  # a worker dies mid-run
            predictor(x)
    _no_children()


def test_bad_mode_and_arguments_are_config_errors(spec: FeatureSpec) -> None:
    models = _models(spec)[:1]
    x = _ids(spec, 8, seed=8)
    with pytest.raises(ConfigError, match="mode"):
        inference_latency(models, x, mode="threaded")
    with pytest.raises(ConfigError, match="mode"):
        merged_prediction(models, x, mode="batched")
    with pytest.raises(ConfigError, match="repeats"):
        inference_latency(models, x, mode="sequential", repeats=0)
    with pytest.raises(ConfigError, match="processes"):
        inference_latency(models, x, mode="sequential", processes=2)
    with pytest.raises(ConfigError, match="models"):
        merged_prediction([], x)
    _no_children()
