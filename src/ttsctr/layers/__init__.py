"""Reusable building blocks shared by the CTR backbones (one concept per module)."""

from ttsctr.layers.bilinear_fusion import MultiHeadBilinearFusion
from ttsctr.layers.cross import CrossLayerV2, CrossNetwork, CrossNetworkV2
from ttsctr.layers.embedding import FeatureEmbedding
from ttsctr.layers.factorization_machine import FactorizationMachine
from ttsctr.layers.feature_selection import FeatureSelectionGate
from ttsctr.layers.inner_product import PairwiseInnerProduct
from ttsctr.layers.mlp import MLP
from ttsctr.layers.rankmixer import FieldTokenizer, MultiHeadTokenMixing, PerTokenFFN, PerTokenLinear, RankMixerBlock
from ttsctr.layers.wukong import FactorizationMachineBlock, LinearCompressBlock, WukongLayer

__all__ = [
    "CrossLayerV2",
    "CrossNetwork",
    "CrossNetworkV2",
    "FactorizationMachine",
    "FactorizationMachineBlock",
    "FeatureEmbedding",
    "FeatureSelectionGate",
    "FieldTokenizer",
    "LinearCompressBlock",
    "MLP",
    "MultiHeadBilinearFusion",
    "MultiHeadTokenMixing",
    "PairwiseInnerProduct",
    "PerTokenFFN",
    "PerTokenLinear",
    "RankMixerBlock",
    "WukongLayer",
]
