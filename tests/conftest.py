"""Shared fixtures: the public reference data folder (../shared/data or $PIMSK_DATA)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pimsk.paths import data_root


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Root of ../shared/data; skips the test, saying why, where it is absent."""
    root = data_root()
    if not root.is_dir():
        pytest.skip(f"reference data not found at {root} (set PIMSK_DATA)")
    return root


@pytest.fixture(scope="session")
def opensim_module():
    """The opensim package with its log quiet and no opensim.log file sink."""
    osim = pytest.importorskip("opensim")
    from pimsk.osim.logging import quiet_opensim

    quiet_opensim()
    return osim
