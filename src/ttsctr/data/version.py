"""The data version of a published dataset, and the check that binds derived artefacts to it.

The data version is a content hash of everything a model reads from
``data/05_model_input/<dataset>/``: the three encoded splits, the feature map and the vocabulary
(so re-encoding with another ``min_count`` — other ids, other vocabulary — is another version).
The feature map's provenance (:data:`PROVENANCE_KEYS`: when and how fast it was made, where the
raw file lay) is left out: encoding the same rows with the same settings twice is one version.
It is computed once, when a validated staging folder is published, and stored in the folder's
marker file (:data:`MARKER_FILE`), which is renamed into place together with the data.

Every artefact derived from encoded data (group checkpoint, prediction table, scaling table,
registered model) records the version it was computed from. :func:`require_data_version` is the
single check a consumer runs before (and, for long reads, after) it uses the published data:
the version it expects — the one its run took at its start — must be the one published now.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ttsctr.errors import TTSCTRError

MARKER_FILE = "fingerprint.json"
VERSIONED_FILES = ("train.parquet", "validation.parquet", "test.parquet", "feature_map.json", "vocabulary.parquet")
# a behaviour-sequence folder's frozen content and attribute tables (ttsctr.data.sequence_store)
CONTENT_FILE, USERS_FILE, ITEMS_FILE = "content.npy", "users.parquet", "items.parquet"
OPTIONAL_VERSIONED_FILES = (CONTENT_FILE, USERS_FILE, ITEMS_FILE)
FEATURE_MAP_FILE = "feature_map.json"
PROVENANCE_KEYS = frozenset({"created_at", "elapsed_s", "raw", "ttsctr_version"})


class DataVersionError(TTSCTRError):
    """An artefact or a run expects another data version than the one published (or found).

    ``expected`` is the version the consumer was computed from or took at its start; ``found``
    the version published now (None when nothing is published).
    """

    def __init__(self, message: str, *, expected: str | None, found: str | None) -> None:
        self.expected = expected
        self.found = found
        super().__init__(message)


def compute_data_version(folder: str | Path) -> str:
    """sha256 (first 16 hex digits) over the names and bytes of :data:`VERSIONED_FILES` in ``folder``
    and of those :data:`OPTIONAL_VERSIONED_FILES` it holds (a tabular folder's version is unchanged)."""
    folder = Path(folder)
    digest = hashlib.sha256()
    optional = [name for name in OPTIONAL_VERSIONED_FILES if (folder / name).is_file()]
    for name in (*VERSIONED_FILES, *optional):
        digest.update(name.encode() + b"\0")
        if name == FEATURE_MAP_FILE:
            content = json.loads((folder / name).read_text(encoding="utf-8"))
            content = {k: v for k, v in content.items() if k not in PROVENANCE_KEYS}
            digest.update(json.dumps(content, sort_keys=True).encode())
        else:
            with open(folder / name, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 22), b""):
                    digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def read_marker(folder: str | Path) -> dict[str, Any] | None:
    """The marker of a published folder (fingerprint of its raw input and settings, data version), or None."""
    try:
        marker = json.loads((Path(folder) / MARKER_FILE).read_text())
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def published_data_version(folder: str | Path) -> str | None:
    """The data version published in ``folder`` now, or None when nothing (complete) is published there."""
    marker = read_marker(folder)
    version = marker.get("data_version") if marker else None
    return version if isinstance(version, str) else None


def require_data_version(folder: str | Path, expected: str | None, *, what: str) -> None:
    """Raise :class:`DataVersionError` unless ``folder`` publishes data version ``expected``.

    ``what`` names the consumer for the message (``"training dcnv2_x8/group_00"``). An artefact
    without a recorded version (written before versions were recorded) never matches.
    """
    found = published_data_version(folder)
    if expected is not None and found == expected:
        return
    if expected is None:
        raise DataVersionError(
            f"{what}: records no data version (written by an older ttsctr); it cannot be matched to the "
            f"data published in {folder} (version {found}). Rerun the pipeline that produces it.",
            expected=None, found=found,
        )
    if found is None:
        raise DataVersionError(
            f"{what}: expects data version {expected}, but {folder} holds no published data now. "
            "Run the data_processing pipeline (kedro run) first.",
            expected=expected, found=None,
        )
    raise DataVersionError(
        f"{what}: computed from data version {expected}, but {folder} now publishes version {found} "
        "(the dataset was re-encoded, e.g. with other preprocessing settings). Results of one encoding are "
        "never combined with another's: rerun `kedro run` for this dataset to recompute them.",
        expected=expected, found=found,
    )


def require_same_version(found: str | None, expected: str, *, what: str, source: str) -> None:
    """Raise :class:`DataVersionError` unless an artefact's recorded version ``found`` is ``expected``.

    For artefacts checked against the run's data version rather than a folder (``source`` names
    the artefact file for the message).
    """
    if found == expected:
        return
    recorded = f"data version {found}" if found else "no data version (written by an older ttsctr)"
    raise DataVersionError(
        f"{what}: {source} was computed from {recorded}, but this run uses data version {expected}. "
        "Rerun `kedro run` for this dataset (it recomputes what belongs to another encoding).",
        expected=expected, found=found,
    )
