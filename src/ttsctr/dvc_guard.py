"""Code stamp of a persisted DVC output: ``python -m ttsctr.dvc_guard <stage> <output folder>``.

The trained groups and their predictions are ``persist`` outputs of ``dvc.yaml``: DVC keeps them
across reruns, and the project reuses a group whose configuration hash (members, training
settings, data version) is unchanged. That hash does not cover the code, so each persisted stage
first runs this guard: it hashes the stage's source dependencies (the ``src/`` entries of its
``deps`` in ``dvc.yaml``) and the ``.stage-code`` stamps of its persisted inputs; when that digest
differs from the output folder's own ``.stage-code`` (or there is none, e.g. a folder made by a
plain ``kedro run``), the folder is removed, so a change of model, training or prediction code
retrains (re-predicts) everything, and the new stamp is written.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

import yaml

STAMP = ".stage-code"


def code_digest(stage: str, dvc_yaml: Path = Path("dvc.yaml")) -> str:
    """sha256 over the stage's source files (path and bytes) and its persisted inputs' stamps."""
    deps = [Path(d) for d in yaml.safe_load(dvc_yaml.read_text())["stages"][stage]["deps"] if isinstance(d, str)]
    code = [f for d in deps if d.parts[0] == "src" for f in sorted([d] if d.is_file() else d.rglob("*"))
            if f.is_file() and "__pycache__" not in f.parts and f.suffix not in (".pyc", ".pyo")]
    stamps = [d / STAMP for d in deps if (d / STAMP).is_file()]
    digest = hashlib.sha256()
    for f in code + stamps:
        digest.update(bytes(f) + b"\0" + f.read_bytes() + b"\0")
    return digest.hexdigest()


def guard(stage: str, out: Path) -> bool:
    """Remove ``out`` unless it carries the stamp of the stage's current code; return whether it was stale."""
    digest = code_digest(stage)
    stamp = out / STAMP
    stale = not (stamp.is_file() and stamp.read_text().strip() == digest)
    if stale:
        if out.exists():
            print(f"{stage}: {out} has no stamp of this stage's current code (code changed, or made outside "
                  "dvc repro): removing it, nothing in it is reused", flush=True)
            shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True, exist_ok=True)
        stamp.write_text(digest + "\n")
    return stale


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: python -m ttsctr.dvc_guard <stage> <output folder>")
    guard(sys.argv[1], Path(sys.argv[2]))
