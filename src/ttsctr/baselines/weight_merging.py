"""Model merging by weight averaging, plain or after permutation alignment (the Table 6 baseline).

The paper (§3.5, Table 6) merges K independently trained members of one backbone by averaging
their weights, ``θ_merged = sum_k w_k θ_k`` (``w_k = 1/K`` by default), and finds that the merged
model collapses towards AUC 0.5 while averaging the members' *predictions* improves. Members
trained from different random initialisations need not agree on which hidden unit plays which
role: unit 3 of member A may compute what unit 17 of member B computes, and averaging the two
mixes unrelated features. Weight matching (Ainsworth, Hayase & Srinivasa, "Git Re-Basin:
Merging Models modulo Permutation Symmetries", ICLR 2023) first permutes each member's hidden
units to line up with a reference member's, then averages. This module implements both, so the
table can say whether merging fails because of the permutation symmetry or in spite of it.

Permutation symmetry of an MLP hidden layer
-------------------------------------------
``ttsctr.layers.mlp.MLP`` computes, per hidden layer l,
``h_l = Dropout(act(BN_l(W_l h_{l-1} + b_l)))`` with ``W_l`` of shape (n_l, n_{l-1}), and the
next Linear reads ``W_{l+1} h_l``. For any permutation matrix ``P`` of the n_l units

    W_l -> P W_l,   b_l -> P b_l,   BN_l (weight, bias, running_mean, running_var) -> P ·,
    W_{l+1} -> W_{l+1} P^T

leaves the function unchanged, because the activation and dropout act unit by unit. A
permutation ``perm`` (an int array of length n_l) is stored as "new unit i is old unit
``perm[i]``", i.e. ``W_l -> W_l[perm]``, ``W_{l+1} -> W_{l+1}[:, perm]``.

What is aligned, what is not
----------------------------
Aligned: the hidden units of every ``MLP`` submodule, wherever it sits in the model, *provided
the layer's output is read by a Linear inside the same MLP*. That is every hidden layer of an
MLP with an output layer (``output_dim`` set) and every hidden layer but the last of an MLP
without one. The last hidden layer of an MLP without an output layer feeds a module outside the
MLP (DCN/DCN-V2's ``output`` Linear next to the cross network, FinalMLP's bilinear fusion,
Wukong's FMB reshaping into embeddings), whose input layout this module cannot know, so it is
left in place.

Not aligned (averaged as they are): embedding tables; DCN/DCN-V2 cross layers and the output
Linear; FinalMLP's bilinear fusion and gate context vectors; Wukong's FMB projection ``Y``,
LayerNorms, linear-compress blocks and residual projections; RankMixer's tokenizers, token
mixing, LayerNorms and per-token FFNs (``PerTokenFFN`` is not an ``MLP``, although its
``expansion·D`` hidden units per token are permutable in principle); DeepFM's first-order
weights; any parameter outside an ``MLP``. Embedding coordinates and cross-network features are
permutable too, but only jointly across every module that reads them, which this module does
not attempt. So for the small presets, per backbone:

* fnn, deepfm, ipnn — all hidden layers of ``mlp`` (it ends in an output Linear);
* dcn, dcnv2 — ``mlp``'s hidden layers except the last (128 of (128, 64));
* finalmlp — ``mlp1``/``mlp2`` except their last hidden layer; all hidden layers of
  ``gate1.gate_mlp`` / ``gate2.gate_mlp``;
* wukong — every FMB MLP's hidden layers (``fmb_hidden_units``; with
  ``fmb_output_activation="relu"`` the MLP's last layer is the FMB output, not aligned) and all
  hidden layers of the final ``mlp``;
* rankmixer — all hidden layers of ``head``; nothing in the blocks;
* lr — nothing (no MLP): alignment is the identity.

Weight matching
---------------
For each MLP separately, with the reference A and the model B, find permutations ``P_l``
maximising ``sum_params <θ_A, π_P(θ_B)>`` — the inner product of the reference's parameters
with the permuted model's, summed over every tensor a permutation touches. With all other
permutations fixed, the terms that involve ``P_l`` form a linear assignment problem with the
(n_l, n_l) similarity matrix

    S_l[i, j] = <W_l^A[i, :], W_l^B[j, perm_{l-1}]> + b_l^A[i] b_l^B[j]
                + sum over BN_l tensors t of t^A[i] t^B[j]
                + <W_{l+1}^A[:, i], W_{l+1}^B[perm_{l+1}, j]>

(``perm_{l-1}`` is the identity for the MLP's input, ``perm_{l+1}`` for an unaligned next layer),
which ``scipy.optimize.linear_sum_assignment(S_l, maximize=True)`` solves exactly. Coordinate
descent visits the layers in a random order (``seed``) and repeats until a whole sweep changes
no permutation, or ``max_iter`` sweeps. A new permutation is taken only when it strictly raises
that layer's objective, so the objective never decreases and ties cannot make it cycle.

Caveats
-------
* BatchNorm running statistics are averaged like parameters. The variance of an average of
  features is not the average of their variances (and averaged units are less than perfectly
  correlated), so a merged BN model usually wants its running statistics re-estimated on
  training data ("REPAIR", Jordan et al., ICLR 2023); this module does not do that.
* Integer buffers (``num_batches_tracked``) cannot be averaged; the first model's are kept.
* Weight matching is a local search; it finds the exact inverse for a permuted copy of the
  reference (tested), but for independently trained members it is a heuristic optimum.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import nn

from ttsctr.errors import ConfigError
from ttsctr.layers.mlp import MLP

__all__ = [
    "average_weights",
    "check_same_architecture",
    "mlp_permutations",
    "permute_model",
    "align_to",
    "merge_weights",
    "weight_distance",
]

# Modules that act on every unit separately (same function for each unit, no cross-unit
# mixing), so they commute with a permutation of the units. Anything else between two Linears
# of an MLP would break the symmetry and is refused rather than silently mis-permuted.
_UNITWISE_MODULES = (
    nn.ReLU,
    nn.LeakyReLU,
    nn.GELU,
    nn.SiLU,
    nn.ELU,
    nn.Tanh,
    nn.Sigmoid,
    nn.Identity,
    nn.Dropout,
)

_BN_TENSORS = ("weight", "bias", "running_mean", "running_var")


# --------------------------------------------------------------------------- averaging


def check_same_architecture(models: Sequence[nn.Module]) -> None:
    """Raise ConfigError unless every model has models[0]'s class and state-dict keys/shapes.

    The message names the first model that differs and the first differing key (in models[0]'s
    state-dict order) with both shapes, or the keys only one of them has.
    """
    if len(models) == 0:
        raise ConfigError("weight merging needs at least one model, got none")
    first = models[0]
    first_state = first.state_dict()
    for index, other in enumerate(models[1:], start=1):
        if type(other) is not type(first):
            raise ConfigError(
                f"model {index} is a {type(other).__name__}, model 0 a {type(first).__name__}; "
                "only models of one architecture can be merged"
            )
        other_state = other.state_dict()
        missing = [key for key in first_state if key not in other_state]
        extra = [key for key in other_state if key not in first_state]
        if missing or extra:
            raise ConfigError(
                f"model {index} has different state-dict keys than model 0: first key only in model 0: "
                f"{missing[0] if missing else None!r}, first key only in model {index}: {extra[0] if extra else None!r}"
            )
        for key, tensor in first_state.items():
            if other_state[key].shape != tensor.shape:
                raise ConfigError(
                    f"model {index} differs from model 0 at {key!r}: shape {tuple(other_state[key].shape)} "
                    f"vs {tuple(tensor.shape)}; only models of one architecture can be merged"
                )


def _normalised_weights(weights: Sequence[float] | None, count: int) -> np.ndarray:
    if weights is None:
        return np.full(count, 1.0 / count)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (count,):
        raise ConfigError(f"merge weights must be one number per model ({count}), got shape {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ConfigError(f"merge weights must be finite, non-negative and not all zero, got {w.tolist()}")
    return w / w.sum()


def average_weights(models: Sequence[nn.Module], weights: Sequence[float] | None = None) -> nn.Module:
    """A deep copy of ``models[0]`` holding ``θ = sum_k w_k θ_k`` for every floating tensor.

    ``weights`` (length K, non-negative, normalised to sum 1; default ``1/K`` each) weigh the
    models. Parameters and floating buffers — BatchNorm ``running_mean``/``running_var``
    included — are averaged; integer buffers (BatchNorm ``num_batches_tracked``) cannot be and
    are taken from ``models[0]``. Non-persistent buffers (not in the state dict) are copied
    from ``models[0]``. The sum is accumulated in float64 and cast back to each tensor's dtype,
    so averaging K identical models returns them unchanged.

    Raises ConfigError when the models differ in class or state-dict keys/shapes.
    """
    models = list(models)
    check_same_architecture(models)
    coefficients = _normalised_weights(weights, len(models))
    states = [m.state_dict() for m in models]
    merged_state = {}
    for key, first in states[0].items():
        if not torch.is_floating_point(first):
            merged_state[key] = first.clone()
            continue
        total = torch.zeros(first.shape, dtype=torch.float64, device=first.device)
        for coefficient, state in zip(coefficients, states):
            total += float(coefficient) * state[key].to(device=first.device, dtype=torch.float64)
        merged_state[key] = total.to(first.dtype)
    merged = copy.deepcopy(models[0])
    merged.load_state_dict(merged_state)
    return merged


# --------------------------------------------------------------------------- MLP structure


@dataclass(frozen=True)
class _HiddenLayer:
    """One permutable hidden layer: its Linear, optional BatchNorm, and the Linear reading it."""

    linear: nn.Linear
    norm: nn.BatchNorm1d | None
    next_linear: nn.Linear


def _permutable_layers(mlp: MLP, name: str) -> list[_HiddenLayer]:
    """The hidden layers of ``mlp`` whose units are read only by the next Linear of the same MLP."""
    linears: list[nn.Linear] = []
    norms: list[nn.BatchNorm1d | None] = []
    for position, module in enumerate(mlp.net):
        if isinstance(module, nn.Linear):
            linears.append(module)
            norms.append(None)
        elif isinstance(module, nn.BatchNorm1d) and linears and norms[-1] is None:
            norms[-1] = module
        elif not isinstance(module, _UNITWISE_MODULES):
            raise ConfigError(
                f"MLP {name!r}: module {position} is a {type(module).__name__}, which may mix hidden units; "
                f"only {[c.__name__ for c in _UNITWISE_MODULES]} and BatchNorm1d are known to commute with "
                "a permutation of the units"
            )
    # Layer l is permutable when a Linear of this MLP (l + 1) reads it; the last Linear's output
    # leaves the MLP. A norm after the last Linear (last hidden layer without output layer) stays.
    return [_HiddenLayer(linears[l], norms[l], linears[l + 1]) for l in range(len(linears) - 1)]


def _named_mlps(model: nn.Module) -> dict[str, MLP]:
    return {name: module for name, module in model.named_modules() if isinstance(module, MLP)}


def _as_numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().to(device="cpu", dtype=torch.float64).numpy()


def _incoming_features(layer: _HiddenLayer, input_perm: np.ndarray | None) -> np.ndarray:
    """(n_l, n_{l-1} + extras): per unit its incoming weights (input columns reordered by
    ``input_perm``), its bias and its BatchNorm tensors — everything a unit permutation moves."""
    weight = _as_numpy(layer.linear.weight)  # (n_l, n_{l-1})
    if input_perm is not None:
        weight = weight[:, input_perm]
    columns = [weight]
    if layer.linear.bias is not None:
        columns.append(_as_numpy(layer.linear.bias)[:, None])
    if layer.norm is not None:
        for attr in _BN_TENSORS:
            tensor = getattr(layer.norm, attr)
            if tensor is not None:
                columns.append(_as_numpy(tensor)[:, None])
    return np.concatenate(columns, axis=1)


def _outgoing_features(layer: _HiddenLayer, output_perm: np.ndarray | None) -> np.ndarray:
    """(n_{l+1}, n_l): the next Linear's weights, its rows (the next layer's units) reordered by
    ``output_perm``; column j is what unit j sends on."""
    weight = _as_numpy(layer.next_linear.weight)
    return weight if output_perm is None else weight[output_perm]


def _match_mlp(
    reference_layers: list[_HiddenLayer],
    model_layers: list[_HiddenLayer],
    rng: np.random.Generator,
    max_iter: int,
) -> list[np.ndarray]:
    """Coordinate descent of weight matching over the permutable layers of one MLP."""
    count = len(reference_layers)
    perms = [np.arange(layer.linear.out_features) for layer in model_layers]
    if count == 0:
        return perms
    # The reference side never moves, so its features are computed once.
    reference_in = [_incoming_features(layer, None) for layer in reference_layers]
    reference_out = [_outgoing_features(layer, None) for layer in reference_layers]
    for _ in range(max_iter):
        changed = False
        for l in rng.permutation(count):
            input_perm = perms[l - 1] if l > 0 else None  # the MLP's input is not permuted
            output_perm = perms[l + 1] if l + 1 < count else None  # neither is an unaligned next layer
            similarity = reference_in[l] @ _incoming_features(model_layers[l], input_perm).T  # (n_l, n_l)
            similarity += reference_out[l].T @ _outgoing_features(model_layers[l], output_perm)
            rows, cols = linear_sum_assignment(similarity, maximize=True)
            best, current = similarity[rows, cols].sum(), similarity[rows, perms[l]].sum()
            # Strict improvement only: the objective then increases monotonically and the loop
            # cannot cycle between equally good assignments.
            if best > current + 1e-12 * max(1.0, abs(current)):
                perms[l] = cols.copy()
                changed = True
        if not changed:
            break
    return perms


# --------------------------------------------------------------------------- public API


def mlp_permutations(
    reference: nn.Module, model: nn.Module, max_iter: int = 100, seed: int = 0
) -> dict[str, list[np.ndarray]]:
    """Weight-matching permutations of ``model``'s MLP hidden units onto ``reference``'s.

    Returns ``{mlp_name: [perm_0, perm_1, ...]}`` for every ``MLP`` submodule (name as in
    ``model.named_modules()``), one int64 array per permutable hidden layer (see the module
    docstring; an MLP with none has an empty list, a model without MLPs gives ``{}``).
    ``permute_model(model, perms)`` is then the member whose units line up with the reference's.
    ``max_iter`` bounds the coordinate-descent sweeps per MLP; ``seed`` fixes the layer order.
    """
    check_same_architecture([reference, model])
    if max_iter < 1:
        raise ConfigError(f"max_iter must be >= 1, got {max_iter}")
    rng = np.random.default_rng(seed)
    reference_mlps, model_mlps = _named_mlps(reference), _named_mlps(model)
    return {
        name: _match_mlp(_permutable_layers(reference_mlps[name], name), _permutable_layers(mlp, name), rng, max_iter)
        for name, mlp in model_mlps.items()
    }


def permute_model(model: nn.Module, perms: dict[str, Sequence[np.ndarray]]) -> nn.Module:
    """A deep copy of ``model`` with each named MLP's hidden units permuted; same function.

    For hidden layer l with ``perm`` (new unit i = old unit ``perm[i]``):
    ``W_l <- W_l[perm]``, ``b_l <- b_l[perm]``, the BatchNorm's weight, bias, running mean and
    variance ``<- ·[perm]``, and the next Linear's ``W_{l+1} <- W_{l+1}[:, perm]``.
    MLPs not named in ``perms`` are left alone. Raises ConfigError for an unknown MLP name, a
    wrong number of permutations or an array that is not a permutation of the layer's units.
    """
    permuted = copy.deepcopy(model)
    mlps = _named_mlps(permuted)
    for name, layer_perms in perms.items():
        if name not in mlps:
            raise ConfigError(f"no MLP named {name!r} in {type(model).__name__}; its MLPs: {sorted(mlps)}")
        layers = _permutable_layers(mlps[name], name)
        if len(layer_perms) != len(layers):
            raise ConfigError(
                f"MLP {name!r} has {len(layers)} permutable hidden layers, got {len(layer_perms)} permutations"
            )
        for index, (layer, perm) in enumerate(zip(layers, layer_perms)):
            perm = np.asarray(perm)
            width = layer.linear.out_features
            if perm.shape != (width,) or not np.array_equal(np.sort(perm), np.arange(width)):
                raise ConfigError(
                    f"MLP {name!r} hidden layer {index}: expected a permutation of {width} units, "
                    f"got an array of shape {perm.shape}"
                )
            _apply_permutation(layer, torch.as_tensor(perm, dtype=torch.long))
    return permuted


@torch.no_grad()
def _apply_permutation(layer: _HiddenLayer, perm: torch.Tensor) -> None:
    """Reorder one hidden layer's units in place (every tensor the permutation touches)."""
    perm = perm.to(layer.linear.weight.device)
    unit_tensors = [layer.linear.weight, layer.linear.bias]
    if layer.norm is not None:
        unit_tensors += [getattr(layer.norm, attr) for attr in _BN_TENSORS]
    for tensor in unit_tensors:
        if tensor is not None:
            tensor.copy_(tensor[perm])  # indexing copies first, so the in-place write is safe
    layer.next_linear.weight.copy_(layer.next_linear.weight[:, perm])


def align_to(reference: nn.Module, model: nn.Module, *, max_iter: int = 100, seed: int = 0) -> nn.Module:
    """``model`` with its MLP hidden units permuted to match ``reference`` (a copy; same function)."""
    return permute_model(model, mlp_permutations(reference, model, max_iter=max_iter, seed=seed))


def merge_weights(
    models: Sequence[nn.Module],
    align: bool,
    *,
    weights: Sequence[float] | None = None,
    max_iter: int = 100,
    seed: int = 0,
) -> nn.Module:
    """Merge K members into one model by (weighted) weight averaging.

    ``align=True``: each of ``models[1:]`` is first aligned to ``models[0]`` by weight matching
    (:func:`align_to`), then all are averaged (Git Re-Basin with a reference member);
    ``align=False``: plain averaging, the paper's Table 6 "Model" rows. See
    :func:`average_weights` for ``weights`` and the treatment of buffers.
    """
    models = list(models)
    check_same_architecture(models)
    if align:
        reference = models[0]
        models = [reference] + [align_to(reference, m, max_iter=max_iter, seed=seed) for m in models[1:]]
    return average_weights(models, weights)


def weight_distance(a: nn.Module, b: nn.Module) -> float:
    """Euclidean distance ``||θ_a - θ_b||_2`` over all floating state-dict tensors (a diagnostic)."""
    check_same_architecture([a, b])
    state_b = b.state_dict()
    squared = 0.0
    for key, tensor in a.state_dict().items():
        if torch.is_floating_point(tensor):
            squared += float(((tensor.double() - state_b[key].double()) ** 2).sum())
    return squared**0.5
