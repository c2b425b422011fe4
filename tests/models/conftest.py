"""Shared fixtures for the model-zoo tests: a tiny feature spec and single-threaded torch.

Only two CPU cores are shared by several test runs, so torch is pinned to one thread.
"""

from __future__ import annotations

import pytest
import torch

from ttsctr.features import FeatureSpec

torch.set_num_threads(1)


@pytest.fixture
def tiny_spec() -> FeatureSpec:
    """5 fields with vocabularies of 10 ids (deliberately unequal offsets would hide nothing here)."""
    return FeatureSpec(field_names=tuple(f"f{i}" for i in range(5)), vocab_sizes=(10,) * 5)
