"""The model-side view of an encoded dataset: fields, vocabulary sizes and id offsets.

Encoded splits hold one int32 column per field whose values are already offset into one
global id space ``[0, num_features)``, so one embedding table serves every field (Eq. 1).
``FeatureSpec`` is what models need from ``feature_map.json``; it is plain data so it can
be pickled, logged and compared.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class SequenceFeatureSpec(FeatureSpec):
    """A log with behaviour sequences (EST, ``ttsctr.data.sequences``), in the same global id space.

    Fields, in column order: the ``num_context_fields`` non-behavioural fields N, then
    ``user_len`` slots of the user-behaviour sequence and ``candidate_len`` slots of the
    candidate-specific sequence. Every slot is a field of ``n_items + 1`` ids whose local id 0
    is padding and local id ``i`` item ``i``; ids are offset like any field's, so a tabular
    backbone reads the same rows (each slot a field), and a sequence backbone recovers item
    indices by subtracting :attr:`slot_offsets`. ``content`` (``(n_items + 1, d_c)`` float32,
    row 0 zero) is the frozen content vector of every item; it is data, not a parameter, and is
    left out of ``==`` and ``hash``. ``candidate_field`` names the context field holding the
    candidate item (its local code is the item index, so its vocabulary is ``n_items + 1``): target
    attention (DIN) and similarity tokens (SimTier) look the candidate's content up through it.
    """

    num_context_fields: int = 0
    user_len: int = 0
    candidate_len: int = 0
    content: Any = field(default=None, compare=False, repr=False)
    candidate_field: str = "item"

    def __post_init__(self) -> None:
        super().__post_init__()
        f, length, k = self.num_context_fields, self.user_len, self.candidate_len
        if min(f, length, k) < 1:
            raise ConfigError(f"SequenceFeatureSpec: num_context_fields, user_len and candidate_len must be >= 1, "
                              f"got {f}, {length}, {k}")
        if len(self.field_names) != f + length + k:
            raise ConfigError(f"SequenceFeatureSpec: {len(self.field_names)} fields but {f} context fields + "
                              f"{length} user slots + {k} candidate slots")
        slots = set(self.vocab_sizes[f:])
        if len(slots) != 1:
            raise ConfigError(f"SequenceFeatureSpec: every sequence slot needs the same vocabulary (n_items + 1), "
                              f"got sizes {sorted(slots)}")
        import numpy as np

        content = np.asarray(self.content, dtype=np.float32) if self.content is not None else None
        if content is None or content.ndim != 2 or content.shape[0] != self.n_items + 1:
            shape = None if content is None else content.shape
            raise ConfigError(f"SequenceFeatureSpec: content must be ({self.n_items + 1}, d_c) (one row per item "
                              f"and the padding row), got {shape}")
        if np.any(content[0] != 0):
            raise ConfigError("SequenceFeatureSpec: content row 0 (padding) must be zero")
        object.__setattr__(self, "content", content)
        context = self.field_names[:f]
        if self.candidate_field not in context:
            raise ConfigError(f"SequenceFeatureSpec: candidate_field {self.candidate_field!r} is not a context field "
                              f"(context fields: {list(context)})")
        if self.vocab_sizes[self.candidate_index] != self.n_items + 1:
            raise ConfigError(f"SequenceFeatureSpec: candidate field {self.candidate_field!r} has "
                              f"{self.vocab_sizes[self.candidate_index]} codes; expected n_items + 1 = "
                              f"{self.n_items + 1} (its code is the item index)")

    @property
    def candidate_index(self) -> int:
        """Column of the candidate-item field in ``x``."""
        return self.field_names.index(self.candidate_field)

    @property
    def n_items(self) -> int:
        return int(self.vocab_sizes[self.num_context_fields]) - 1

    @property
    def slot_offsets(self) -> tuple[int, ...]:
        """Global id of local id 0 (padding) of every sequence slot, in column order."""
        return self.offsets[self.num_context_fields:]

    def context_spec(self) -> FeatureSpec:
        """The non-behavioural fields alone (their ids are the same: they come first)."""
        f = self.num_context_fields
        return FeatureSpec(self.field_names[:f], self.vocab_sizes[:f])
