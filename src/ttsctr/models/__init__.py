"""CTR backbones, selected by name: ``build_model("dcnv2", spec, preset="small")``.

Importing this package registers every backbone.
"""

from ttsctr.models.base import CTRModel, ModelConfig
from ttsctr.models.registry import available_models, build_model, get_entry, model_config, register_model
from ttsctr.models import dcn, dcnv2, deepfm, finalmlp, fnn, ipnn, lr, rankmixer, wukong  # noqa: F401
# Width-scaling models (Multi-Embed, D-MoE) build the backbones above as their experts.
from ttsctr.models import dmoe, multi_embed  # noqa: F401
# Behaviour-sequence backbones (inputs="sequence": built from a SequenceFeatureSpec).
from ttsctr.models import est  # noqa: F401
from ttsctr.models import din  # noqa: F401  (DIN + DCNv2 / RankMixer baselines of EST)

__all__ = ["CTRModel", "ModelConfig", "available_models", "build_model", "get_entry", "model_config", "register_model"]
