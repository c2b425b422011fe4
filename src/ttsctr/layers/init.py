"""Weight initialisation of the dense layers of every backbone, by scheme name.

``initialize_weights(model, scheme)`` re-draws every dense weight of ``model`` in place from
torch's global RNG (the caller seeds it), in ``named_parameters`` order, so the result is a
function of the seed alone:

* ``xavier_normal`` — FuxiCTR's recipe and our default: every dense weight matrix
  ``W ~ N(0, 2 / (fan_in + fan_out))``, every bias 0.
* ``xavier_uniform`` — Keras' ``glorot_uniform``: ``W ~ U(-a, a)``, ``a = sqrt(6 / (fan_in +
  fan_out))``, every bias 0.
* ``torch_default`` — nothing: the weights the modules were constructed with stay (for
  ``nn.Linear``, torch's ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` for weight and bias, which
  is what the official TTS4CTR code trains its linear layers with).

Embedding tables (N(0, σ²) at construction, σ = ``embedding_init_std``), LayerNorm/BatchNorm
affine parameters (1 and 0) and learned inputs such as FinalMLP's gate context vector are
never touched.

Which rule applies to which parameter is explicit, never guessed from a tensor's shape:
``weight_init_plan(model)`` asks every module that owns parameters for a
``{parameter name: rule}`` mapping — built in for ``nn.Linear``, the norms and the embedding
tables, and a ``weight_init_plan()`` method on every custom layer (e.g. ``PerTokenLinear``
declares that its (T, in, out) weight has per-token fans (in, out)). A module whose
parameters have no rule, or whose rule set does not match its parameters, is a
``ConfigError``, so a new layer cannot silently keep an initialisation nobody chose.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Union

import torch
from torch import nn

from ttsctr.errors import ConfigError
from ttsctr.layers.embedding import FeatureEmbedding

WEIGHT_INIT_SCHEMES = ("xavier_normal", "xavier_uniform", "torch_default")


@dataclass(frozen=True)
class Xavier:
    """A dense weight: Xavier/Glorot with these fans. For a stack of matrices (e.g. one per
    token or per layer) the fans are those of one matrix of the stack."""

    fan_in: int
    fan_out: int

    def normal_std(self) -> float:
        return math.sqrt(2.0 / (self.fan_in + self.fan_out))

    def uniform_bound(self) -> float:
        return math.sqrt(6.0 / (self.fan_in + self.fan_out))


@dataclass(frozen=True)
class Zeros:
    """A bias: set to 0."""


@dataclass(frozen=True)
class Keep:
    """Left as constructed (embedding tables, norm affine parameters, learned inputs)."""

    reason: str


ParamInit = Union[Xavier, Zeros, Keep]


def _linear_plan(module: nn.Linear) -> dict[str, ParamInit]:
    plan: dict[str, ParamInit] = {"weight": Xavier(module.in_features, module.out_features)}
    if module.bias is not None:
        plan["bias"] = Zeros()
    return plan


def _keep_all(reason: str) -> Callable[[nn.Module], dict[str, ParamInit]]:
    def plan(module: nn.Module) -> dict[str, ParamInit]:
        return {name: Keep(reason) for name, _ in module.named_parameters(recurse=False)}

    return plan


# torch modules that cannot carry a weight_init_plan() method, checked in this order.
_BUILTIN_PLANS: tuple[tuple[type[nn.Module] | tuple[type[nn.Module], ...], Callable], ...] = (
    (nn.Linear, _linear_plan),
    ((FeatureEmbedding, nn.Embedding, nn.EmbeddingBag), _keep_all("embedding table, N(0, σ²) at construction")),
    ((nn.LayerNorm, nn.modules.batchnorm._NormBase), _keep_all("norm affine parameters, 1 and 0")),
)


def _module_plan(module: nn.Module) -> dict[str, ParamInit] | None:
    own = getattr(module, "weight_init_plan", None)
    if callable(own):
        return own()
    for types, plan in _BUILTIN_PLANS:
        if isinstance(module, types):
            return plan(module)
    return None


def weight_init_plan(module: nn.Module) -> dict[str, ParamInit]:
    """``{full parameter name: rule}`` for every parameter of ``module`` (a shared tensor once).

    Raises ``ConfigError`` for a module that owns parameters but has no rule for them, or
    whose ``weight_init_plan()`` names other parameters than the ones it owns.
    """
    plan: dict[str, ParamInit] = {}
    seen: set[int] = set()
    for prefix, sub in module.named_modules():
        own = {name: p for name, p in sub.named_parameters(recurse=False)}
        if not own:
            continue
        rules = _module_plan(sub)
        where = f"{prefix or '<root>'} ({type(sub).__name__})"
        if rules is None:
            raise ConfigError(
                f"initialize_weights: no initialisation rule for the parameters {sorted(own)} of {where}; "
                "give the layer a weight_init_plan() method returning "
                "{name: Xavier(fan_in, fan_out) | Zeros() | Keep(reason)}"
            )
        if set(rules) != set(own):
            raise ConfigError(
                f"initialize_weights: {where}.weight_init_plan() covers {sorted(rules)} "
                f"but the module owns {sorted(own)}"
            )
        for name, p in own.items():
            if id(p) in seen:
                continue
            seen.add(id(p))
            plan[f"{prefix}.{name}" if prefix else name] = rules[name]
    return plan


def check_scheme(scheme: str) -> str:
    if scheme not in WEIGHT_INIT_SCHEMES:
        raise ConfigError(
            f"unknown weight initialisation scheme {scheme!r}; known schemes: {list(WEIGHT_INIT_SCHEMES)}"
        )
    return scheme


@torch.no_grad()
def initialize_weights(module: nn.Module, scheme: str) -> None:
    """Re-draw the dense weights of ``module`` in place under ``scheme`` (see module docstring).

    Draws from torch's global RNG, parameter by parameter in ``named_parameters`` order.
    """
    check_scheme(scheme)
    if scheme == "torch_default":
        return
    params = dict(module.named_parameters())
    for name, rule in weight_init_plan(module).items():
        p = params[name]
        if isinstance(rule, Xavier):
            if scheme == "xavier_normal":
                p.normal_(0.0, rule.normal_std())
            else:
                bound = rule.uniform_bound()
                p.uniform_(-bound, bound)
        elif isinstance(rule, Zeros):
            p.zero_()
