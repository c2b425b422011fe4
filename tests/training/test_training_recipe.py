"""The reference training recipe: grouped loss, per-member data order, init, plateau decay,
clipping, regularisation, small-log batch sizes, the tts4ctr protocol and precision consistency."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ttsctr.layers.embedding import FeatureEmbedding
from ttsctr.layers.init import initialize_weights
from ttsctr.metrics import roc_auc
from ttsctr.models import build_model
from ttsctr.training import (
    MemberSpec,
    TrainConfig,
    build_group,
    evaluate,
    load_group,
    predict_logits,
    save_group,
    train,
)
from ttsctr.training import trainer as trainer_module
from ttsctr.training.inputs import epoch_permutation, epoch_torch_seed


def _loop_reference(tiny, seeds, cfg: TrainConfig, joint: bool) -> tuple[list[float], list[torch.nn.Module]]:
    """A textbook loop: Xavier-initialised members, order key (data_seed, *seeds), Adam with L2 on
    dense weights and on embeddings, clipping, x0.1 on plateau. ``joint`` trains on the BCE of the
    averaged probability written out directly; otherwise every member on its own BCE."""
    models = []
    for s in seeds:
        torch.manual_seed(s)
        m = build_model("fnn", tiny.spec, "small")
        initialize_weights(m, "xavier_normal")
        models.append(m)
    emb = [m.embedding.weight for m in models]
    dense = [p for m in models for n, p in m.named_parameters() if not n.startswith("embedding.")]
    opt = torch.optim.Adam(
        [{"params": dense, "weight_decay": cfg.weight_decay}, {"params": emb, "weight_decay": cfg.embedding_regularizer}],
        lr=cfg.learning_rate, fused=True,
    )
    x, y = torch.from_numpy(tiny.train[0]), torch.from_numpy(tiny.train[1])
    key = (cfg.data_seed, *seeds)
    best, aucs, lr = -math.inf, [], cfg.learning_rate
    for epoch in range(1, cfg.max_epochs + 1):
        perm = np.random.default_rng([*key, epoch]).permutation(len(y))
        torch.manual_seed(epoch_torch_seed(key, epoch))
        for m in models:
            m.train()
        for s in range(0, len(y), cfg.batch_size):
            idx = torch.from_numpy(perm[s : s + cfg.batch_size])
            probs = torch.stack([torch.sigmoid(m(x[idx])) for m in models], dim=1)  # (B, M)
            if joint:
                loss = F.binary_cross_entropy(probs.mean(dim=1), y[idx])
            else:
                loss = sum(F.binary_cross_entropy(probs[:, j], y[idx]) for j in range(len(models)))
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(dense + emb, cfg.clip_grad_norm)
            opt.step()
        with torch.no_grad():
            for m in models:
                m.eval()
            p = torch.stack([torch.sigmoid(m(torch.from_numpy(tiny.valid[0]))) for m in models], 1).double().mean(1)
        auc = roc_auc(tiny.valid[1], p.numpy())
        aucs.append(auc)
        if auc > best:
            best = auc
        else:
            lr = max(lr * cfg.lr_decay_factor, cfg.min_learning_rate)
            for g in opt.param_groups:
                g["lr"] = lr
    return aucs, models


def test_two_member_group_equals_reference_loop_on_the_group_loss(tiny) -> None:
    """train() of a 2-member group follows a loop that optimises the averaged prediction (Eq. 11),
    not one that trains each member on its own loss."""
    cfg = TrainConfig(
        max_epochs=4, patience=4, batch_size=64, min_steps_per_epoch=None, learning_rate=3e-2, weight_decay=1e-4,
        embedding_regularizer=1e-5, clip_grad_norm=0.5, data_seed=3, progress=False,
    )
    group = build_group(tiny.spec, [MemberSpec("fnn", 5, "small"), MemberSpec("fnn", 9, "small")])
    result = train(group, tiny.train, tiny.valid, cfg)
    joint_aucs, joint = _loop_reference(tiny, (5, 9), cfg, joint=True)
    alone_aucs, _ = _loop_reference(tiny, (5, 9), cfg, joint=False)

    ours = [h["valid_auc"] for h in result.history]
    assert ours == pytest.approx(joint_aucs, abs=2e-3)
    assert max(abs(a - b) for a, b in zip(ours, alone_aucs)) > 5 * max(abs(a - b) for a, b in zip(ours, joint_aucs))
    assert any(h["learning_rate"] < cfg.learning_rate for h in result.history) or result.best_epoch == 4
    # The last epoch's weights of the reference equal ours when the last epoch was the best one.
    if result.best_epoch == cfg.max_epochs:
        for ours_m, ref_m in zip(group.members, joint):
            for (name, a), b in zip(ours_m.state_dict().items(), ref_m.state_dict().values()):
                torch.testing.assert_close(a, b, rtol=0.0, atol=2e-2, msg=name)  # float order differs


def test_member_seeds_get_their_own_data_order_and_the_same_seed_reproduces_it(tiny, monkeypatch) -> None:
    seen: list[tuple[tuple[int, ...], int, np.ndarray]] = []
    real = trainer_module.epoch_permutation

    def spy(n, key, epoch, data_order="shared"):
        perm = real(n, key, epoch, data_order)
        seen.append((tuple(key), epoch, perm))
        return perm

    monkeypatch.setattr(trainer_module, "epoch_permutation", spy)
    cfg = TrainConfig(max_epochs=2, patience=2, batch_size=512, min_steps_per_epoch=None, progress=False)
    results = {}
    for seed in (0, 1, 0):
        g = build_group(tiny.spec, [MemberSpec("fnn", seed, "small")])
        results.setdefault(seed, []).append((train(g, tiny.train, tiny.valid, cfg), g))
    orders = [(k, e, p) for k, e, p in seen if e == 1]
    assert [k for k, _, _ in orders] == [(0, 0), (0, 1), (0, 0)]
    assert not np.array_equal(orders[0][2], orders[1][2])  # seeds 0 and 1: different orders
    assert np.array_equal(orders[0][2], orders[2][2])  # seed 0 again: the same order
    (r0, g0), (r0b, g0b) = results[0]
    assert [h["valid_auc"] for h in r0.history] == [h["valid_auc"] for h in r0b.history]
    for a, b in zip(g0.state_dict().values(), g0b.state_dict().values()):
        assert torch.equal(a, b)

    seen.clear()
    shared = TrainConfig(max_epochs=1, batch_size=512, min_steps_per_epoch=None, data_order="shared", progress=False)
    for seed in (0, 1):
        train(build_group(tiny.spec, [MemberSpec("fnn", seed, "small")]), tiny.train, tiny.valid, shared)
    assert seen[0][0] == seen[1][0] == (0,) and np.array_equal(seen[0][2], seen[1][2])


def test_dropout_masks_follow_the_order_key(tiny) -> None:
    """File order fixes the row order, so only dropout masks can differ: they follow the order key
    (data seed and, by default, the member seeds), and nothing else differs without dropout."""
    base = dict(max_epochs=1, batch_size=512, min_steps_per_epoch=None, data_order="file", progress=False)

    def weights(dropout: float, data_seed: int) -> torch.Tensor:
        g = build_group(tiny.spec, [MemberSpec("fnn", 0, "small", {"dropout": dropout})])
        train(g, tiny.train, tiny.valid, TrainConfig(data_seed=data_seed, **base))
        return g.members[0].embedding.weight

    assert torch.equal(weights(0.3, 0), weights(0.3, 0))
    assert not torch.equal(weights(0.3, 0), weights(0.3, 1))
    assert torch.equal(weights(0.0, 0), weights(0.0, 1))


def test_xavier_initialisation_statistics(planted) -> None:
    group = build_group(planted.spec, [MemberSpec("fnn", 0, "default")])
    model = group.members[0]
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert linears
    for lin in linears:
        fan_out, fan_in = lin.weight.shape
        expected = math.sqrt(2.0 / (fan_in + fan_out))
        if lin.weight.numel() >= 10_000:
            assert float(lin.weight.detach().std()) == pytest.approx(expected, rel=0.05)
            assert abs(float(lin.weight.detach().mean())) < 0.05 * expected
        assert torch.count_nonzero(lin.bias) == 0
    emb = next(m for m in model.modules() if isinstance(m, FeatureEmbedding)).weight
    assert float(emb.detach().std()) == pytest.approx(1e-4, rel=0.1)
    torch_default = build_group(planted.spec, [MemberSpec("fnn", 0, "default")], weight_init="torch_default")
    first = next(m for m in torch_default.members[0].modules() if isinstance(m, torch.nn.Linear))
    assert torch.count_nonzero(first.bias) > 0  # nn.Linear's own uniform bias: not the recipe


def test_learning_rate_decays_on_plateau_and_the_resume_carries_the_scheduler(tiny, tmp_path) -> None:
    valid = (tiny.valid[0], 1.0 - tiny.valid[1])  # flipped labels: every epoch after the first is worse
    cfg = TrainConfig(max_epochs=6, patience=3, batch_size=256, min_steps_per_epoch=None, learning_rate=1e-2,
                      lr_decay_factor=0.1, min_learning_rate=5e-4, progress=False)
    ref = train(build_group(tiny.spec, [MemberSpec("fnn", 0, "small")]), tiny.train, valid, cfg)
    lrs = [h["learning_rate"] for h in ref.history]
    assert lrs[0] == pytest.approx(1e-2)
    assert ref.best_epoch == 1 and ref.stopped_early and ref.epochs_completed == 4
    # epoch 2 is the first bad one: x0.1 from epoch 3 on, per bad epoch, floored at 5e-4
    assert lrs[1:] == pytest.approx([1e-2, 1e-3, 5e-4])

    class Stop(Exception):
        pass

    def stop_at_2(record):
        if record["epoch"] == 2:
            raise Stop

    with pytest.raises(Stop):
        train(build_group(tiny.spec, [MemberSpec("fnn", 0, "small")]), tiny.train, valid, cfg, tmp_path, stop_at_2)
    resumed = train(build_group(tiny.spec, [MemberSpec("fnn", 0, "small")]), tiny.train, valid, cfg, tmp_path)
    assert [h["learning_rate"] for h in resumed.history] == lrs
    assert [h["valid_auc"] for h in resumed.history] == [h["valid_auc"] for h in ref.history]


def test_embedding_regulariser_shrinks_the_embeddings(tiny) -> None:
    base = dict(max_epochs=2, patience=2, batch_size=256, min_steps_per_epoch=None, progress=False)
    plain = build_group(tiny.spec, [MemberSpec("fnn", 0, "small")])
    reg = build_group(tiny.spec, [MemberSpec("fnn", 0, "small")])
    train(plain, tiny.train, tiny.valid, TrainConfig(embedding_regularizer=0.0, **base))
    train(reg, tiny.train, tiny.valid, TrainConfig(embedding_regularizer=1.0, **base))
    norm = lambda g: float(g.members[0].embedding.weight.detach().norm())  # noqa: E731
    assert norm(reg) < 0.5 * norm(plain)


@pytest.mark.parametrize(
    ("rows", "expected"),
    [(6_400, 128), (80_000, 1024), (128_000, 2048), (36_000_000, 4096), (100, 32)],
)
def test_batch_size_adapts_to_small_logs(rows: int, expected: int) -> None:
    assert TrainConfig().batch_size_for(rows) == expected
    assert TrainConfig(min_steps_per_epoch=None).batch_size_for(rows) == 4096


def test_tts4ctr_protocol_reads_rows_in_file_order_for_one_epoch(tiny, monkeypatch) -> None:
    cfg = TrainConfig.from_dict({"protocol": "tts4ctr", "progress": False})
    assert (cfg.learning_rate, cfg.batch_size, cfg.max_epochs, cfg.data_order, cfg.weight_init) == (
        1e-4, 4096, 1, "file", "torch_default")
    assert cfg.lr_decay_factor is None and cfg.clip_grad_norm is None and cfg.weight_decay == 0.0
    assert TrainConfig.from_dict({"protocol": "tts4ctr", "max_epochs": 3}).max_epochs == 3  # keys override
    assert TrainConfig.from_dict({}).protocol == "reference"
    orders = []
    real = trainer_module.epoch_permutation
    monkeypatch.setattr(trainer_module, "epoch_permutation",
                        lambda n, key, epoch, data_order="shared": orders.append(real(n, key, epoch, data_order)) or orders[-1])
    r = train(build_group(tiny.spec, [MemberSpec("fnn", 3, "small")], weight_init=cfg.weight_init), tiny.train, tiny.valid, cfg)
    assert r.epochs_completed == 1 and r.batch_size == 4096
    assert np.array_equal(orders[0], np.arange(len(tiny.train[1])))


def test_bf16_group_is_evaluated_and_predicts_in_bf16(tiny, tmp_path) -> None:
    group = build_group(tiny.spec, [MemberSpec("fnn", 0, "small")])
    r = train(group, tiny.train, tiny.valid, TrainConfig(max_epochs=2, batch_size=256, min_steps_per_epoch=None,
                                                        precision="bf16", progress=False))
    assert group.precision == "bf16"
    assert evaluate(group, *tiny.valid)["auc"] == r.best_valid_auc  # the same arithmetic as early stopping
    path = save_group(group, None, None, tmp_path / "g.pt")
    loaded, _, _ = load_group(path)
    assert loaded.precision == "bf16"
    np.testing.assert_array_equal(predict_logits(loaded, tiny.test[0]), predict_logits(group, tiny.test[0], precision="bf16"))
    assert not np.array_equal(predict_logits(loaded, tiny.test[0]), predict_logits(loaded, tiny.test[0], precision="fp32"))


def test_checkpoint_trained_without_dropout_runs_with_mc_dropout(tiny, tmp_path) -> None:
    """Dropout modules exist at rate 0, so a group trained without dropout loads into members
    built with dropout 0.1 (MC-dropout at inference) with every weight in place."""
    group = build_group(tiny.spec, [MemberSpec("dcnv2", 0, "small")])
    train(group, tiny.train, tiny.valid, TrainConfig(max_epochs=1, batch_size=512, min_steps_per_epoch=None,
                                                    progress=False))
    path = save_group(group, None, None, tmp_path / "g.pt")
    stochastic = build_group(tiny.spec, [MemberSpec("dcnv2", 0, "small", {"dropout": 0.1})], weight_init="torch_default")
    stochastic.load_state_dict(load_group(path)[0].state_dict())  # strict: same parameters and buffers
    x = torch.from_numpy(tiny.test[0][:256])
    stochastic.eval()
    np.testing.assert_array_equal(stochastic(x).detach().numpy(), group.eval()(x).detach().numpy())
    stochastic.train()
    torch.manual_seed(0)
    a = stochastic(x).detach()
    b = stochastic(x).detach()
    assert not torch.equal(a, b)
