"""Shared fixtures: seeding, tolerances and the location of ../shared."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SHARED_TRAIN = SHARED / "data" / "hymenoptera_train"
SHARED_MANIFEST = SHARED / "data" / "hymenoptera_data.SHA256SUMS"
MOBILENET_WEIGHTS = SHARED / "weights" / "mobilenet_v2-b0353104.pth"


@pytest.fixture(autouse=True)
def _seed():
    """Every test starts from the same random state."""
    random.seed(0)
    np.random.seed(0)
    try:
        import torch
    except ImportError:  # pragma: no cover
        return
    torch.manual_seed(0)


@pytest.fixture
def tol64():
    """Tolerance for float64 comparisons between exact simulators."""
    return dict(atol=1e-6, rtol=0.0)


@pytest.fixture
def tol32():
    """Tolerance for float32 against float64."""
    return dict(atol=1e-5, rtol=0.0)


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent (../shared is only in the team's checkouts and CI)")
    return path


@pytest.fixture
def shared_train() -> Path:
    return _need(SHARED_TRAIN)


@pytest.fixture
def shared_manifest() -> Path:
    return _need(SHARED_MANIFEST)


@pytest.fixture
def mobilenet_weights() -> Path:
    return _need(MOBILENET_WEIGHTS)
