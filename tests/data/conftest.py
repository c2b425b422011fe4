"""Fixtures for the data tests (helpers live in ``datahelpers.py`` beside this file)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from datahelpers import CRITEO_ROWS, criteo_text, make_movielens_dir, write  # noqa: E402


@pytest.fixture
def criteo_file(tmp_path: Path) -> Path:
    return write(tmp_path / "train.txt", criteo_text(CRITEO_ROWS))


@pytest.fixture
def movielens_dir(tmp_path: Path) -> Path:
    return make_movielens_dir(tmp_path)
