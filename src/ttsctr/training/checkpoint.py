"""Checkpoints: the self-describing group file written after training, and atomic writes.

:func:`save_group` writes member specs, the feature spec, the weights and the precision the
group was trained and evaluated in; :func:`load_group` rebuilds the group from them. The
per-epoch resume state of :func:`ttsctr.training.train` lives in ``TRAIN_STATE_FILE`` next to it.
"""

from __future__ import annotations

import hashlib

from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch

from ttsctr.data.io import atomic_file
from ttsctr.errors import ConfigError, DataFormatError
from ttsctr.features import FeatureSpec, SequenceFeatureSpec
from ttsctr.training.group import GroupModel, MemberSpec, build_group

__all__ = ["save_group", "load_group", "checkpoint_data_version", "atomic_save", "TRAIN_STATE_FILE", "GROUP_FORMAT", "TRAIN_STATE_FORMAT"]

GROUP_FORMAT = "ttsctr.group/1"
TRAIN_STATE_FORMAT = "ttsctr.train_state/2"
TRAIN_STATE_FILE = "train_state.pt"


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` through :func:`ttsctr.data.io.atomic_file` (temporary sibling, fsync, rename)."""
    with atomic_file(path) as tmp:
        torch.save(obj, tmp)


def _spec_fields(spec: FeatureSpec, content: Callable[[Any], Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"field_names": list(spec.field_names), "vocab_sizes": [int(v) for v in spec.vocab_sizes]}
    if isinstance(spec, SequenceFeatureSpec):
        out["sequence"] = {"num_context_fields": spec.num_context_fields, "user_len": spec.user_len,
                           "candidate_len": spec.candidate_len, "content": content(spec.content),
                           "candidate_field": spec.candidate_field}
    return out


def spec_dict(spec: FeatureSpec) -> dict[str, Any]:
    """The spec for a checkpoint; the frozen content vectors of a sequence spec travel with it."""
    return _spec_fields(spec, lambda c: torch.from_numpy(c.copy()))


def spec_identity(spec: FeatureSpec) -> dict[str, Any]:
    """:func:`spec_dict` with the content vectors replaced by their SHA-256: comparable with ``==``
    (what a resumed training run checks on every save) and without copying them."""
    return _spec_fields(spec, lambda c: hashlib.sha256(c.tobytes()).hexdigest())


def spec_from_dict(d: Mapping[str, Any]) -> FeatureSpec:
    names, sizes = tuple(d["field_names"]), tuple(int(v) for v in d["vocab_sizes"])
    seq = d.get("sequence")
    if seq:
        content = seq["content"]
        return SequenceFeatureSpec(names, sizes, num_context_fields=int(seq["num_context_fields"]),
                                   user_len=int(seq["user_len"]), candidate_len=int(seq["candidate_len"]),
                                   content=content.numpy() if isinstance(content, torch.Tensor) else content,
                                   candidate_field=str(seq.get("candidate_field", "item")))
    return FeatureSpec(field_names=names, vocab_sizes=sizes)

def check_group(group: Any) -> GroupModel:
    if not isinstance(group, GroupModel):
        raise ConfigError(
            f"expected a GroupModel (use build_group(spec, [MemberSpec(...)]), a single model is a group of one); "
            f"got {type(group).__name__}"
        )
    return group


def save_group(
    group: GroupModel,
    members: Sequence[MemberSpec] | None,
    spec: FeatureSpec | None,
    path: str | Path,
    *,
    data_version: str | None = None,
) -> Path:
    """Write a self-describing checkpoint (member specs, feature spec, weights), atomically.

    ``members`` / ``spec`` may be None to use the ones the group was built with. The group's
    ``precision`` (what it was trained and evaluated in) is stored, so predictions made after
    :func:`load_group` use the same arithmetic as early stopping and test evaluation did.
    ``data_version`` (:mod:`ttsctr.data.version`) is the encoding the group was trained on; its
    ids mean something only with that encoding's vocabulary, so it is stored with the weights
    and read back as ``group.data_version``.
    """
    group = check_group(group)
    members = list(members) if members is not None else list(group.member_specs or [])
    spec = spec if spec is not None else group.spec
    if len(members) != group.size:
        raise ConfigError(f"save_group: the group has {group.size} members but {len(members)} member specs were given")
    if spec.num_fields != group.spec.num_fields or spec.num_features != group.spec.num_features:
        raise ConfigError("save_group: the feature spec given does not match the one the group was built with")
    payload = {
        "format": GROUP_FORMAT,
        "members": [m.to_dict() for m in members],
        "spec": spec_dict(spec),
        "precision": group.precision,
        "data_version": data_version,
        "state_dict": group.state_dict(),
        "torch_version": str(torch.__version__),
    }
    path = Path(path)
    atomic_save(payload, path)
    return path


def _read_payload(path: Path) -> dict[str, Any]:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise DataFormatError(path, found=f"an unreadable file ({exc})", expected="a ttsctr group checkpoint") from exc
    if not isinstance(payload, dict) or payload.get("format") != GROUP_FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise DataFormatError(path, found=f"format {found!r}", expected=f"a {GROUP_FORMAT} checkpoint written by save_group")
    return payload


def checkpoint_data_version(path: str | Path) -> str | None:
    """The data version a checkpoint's group was trained on (None for checkpoints written before it was stored)."""
    return _read_payload(Path(path)).get("data_version")


def load_group(path: str | Path) -> tuple[GroupModel, list[MemberSpec], FeatureSpec]:
    """Read what :func:`save_group` wrote: the group (eval mode), its member specs and feature spec."""
    path = Path(path)
    payload = _read_payload(path)
    members = [MemberSpec.from_dict(m) for m in payload["members"]]
    spec = spec_from_dict(payload["spec"])
    group = build_group(spec, members, weight_init="torch_default")  # weights come from the file
    try:
        group.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise DataFormatError(
            path, found=f"weights that do not fit the stored member specs ({exc})", expected="a consistent checkpoint"
        ) from exc
    group.precision = str(payload.get("precision", "fp32"))
    group.data_version = payload.get("data_version")
    group.eval()
    return group, members, spec
