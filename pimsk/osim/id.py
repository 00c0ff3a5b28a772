"""Inverse dynamics: coordinates (.mot) + external loads (ExternalLoads .xml) -> net joint moments.

Output in ``out_dir``: ``moments.sto`` (N·m for rotational, N for translational coordinates; columns
``<coordinate>_moment`` / ``_force``). Coordinates are low-pass filtered at ``lowpass_hz`` before
differentiation (OpenSim's 4th-order Butterworth-like IIR; ``None`` = no filtering).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from pimsk.osim import setup_xml as sx
from pimsk.osim.runner import DEFAULT_TIMEOUT_S, ToolRun, run_setup

OUTPUT_MOMENTS = "moments.sto"


def build_id_setup(
    *,
    model: str | Path,
    coordinates: str | Path,
    out_dir: str | Path,
    external_loads: str | Path | None = None,
    time_range: tuple[float, float] | None = None,
    lowpass_hz: float | None = 6.0,
    forces_to_exclude: Sequence[str] = ("Muscles",),
    name: str = "id",
    step: str = "id",
) -> Path:
    """Write ``out_dir/setup_<step>.xml`` for OpenSim's InverseDynamicsTool; return its path."""
    out_dir = Path(out_dir).resolve()
    tree, tool = sx.document("InverseDynamicsTool", name)
    sx.sub(tool, "results_directory", out_dir)
    sx.sub(tool, "model_file", Path(model))
    sx.sub(tool, "time_range", list(time_range) if time_range else [-math.inf, math.inf])
    sx.sub(tool, "forces_to_exclude", list(forces_to_exclude))
    sx.sub(tool, "external_loads_file", Path(external_loads) if external_loads else "")
    sx.sub(tool, "coordinates_file", Path(coordinates))
    sx.sub(tool, "lowpass_cutoff_frequency_for_coordinates", float(lowpass_hz) if lowpass_hz else -1.0)
    sx.sub(tool, "output_gen_force_file", OUTPUT_MOMENTS)
    return sx.write(tree, out_dir / f"setup_{step}.xml")


def run_id(
    *,
    model: str | Path,
    coordinates: str | Path,
    out_dir: str | Path,
    external_loads: str | Path | None = None,
    time_range: tuple[float, float] | None = None,
    lowpass_hz: float | None = 6.0,
    forces_to_exclude: Sequence[str] = ("Muscles",),
    log_file: str | Path | None = None,
    name: str = "id",
    subject: str | None = None,
    trial: str | None = None,
    timeout_s: float | None = DEFAULT_TIMEOUT_S,
) -> ToolRun:
    """Run inverse dynamics; ``outputs[0]`` is ``moments.sto``. ``time_range`` None: the coordinates' own."""
    if time_range is None:  # the tool cannot read an infinite range back from its setup
        from pimsk.osim.storage import time_range as sto_time_range

        time_range = sto_time_range(coordinates)
    setup = build_id_setup(model=model, coordinates=coordinates, out_dir=out_dir, external_loads=external_loads,
                           time_range=time_range, lowpass_hz=lowpass_hz, forces_to_exclude=forces_to_exclude,
                           name=name)
    return run_setup(setup, step="id", out_dir=out_dir, log_file=log_file, expected=[OUTPUT_MOMENTS],
                     subject=subject, trial=trial, timeout_s=timeout_s)
