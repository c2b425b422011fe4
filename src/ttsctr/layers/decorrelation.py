"""De-correlation regulariser between interaction experts (D-MoE's ``L_reg`` in Eq. 8).

Wang et al., "Enhancing CTR Prediction with De-correlated Expert Networks", arXiv
2505.17925, 2025, train M interaction experts jointly with a penalty on the correlation of
their outputs, ``L = L_pred + λ L_reg({h^(m)})`` (TTS paper Eq. 8). The form used here is the
mean squared cross-correlation between the experts' standardised units, averaged over pairs.
"""

from __future__ import annotations

from typing import Sequence

import torch

from ttsctr.errors import ConfigError


def standardize_units(h: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Each column (unit) of ``h`` (B, H) to zero mean and unit variance over the batch.

    ``z = (h - mean_b h) / sqrt(var_b h + eps)`` with the population variance (divisor B), so
    that ``zᵀ z / B`` is the units' correlation matrix (up to ``eps``). A constant unit
    (variance 0, e.g. a dead ReLU) becomes 0 instead of NaN.
    """
    centred = h - h.mean(dim=0, keepdim=True)  # (B, H)
    var = centred.pow(2).mean(dim=0, keepdim=True)  # (1, H)
    return centred / torch.sqrt(var + eps)  # (B, H)


def decorrelation_loss(hs: Sequence[torch.Tensor], eps: float = 1e-5) -> torch.Tensor:
    """D-MoE's de-correlation penalty on the outputs of M experts.

    For every pair of experts m < n, standardise each unit over the batch
    (:func:`standardize_units`, ``Z_m`` (B, H)), take the cross-correlation matrix
    ``C^(m,n) = Z_mᵀ Z_n / B`` (H, H) — entry (i, j) is the Pearson correlation between unit
    i of expert m and unit j of expert n over the batch — and penalise its mean square::

        L_reg = 2 / (M (M - 1)) · Σ_{m<n} (1 / H²) Σ_{i,j} (C^(m,n)_ij)²

    Values:

    * 0 when every unit of one expert is uncorrelated with every unit of the other over the
      batch (e.g. exactly orthogonal centred columns), and for M = 1 (no pair).
    * Identical outputs, ``h_n = h_m = h``: ``C = R``, the correlation matrix of h's own
      units, so the pair costs ``‖R‖_F² / H² = (H + Σ_{i≠j} R_ij²) / H²`` (times
      ``(σ_i² / (σ_i² + eps))`` factors from ``eps``, negligible for σ² ≫ eps). It lies in
      ``[1/H, 1]``: ``1/H`` when h's units are mutually uncorrelated, 1 when they are all
      perfectly (anti-)correlated, e.g. always for H = 1.
    * At most 1 in general (every |C_ij| <= 1).

    Args:
        hs: M >= 1 expert outputs, each (B, H) with the same B and H (equal widths: project
            heterogeneous experts to a common width first). Computed in float32.
        eps: added to every unit's batch variance before the square root.

    Returns:
        A scalar tensor (differentiable in every ``hs[m]``).

    Raises:
        ConfigError: no experts, an output that is not 2-D, or unequal batch sizes / widths.
    """
    hs = list(hs)
    if not hs:
        raise ConfigError("decorrelation_loss: needs at least one expert output, got none")
    for m, h in enumerate(hs):
        if h.dim() != 2:
            raise ConfigError(f"decorrelation_loss: expert output {m} must be (batch, width), got {tuple(h.shape)}")
    shapes = [tuple(h.shape) for h in hs]
    if len(set(shapes)) != 1:
        raise ConfigError(
            f"decorrelation_loss: every expert output must have the same (batch, width); got {shapes} "
            "(project heterogeneous experts to a common width first)"
        )
    if len(hs) == 1:
        return hs[0].new_zeros((), dtype=torch.float32)
    batch, width = shapes[0]
    zs = [standardize_units(h.float(), eps) for h in hs]  # M × (B, H)
    pairs = [(m, n) for m in range(len(zs)) for n in range(m + 1, len(zs))]
    total = hs[0].new_zeros((), dtype=torch.float32)
    for m, n in pairs:
        c = zs[m].t() @ zs[n] / batch  # (H, H)
        total = total + c.pow(2).mean()
    return total / len(pairs)
