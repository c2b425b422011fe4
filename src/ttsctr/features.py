"""The model-side view of an encoded dataset: fields, vocabulary sizes and id offsets.

Encoded splits hold one int32 column per field whose values are already offset into one
global id space ``[0, num_features)``, so one embedding table serves every field (Eq. 1).
``FeatureSpec`` is what models need from ``feature_map.json``; it is plain data so it can
be pickled, logged and compared.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ttsctr.errors import ConfigError


@dataclass(frozen=True)
class FeatureSpec:
    field_names: tuple[str, ...]
    vocab_sizes: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.field_names) != len(self.vocab_sizes):
            raise ConfigError(
                f"FeatureSpec: {len(self.field_names)} field names but {len(self.vocab_sizes)} vocab sizes"
            )
        if not self.field_names:
            raise ConfigError("FeatureSpec: at least one field is required")
        bad = [n for n, v in zip(self.field_names, self.vocab_sizes) if v < 1]
        if bad:
            raise ConfigError(f"FeatureSpec: fields {bad} have an empty vocabulary")

    @property
    def num_fields(self) -> int:
        return len(self.field_names)

    @property
    def num_features(self) -> int:
        return sum(self.vocab_sizes)

    @property
    def offsets(self) -> tuple[int, ...]:
        out, acc = [], 0
        for size in self.vocab_sizes:
            out.append(acc)
            acc += size
        return tuple(out)

    @classmethod
    def from_feature_map(cls, feature_map: Mapping[str, Any]) -> "FeatureSpec":
        """Build from the dict stored in ``feature_map.json`` (key ``fields``: name, vocab_size)."""
        try:
            fields = feature_map["fields"]
            return cls(
                field_names=tuple(f["name"] for f in fields),
                vocab_sizes=tuple(int(f["vocab_size"]) for f in fields),
            )
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"feature map is missing {exc}; expected fields[].name and fields[].vocab_size") from exc

    @classmethod
    def load(cls, path: str | Path) -> "FeatureSpec":
        with open(path, encoding="utf-8") as fh:
            return cls.from_feature_map(json.load(fh))
