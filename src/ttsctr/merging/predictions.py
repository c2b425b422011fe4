"""Member pools from the prediction files the ``prediction`` pipeline materialised.

A group's manifest (``data/07_model_output/<dataset>/<ensemble>/<group>/manifest.json``) names
its members and one Parquet file per split (``row_index``, ``label``, ``<member>_logit``, ...).
:func:`load_member_pool` reads exactly one split's files, so a caller that passes
``"validation"`` never opens the test rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pyarrow.parquet as pq

from ttsctr.errors import ConfigError
from ttsctr.experiment import EnsemblePlan
from ttsctr.merging.pool import MemberPool

__all__ = ["check_manifest_versions", "load_member_pool", "split_groups"]


def check_manifest_versions(manifests: Sequence[dict[str, Any]], data_version: str, what: str) -> None:
    """Refuse prediction manifests computed from another data version than ``data_version``."""
    from ttsctr.data.version import require_same_version

    for manifest in manifests:
        require_same_version(manifest.get("data_version"), data_version, what=what,
                             source=f"the predictions of {manifest['ensemble']}/{manifest['group']}")


def load_member_pool(manifests: list[dict[str, Any]], split: str, ensemble: EnsemblePlan) -> MemberPool:
    """All members' logits on ``split`` in member order, with their training group and backbone.

    Reads the ``<member>_logit`` columns of each group's ``files[split]`` parquet file; every
    group must hold the same rows (``row_index``) with the same labels.
    """
    logits, names, groups, families = [], [], [], []
    labels = rows = None
    for manifest in sorted(manifests, key=lambda m: m["member_indices"][0]):
        path = manifest["files"][split]
        table = pq.read_table(path, columns=["row_index", "label", *(f"{n}_logit" for n in manifest["members"])])
        y, idx = table.column("label").to_numpy(), table.column("row_index").to_numpy()
        if labels is None:
            labels, rows = y, idx
        elif not (np.array_equal(rows, idx) and np.array_equal(labels, y)):
            raise ConfigError(f"{path}: rows or labels differ from the other groups' ({split} split changed?)")
        group = next(g for g in ensemble.groups if g.name == manifest["group"])
        for name, index in zip(manifest["members"], manifest["member_indices"]):
            logits.append(table.column(f"{name}_logit").to_numpy())
            names.append(name)
            groups.append(group.index)
            families.append(ensemble.members[index].backbone)
    if labels is None:
        raise ConfigError(f"{ensemble.name}: no group predictions to merge")
    return MemberPool(
        logits=np.stack(logits, axis=1),
        labels=labels.astype(np.int64),
        group_of_member=np.asarray(groups),
        family_of_member=np.asarray(families),
        member_names=tuple(names),
    )


def split_groups(model_input_dir: str | Path, manifest: dict[str, Any], split: str, field: str) -> np.ndarray:
    """The ``field`` ids (e.g. ``user_id``) of the rows of ``manifest``'s ``split`` predictions, in
    their order: the encoded split's column, indexed by the predictions' ``row_index``. Group AUC
    needs them; the prediction files keep only row indices and labels."""
    path = Path(model_input_dir) / f"{split}.parquet"
    names = pq.read_schema(path).names
    if field not in names:
        raise ConfigError(f"{path}: no column {field!r} for the group AUC (tts.merging.user_fields); "
                          f"columns: {names[:12]}")
    ids = pq.read_table(path, columns=[field]).column(field).to_numpy()
    rows = pq.read_table(manifest["files"][split], columns=["row_index"]).column("row_index").to_numpy()
    if rows.size and (rows.min() < 0 or rows.max() >= ids.size):
        raise ConfigError(f"{manifest['files'][split]}: row_index beyond the {ids.size} rows of {path}")
    return ids[rows]

