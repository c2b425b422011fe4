"""SimTier — Sheng et al., "Enhancing Taobao Display Advertising with Multimodal
Representations: Challenges, Approaches and Insights", CIKM 2024 (ref. [30] of the EST paper):
the content similarity between the candidate item and the user's behaviours, as a histogram
over similarity tiers, turned into one token. Every baseline of EST's Table 3 (and optionally
EST itself) adds it to the non-behavioural tokens N.
"""

from __future__ import annotations

import torch
from torch import nn

from ttsctr.errors import ConfigError


@torch.no_grad()
def simtier_histogram(candidate: torch.Tensor, behaviours: torch.Tensor, mask: torch.Tensor, n_tiers: int
                      ) -> torch.Tensor:
    """Fraction of the real behaviours in each of ``n_tiers`` equal cosine-similarity bins over [−1, 1].

    ``s_j = cos(m_cand, m_j)`` (both L2-normalised here; a zero vector has similarity 0 with
    everything); bin ``t`` holds ``s ∈ [−1 + 2t/T, −1 + 2(t+1)/T)``, the last bin also s = 1
    (values are clamped into [0, T−1], so float noise past ±1 stays in the end bins);
    ``h_t = #{real j in bin t} / #{real j}``, so a row sums to 1, or is all zeros when the row has
    no real behaviour. Padding (``mask`` False) is never counted, whatever its content.

    A hard histogram without gradient: the content vectors are frozen data.

    Input candidate (B, d_c), behaviours (B, L, d_c), mask (B, L) bool -> output (B, T) float.
    """
    if n_tiers < 1:
        raise ConfigError(f"simtier: n_tiers must be >= 1, got {n_tiers}")
    cand = nn.functional.normalize(candidate.float(), dim=-1)  # (B, d_c)
    items = nn.functional.normalize(behaviours.float(), dim=-1)  # (B, L, d_c)
    sim = (items @ cand[:, :, None]).squeeze(-1)  # (B, L)
    tier = ((sim + 1.0) * (n_tiers / 2.0)).floor().long().clamp(0, n_tiers - 1)  # (B, L)
    real = mask.to(sim.dtype)  # (B, L)
    counts = torch.zeros(sim.shape[0], n_tiers, dtype=sim.dtype, device=sim.device).scatter_add_(1, tier, real)
    return counts / real.sum(dim=1, keepdim=True).clamp_min(1.0)  # (B, T)


class SimTier(nn.Module):
    """SimTier token: ``s = W h + b`` with ``h = simtier_histogram(m_cand, M, mask, T)`` (T tiers)
    and a learned ``nn.Linear(T, D)``. Gradients reach W and b only (h is frozen-content data).

    Input candidate content (B, d_c), behaviour content (B, L, d_c), mask (B, L) bool ->
    output (B, D).
    """

    def __init__(self, n_tiers: int, dim: int) -> None:
        super().__init__()
        if n_tiers < 1:
            raise ConfigError(f"simtier: n_tiers must be >= 1, got {n_tiers}")
        self.n_tiers = n_tiers
        self.project = nn.Linear(n_tiers, dim)

    def forward(self, candidate: torch.Tensor, behaviours: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = simtier_histogram(candidate, behaviours, mask, self.n_tiers)  # (B, T)
        return self.project(h.to(self.project.weight.dtype))  # (B, D)
