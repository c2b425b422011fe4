"""train(): equality with a reference loop, determinism, resume, early stopping, persistence."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ttsctr.errors import ConfigError, DataFormatError
from ttsctr.models import build_model
from ttsctr.training import (
    TRAIN_STATE_FILE,
    GroupModel,
    MemberSpec,
    TrainConfig,
    build_group,
    epoch_permutation,
    evaluate,
    load_group,
    predict_logits,
    save_group,
    train,
)

# The loop mechanics (determinism, resume, early stopping, persistence) on the plain recipe: fixed
# batch, constant learning rate, no clipping, shared data order, torch's own initialisation.
# tests/training/test_training_recipe.py covers the reference recipe's parts.
PLAIN = dict(min_steps_per_epoch=None, lr_decay_factor=None, clip_grad_norm=None, data_order="shared",
             weight_init="torch_default", embedding_regularizer=0.0)
FAST = dict(batch_size=256, learning_rate=1e-2, progress=False, **PLAIN)
TIMING = {"seconds", "rows_per_s"}


def _state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _assert_same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs"


def _untimed(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in h.items() if k not in TIMING} for h in history]


def _fnn_group(spec, *seeds: int) -> GroupModel:
    return build_group(spec, [MemberSpec("fnn", s, "small") for s in seeds], weight_init="torch_default")


# --------------------------------------------------------------------------- reference


def test_group_of_one_equals_plain_reference_loop(tiny) -> None:
    """A group of one trained by train() is bit-identical to a textbook single-model loop."""
    cfg = TrainConfig(max_epochs=3, patience=3, data_seed=5, weight_decay=1e-4, **FAST)
    group = _fnn_group(tiny.spec, 7)
    result = train(group, tiny.train, tiny.valid, cfg)

    torch.manual_seed(7)
    model = build_model("fnn", tiny.spec, "small")
    dense = [p for n, p in model.named_parameters() if not n.startswith("embedding.")]
    opt = torch.optim.Adam(  # L2 on dense weights; embeddings have their own (0 here)
        [{"params": dense, "weight_decay": cfg.weight_decay}, {"params": [model.embedding.weight], "weight_decay": 0.0}],
        lr=cfg.learning_rate, fused=True,
    )
    x, y = torch.from_numpy(tiny.train[0]), torch.from_numpy(tiny.train[1])
    snaps, aucs = [], []
    from sklearn.metrics import roc_auc_score

    for epoch in range(1, 4):
        perm = np.random.default_rng([cfg.data_seed, epoch]).permutation(len(y))
        model.train()
        for s in range(0, len(y), cfg.batch_size):
            idx = torch.from_numpy(perm[s : s + cfg.batch_size])
            loss = F.binary_cross_entropy_with_logits(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        snaps.append(_state(model))
        model.eval()
        with torch.no_grad():
            p = torch.sigmoid(model(torch.from_numpy(tiny.valid[0]))).double().numpy()
        aucs.append(roc_auc_score(tiny.valid[1], p))

    assert result.epochs_completed == 3
    assert [h["valid_auc"] for h in result.history] == pytest.approx(aucs, abs=1e-6)
    best = snaps[result.best_epoch - 1]
    _assert_same_state({f"members.0.{k}": v for k, v in best.items()}, _state(group))


def test_epoch_permutation_is_documented_rng() -> None:
    assert np.array_equal(epoch_permutation(10, 3, 2), np.random.default_rng([3, 2]).permutation(10))
    assert np.array_equal(epoch_permutation(10, (3, 7), 2), np.random.default_rng([3, 7, 2]).permutation(10))
    assert np.array_equal(epoch_permutation(10, (3, 7), 2, data_order="file"), np.arange(10))


# --------------------------------------------------------------------------- seeds


def test_member_init_depends_only_on_its_spec(tiny) -> None:
    before = torch.get_rng_state()
    alone = _fnn_group(tiny.spec, 3)
    pair = _fnn_group(tiny.spec, 1, 3)
    assert torch.equal(torch.get_rng_state(), before), "build_group must not touch the global RNG"
    _assert_same_state(_state(alone.members[0]), _state(pair.members[1]))
    assert not torch.equal(pair.members[0].embedding.weight, pair.members[1].embedding.weight)


def test_training_is_deterministic_and_data_seed_matters(tiny) -> None:
    cfg = TrainConfig(max_epochs=2, patience=2, **FAST)
    runs = []
    for _ in range(2):
        g = _fnn_group(tiny.spec, 0, 1)
        r = train(g, tiny.train, tiny.valid, cfg)
        runs.append((g, r))
    (g1, r1), (g2, r2) = runs
    _assert_same_state(_state(g1), _state(g2))
    assert np.array_equal(predict_logits(g1, tiny.test[0]), predict_logits(g2, tiny.test[0]))
    assert _untimed(r1.history) == _untimed(r2.history)

    g3 = _fnn_group(tiny.spec, 0, 1)
    train(g3, tiny.train, tiny.valid, TrainConfig(max_epochs=2, patience=2, data_seed=1, **FAST))
    assert not torch.equal(g1.members[0].embedding.weight, g3.members[0].embedding.weight)


def test_grouped_training_differs_from_independent_training(tiny) -> None:
    cfg = TrainConfig(max_epochs=1, **FAST)
    grouped = _fnn_group(tiny.spec, 0, 1)
    train(grouped, tiny.train, tiny.valid, cfg)
    alone = _fnn_group(tiny.spec, 0)
    train(alone, tiny.train, tiny.valid, cfg)
    assert not torch.equal(grouped.members[0].embedding.weight, alone.members[0].embedding.weight)
    logits = predict_logits(grouped, tiny.test[0])
    merged = grouped.merged_probability(torch.from_numpy(tiny.test[0])).detach().numpy()
    assert logits.shape == (len(tiny.test[1]), 2) and logits.dtype == np.float32
    np.testing.assert_allclose(merged, (1 / (1 + np.exp(-logits.astype(np.float64)))).mean(axis=1), rtol=1e-5)


# --------------------------------------------------------------------------- resume


class _Interrupt(Exception):
    pass


def test_resume_after_interrupt_is_bit_identical(tiny, tmp_path) -> None:
    cfg = TrainConfig(max_epochs=4, patience=4, **FAST)
    reference = _fnn_group(tiny.spec, 0, 1)
    ref = train(reference, tiny.train, tiny.valid, cfg)

    def boom(record: dict) -> None:
        if record["epoch"] == 2:
            raise _Interrupt

    ckpt = tmp_path / "run"
    with pytest.raises(_Interrupt):
        train(_fnn_group(tiny.spec, 0, 1), tiny.train, tiny.valid, cfg, checkpoint_dir=ckpt, on_epoch_end=boom)
    assert (ckpt / TRAIN_STATE_FILE).exists()

    seen: list[int] = []
    resumed = _fnn_group(tiny.spec, 0, 1)  # a fresh process would rebuild the group like this
    res = train(resumed, tiny.train, tiny.valid, cfg, checkpoint_dir=ckpt, on_epoch_end=lambda r: seen.append(r["epoch"]))
    assert seen == [3, 4] and res.resumed_from_epoch == 2
    _assert_same_state(_state(reference), _state(resumed))
    assert _untimed(res.history) == _untimed(ref.history)
    assert (res.best_epoch, res.best_valid_auc) == (ref.best_epoch, ref.best_valid_auc)
    assert [p.name for p in ckpt.iterdir()] == [TRAIN_STATE_FILE], "temporary files left behind"

    # A finished checkpoint returns at once with the stored result and the best weights.
    again = _fnn_group(tiny.spec, 0, 1)
    done = train(again, tiny.train, tiny.valid, cfg, checkpoint_dir=ckpt, on_epoch_end=lambda r: pytest.fail("trained"))
    assert done.history == res.history and done.train_seconds == res.train_seconds
    _assert_same_state(_state(reference), _state(again))

    # Another trajectory in the same directory is refused, naming the setting.
    with pytest.raises(ConfigError, match="learning_rate"):
        train(_fnn_group(tiny.spec, 0, 1), tiny.train, tiny.valid, TrainConfig(max_epochs=4, batch_size=256, learning_rate=1e-3, progress=False, **PLAIN), checkpoint_dir=ckpt)


def test_resume_after_max_epochs_cut_is_bit_identical(tiny, tmp_path) -> None:
    full_cfg = TrainConfig(max_epochs=3, patience=3, **FAST)
    reference = _fnn_group(tiny.spec, 4)
    train(reference, tiny.train, tiny.valid, full_cfg)

    cut = train(_fnn_group(tiny.spec, 4), tiny.train, tiny.valid, TrainConfig(max_epochs=1, patience=3, **FAST), checkpoint_dir=tmp_path)
    assert cut.epochs_completed == 1 and not cut.stopped_early
    resumed = _fnn_group(tiny.spec, 4)
    res = train(resumed, tiny.train, tiny.valid, full_cfg, checkpoint_dir=tmp_path)
    assert res.epochs_completed == 3 and res.resumed_from_epoch == 1
    _assert_same_state(_state(reference), _state(resumed))


# --------------------------------------------------------------------------- early stopping


def test_early_stopping_restores_best_weights(tiny, tmp_path) -> None:
    """Flipped validation labels: the better the model learns, the worse its validation AUC."""
    valid = (tiny.valid[0], 1.0 - tiny.valid[1])
    group = _fnn_group(tiny.spec, 0)
    snaps: list[dict] = []
    cfg = TrainConfig(max_epochs=6, patience=1, **FAST)
    result = train(group, tiny.train, valid, cfg, checkpoint_dir=tmp_path, on_epoch_end=lambda r: snaps.append(_state(group)))
    aucs = [h["valid_auc"] for h in result.history]
    assert result.stopped_early and result.epochs_completed == 2 and len(snaps) == 2
    assert result.best_epoch == 1 and aucs[1] < aucs[0] and result.best_valid_auc == aucs[0]
    _assert_same_state(snaps[0], _state(group))
    assert not torch.equal(snaps[1]["members.0.embedding.weight"], group.members[0].embedding.weight)
    assert evaluate(group, *valid)["auc"] == pytest.approx(result.best_valid_auc, abs=1e-12)
    assert [h["is_best"] for h in result.history] == [True, False]
    json.dumps(result.to_dict())  # loggable as is

    # The stored run was stopped by patience: a longer max_epochs does not restart it.
    again = train(_fnn_group(tiny.spec, 0), tiny.train, valid, TrainConfig(max_epochs=9, patience=1, **FAST), checkpoint_dir=tmp_path)
    assert again.epochs_completed == 2 and again.stopped_early


# --------------------------------------------------------------------------- precision, progress, threads


def test_bf16_training_runs_and_learns(tiny) -> None:
    group = _fnn_group(tiny.spec, 0)
    r = train(group, tiny.train, tiny.valid, TrainConfig(max_epochs=3, patience=3, precision="bf16", **FAST))
    assert all(math.isfinite(h["train_loss"]) for h in r.history)
    assert r.best_valid_auc > 0.7
    logits = predict_logits(group, tiny.test[0], precision="bf16")
    assert logits.dtype == np.float32 and np.isfinite(logits).all()
    assert group.members[0].embedding.weight.dtype == torch.float32  # master weights stay fp32


def test_progress_bar_and_thread_setting(tiny, capsys) -> None:
    threads = torch.get_num_threads()
    cfg = TrainConfig(max_epochs=1, batch_size=256, num_threads=1, progress=True, **PLAIN)
    train(_fnn_group(tiny.spec, 0), tiny.train, tiny.valid, cfg)
    err = capsys.readouterr().err
    assert "epoch 1/1" in err and "valid_auc" in err and "row/s" in err
    assert torch.get_num_threads() == threads
    train(_fnn_group(tiny.spec, 0), tiny.train, tiny.valid, TrainConfig(max_epochs=1, progress=False, **PLAIN))
    assert capsys.readouterr().err == ""


# --------------------------------------------------------------------------- persistence


def test_save_and_load_group_round_trip(tiny, tmp_path) -> None:
    members = [MemberSpec("fnn", 0, "small"), MemberSpec("fnn", 1, "small", {"hidden_units": [32, 16]})]
    group = build_group(tiny.spec, members)
    train(group, tiny.train, tiny.valid, TrainConfig(max_epochs=1, **FAST))
    assert group.precision == "fp32"
    path = save_group(group, members, tiny.spec, tmp_path / "models" / "group.pt")
    assert [p.name for p in path.parent.iterdir()] == ["group.pt"]

    loaded, loaded_members, loaded_spec = load_group(path)
    assert loaded_members == members and loaded_spec == tiny.spec and not loaded.training
    assert loaded.member_specs == tuple(members)
    np.testing.assert_array_equal(predict_logits(loaded, tiny.test[0]), predict_logits(group, tiny.test[0]))
    metrics = evaluate(loaded, *tiny.test)
    assert set(metrics) >= {"auc", "logloss", "member_auc", "member_logloss"} and len(metrics["member_auc"]) == 2

    # members / spec default to what the group was built with
    save_group(group, None, None, tmp_path / "again.pt")
    assert load_group(tmp_path / "again.pt")[1] == members

    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(DataFormatError, match="junk.pt"):
        load_group(tmp_path / "junk.pt")
    torch.save({"format": "something else"}, tmp_path / "other.pt")
    with pytest.raises(DataFormatError, match="save_group"):
        load_group(tmp_path / "other.pt")
    with pytest.raises(ConfigError, match="2 members but 1"):
        save_group(group, members[:1], tiny.spec, tmp_path / "bad.pt")


def test_member_spec_is_hashable_and_json_round_trips() -> None:
    a = MemberSpec("FNN", 3, "small", {"hidden_units": [8, 4], "dropout": 0.1})
    b = MemberSpec.from_dict(json.loads(json.dumps(a.to_dict())))
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a.backbone == "fnn" and a.overrides["hidden_units"] == (8, 4)
    assert a.name.startswith("fnn-small-s3+")
    with pytest.raises(ConfigError, match="seed"):
        MemberSpec("fnn", -1)
    with pytest.raises(ConfigError, match="unknown keys"):
        MemberSpec.from_dict({"backbone": "fnn", "seed": 0, "colour": "red"})
    with pytest.raises(ConfigError, match="more than once"):
        build_group(__import__("ttsctr.features").features.FeatureSpec(("a",), (3,)), [MemberSpec("fnn", 0), MemberSpec("fnn", 0)])
