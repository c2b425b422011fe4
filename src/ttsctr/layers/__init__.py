"""Reusable building blocks shared by the CTR backbones (one concept per module)."""

from ttsctr.layers.bilinear_fusion import MultiHeadBilinearFusion
from ttsctr.layers.cross import CrossLayerV2, CrossNetwork, CrossNetworkV2
from ttsctr.layers.dropout import set_dropout_rate
from ttsctr.layers.embedding import FeatureEmbedding
from ttsctr.layers.factorization_machine import FactorizationMachine
from ttsctr.layers.feature_selection import FeatureSelectionGate
from ttsctr.layers.init import WEIGHT_INIT_SCHEMES, initialize_weights, weight_init_plan
from ttsctr.layers.inner_product import PairwiseInnerProduct
from ttsctr.layers.mlp import MLP
from ttsctr.layers.rankmixer import (
    MultiHeadTokenMixing,
    PerFieldTokenizer,
    PerTokenFFN,
    PerTokenLinear,
    RankMixerBlock,
    SliceTokenizer,
)
from ttsctr.layers.wukong import FactorizationMachineBlock, LinearCompressBlock, WukongLayer

__all__ = [
    "CrossLayerV2",
    "CrossNetwork",
    "CrossNetworkV2",
    "FactorizationMachine",
    "FactorizationMachineBlock",
    "FeatureEmbedding",
    "FeatureSelectionGate",
    "LinearCompressBlock",
    "MLP",
    "MultiHeadBilinearFusion",
    "MultiHeadTokenMixing",
    "PairwiseInnerProduct",
    "PerFieldTokenizer",
    "PerTokenFFN",
    "PerTokenLinear",
    "RankMixerBlock",
    "SliceTokenizer",
    "WEIGHT_INIT_SCHEMES",
    "WukongLayer",
    "initialize_weights",
    "set_dropout_rate",
    "weight_init_plan",
]
