"""Dropout rate of a built model, for MC-dropout at inference.

Every backbone keeps its ``nn.Dropout`` modules even at rate 0, so a model trained without
dropout can be sampled with dropout later, and checkpoints load across rates (dropout has no
parameters or buffers, so its rate is not in the state dict).
"""

from __future__ import annotations

from torch import nn

from ttsctr.errors import ConfigError

_DROPOUT_TYPES = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout)


def set_dropout_rate(module: nn.Module, p: float) -> int:
    """Set the rate of every dropout module in ``module`` to ``p``; returns how many there are.

    Layers that must not be perturbed (FinalMLP's feature-selection gates) have no dropout
    module at all, so they are not affected. Train/eval flags are left alone: dropout only
    acts on modules in train mode.
    """
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p < 1.0:
        raise ConfigError(f"set_dropout_rate: the rate must be a number in [0, 1), got {p!r}")
    count = 0
    for sub in module.modules():
        if isinstance(sub, _DROPOUT_TYPES):
            sub.p = float(p)
            count += 1
    return count
