"""Model API: the torch.nn-style builder, layers, and the zoo."""

from compiler.models import functional
from compiler.models.builder import Module, ModuleList, Parameter, Tensor, trace
from compiler.models.layers import MLP, Embedding, LayerNorm, Linear, MultiHeadAttention, PatchEmbed
from compiler.models.zoo import DEFAULT_MODEL, OPTIONS, ZOO, build, zoo_names

__all__ = [
    "DEFAULT_MODEL",
    "MLP",
    "OPTIONS",
    "ZOO",
    "Embedding",
    "LayerNorm",
    "Linear",
    "Module",
    "ModuleList",
    "MultiHeadAttention",
    "Parameter",
    "PatchEmbed",
    "Tensor",
    "build",
    "functional",
    "trace",
    "zoo_names",
]
