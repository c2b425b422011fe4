"""Checks of the baseline comparisons' parameter mappings: unknown keys and bad values are errors
naming the parameter (``conf/base/parameters_baselines.yml``)."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from ttsctr.errors import ConfigError

__all__ = ["check_keys", "whole_numbers", "name_list"]


def check_keys(mapping: Any, known: Iterable[str], where: str) -> Mapping[str, Any]:
    """``mapping`` itself, after checking it is a mapping whose keys are all in ``known``."""
    if mapping is None:
        return {}
    if not isinstance(mapping, Mapping):
        raise ConfigError(f"{where} must be a mapping, got {mapping!r}")
    known = set(known)
    unknown = sorted(set(mapping) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown}; known keys: {sorted(known)}")
    return mapping


def whole_numbers(values: Any, where: str, minimum: int = 1) -> list[int]:
    """A non-empty list of whole numbers >= ``minimum`` (``2.0`` is accepted as 2)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)) or not values:
        raise ConfigError(f"{where} must be a non-empty list of whole numbers >= {minimum}, got {values!r}")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v != int(v) or v < minimum:
            raise ConfigError(f"{where} must be a non-empty list of whole numbers >= {minimum}, got {values!r}")
        out.append(int(v))
    return out


def name_list(values: Any, where: str) -> list[str]:
    if isinstance(values, str) or not isinstance(values, (list, tuple)) or not values \
            or not all(isinstance(v, str) and v for v in values):
        raise ConfigError(f"{where} must be a non-empty list of names, got {values!r}")
    return list(values)
