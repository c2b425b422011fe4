"""Backbones chosen by name from configuration.

Each model module registers itself with its config dataclass and named presets:
``default`` follows the paper's reference code, ``small`` keeps the default CPU run fast.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from ttsctr.errors import ConfigError
from ttsctr.features import FeatureSpec
from ttsctr.models.base import CTRModel, ModelConfig


INPUT_KINDS = ("tabular", "sequence")


@dataclass(frozen=True)
class ModelEntry:
    name: str
    model_class: type[CTRModel]
    presets: Mapping[str, ModelConfig]
    # "tabular": reads any FeatureSpec's ids as fields; "sequence": needs a SequenceFeatureSpec
    # (non-behavioural fields, then behaviour-sequence slots, ttsctr.features)
    inputs: str = "tabular"


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str, presets: Mapping[str, ModelConfig], *, inputs: str = "tabular"
                   ) -> Callable[[type[CTRModel]], type[CTRModel]]:
    key = name.lower()
    if inputs not in INPUT_KINDS:
        raise ConfigError(f"model {name!r}: inputs must be one of {INPUT_KINDS}, got {inputs!r}")

    def wrap(cls: type[CTRModel]) -> type[CTRModel]:
        if key in _REGISTRY:
            raise ConfigError(f"model name {name!r} registered twice")
        for preset, cfg in presets.items():
            if not isinstance(cfg, cls.config_class):
                raise ConfigError(f"{name} preset {preset!r} is not a {cls.config_class.__name__}")
        _REGISTRY[key] = ModelEntry(key, cls, dict(presets), inputs)
        return cls

    return wrap


def available_models(inputs: str | None = "tabular") -> list[str]:
    """Registered model names: the tabular backbones (default), ``inputs="sequence"`` the
    behaviour-sequence backbones (EST), ``None`` every model."""
    return sorted(k for k, e in _REGISTRY.items() if inputs is None or e.inputs == inputs)


def get_entry(name: str) -> ModelEntry:
    try:
        return _REGISTRY[str(name).lower()]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; available models: {', '.join(available_models(None))}") from None


def model_config(name: str, preset: str = "default", **overrides: Any) -> ModelConfig:
    """The preset's config with ``overrides`` applied; unknown keys are an error, not ignored."""
    entry = get_entry(name)
    if preset not in entry.presets:
        raise ConfigError(f"model {name!r} has no preset {preset!r}; presets: {sorted(entry.presets)}")
    base = entry.presets[preset]
    known = {f.name for f in dataclasses.fields(base)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(f"model {name!r}: unknown config keys {unknown}; known keys: {sorted(known)}")
    # Lists from YAML become tuples so configs stay hashable and compare equal across runs.
    clean = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
    return dataclasses.replace(base, **clean)


def build_model(name: str, spec: FeatureSpec, preset: str = "default", **overrides: Any) -> CTRModel:
    entry = get_entry(name)
    return entry.model_class(spec, model_config(name, preset, **overrides))
