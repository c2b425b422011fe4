"""Bad data and settings fail before training starts, with messages that say what to fix."""

from __future__ import annotations

import numpy as np
import pytest

from ttsctr.errors import ConfigError, DataFormatError
from ttsctr.models import build_model
from ttsctr.training import MemberSpec, TrainConfig, build_group, evaluate, predict_logits, train

CFG = TrainConfig(max_epochs=1, batch_size=256, progress=False)


@pytest.fixture
def setup(tiny):
    return build_group(tiny.spec, [MemberSpec("fnn", 0, "small")]), tiny


def test_length_mismatch(setup) -> None:
    group, d = setup
    x, y = d.train
    with pytest.raises(DataFormatError, match=rf"train: found {len(x)} rows in x but {len(x) - 1} labels"):
        train(group, (x, y[:-1]), d.valid, CFG)


def test_field_count_mismatch_names_both_numbers(setup) -> None:
    group, d = setup
    x, y = d.train
    with pytest.raises(DataFormatError, match=r"valid: found 5 fields in x; expected 6 fields"):
        train(group, d.train, (d.valid[0][:, :5], d.valid[1]), CFG)
    with pytest.raises(DataFormatError, match="2-D"):
        train(group, (x[:, 0], y), d.valid, CFG)


@pytest.mark.parametrize("bad", [-1, 10_000])
def test_feature_id_out_of_range_names_id_field_and_table_size(setup, bad: int) -> None:
    group, d = setup
    x = d.train[0].copy()
    x[17, 2] = bad
    n = d.spec.num_features
    with pytest.raises(DataFormatError, match=rf"field 'c2': found feature id {bad} in row 17; expected ids in \[0, {n}\)"):
        train(group, (x, d.train[1]), d.valid, CFG)
    with pytest.raises(DataFormatError, match=rf"feature id {bad}"):
        predict_logits(group, x)


def test_non_integer_ids(setup) -> None:
    group, d = setup
    with pytest.raises(DataFormatError, match="dtype float32"):
        train(group, (d.train[0].astype(np.float32), d.train[1]), d.valid, CFG)


@pytest.mark.parametrize("label", [2.0, 0.5, np.nan, -1.0])
def test_labels_must_be_zero_or_one(setup, label: float) -> None:
    group, d = setup
    y = d.train[1].copy()
    y[9] = label
    with pytest.raises(DataFormatError, match=r"train: found label .* in row 9; expected labels 0 or 1"):
        train(group, (d.train[0], y), d.valid, CFG)
    with pytest.raises(DataFormatError, match="row 9"):
        evaluate(group, d.train[0], y)


def test_empty_or_single_class_validation(setup) -> None:
    group, d = setup
    x, y = d.valid
    with pytest.raises(DataFormatError, match="valid: found 0 rows; expected at least one validation row"):
        train(group, d.train, (x[:0], y[:0]), CFG)
    with pytest.raises(DataFormatError, match="train: found 0 rows"):
        train(group, (x[:0], y[:0]), d.valid, CFG)
    ones = y == 1
    with pytest.raises(DataFormatError, match="both classes"):
        train(group, d.train, (x[ones], y[ones]), CFG)
    with pytest.raises(DataFormatError, match="pair"):
        train(group, d.train, x, CFG)


def test_not_a_group_or_not_a_config(setup) -> None:
    group, d = setup
    with pytest.raises(ConfigError, match="group of one"):
        train(build_model("fnn", d.spec, "small"), d.train, d.valid, CFG)
    with pytest.raises(ConfigError, match="TrainConfig"):
        train(group, d.train, d.valid, {"max_epochs": 1})


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(learning_rate=0), "learning_rate"),
        (dict(weight_decay=-1.0), "weight_decay"),
        (dict(batch_size=0), "batch_size"),
        (dict(max_epochs=0), "max_epochs"),
        (dict(patience=0), "patience"),
        (dict(data_seed=-3), "data_seed"),
        (dict(num_threads=0), "num_threads"),
        (dict(precision="fp16"), "precision"),
        (dict(data_order="random"), "data_order"),
        (dict(weight_init="he"), "weight_init"),
        (dict(lr_decay_factor=1.5), "lr_decay_factor"),
        (dict(clip_grad_norm=0.0), "clip_grad_norm"),
        (dict(min_steps_per_epoch=0), "min_steps_per_epoch"),
        (dict(embedding_regularizer=-1e-3), "embedding_regularizer"),
        (dict(protocol="fuxi"), "protocol"),
    ],
)
def test_bad_train_config(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        TrainConfig(**kwargs)


def test_train_config_from_dict() -> None:
    assert TrainConfig.from_dict({"max_epochs": 3, "precision": "bf16"}).max_epochs == 3
    assert TrainConfig.from_dict({"learning_rate": "1e-3"}).learning_rate == 1e-3  # PyYAML reads 1e-3 as a string
    with pytest.raises(ConfigError, match="learning_rate"):
        TrainConfig(learning_rate="fast")
    with pytest.raises(ConfigError, match=r"unknown keys \['lr'\]"):
        TrainConfig.from_dict({"lr": 0.1})
    with pytest.raises(ConfigError, match="protocol must be one of"):
        TrainConfig.from_dict({"protocol": "paper"})


def test_unknown_backbone_or_preset(tiny) -> None:
    with pytest.raises(ConfigError, match="unknown model"):
        build_group(tiny.spec, [MemberSpec("nope", 0)])
    with pytest.raises(ConfigError, match="preset"):
        build_group(tiny.spec, [MemberSpec("fnn", 0, "huge")])
