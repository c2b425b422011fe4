"""group_loss is the BCE of the averaged probability (Eq. 11) with the Eq. 12 gradient."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ttsctr.training import MemberSpec, build_group, group_loss


def _naive(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    p = torch.sigmoid(logits).mean(dim=1)
    return -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean()


def test_single_member_is_exactly_bce_with_logits() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 1, generator=g) * 3
    y = (torch.rand(64, generator=g) < 0.4).float()
    assert torch.equal(group_loss(logits, y), F.binary_cross_entropy_with_logits(logits[:, 0], y))
    assert torch.equal(group_loss(logits[:, 0], y), F.binary_cross_entropy_with_logits(logits[:, 0], y))


@pytest.mark.parametrize("m", [2, 3, 8])
def test_equals_bce_of_mean_probability(m: int) -> None:
    g = torch.Generator().manual_seed(m)
    logits = torch.randn(128, m, generator=g, dtype=torch.float64) * 2
    y = (torch.rand(128, generator=g) < 0.4).double()
    assert group_loss(logits, y).item() == pytest.approx(_naive(logits, y).item(), rel=1e-6)


def test_gradient_of_each_member_logit_is_eq12() -> None:
    """d L / d l_bm = (1/B) * (1/M) * dL/dp̄_b * sigmoid'(l_bm), checked by hand and by finite differences."""
    g = torch.Generator().manual_seed(1)
    b, m = 5, 3
    logits = (torch.randn(b, m, generator=g, dtype=torch.float64) * 2).requires_grad_()
    y = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0], dtype=torch.float64)
    # group_loss works in float32 internally; compare in float64 through the same formula.
    loss = group_loss(logits, y)
    (grad,) = torch.autograd.grad(loss, logits)

    with torch.no_grad():
        sig = torch.sigmoid(logits)
        p_bar = sig.mean(dim=1)
        dl_dp = -(y / p_bar - (1 - y) / (1 - p_bar))  # per-row dBCE/dp̄
        by_hand = (1.0 / b) * (1.0 / m) * dl_dp[:, None] * sig * (1 - sig)
    assert torch.allclose(grad.double(), by_hand, rtol=1e-5, atol=1e-7)

    # Central finite differences of the float64 reference loss.
    eps = 1e-6
    fd = torch.zeros_like(by_hand)
    base = logits.detach()
    for i in range(b):
        for j in range(m):
            plus, minus = base.clone(), base.clone()
            plus[i, j] += eps
            minus[i, j] -= eps
            fd[i, j] = (_naive(plus, y) - _naive(minus, y)) / (2 * eps)
    assert torch.allclose(by_hand, fd, rtol=1e-5, atol=1e-9)


def test_member_parameter_gradient_is_one_over_m_of_merged_gradient() -> None:
    """Eq. 12 at the parameter level for a tiny group of two FNNs."""
    from ttsctr.features import FeatureSpec

    spec = FeatureSpec(("a", "b", "c"), (5, 7, 4))
    group = build_group(spec, [MemberSpec("fnn", 0, "small"), MemberSpec("fnn", 1, "small", {"hidden_units": [8]})])
    for p in group.parameters():  # bigger embeddings so the gradients are not tiny
        torch.nn.init.normal_(p, std=0.3)
    x = torch.tensor([[0, 5, 12], [4, 6, 15], [2, 11, 13], [1, 8, 14]], dtype=torch.int32)
    y = torch.tensor([1.0, 0.0, 0.0, 1.0])
    logits = group(x)
    loss = group_loss(logits, y)
    grads = torch.autograd.grad(loss, list(group.parameters()), retain_graph=True)
    actual = dict(zip([n for n, _ in group.named_parameters()], grads))

    m, b = group.size, x.shape[0]
    probs = torch.sigmoid(logits)
    p_bar = probs.mean(dim=1).detach()
    dl_dp = -(y / p_bar - (1 - y) / (1 - p_bar))
    for k, member in enumerate(group.members):
        params = list(member.parameters())
        expected = torch.autograd.grad(probs[:, k], params, grad_outputs=dl_dp / (b * m), retain_graph=True)
        names = [f"members.{k}.{n}" for n, _ in member.named_parameters()]
        for name, e in zip(names, expected):
            assert torch.allclose(actual[name], e, rtol=1e-4, atol=1e-8), name


def test_stable_with_huge_logits() -> None:
    y = torch.tensor([1.0, 1.0, 0.0, 1.0])
    logits = torch.tensor(
        [
            [1e4, 1e4],  # confidently right
            [-1e4, -1e4],  # confidently wrong: loss = 1e4
            [-80.0, -90.0],  # right
            [1e4, -1e4],  # one right, one wrong: p̄ = 1/2
        ],
        requires_grad=True,
    )
    loss = group_loss(logits, y)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
    expected = (0.0 + 1e4 + 0.0 + math.log(2.0)) / 4
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    # bf16 logits are promoted: the loss is float32.
    assert group_loss(logits.detach().bfloat16(), y).dtype == torch.float32


def test_identical_members_reduce_to_single_member_bce() -> None:
    g = torch.Generator().manual_seed(2)
    one = torch.randn(32, 1, generator=g) * 4
    y = (torch.rand(32, generator=g) < 0.5).float()
    same = one.repeat(1, 4)
    assert np.isclose(group_loss(same, y).item(), F.binary_cross_entropy_with_logits(one[:, 0], y).item(), rtol=1e-6)
