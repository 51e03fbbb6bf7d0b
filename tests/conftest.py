"""Shared test configuration: float64 by default, hypothesis profiles, GPU skipping."""

import os

import pytest
from hypothesis import HealthCheck, settings

import bnp

settings.register_profile(
    "default", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("thorough", max_examples=300, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(autouse=True)
def _float64_default():
    """Every test starts in float64 on the active backend and leaves it so."""
    previous = bnp.get_default_dtype()
    bnp.set_default_dtype("float64")
    yield
    bnp.set_default_dtype(previous)


@pytest.fixture
def cupy_backend():
    """Run a test on the CuPy backend (GPU tests only), then restore the previous backend."""
    previous = bnp.get_backend()
    bnp.set_backend("cupy")
    try:
        yield
    finally:
        bnp.set_backend(previous)


def pytest_collection_modifyitems(config, items):
    if bnp.backend.gpu_available():
        return
    skip = pytest.mark.skip(reason="needs CuPy and an NVIDIA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
