"""Where things are: the shared test data folder and the results root."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def data_root() -> Path:
    """Folder of the public reference data (env ``PIMSK_DATA``, default ``../shared/data``)."""
    env = os.environ.get("PIMSK_DATA")
    if env:
        return Path(env).resolve()
    return (PROJECT_ROOT.parent / "shared" / "data").resolve()


def results_root() -> Path:
    """Root of all results (env ``PIMSK_RESULTS``, default ``results/``)."""
    return Path(os.environ.get("PIMSK_RESULTS", PROJECT_ROOT / "results")).resolve()
