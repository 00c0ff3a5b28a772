"""Static optimization: coordinates (+ external loads) -> muscle activations and forces, frame by frame.

OpenSim's AnalyzeTool with a StaticOptimization analysis: minimises sum(a_i^p) (``activation_exponent``
p, default 2) subject to the joint moments, with force-length-velocity (``use_muscle_physiology``)
(Anderson & Pandy 2001). Outputs in ``out_dir``: ``<name>_StaticOptimization_activation.sto`` and
``<name>_StaticOptimization_force.sto`` (N; reserves/residuals in N·m or N).

``method``: ``"opensim"`` (the default) runs OpenSim's StaticOptimization, which leaves passive fibre force
out of every muscle's force; ``"passive"`` runs :mod:`pimsk.osim.so_passive` (same inputs, same output
files), which keeps it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from pimsk.osim import setup_xml as sx
from pimsk.osim.runner import DEFAULT_TIMEOUT_S, ToolRun, run_setup
from pimsk.osim.storage import time_range as sto_time_range

METHODS = ("opensim", "passive")


def build_so_setup(
    *,
    model: str | Path,
    coordinates: str | Path,
    out_dir: str | Path,
    time_range: tuple[float, float] | None = None,
    external_loads: str | Path | None = None,
    force_set_files: Sequence[str | Path] = (),
    replace_force_set: bool = False,
    lowpass_hz: float | None = 6.0,
    activation_exponent: float = 2.0,
    use_muscle_physiology: bool = True,
    step_interval: int = 1,
    convergence_criterion: float = 1e-4,
    max_iterations: int = 100,
    name: str = "so",
    step: str = "so",
) -> Path:
    """Write ``out_dir/setup_<step>.xml`` (AnalyzeTool + StaticOptimization); return its path.

    ``time_range`` (s): None = the whole coordinates file; a range reaching past the file is cut to it.
    """
    out_dir = Path(out_dir).resolve()
    first, last = sto_time_range(coordinates)
    # clamped to the coordinates' own span: beyond it OpenSim evaluates its reflection padding, not data
    t0, t1 = (max(first, float(time_range[0])), min(last, float(time_range[1]))) if time_range else (first, last)
    tree, tool = sx.document("AnalyzeTool", name)
    sx.sub(tool, "model_file", Path(model))
    sx.sub(tool, "replace_force_set", bool(replace_force_set))
    sx.sub(tool, "force_set_files", sx.paths_text(force_set_files))
    sx.sub(tool, "results_directory", out_dir)
    sx.sub(tool, "output_precision", 8)
    sx.sub(tool, "initial_time", float(t0))
    sx.sub(tool, "final_time", float(t1))
    sx.sub(tool, "solve_for_equilibrium_for_auxiliary_states", True)
    so = _static_optimization_element(t0, t1, activation_exponent, use_muscle_physiology, step_interval,
                                convergence_criterion, max_iterations)
    sx.analysis_set(tool, [so])
    sx.empty_controller_set(tool)
    sx.sub(tool, "external_loads_file", Path(external_loads) if external_loads else "")
    sx.sub(tool, "states_file", "")
    sx.sub(tool, "coordinates_file", Path(coordinates))
    sx.sub(tool, "speeds_file", "")
    sx.sub(tool, "lowpass_cutoff_frequency_for_coordinates", float(lowpass_hz) if lowpass_hz else -1.0)
    return sx.write(tree, out_dir / f"setup_{step}.xml")


def _static_optimization_element(t0: float, t1: float, exponent: float, physiology: bool, step_interval: int,
                           convergence: float, max_iterations: int) -> ET.Element:
    """The ``<StaticOptimization>`` analysis element."""
    so = ET.Element("StaticOptimization", name="StaticOptimization")
    sx.sub(so, "on", True)
    sx.sub(so, "start_time", float(t0))
    sx.sub(so, "end_time", float(t1))
    sx.sub(so, "step_interval", int(step_interval))
    sx.sub(so, "in_degrees", True)
    sx.sub(so, "use_model_force_set", True)
    sx.sub(so, "activation_exponent", float(exponent))
    sx.sub(so, "use_muscle_physiology", bool(physiology))
    sx.sub(so, "optimizer_convergence_criterion", float(convergence))
    sx.sub(so, "optimizer_max_iterations", int(max_iterations))
    return so


def run_so(
    *,
    model: str | Path,
    coordinates: str | Path,
    out_dir: str | Path,
    time_range: tuple[float, float] | None = None,
    external_loads: str | Path | None = None,
    force_set_files: Sequence[str | Path] = (),
    replace_force_set: bool = False,
    lowpass_hz: float | None = 6.0,
    activation_exponent: float = 2.0,
    use_muscle_physiology: bool = True,
    step_interval: int = 1,
    convergence_criterion: float = 1e-4,
    max_iterations: int = 100,
    log_file: str | Path | None = None,
    name: str = "so",
    subject: str | None = None,
    trial: str | None = None,
    timeout_s: float | None = DEFAULT_TIMEOUT_S,
    method: str = "opensim",
    tendon: str = "rigid",
    max_failed_frames: int | None = None,
) -> ToolRun:
    """Run static optimization; ``outputs`` = [activation .sto, force .sto]. ``method`` "passive": see
    :func:`pimsk.osim.so_passive.run_so_passive` (``tendon`` "rigid" or "equilibrium"; the OpenSim-only
    settings ``step_interval``, ``convergence_criterion``, ``max_iterations`` do not apply).
    ``max_failed_frames``: OpenSim's SO reports success even where its optimizer failed on every frame (e.g. a
    floating base without residual actuators); with a number, more failed frames than that raise
    OpenSimToolError (the log is read for OpenSim's "OPTIMIZATION FAILED" lines)."""
    if method not in METHODS:
        from pimsk.errors import ConfigError

        raise ConfigError(f"unknown static optimization method {method!r}", subject=subject, trial=trial,
                          field="method", hint=f"one of {', '.join(METHODS)}")
    if method == "passive":
        from pimsk.osim.so_passive import run_so_passive

        return run_so_passive(model=model, coordinates=coordinates, out_dir=out_dir, time_range=time_range,
                              external_loads=external_loads, force_set_files=force_set_files,
                              replace_force_set=replace_force_set, lowpass_hz=lowpass_hz,
                              activation_exponent=activation_exponent, use_muscle_physiology=use_muscle_physiology,
                              tendon=tendon, log_file=log_file, name=name, subject=subject, trial=trial,
                              timeout_s=timeout_s)
    setup = build_so_setup(model=model, coordinates=coordinates, out_dir=out_dir, time_range=time_range,
                           external_loads=external_loads, force_set_files=force_set_files,
                           replace_force_set=replace_force_set, lowpass_hz=lowpass_hz,
                           activation_exponent=activation_exponent, use_muscle_physiology=use_muscle_physiology,
                           step_interval=step_interval, convergence_criterion=convergence_criterion,
                           max_iterations=max_iterations, name=name)
    result = run_setup(setup, step="so", out_dir=out_dir, log_file=log_file,
                       expected=[f"{name}_StaticOptimization_activation.sto", f"{name}_StaticOptimization_force.sto"],
                       subject=subject, trial=trial, timeout_s=timeout_s)
    if max_failed_frames is not None:
        failed = count_failed_frames(result.log_file)
        if failed > max_failed_frames:
            from pimsk.errors import OpenSimToolError

            raise OpenSimToolError(
                f"static optimization failed on {failed} frame(s) (allowed {max_failed_frames}); its forces there "
                "are not a solution", subject=subject, trial=trial, file=str(result.log_file), field="so",
                hint="add reserve/residual actuators (pimsk so --reserves auto, or --actuators FILE) or check the "
                     "kinematics and external loads")
    return result


def count_failed_frames(log_file: str | Path) -> int:
    """Number of frames where OpenSim's static optimization printed that its optimizer failed."""
    path = Path(log_file)
    if not path.is_file():
        return 0
    return sum(1 for line in path.read_text(errors="replace").splitlines() if "OPTIMIZATION FAILED" in line.upper())
