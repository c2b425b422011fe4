"""Parameter and FLOPs accounting, so that scaling comparisons are FLOPs-matched.

``model_cost(model)`` runs one forward pass on random valid feature ids under
``torch.utils.flop_counter.FlopCounterMode`` and reports what that pass really did, rather
than a hand formula that could drift from the code. It works for a single ``CTRModel`` and
for any ``nn.Module`` whose forward takes (B, F) ids — e.g. a group of members returning
per-member or merged logits: whatever its forward computes is counted.

What is counted: FlopCounterMode counts matmul-like ops only (mm, addmm, bmm, baddbmm,
convolutions, attention), at 2 FLOPs per multiply-add; ``einsum`` and ``nn.Linear`` count
because they lower to these (the bias add of ``addmm`` is not counted).

What is left out, because it is not a matmul:

* element-wise work — activations (ReLU, GELU, sigmoid), LayerNorm/BatchNorm, dropout
  (off at eval anyway), residual and bias additions, element-wise products (DCN/DCN-V2
  cross layers ``x_0 ⊙ (...)``, FinalMLP's gates ``g ⊙ e``), sums and squares (DeepFM's FM
  term, LR's sum of first-order weights: LR counts 0 FLOPs) and reductions such as
  RankMixer's mean pooling;
* data movement — embedding lookups, concatenation, padding, ``index_select`` gathers,
  reshapes and transposes (RankMixer's token mixing is a transpose, so it costs 0 here);
* matrix-vector products (``mv``), so layers use mm instead.

For the backbones here that work is O(F·D) or O(width) per row against O(width²) for the
matmuls, so it is small, but it is not zero. Work that does not depend on the row — an
input-independent gate (FinalMLP with an empty context) is computed once per batch — is
counted once per batch, i.e. 1/B of it per row.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ttsctr.errors import ConfigError
from ttsctr.features import FeatureSpec
from ttsctr.layers.embedding import FeatureEmbedding

# Modules whose parameters are lookup tables indexed by feature id (sparse, not dense compute).
EMBEDDING_MODULES = (FeatureEmbedding, nn.Embedding, nn.EmbeddingBag)


@dataclass(frozen=True)
class ModelCost:
    """Size and inference cost of one forward pass, per row of the batch."""

    dense_params: int
    embedding_params: int
    flops_per_row: float

    @property
    def total_params(self) -> int:
        return self.dense_params + self.embedding_params


def random_ids(spec: FeatureSpec, batch_size: int, seed: int = 0) -> torch.Tensor:
    """(batch_size, F) int64 ids, each drawn uniformly from its field's slice of the global id space."""
    generator = torch.Generator().manual_seed(seed)
    vocab = torch.tensor(spec.vocab_sizes, dtype=torch.float64)
    offsets = torch.tensor(spec.offsets, dtype=torch.long)
    local = (torch.rand(batch_size, spec.num_fields, generator=generator, dtype=torch.float64) * vocab).long()
    return offsets + torch.minimum(local, torch.tensor(spec.vocab_sizes) - 1)  # (B, F)


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(dense, embedding) parameter counts; a parameter shared by several members counts once."""
    embedding_ids = {id(p) for m in model.modules() if isinstance(m, EMBEDDING_MODULES) for p in m.parameters()}
    dense = embedding = 0
    for p in model.parameters():  # .parameters() already deduplicates shared tensors
        if id(p) in embedding_ids:
            embedding += p.numel()
        else:
            dense += p.numel()
    return dense, embedding


def _find_spec(model: nn.Module) -> FeatureSpec:
    for module in model.modules():
        spec = getattr(module, "spec", None)
        if isinstance(spec, FeatureSpec):
            return spec
    raise ConfigError(
        f"model_cost: cannot tell which feature ids {type(model).__name__} takes; pass spec=FeatureSpec(...)"
    )


def model_cost(model: nn.Module, batch_size: int = 16, *, spec: FeatureSpec | None = None,
               batch: torch.Tensor | None = None) -> ModelCost:
    """Parameters and measured forward FLOPs per row of ``model`` on random valid ids (or on
    ``batch`` when given: models whose rows are not plain field ids).

    ``spec`` defaults to the ``spec`` attribute of the model or of its first submodule that
    has one. The pass runs in eval mode under ``no_grad`` (so batch-norm statistics are not
    touched) and every module's train/eval flag is restored afterwards.
    """
    if batch is None:
        if batch_size < 1:
            raise ConfigError(f"model_cost: batch_size must be >= 1, got {batch_size}")
        batch = random_ids(spec if spec is not None else _find_spec(model), batch_size)
    batch_size = batch.shape[0]
    first = next(model.parameters(), None)
    ids = batch.to(first.device if first is not None else "cpu")
    modes = {module: module.training for module in model.modules()}
    counter = FlopCounterMode(display=False)
    try:
        model.eval()
        with torch.no_grad(), counter:
            model(ids)
    finally:
        for module, training in modes.items():
            module.training = training
    dense, embedding = count_parameters(model)
    return ModelCost(dense_params=dense, embedding_params=embedding, flops_per_row=counter.get_total_flops() / batch_size)
